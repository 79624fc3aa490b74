package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/marketsync/marketsync/apisim"
	"github.com/marketsync/marketsync/internal/tokenfile"
)

const testRedirect = "http://127.0.0.1:1/oauth/callback" // never contacted: the redirect is pasted

// refreshConfig is writeConfig with HighLevel in refresh_token mode against the simulator.
func refreshConfig(t *testing.T, dir string, s *apisim.Server, redirect string) string {
	return writeConfig(t, dir, s, func(c string) string {
		return strings.Replace(c, "    client_id: "+apisim.DemoHLClientID, "    auth: refresh_token\n    token_file: tokens/hl.json\n"+
			"    authorize_url: "+s.URL()+"/v2/oauth/chooselocation\n    redirect_uri: "+redirect+"\n    client_id: "+apisim.DemoHLClientID, 1)
	})
}

var printedURL = regexp.MustCompile(`https?://\S+/v2/oauth/chooselocation\?\S+`)

// browser is what `syncer auth highlevel` reads from stdin: when it is read (the authorize URL
// has been printed by then), it opens the printed URL like a browser, and "pastes" what
// paste makes of the address it was redirected to.
type browser struct {
	t      *testing.T
	out    *bytes.Buffer
	paste  func(redirected *url.URL) string
	opened *url.URL
	r      io.Reader
}

func (b *browser) Read(p []byte) (int, error) {
	if b.r == nil {
		m := printedURL.FindString(b.out.String())
		if m == "" {
			b.t.Errorf("no authorize URL printed before reading the code:\n%s", b.out)
			return 0, io.EOF
		}
		b.opened, _ = url.Parse(m)
		noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		res, err := noFollow.Get(m)
		if err != nil {
			b.t.Error(err)
			return 0, io.EOF
		}
		res.Body.Close()
		loc, _ := url.Parse(res.Header.Get("Location"))
		b.r = strings.NewReader(b.paste(loc) + "\n")
	}
	return b.r.Read(p)
}

// authorize runs `syncer auth highlevel --config cfg` with paste deciding what is pasted.
func authorize(t *testing.T, cfg string, paste func(*url.URL) string) (int, string, string, *browser) {
	t.Helper()
	var out, errb bytes.Buffer
	b := &browser{t: t, out: &out, paste: paste}
	authInput = b
	t.Cleanup(func() { authInput = os.Stdin })
	code := run(context.Background(), []string{"auth", "highlevel", "--config", cfg}, &out, &errb)
	return code, out.String(), errb.String(), b
}

func wholeURL(u *url.URL) string { return u.String() }

func TestAuthHighLevel_CodeFlowThenSyncsAcrossRotationAndCheckHidesSecrets(t *testing.T) {
	// The clock moves only to expire tokens: no data changes.
	s := startSim(t, apisim.Config{Seed: 3, Scale: 60, Locations: 3, Profile: "fast", TokenTTL: time.Hour,
		InsertRate: 1e-12, UpdateRate: 1e-12, DeleteRate: 1e-12})
	setSecrets(t)
	dir := t.TempDir()
	cfg := refreshConfig(t, dir, s, testRedirect)
	tokenPath := filepath.Join(dir, "tokens", "hl.json") // relative in the config: beside it

	// check before authorizing names the mode and the missing file.
	code, out, _ := syncer(t, "check", "--config", cfg)
	if code != exitFailed || !strings.Contains(out, "auth=refresh_token") || !strings.Contains(out, "missing: run `syncer auth highlevel` first") ||
		!strings.Contains(out, "FAIL highlevel") {
		t.Fatalf("check before auth: exit %d\n%s", code, out)
	}

	code, out, errOut, b := authorize(t, cfg, wholeURL)
	if code != exitOK {
		t.Fatalf("auth: exit %d\n%s\n%s", code, out, errOut)
	}
	q := b.opened.Query()
	if q.Get("response_type") != "code" || q.Get("client_id") != apisim.DemoHLClientID || q.Get("redirect_uri") != testRedirect ||
		q.Get("scope") != "oauth.readonly oauth.write charges.readonly" || len(q.Get("state")) < 32 {
		t.Fatalf("authorize URL %s", b.opened)
	}
	if !strings.Contains(out, "Tokens saved to "+tokenPath) {
		t.Fatalf("auth output:\n%s", out)
	}
	first, err := tokenfile.Load(tokenPath)
	if err != nil || !s.RefreshTokenValid(first.RefreshToken) {
		t.Fatalf("token file after auth: %v", err)
	}

	// A sync in refresh_token mode ends equal to the source.
	if code, out, errOut := syncer(t, "sync", "--config", cfg, "--progress", "never"); code != exitOK {
		t.Fatalf("sync: exit %d\n%s\n%s", code, out, errOut)
	}
	compareWarehouse(t, filepath.Join(dir, "w.duckdb"), s)

	// Every access token expires; the next sync refreshes, rotates, persists, and is still equal.
	s.Advance(2 * time.Hour)
	if code, out, errOut := syncer(t, "sync", "--config", cfg, "--progress", "never"); code != exitOK {
		t.Fatalf("sync after expiry: exit %d\n%s\n%s", code, out, errOut)
	}
	compareWarehouse(t, filepath.Join(dir, "w.duckdb"), s)
	second, err := tokenfile.Load(tokenPath)
	if err != nil || second.RefreshToken == first.RefreshToken || !s.RefreshTokenValid(second.RefreshToken) || s.RefreshTokenValid(first.RefreshToken) {
		t.Fatalf("after the expiry sync the file should hold the rotated token and the old one be refused (%v)", err)
	}

	// check names the mode, reaches every endpoint, and shows no secret the simulator issued.
	code, out, errOut = syncer(t, "check", "--config", cfg)
	if code != exitOK || !strings.Contains(out, "auth=refresh_token") || !strings.Contains(out, "token_file="+tokenPath+" (saved ") {
		t.Fatalf("check: exit %d\n%s\n%s", code, out, errOut)
	}
	secrets := append([]string{apisim.DemoHLClientSecret, apisim.DemoClientSecret, apisim.DemoLeadPassword}, s.IssuedTokens()...)
	for _, secret := range secrets {
		if strings.Contains(out+errOut, secret) {
			t.Fatal("check printed a secret or token")
		}
	}
	if regexp.MustCompile(`\d+ chars`).MatchString(out) {
		t.Fatalf("check reveals a secret's length:\n%s", out)
	}
}

