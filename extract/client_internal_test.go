package extract

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// countingAuth is an Authorizer that hands out a new token on every call.
type countingAuth struct{ calls atomic.Int64 }

func (a *countingAuth) Token(context.Context, *oauth2.Token) (*oauth2.Token, error) {
	return &oauth2.Token{AccessToken: "t" + string(rune('0'+a.calls.Add(1)))}, nil
}

func TestStack_EveryRetryTakesATokenAndWaitsForTheBudget(t *testing.T) {
	var calls atomic.Int64
	var auths [3]atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := calls.Add(1)
		auths[min(n, 3)-1].Store(r.Header.Get("Authorization"))
		if n < 3 {
			w.WriteHeader(503)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{}`))
	}))
	defer srv.Close()
	c := NewClient(discard, RetryPolicy{InitialInterval: time.Millisecond, MaxInterval: time.Millisecond}, time.Second)
	defer c.CloseIdle()
	auth := &countingAuth{}
	b := NewBudget("test", 10, 1, 0) // one now, then one per 100 ms
	var st Counters
	start := time.Now()
	if err := c.Do(context.Background(), Request{Stream: "s", URL: srv.URL, Auth: auth, Budget: b, Stats: &st}); err != nil {
		t.Fatal(err)
	}
	if auth.calls.Load() != 3 || auths[0].Load() != "Bearer t1" || auths[2].Load() != "Bearer t3" {
		t.Fatalf("%d token calls, sent %v %v %v: want a token per attempt", auth.calls.Load(), auths[0].Load(), auths[1].Load(), auths[2].Load())
	}
	// Elapsed time is bounded below by the limiter; the wait counted excludes the time the
	// attempts themselves took, which a loaded machine stretches, so it is bounded more loosely.
	if el := time.Since(start); el < 180*time.Millisecond || time.Duration(st.Waited.Load()) < 90*time.Millisecond {
		t.Fatalf("3 attempts at 10/s took %s, %s waited: every retry must wait for the budget", el, time.Duration(st.Waited.Load()))
	}
	if st.Requests.Load() != 3 || st.Retries.Load() != 2 {
		t.Fatalf("requests %d, retries %d", st.Requests.Load(), st.Retries.Load())
	}
}
