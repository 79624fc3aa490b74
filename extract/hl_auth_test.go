package extract

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/marketsync/marketsync/apisim"
	"github.com/marketsync/marketsync/internal/tokenfile"
)

func hlSim(t *testing.T) *apisim.Server {
	t.Helper()
	// No data changes while the clock moves: these tests are about tokens.
	s, err := apisim.New(apisim.Config{Seed: 2, Scale: 300, Locations: 4, Profile: "fast", TokenTTL: time.Hour,
		InsertRate: 1e-12, UpdateRate: 1e-12, DeleteRate: 1e-12})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func hlCfg(s *apisim.Server, mode, tokenFile string) HighLevelConfig {
	return HighLevelConfig{BaseURL: s.URL(), ClientID: apisim.DemoHLClientID, ClientSecret: apisim.DemoHLClientSecret,
		CompanyID: apisim.DemoHLCompanyID, AppID: apisim.DemoHLAppID, Auth: mode, TokenFile: tokenFile}
}

func newHLClient(t *testing.T) *Client {
	c := NewClient(discard, RetryPolicy{InitialInterval: time.Millisecond, MaxAttempts: 3}, 5*time.Second)
	t.Cleanup(c.CloseIdle)
	return c
}

// authorizeSim runs the code exchange against the simulator and returns the saved tokens.
func authorizeSim(t *testing.T, s *apisim.Server, path string) tokenfile.Tokens {
	t.Helper()
	const cb = "http://127.0.0.1:1/cb"
	oc := HighLevelOAuth(s.URL(), apisim.DemoHLClientID, apisim.DemoHLClientSecret, s.URL()+"/v2/oauth/chooselocation", cb, nil)
	got, err := AuthorizeHighLevel(context.Background(), newHLClient(t), oc, s.AuthorizationCode(cb), apisim.DemoHLCompanyID, path)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// syncAll lists the locations and every location's charges; it returns the charges read.
func syncAll(ctx context.Context, h *HighLevel) (int, error) {
	var st Counters
	ids, _, err := h.Locations(ctx, &st, func(context.Context, Page) error { return nil })
	if err != nil {
		return 0, err
	}
	var n atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, len(ids))
	for i, id := range ids {
		wg.Add(1)
		go func() { // concurrently, as the pipeline does: one refresh must serve them all
			defer wg.Done()
			_, errs[i] = h.Charges(ctx, id, time.Time{}, &st, func(_ context.Context, p Page) error { n.Add(int64(len(p.Records))); return nil })
		}()
	}
	wg.Wait()
	return int(n.Load()), errors.Join(errs...)
}

func refreshGrants(s *apisim.Server) int { return s.Snapshot().Requests["highlevel.token"]["200"] }

func TestHighLevelRefreshToken_RotatesAcrossExpirySerializedAndPersisted(t *testing.T) {
	s := hlSim(t)
	path := filepath.Join(t.TempDir(), "hl-token.json")
	first := authorizeSim(t, s, path)
	ctx := context.Background()
	// Two syncers sharing the token file, as two processes would (each its own client and cache).
	a := NewHighLevel(newHLClient(t), hlCfg(s, HLAuthRefreshToken, path), &Counters{})
	b := NewHighLevel(newHLClient(t), hlCfg(s, HLAuthRefreshToken, path), &Counters{})
	want, err := syncAll(ctx, a)
	if err != nil || want == 0 {
		t.Fatalf("first sync: %d charges, %v", want, err)
	}
	if n := refreshGrants(s); n != 1 {
		t.Fatalf("%d token grants: the exchanged access token should have been used as it is", n)
	}
	// Every access token expires (simulated clock): both syncers get 401s, at once, on every
	// location, and exactly one refresh serves them all.
	s.Advance(2 * time.Hour)
	var wg sync.WaitGroup
	got := make([]int, 2)
	errs := make([]error, 2)
	for i, h := range []*HighLevel{a, b} {
		wg.Add(1)
		go func() { defer wg.Done(); got[i], errs[i] = syncAll(ctx, h) }()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil || got[0] != want || got[1] != want {
		t.Fatalf("after expiry: %v charges (want %d each), %v", got, want, err)
	}
	if n := refreshGrants(s); n != 2 {
		t.Fatalf("%d token grants after expiry: want the exchange and exactly one refresh", n)
	}
	if s.Snapshot().Requests["highlevel.installedLocations"]["401"] == 0 {
		t.Fatal("no 401 was served: the test did not exercise expiry")
	}
	second, err := tokenfile.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if second.RefreshToken == first.RefreshToken || !s.RefreshTokenValid(second.RefreshToken) || s.RefreshTokenValid(first.RefreshToken) {
		t.Fatal("the token file does not hold the newest refresh token, or the used one is still accepted")
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file mode %v", fi.Mode().Perm())
	}
	// Once more, so rotation is seen twice, by a fresh syncer (a new run).
	s.Advance(2 * time.Hour)
	if n, err := syncAll(ctx, NewHighLevel(newHLClient(t), hlCfg(s, HLAuthRefreshToken, path), &Counters{})); err != nil || n != want {
		t.Fatalf("third run: %d, %v", n, err)
	}
	third, _ := tokenfile.Load(path)
	if third.RefreshToken == second.RefreshToken || !s.RefreshTokenValid(third.RefreshToken) || s.RefreshTokenValid(second.RefreshToken) || refreshGrants(s) != 3 {
		t.Fatal("the second rotation was not persisted")
	}
}

// A run killed between HighLevel's refresh answer and the next step: the hook stops the run
// where a kill would, and a new run (new client, nothing kept in memory) starts from the file.
func TestHighLevelRefreshToken_KillBetweenRefreshAndPersist(t *testing.T) {
	errKilled := errors.New("killed")
	run := func(t *testing.T, s *apisim.Server, path, killAt string) error {
		h := NewHighLevel(newHLClient(t), hlCfg(s, HLAuthRefreshToken, path), &Counters{})
		if killAt != "" {
			h.auth.agency.(*refreshSource).afterRefresh = func(stage string) error {
				if stage == killAt {
					return errKilled
				}
				return nil
			}
		}
		_, err := syncAll(context.Background(), h)
		return err
	}
	t.Run("killed after the save, before first use: the next run authenticates", func(t *testing.T) {
		s := hlSim(t)
		path := filepath.Join(t.TempDir(), "hl-token.json")
		before := authorizeSim(t, s, path)
		s.Advance(2 * time.Hour)
		if err := run(t, s, path, "saved"); !errors.Is(err, errKilled) {
			t.Fatalf("the kill did not happen: %v", err)
		}
		saved, _ := tokenfile.Load(path)
		if saved.RefreshToken == before.RefreshToken || !s.RefreshTokenValid(saved.RefreshToken) || s.RefreshTokenValid(before.RefreshToken) {
			t.Fatal("the rotated refresh token was not in the file when the run died")
		}
		if err := run(t, s, path, ""); err != nil {
			t.Fatalf("the next run cannot authenticate: %v", err)
		}
		if n := refreshGrants(s); n != 2 {
			t.Fatalf("%d grants: the next run should use the saved access token, not refresh again", n)
		}
	})
	t.Run("killed after HighLevel answered, before the save: detected, with the way out", func(t *testing.T) {
		s := hlSim(t)
		path := filepath.Join(t.TempDir(), "hl-token.json")
		authorizeSim(t, s, path)
		s.Advance(2 * time.Hour)
		if err := run(t, s, path, "received"); !errors.Is(err, errKilled) {
			t.Fatalf("the kill did not happen: %v", err)
		}
		err := run(t, s, path, "")
		if err == nil || !strings.Contains(err.Error(), "refused the refresh token stored in "+path) || !strings.Contains(err.Error(), "syncer auth highlevel") {
			t.Fatalf("want a refused refresh token naming the file and `syncer auth highlevel`, got %v", err)
		}
		// and the way out works: authorize again, sync.
		authorizeSim(t, s, path)
		if err := run(t, s, path, ""); err != nil {
			t.Fatal(err)
		}
	})
}

func TestHighLevelRefreshToken_MissingOrUnreadableFile(t *testing.T) {
	s := hlSim(t)
	path := filepath.Join(t.TempDir(), "none.json")
	_, err := syncAll(context.Background(), NewHighLevel(newHLClient(t), hlCfg(s, HLAuthRefreshToken, path), &Counters{}))
	if err == nil || !strings.Contains(err.Error(), "no token file at "+path) || !strings.Contains(err.Error(), "syncer auth highlevel") {
		t.Fatalf("missing file: %v", err)
	}
	authorizeSim(t, s, path)
	os.Chmod(path, 0o644)
	_, err = syncAll(context.Background(), NewHighLevel(newHLClient(t), hlCfg(s, HLAuthRefreshToken, path), &Counters{}))
	if err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("readable file: %v", err)
	}
}

func TestHighLevelPrivateToken_StaticAndActionableOn401(t *testing.T) {
	s := hlSim(t)
	cfg := hlCfg(s, HLAuthPrivateToken, "")
	cfg.ClientID, cfg.ClientSecret, cfg.PrivateToken = "", "", s.IssuePrivateToken()
	h := NewHighLevel(newHLClient(t), cfg, &Counters{})
	n, err := syncAll(context.Background(), h)
	if err != nil || n == 0 {
		t.Fatalf("%d charges, %v", n, err)
	}
	if st := s.Snapshot(); st.Requests["highlevel.token"] != nil {
		t.Fatalf("a private token needs no token endpoint: %v", st.Requests["highlevel.token"])
	}
	// Location tokens expire and are minted again from the private token; it never expires.
	s.Advance(48 * time.Hour)
	if n2, err := syncAll(context.Background(), h); err != nil || n2 != n {
		t.Fatalf("after expiry of the location tokens: %d, %v", n2, err)
	}
	s.RevokePrivateToken(cfg.PrivateToken)
	before := s.Snapshot().Requests["highlevel.installedLocations"]["401"]
	_, err = syncAll(context.Background(), NewHighLevel(newHLClient(t), cfg, &Counters{}))
	if !errors.Is(err, ErrPrivateTokenRefused) || !strings.Contains(err.Error(), "Private Integrations") {
		t.Fatalf("revoked private token: %v", err)
	}
	if got := s.Snapshot().Requests["highlevel.installedLocations"]["401"] - before; got != 1 {
		t.Fatalf("%d requests refused: a static token must not be resent", got)
	}
	if strings.Contains(err.Error(), cfg.PrivateToken) {
		t.Fatal("the error shows the token")
	}
}

func TestAuthorizeHighLevel_RefusedCodesAndWrongCompany(t *testing.T) {
	s := hlSim(t)
	const cb = "http://127.0.0.1:1/cb"
	path := filepath.Join(t.TempDir(), "hl.json")
	oc := HighLevelOAuth(s.URL(), apisim.DemoHLClientID, apisim.DemoHLClientSecret, s.URL()+"/v2/oauth/chooselocation", cb, nil)
	ctx := context.Background()
	code := s.AuthorizationCode(cb)
	if _, err := AuthorizeHighLevel(ctx, newHLClient(t), oc, code, "another-company", path); err == nil || !strings.Contains(err.Error(), "company_id is another-company") {
		t.Fatalf("wrong company: %v", err)
	}
	if _, err := os.Stat(path); err == nil {
		t.Fatal("tokens of the wrong company were saved")
	}
	_, err := AuthorizeHighLevel(ctx, newHLClient(t), oc, code, apisim.DemoHLCompanyID, path)
	if err == nil || !strings.Contains(err.Error(), "refused the authorization code (HTTP 401") || !strings.Contains(err.Error(), "syncer auth highlevel") {
		t.Fatalf("a used code: %v", err)
	}
	expired := s.AuthorizationCode(cb)
	s.Advance(apisim.CodeTTL + time.Second)
	if _, err := AuthorizeHighLevel(ctx, newHLClient(t), oc, expired, "", path); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("an expired code: %v", err)
	}
}