func TestAuthHighLevel_RefusesBadRedirectsAndCodes(t *testing.T) {
	s := startSim(t, apisim.Config{Seed: 3, Scale: 20, Locations: 2, Profile: "fast"})
	setSecrets(t)
	dir := t.TempDir()
	cfg := refreshConfig(t, dir, s, testRedirect)
	tokenPath := filepath.Join(dir, "tokens", "hl.json")
	cases := []struct {
		name  string
		paste func(*url.URL) string
		want  string
	}{
		{"state mismatch", func(u *url.URL) string {
			q := u.Query()
			q.Set("state", "0123")
			u.RawQuery = q.Encode()
			return u.String()
		}, "state does not match"},
		{"a redirect without state", func(u *url.URL) string {
			q := u.Query()
			q.Del("state")
			u.RawQuery = q.Encode()
			return u.String()
		}, "state does not match"},
		{"consent refused", func(*url.URL) string { return testRedirect + "?error=access_denied" }, "error=access_denied"},
		{"a code HighLevel does not know", func(*url.URL) string { return "not-a-code" }, "refused the authorization code (HTTP 401"},
		{"nothing pasted", func(*url.URL) string { return "" }, "nothing was pasted"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out, errOut, _ := authorize(t, cfg, c.paste)
			if code == exitOK || !strings.Contains(errOut, c.want) {
				t.Fatalf("exit %d, want an error with %q:\n%s\n%s", code, c.want, out, errOut)
			}
			if _, err := os.Stat(tokenPath); err == nil {
				t.Fatal("a token file was written")
			}
		})
	}
	// The bare code (no state to check) is accepted, once: the second use of it is refused.
	var used string
	if code, out, errOut, _ := authorize(t, cfg, func(u *url.URL) string { used = u.Query().Get("code"); return used }); code != exitOK {
		t.Fatalf("a bare code: exit %d\n%s\n%s", code, out, errOut)
	}
	if code, _, errOut, _ := authorize(t, cfg, func(*url.URL) string { return used }); code == exitOK || !strings.Contains(errOut, "refused the authorization code") {
		t.Fatalf("a used code: exit %d %s", code, errOut)
	}
	// Wrong modes and missing keys are config errors (exit 2) naming the key.
	pit := writeConfig(t, t.TempDir(), s, func(c string) string {
		return strings.Replace(c, "    client_id: "+apisim.DemoHLClientID+"\n    client_secret: ${TEST_HL_SECRET}", "    auth: private_token\n    private_token: x", 1)
	})
	if code, _, errOut := syncer(t, "auth", "highlevel", "--config", pit); code != exitUsage || !strings.Contains(errOut, "sources.highlevel.auth") {
		t.Fatalf("auth with private_token: exit %d %s", code, errOut)
	}
	noRedirect := refreshConfig(t, t.TempDir(), s, "")
	if code, _, errOut := syncer(t, "auth", "highlevel", "--config", noRedirect); code != exitUsage || !strings.Contains(errOut, "sources.highlevel.redirect_uri") {
		t.Fatalf("auth without redirect_uri: exit %d %s", code, errOut)
	}
	if code, _, errOut := syncer(t, "auth", "appdirect", "--config", cfg); code != exitUsage || !strings.Contains(errOut, "syncer auth highlevel") {
		t.Fatalf("auth appdirect: exit %d %s", code, errOut)
	}
}

