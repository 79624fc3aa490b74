package extract_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/marketsync/marketsync/apisim"
	"github.com/marketsync/marketsync/extract"
	"github.com/marketsync/marketsync/internal/simcheck"
)

// recordScopes wraps the simulator and records the scope of every token request by grant.
func recordScopes(t *testing.T, s *apisim.Server) (string, func(grant string) []string) {
	var mu sync.Mutex
	seen := map[string][]string{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/oauth2/token" {
			_ = r.ParseForm()
			mu.Lock()
			seen[r.PostForm.Get("grant_type")] = append(seen[r.PostForm.Get("grant_type")], r.PostForm.Get("scope"))
			mu.Unlock()
		}
		s.Handler().ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, func(grant string) []string { mu.Lock(); defer mu.Unlock(); return seen[grant] }
}

// The client asks each grant for the documented scopes: client credentials ROLE_PARTNER_READ,
// the user's password grant the role of its lead context (and of the AppReseller context).
func TestAppDirectAuth_RequestsTheDocumentedScopes(t *testing.T) {
	s := sim(t, apisim.Config{Seed: 1, Scale: 20, Profile: "fast"})
	for _, tc := range []struct {
		name string
		cfg  func(*extract.AppDirectConfig)
		want string
	}{
		{"lead context RESELLER_MANAGER (default)", func(*extract.AppDirectConfig) {}, "ROLE_RESELLER_MANAGER"},
		{"lead context RESELLER", func(c *extract.AppDirectConfig) { c.LeadContext = "RESELLER" }, "ROLE_RESELLER"},
		{"reseller family, both contexts", func(c *extract.AppDirectConfig) {
			c.API, c.ResellerContext, c.LeadContext = extract.APIReseller, "RESELLER", "RESELLER_MANAGER"
		}, "ROLE_RESELLER_MANAGER ROLE_RESELLER"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base, scopes := recordScopes(t, s)
			ad, _ := simcheck.Sources(s, 1)
			ad.BaseURL, ad.RatePerSecond, ad.CompaniesRate = base, -1, -1
			tc.cfg(ad)
			a := extract.NewAppDirect(client(t, nil), *ad, &extract.Counters{})
			if _, err := a.Leads(context.Background(), time.Time{}, &extract.Counters{}, newCollector().emit("id")); err != nil {
				t.Fatal(err)
			}
			if _, err := a.Companies(context.Background(), &extract.Counters{}, newCollector().emit("uuid")); err != nil {
				t.Fatal(err)
			}
			if got := scopes("password"); len(got) != 1 || got[0] != tc.want {
				t.Errorf("password grant scopes %q, want one request for %q", got, tc.want)
			}
			got := scopes("client_credentials")
			if ad.API == extract.APIReseller {
				if len(got) != 0 {
					t.Errorf("the reseller family asked for a client-credentials token %q: its companies need the user's", got)
				}
			} else if len(got) != 1 || got[0] != "ROLE_PARTNER_READ" {
				t.Errorf("client credentials scopes %q, want one request for ROLE_PARTNER_READ", got)
			}
		})
	}
}

// A refused token request says which config keys to fix, never the secret (nor its length),
// and is not retried.
func TestAppDirectAuth_RefusalsNameTheFix(t *testing.T) {
	s := sim(t, apisim.Config{Seed: 1, Scale: 10, Profile: "fast"})
	for _, tc := range []struct {
		name   string
		cfg    func(*extract.AppDirectConfig)
		leads  bool
		want   []string
		secret string
	}{
		{"wrong client secret", func(c *extract.AppDirectConfig) { c.ClientSecret = "wrong-secret-value" }, false,
			[]string{"client_id and client_secret", "HTTP 401"}, "wrong-secret-value"},
		{"wrong lead password", func(c *extract.AppDirectConfig) { c.LeadPassword = "wrong-password-value" }, true,
			[]string{"lead_username and lead_password", "HTTP 400"}, "wrong-password-value"},
		{"a context whose role the user lacks", func(c *extract.AppDirectConfig) { c.LeadContext = "DEVELOPER" }, true,
			[]string{`scope "ROLE_DEVELOPER" was refused`, "lead_context"}, apisim.DemoLeadPassword},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ad, _ := simcheck.Sources(s, 1)
			tc.cfg(ad)
			var auth, st extract.Counters
			a := extract.NewAppDirect(client(t, nil), *ad, &auth)
			var err error
			if tc.leads {
				_, err = a.Leads(context.Background(), time.Time{}, &st, newCollector().emit("id"))
			} else {
				_, err = a.Users(context.Background(), time.Time{}, &st, newCollector().emit("uuid"))
			}
			if !errors.Is(err, extract.ErrAppDirectAuth) {
				t.Fatalf("err %v, want ErrAppDirectAuth", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			for _, leak := range []string{tc.secret, strings.Repeat("*", 6)} {
				if strings.Contains(err.Error(), leak) {
					t.Errorf("error %q shows %q", err, leak)
				}
			}
			// A token request counts for the stream that waits on it.
			if n := auth.Requests.Load() + st.Requests.Load(); n != 1 {
				t.Errorf("%d token requests: a refusal is not retried", n)
			}
		})
	}
}
