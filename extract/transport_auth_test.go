package extract

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/oauth2"
)

// issuer is a token endpoint in memory: it issues t1, t2, ... and the server below accepts only
// the latest, so "revoking" is issuing a newer one behind the client's back.
type issuer struct {
	fetches atomic.Int64
	valid   atomic.Value // string
}

func (is *issuer) source() *tokenSource {
	return newTokenSource(func(context.Context) (*oauth2.Token, error) {
		tok := fmt.Sprintf("t%d", is.fetches.Add(1))
		is.valid.Store(tok)
		return &oauth2.Token{AccessToken: tok, TokenType: "bearer"}, nil
	})
}

func (is *issuer) revoke() { is.valid.Store("revoked") }

func TestAuth_BearerTokenAndFreshTokenOn401(t *testing.T) {
	is := &issuer{}
	var sent atomic.Int64
	var mu sync.Mutex
	var bodies []string
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			t.Errorf("a redirect to another host carried %q", r.Header.Get("Authorization"))
		}
	}))
	defer other.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sent.Add(1)
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, string(b))
		mu.Unlock()
		switch {
		case r.URL.Path == "/open":
			if r.Header.Get("Authorization") != "" {
				t.Errorf("a call without an Authorizer sent %q", r.Header.Get("Authorization"))
			}
		case r.Header.Get("Authorization") != "Bearer "+is.valid.Load().(string):
			w.WriteHeader(401)
		case r.URL.Path == "/away":
			http.Redirect(w, r, other.URL+"/landing", http.StatusFound)
		}
	}))
	defer srv.Close()
	rt := &authTransport{next: srv.Client().Transport}
	ts := is.source()

	t.Run("the call's token is sent as a bearer token", func(t *testing.T) {
		res, err := send(t, rt, &call{auth: ts}, "GET", srv.URL, "")
		if err != nil || res.StatusCode != 200 || is.fetches.Load() != 1 {
			t.Fatalf("%v %v, %d fetches", res, err, is.fetches.Load())
		}
		if res, err = send(t, rt, &call{auth: ts}, "GET", srv.URL, ""); err != nil || res.StatusCode != 200 || is.fetches.Load() != 1 {
			t.Fatalf("%v %v, %d fetches: the cached token should be reused", res, err, is.fetches.Load())
		}
	})
	t.Run("no Authorizer, no header", func(t *testing.T) {
		if _, err := send(t, rt, &call{}, "GET", srv.URL+"/open", ""); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("a 401 drops the token once and resends with a fresh one, body and all", func(t *testing.T) {
		is.revoke()
		sent.Store(0)
		mu.Lock()
		bodies = nil
		mu.Unlock()
		res, err := send(t, rt, &call{auth: ts}, "POST", srv.URL, "companyId=c")
		if err != nil || res.StatusCode != 200 || is.fetches.Load() != 2 || sent.Load() != 2 {
			t.Fatalf("%v %v: %d fetches, %d sent; want one refresh and one resend", res, err, is.fetches.Load(), sent.Load())
		}
		mu.Lock()
		defer mu.Unlock()
		if bodies[0] != "companyId=c" || bodies[1] != "companyId=c" {
			t.Fatalf("bodies %q", bodies)
		}
	})
	t.Run("workers refused the same token at once cause one fetch", func(t *testing.T) {
		is.revoke()
		before := is.fetches.Load()
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				if res, err := send(t, rt, &call{auth: ts}, "GET", srv.URL, ""); err != nil || res.StatusCode != 200 {
					t.Errorf("%v %v", res, err)
				}
			})
		}
		wg.Wait()
		if n := is.fetches.Load() - before; n != 1 {
			t.Fatalf("%d fetches for 8 workers refused one token", n)
		}
	})
	t.Run("credentials that keep failing end with the 401", func(t *testing.T) {
		bad := newTokenSource(func(context.Context) (*oauth2.Token, error) { return &oauth2.Token{AccessToken: "never"}, nil })
		sent.Store(0)
		res, err := send(t, rt, &call{auth: bad}, "GET", srv.URL, "")
		if err != nil || res.StatusCode != 401 || sent.Load() != 1+maxRefreshes {
			t.Fatalf("%v %v after %d sends", res, err, sent.Load())
		}
	})
	t.Run("a token that cannot be had ends the request unsent and unretried", func(t *testing.T) {
		broken := newTokenSource(func(context.Context) (*oauth2.Token, error) { return nil, errors.New("token endpoint down") })
		sent.Store(0)
		_, err := send(t, rt, &call{auth: broken}, "GET", srv.URL, "")
		if err == nil || !isPermanent(err) || sent.Load() != 0 {
			t.Fatalf("err %v, %d sent", err, sent.Load())
		}
	})
	t.Run("a redirect to another host does not carry the token", func(t *testing.T) {
		c := &http.Client{Transport: rt}
		req := newReq(t, &call{auth: ts}, "GET", srv.URL+"/away", "")
		res, err := c.Do(req)
		if err != nil || res.StatusCode != 200 || res.Request.URL.Path != "/landing" {
			t.Fatalf("%v %v", res, err)
		}
		res.Body.Close()
	})
}