func TestAuthHighLevel_ListenCatchesTheRedirect(t *testing.T) {
	s := startSim(t, apisim.Config{Seed: 3, Scale: 20, Locations: 2, Profile: "fast"})
	setSecrets(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	redirect := "http://" + ln.Addr().String() + "/oauth/callback"
	ln.Close()
	dir := t.TempDir()
	cfg := refreshConfig(t, dir, s, redirect)
	out := &lockedBuffer{}
	var errb bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- run(context.Background(), []string{"auth", "highlevel", "--listen", "--config", cfg}, out, &errb)
	}()
	var m string
	for deadline := time.Now().Add(10 * time.Second); m == "" && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		m = printedURL.FindString(out.String())
	}
	if m == "" {
		t.Fatalf("no authorize URL printed:\n%s", out)
	}
	// A stray request (another state, or none) is refused with 400 and does not end the wait.
	for _, stray := range []string{"state=not-this-one&code=x", "code=x", "error=access_denied&state=other"} {
		res, err := http.Get(redirect + "?" + stray)
		if err != nil {
			t.Fatal(err)
		}
		page, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusBadRequest || !strings.Contains(string(page), "state does not match") {
			t.Fatalf("a stray %q: HTTP %d %q, want 400 naming the state", stray, res.StatusCode, page)
		}
		select {
		case code := <-done:
			t.Fatalf("a stray %q ended the wait: exit %d\n%s\n%s", stray, code, out, errb.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	if !strings.Contains(out.String(), "Ignored a request") {
		t.Errorf("the stray requests were not reported:\n%s", out)
	}
	// The browser follows the redirect to the listener, which answers it.
	res, err := http.Get(m)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if code := <-done; code != exitOK || !strings.Contains(string(page), "authorized") {
		t.Fatalf("exit %d, page %q\n%s\n%s", code, page, out, errb.String())
	}
	if _, err := tokenfile.Load(filepath.Join(dir, "tokens", "hl.json")); err != nil {
		t.Fatal(err)
	}
}

func TestPrivateToken_SyncsChecksAndA401SaysRotate(t *testing.T) {
	s := startSim(t, apisim.Config{Seed: 4, Scale: 40, Locations: 2, Profile: "fast"})
	setSecrets(t)
	pit := s.IssuePrivateToken()
	t.Setenv("TEST_HL_PRIVATE_TOKEN", pit)
	dir := t.TempDir()
	cfg := writeConfig(t, dir, s, func(c string) string {
		return strings.Replace(c, "    client_id: "+apisim.DemoHLClientID+"\n    client_secret: ${TEST_HL_SECRET}", "    auth: private_token\n    private_token: ${TEST_HL_PRIVATE_TOKEN}", 1)
	})
	code, out, errOut := syncer(t, "check", "--config", cfg)
	if code != exitOK || !strings.Contains(out, "auth=private_token private_token=****** (set)") || strings.Contains(out+errOut, pit) {
		t.Fatalf("check: exit %d\n%s\n%s", code, out, errOut)
	}
	if code, out, errOut := syncer(t, "sync", "--config", cfg, "--progress", "never"); code != exitOK {
		t.Fatalf("sync: exit %d\n%s\n%s", code, out, errOut)
	}
	compareWarehouse(t, filepath.Join(dir, "w.duckdb"), s)
	if s.Snapshot().Requests["highlevel.token"] != nil {
		t.Fatal("private token mode asked the token endpoint")
	}
	// Rotated in HighLevel: the sync fails naming what to do, and never shows the token.
	s.RevokePrivateToken(pit)
	code, out, errOut = syncer(t, "sync", "--config", cfg, "--progress", "never")
	if code != exitFailed || !strings.Contains(out+errOut, "Private Integrations") || strings.Contains(out+errOut, pit) {
		t.Fatalf("revoked token: exit %d\n%s\n%s", code, out, errOut)
	}
}
