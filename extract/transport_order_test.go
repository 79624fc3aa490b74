package extract

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// A token is taken after the budget's wait, right before the request is sent. Taken before it,
// a worker queued behind others holds its token while they pass; a server that revokes tokens
// every few requests (the chaos profile does, every 40th call) then refuses most tokens before
// their first use, and a queued worker ran out of refreshes with a 401 that its credentials did
// not deserve.
func TestStack_TokenIsTakenAfterTheBudgetWait(t *testing.T) {
	var mu sync.Mutex
	valid, requests := "", 0
	var fetches atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		requests++
		ok := r.Header.Get("Authorization") == "Bearer "+valid
		if requests%10 == 0 {
			valid = "" // every tenth request revokes every token, after it is served
		}
		if !ok {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Write([]byte(`{}`))
	}))
	defer srv.Close()
	ts := newTokenSource(func(context.Context) (*oauth2.Token, error) {
		tok := fmt.Sprintf("t%d", fetches.Add(1))
		mu.Lock()
		valid = tok
		mu.Unlock()
		return &oauth2.Token{AccessToken: tok, TokenType: "bearer"}, nil
	})
	c := &Client{http: &http.Client{Transport: newStack(srv.Client().Transport, discard, RetryPolicy{MaxAttempts: 1}, 5*time.Second, DefaultMaxBody)}}
	b := NewBudget("b", 200, 1, 0) // 5 ms apart: eight workers queue behind each other
	var st Counters
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 10 {
				if err := c.Do(context.Background(), Request{Stream: "s", URL: srv.URL, Auth: ts, Budget: b, Stats: &st, Parse: func(int, []byte) error { return nil }}); err != nil {
					t.Errorf("worker %d request %d: %v", w, i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	// Every resend after a 401 waited for the budget again: the server counted the refused one.
	if got, want := st.Requests.Load(), int64(requests); got != want {
		t.Errorf("counted %d requests, the server saw %d", got, want)
	}
}