// A run stopped (SIGINT/SIGTERM cancel its context) while its refresh is in flight: HighLevel
// rotates the token anyway, so the client must still read the answer and save it.
func TestHighLevelRefreshToken_StopDuringRefreshStillSaves(t *testing.T) {
	s := hlSim(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/oauth/token" {
			s.Handler().ServeHTTP(w, r)
			return
		}
		// HighLevel has rotated the token; then the user presses Ctrl-C before the answer is read.
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, r)
		cancel()
		time.Sleep(50 * time.Millisecond)
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		w.Write(rec.Body.Bytes())
	}))
	defer front.Close()
	path := filepath.Join(t.TempDir(), "hl-token.json")
	before := authorizeSim(t, s, path)
	s.Advance(2 * time.Hour)
	cfg := hlCfg(s, HLAuthRefreshToken, path)
	cfg.BaseURL = front.URL
	src := newRefreshSource(newHLClient(t), cfg, &Counters{})
	stale := before.OAuth2()
	_, _ = src.Token(ctx, stale) // the stale token was refused: refresh
	after, err := tokenfile.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if s.RefreshTokenValid(before.RefreshToken) {
		t.Fatal("the refresh did not reach HighLevel: the test did not exercise a stop mid-refresh")
	}
	if !s.RefreshTokenValid(after.RefreshToken) {
		t.Fatal("a stop during the refresh lost the rotated refresh token")
	}
}
