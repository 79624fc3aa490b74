package extract

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

func TestTokens_GrantsRequestShapesAndErrors(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]*http.Request{}
	forms := map[string]string{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		key := r.URL.Path + " " + r.PostForm.Get("grant_type")
		mu.Lock()
		seen[key], forms[key] = r, r.PostForm.Encode()
		mu.Unlock()
		if u, p, _ := r.BasicAuth(); r.URL.Path == "/oauth2/token" && (u != "ad-id" || p != "ad-secret-value") {
			w.WriteHeader(401)
			fmt.Fprint(w, `{"error":"invalid_client","error_description":"Bad client credentials"}`)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"access_token":"tok %s","token_type":"bearer","expires_in":43199}`, key)
	}))
	defer srv.Close()
	form := func(key string) string { mu.Lock(); defer mu.Unlock(); return forms[key] }
	c := NewClient(discard, RetryPolicy{InitialInterval: time.Millisecond}, time.Second)
	defer c.CloseIdle()
	ctx := context.Background()
	ad := AppDirectConfig{BaseURL: srv.URL, ClientID: "ad-id", ClientSecret: "ad-secret-value", LeadUsername: "lead@example.com", LeadPassword: "lead-password-value"}
	hl := HighLevelConfig{BaseURL: srv.URL, ClientID: "hl-id", ClientSecret: "hl-secret-value", CompanyID: "C1"}
	var auth Counters

	t.Run("AppDirect client credentials: Basic auth, form grant and scope", func(t *testing.T) {
		tok, err := appDirectPartner(c, ad, &auth).Token(ctx, nil)
		if err != nil || tok.AccessToken != "tok /oauth2/token client_credentials" {
			t.Fatalf("%v %v", tok, err)
		}
		if f := form("/oauth2/token client_credentials"); f != "grant_type=client_credentials&scope=ROLE_PARTNER_READ" {
			t.Fatalf("form %q", f)
		}
		if life := time.Until(tok.Expiry); life < 11*time.Hour {
			t.Fatalf("a 12 h token expires in %s", life)
		}
	})
	t.Run("AppDirect password grant for the lead user", func(t *testing.T) {
		if _, err := appDirectUser(c, ad, &auth).Token(ctx, nil); err != nil {
			t.Fatal(err)
		}
		f := form("/oauth2/token password")
		if !strings.Contains(f, "username=lead%40example.com") || !strings.Contains(f, "password=lead-password-value") || !strings.Contains(f, "scope=ROLE_RESELLER_MANAGER") {
			t.Fatalf("form %q", f)
		}
	})
	t.Run("HighLevel agency token by client credentials in the form; location token with it", func(t *testing.T) {
		h := newHighLevelAuth(c, hl, &auth)
		tok, err := h.location("L1").Token(ctx, nil)
		if err != nil || tok.AccessToken != "tok /oauth/locationToken " {
			t.Fatalf("%v %v", tok, err)
		}
		if f := form("/oauth/token client_credentials"); f != "client_id=hl-id&client_secret=hl-secret-value&grant_type=client_credentials&user_type=Company" {
			t.Fatalf("agency form %q", f)
		}
		mu.Lock()
		r := seen["/oauth/locationToken "]
		mu.Unlock()
		if form("/oauth/locationToken ") != "companyId=C1&locationId=L1" || r.Header.Get("Version") != hlVersion ||
			r.Header.Get("Authorization") != "Bearer tok /oauth/token client_credentials" {
			t.Fatalf("location token request: form %q, headers %v", form("/oauth/locationToken "), r.Header)
		}
		if h.location("L1") != h.location("L1") || h.location("L1") == h.location("L2") {
			t.Fatal("one token source per location")
		}
	})
	t.Run("token requests count in the auth counters", func(t *testing.T) {
		if n := auth.Requests.Load(); n != 4 {
			t.Fatalf("%d token requests counted, want 4", n)
		}
	})
	t.Run("a refused secret: endpoint and status named, the secret never, one request", func(t *testing.T) {
		bad := ad
		bad.ClientSecret = "wrong-secret-value"
		var st Counters
		_, err := appDirectPartner(c, bad, &st).Token(ctx, nil)
		var he *HTTPError
		if !errors.As(err, &he) || he.Status != 401 || he.Path != "/oauth2/token" || !strings.Contains(err.Error(), "HTTP 401") {
			t.Fatalf("err %v", err)
		}
		for _, secret := range []string{"wrong-secret-value", "ad-secret-value", fmt.Sprint(len("wrong-secret-value"))} {
			if strings.Contains(err.Error(), secret) {
				t.Fatalf("%q leaks %q", err, secret)
			}
		}
		if st.Requests.Load() != 1 {
			t.Fatalf("%d requests: a 401 from the token endpoint is not retried (nor auth-style probed)", st.Requests.Load())
		}
	})
}

func TestTokens_EarlyRefreshAndCancellableWait(t *testing.T) {
	for _, tc := range []struct {
		life, refreshedAfter time.Duration
	}{{12 * time.Hour, 12*time.Hour - tokenExpiryDelta}, {time.Minute, 54 * time.Second}, {0, defaultTokenLife * 9 / 10}} {
		f := &fetcher{get: func(context.Context) (*oauth2.Token, error) {
			tok := &oauth2.Token{AccessToken: "x"}
			if tc.life > 0 {
				tok.Expiry = time.Now().Add(tc.life)
			}
			return tok, nil
		}}
		tok, _ := f.Token()
		if got := time.Until(tok.Expiry.Add(-tokenExpiryDelta)); got < tc.refreshedAfter-time.Second || got > tc.refreshedAfter {
			t.Errorf("a token living %s is refreshed after %s, want %s", tc.life, got, tc.refreshedAfter)
		}
	}
	release := make(chan struct{})
	ts := newTokenSource(func(context.Context) (*oauth2.Token, error) {
		<-release
		return &oauth2.Token{AccessToken: "slow"}, nil
	})
	go ts.Token(context.Background(), nil) // holds the fetch
	for len(ts.sem) == 0 {
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := ts.Token(ctx, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a waiter whose context ends gets %v", err)
	}
	close(release)
}
