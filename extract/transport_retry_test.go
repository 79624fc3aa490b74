package extract

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// script is a server that answers the n-th request (from 1) with answer(n, w, r).
func script(t *testing.T, answer func(n int64, w http.ResponseWriter, r *http.Request)) (*httptest.Server, *atomic.Int64) {
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		answer(calls.Add(1), w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, &calls
}

func TestRetry_BackoffRetryAfterAndBounds(t *testing.T) {
	fast := RetryPolicy{InitialInterval: time.Millisecond, MaxInterval: 5 * time.Millisecond, MaxAttempts: 5}
	chain := func(srv *httptest.Server, p RetryPolicy) http.RoundTripper {
		return newRetryTransport(&capsTransport{next: srv.Client().Transport, log: discard, maxBody: 1 << 20}, p, discard)
	}
	ok := func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"ok":true}`))
	}

	t.Run("5xx then 200: retried, every retry counted", func(t *testing.T) {
		srv, calls := script(t, func(n int64, w http.ResponseWriter, _ *http.Request) {
			if n <= 2 {
				w.WriteHeader(503)
				return
			}
			ok(w)
		})
		var st Counters
		res, err := send(t, chain(srv, fast), &call{stats: &st}, "GET", srv.URL, "")
		if err != nil || res.StatusCode != 200 || calls.Load() != 3 || st.Retries.Load() != 2 || st.Requests.Load() != 3 {
			t.Fatalf("res %v err %v: %d calls, %d retries, %d requests; want 200 after 3 calls, 2 retries", res, err, calls.Load(), st.Retries.Load(), st.Requests.Load())
		}
	})
	t.Run("network errors are retried and counted", func(t *testing.T) {
		srv, calls := script(t, func(n int64, w http.ResponseWriter, _ *http.Request) {
			if n <= 2 {
				panic(http.ErrAbortHandler) // the connection drops without an answer
			}
			ok(w)
		})
		var st Counters
		res, err := send(t, chain(srv, fast), &call{stats: &st}, "GET", srv.URL, "")
		if err != nil || res.StatusCode != 200 || calls.Load() != 3 || st.Retries.Load() != 2 {
			t.Fatalf("err %v: %d calls, %d retries", err, calls.Load(), st.Retries.Load())
		}
	})
	t.Run("429 honours Retry-After in seconds and counts as throttled", func(t *testing.T) {
		srv, _ := script(t, func(n int64, w http.ResponseWriter, _ *http.Request) {
			if n == 1 {
				w.Header().Set("Retry-After", "1")
				w.WriteHeader(429)
				return
			}
			ok(w)
		})
		var st Counters
		start := time.Now()
		res, err := send(t, chain(srv, fast), &call{stats: &st}, "GET", srv.URL, "")
		if err != nil || res.StatusCode != 200 || st.Throttled.Load() != 1 || st.Retries.Load() != 1 {
			t.Fatalf("err %v, throttled %d, retries %d", err, st.Throttled.Load(), st.Retries.Load())
		}
		if el := time.Since(start); el < 900*time.Millisecond {
			t.Fatalf("retried after %s: Retry-After: 1 asks for a second", el)
		}
	})
	t.Run("Retry-After: 0 still backs off", func(t *testing.T) {
		srv, calls := script(t, func(_ int64, w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(429)
		})
		start := time.Now()
		res, err := send(t, chain(srv, RetryPolicy{InitialInterval: 20 * time.Millisecond, MaxAttempts: 4}), &call{}, "GET", srv.URL, "")
		if err != nil || res.StatusCode != 429 || calls.Load() != 4 {
			t.Fatalf("err %v, %d calls: want the last 429 after MaxAttempts=4", err, calls.Load())
		}
		if el := time.Since(start); el < 30*time.Millisecond {
			t.Fatalf("4 attempts in %s", el)
		}
	})
	t.Run("Retry-After as seconds or HTTP-date, capped; garbage and the past are no hint", func(t *testing.T) {
		limit := time.Minute
		for v, want := range map[string]time.Duration{"": 0, "0": 0, "7": 7 * time.Second, "99999999999999": limit, "-3": 0, "soon": 0,
			time.Now().Add(-time.Hour).UTC().Format(http.TimeFormat): 0, time.Now().Add(time.Hour).UTC().Format(http.TimeFormat): limit} {
			if got := parseRetryAfter(v, limit); got != want {
				t.Errorf("Retry-After %q: %s, want %s", v, got, want)
			}
		}
		date := time.Now().Add(30 * time.Second).UTC().Format(http.TimeFormat)
		if got := parseRetryAfter(date, limit); got < 28*time.Second || got > 30*time.Second {
			t.Errorf("Retry-After %q: %s, want ~30s", date, got)
		}
	})
	t.Run("attempts are bounded", func(t *testing.T) {
		srv, calls := script(t, func(_ int64, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(500) })
		var st Counters
		res, err := send(t, chain(srv, fast), &call{stats: &st}, "GET", srv.URL, "")
		if err != nil || res.StatusCode != 500 || calls.Load() != 5 || st.Retries.Load() != 4 {
			t.Fatalf("err %v, %d calls, %d retries: want the last 500 after 5 calls", err, calls.Load(), st.Retries.Load())
		}
	})
	t.Run("elapsed time is bounded", func(t *testing.T) {
		srv, calls := script(t, func(_ int64, w http.ResponseWriter, _ *http.Request) { panic(http.ErrAbortHandler) })
		start := time.Now()
		_, err := send(t, chain(srv, RetryPolicy{InitialInterval: 20 * time.Millisecond, MaxElapsed: 50 * time.Millisecond, MaxAttempts: 1000}), &call{}, "GET", srv.URL, "")
		if err == nil || !strings.Contains(err.Error(), "giving up") || calls.Load() > 10 || time.Since(start) > time.Second {
			t.Fatalf("err %v after %d calls in %s", err, calls.Load(), time.Since(start))
		}
	})
	t.Run("other statuses are not retried", func(t *testing.T) {
		srv, calls := script(t, func(_ int64, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(400) })
		res, err := send(t, chain(srv, fast), &call{}, "GET", srv.URL, "")
		if err != nil || res.StatusCode != 400 || calls.Load() != 1 {
			t.Fatalf("err %v, %d calls", err, calls.Load())
		}
	})
	t.Run("a body the check rejects is retried; the last rejection is ErrBody", func(t *testing.T) {
		srv, calls := script(t, func(n int64, w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			if n == 1 {
				w.Write([]byte(`<html>502 Bad Gateway</html>`))
				return
			}
			w.Write([]byte(`{"ok":true}`))
		})
		check := func(_ int, b []byte) error {
			if !strings.HasPrefix(string(b), "{") {
				return errors.New("not an object")
			}
			return nil
		}
		var st Counters
		res, err := send(t, chain(srv, fast), &call{stats: &st, check: check}, "GET", srv.URL, "")
		if err != nil || calls.Load() != 2 || st.Retries.Load() != 1 {
			t.Fatalf("err %v, %d calls, %d retries", err, calls.Load(), st.Retries.Load())
		}
		if b, _ := io.ReadAll(res.Body); string(b) != `{"ok":true}` {
			t.Fatalf("the accepted body reads %q", b)
		}
		_, err = send(t, chain(srv, fast), &call{check: func(int, []byte) error { return errors.New("never good") }}, "GET", srv.URL, "")
		if !errors.Is(err, ErrBody) || !strings.Contains(err.Error(), "never good") {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("a POST body is sent whole on every attempt", func(t *testing.T) {
		var mu sync.Mutex
		var bodies []string
		srv, _ := script(t, func(n int64, w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			mu.Lock()
			bodies = append(bodies, string(b))
			mu.Unlock()
			if n == 1 {
				w.WriteHeader(502)
				return
			}
			ok(w)
		})
		if _, err := send(t, chain(srv, fast), &call{}, "POST", srv.URL, "companyId=c&locationId=l"); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(bodies) != 2 || bodies[0] != bodies[1] || bodies[1] != "companyId=c&locationId=l" {
			t.Fatalf("bodies %q", bodies)
		}
	})
	t.Run("permanent errors are not retried", func(t *testing.T) {
		var calls int
		next := roundTripFunc(func(*http.Request) (*http.Response, error) { calls++; return nil, permanent(ErrDailyBudget) })
		_, err := send(t, newRetryTransport(next, fast, discard), &call{}, "GET", "http://unused", "")
		if !errors.Is(err, ErrDailyBudget) || calls != 1 {
			t.Fatalf("err %v after %d calls", err, calls)
		}
	})
	t.Run("cancelling ends a wait at once", func(t *testing.T) {
		srv, _ := script(t, func(_ int64, w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Retry-After", "30")
			w.WriteHeader(429)
		})
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		req := newReq(t, &call{}, "GET", srv.URL, "")
		start := time.Now()
		_, err := chain(srv, fast).RoundTrip(req.WithContext(withCall(ctx, &call{})))
		if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > time.Second {
			t.Fatalf("err %v after %s", err, time.Since(start))
		}
	})
}
