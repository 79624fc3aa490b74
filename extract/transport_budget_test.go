package extract

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

func TestBudget_WaitsCountsObservesAndPauses(t *testing.T) {
	var calls atomic.Int64
	var headers atomic.Pointer[http.Header]
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if h := headers.Load(); h != nil {
			for k, v := range *h {
				w.Header()[k] = v
			}
		}
		if r.URL.Path == "/429" {
			w.WriteHeader(429)
		}
	}))
	defer srv.Close()
	rt := &budgetTransport{next: srv.Client().Transport, maxPause: 80 * time.Millisecond}

	t.Run("every attempt waits for the limiter; the wait is counted", func(t *testing.T) {
		b := NewBudget("test", 50, 1, 0) // one now, then one per 20 ms
		var st Counters
		start := time.Now()
		for range 6 {
			if _, err := send(t, rt, &call{stats: &st, budget: b}, "GET", srv.URL, ""); err != nil {
				t.Fatal(err)
			}
		}
		if el, waited := time.Since(start), time.Duration(st.Waited.Load()); el < 90*time.Millisecond || waited < 80*time.Millisecond || waited > el {
			t.Fatalf("6 requests at 50/s in %s, %s counted as waiting: want >= 100 ms of both", el, waited)
		}
	})
	t.Run("concurrent waits overlap: the wait counted never exceeds the wall time", func(t *testing.T) {
		b := NewBudget("test", 50, 1, 0) // one now, then one per 20 ms
		var st Counters
		start := time.Now()
		errs := make(chan error, 8)
		for range 8 {
			go func() {
				_, err := send(t, rt, &call{stats: &st, budget: b}, "GET", srv.URL, "")
				errs <- err
			}()
		}
		for range 8 {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		if el, waited := time.Since(start), time.Duration(st.Waited.Load()); waited > el || waited < 100*time.Millisecond {
			t.Fatalf("8 concurrent requests at 50/s in %s, %s counted as waiting: want between 100 ms and the wall time", el, waited)
		}
	})
	t.Run("no budget: no wait, nothing counted", func(t *testing.T) {
		var st Counters
		if _, err := send(t, rt, &call{stats: &st}, "GET", srv.URL, ""); err != nil || st.Waited.Load() != 0 {
			t.Fatalf("err %v, waited %d", err, st.Waited.Load())
		}
	})
	t.Run("a 429's Retry-After pauses every worker of the budget (capped)", func(t *testing.T) {
		b := NewBudget("test", -1, 1, 0)
		headers.Store(&http.Header{"Retry-After": {"3600"}})
		defer headers.Store(nil)
		if res, err := send(t, rt, &call{budget: b}, "GET", srv.URL+"/429", ""); err != nil || res.StatusCode != 429 {
			t.Fatalf("%v %v", res, err)
		}
		headers.Store(nil)
		var other Counters // another worker, another stream, the same budget
		start := time.Now()
		if _, err := send(t, rt, &call{stats: &other, budget: b}, "GET", srv.URL, ""); err != nil {
			t.Fatal(err)
		}
		if el := time.Since(start); el < 60*time.Millisecond || el > time.Second {
			t.Fatalf("the next request on the budget left after %s: want the pause, capped at 80 ms", el)
		}
	})
	t.Run("X-RateLimit headers set the rate and stop the budget above the daily floor", func(t *testing.T) {
		b := NewBudget("highlevel location L", -1, 1, 10)
		headers.Store(&http.Header{"X-Ratelimit-Max": {"100"}, "X-Ratelimit-Interval-Milliseconds": {"10000"},
			"X-Ratelimit-Remaining": {"50"}, "X-Ratelimit-Daily-Remaining": {"10"}})
		defer headers.Store(nil)
		if _, err := send(t, rt, &call{budget: b}, "GET", srv.URL, ""); err != nil {
			t.Fatal(err)
		}
		if got, want := b.limiter.Limit(), rate.Limit(10*RateFactor); got != want {
			t.Fatalf("limit %v after announcing 100 per 10 s, want %v", got, want)
		}
		before := calls.Load()
		_, err := send(t, rt, &call{budget: b}, "GET", srv.URL, "")
		if !errors.Is(err, ErrDailyBudget) || !isPermanent(err) || calls.Load() != before {
			t.Fatalf("err %v, %d requests sent: want a permanent ErrDailyBudget before sending", err, calls.Load()-before)
		}
	})
}
