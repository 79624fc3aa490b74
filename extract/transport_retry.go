package extract

import (
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// RetryPolicy bounds retries in attempts and in total time.
type RetryPolicy struct {
	MaxAttempts     int           // including the first; default 8
	MaxElapsed      time.Duration // default 3m
	InitialInterval time.Duration // default 250ms
	MaxInterval     time.Duration // default 20s
	MaxRetryAfter   time.Duration // cap on a server's Retry-After; default 60s
}

// SetDefaults fills unset fields.
func (p *RetryPolicy) SetDefaults() {
	if p.MaxAttempts == 0 {
		p.MaxAttempts = 8
	}
	if p.MaxElapsed == 0 {
		p.MaxElapsed = 3 * time.Minute
	}
	if p.InitialInterval == 0 {
		p.InitialInterval = 250 * time.Millisecond
	}
	if p.MaxInterval == 0 {
		p.MaxInterval = 20 * time.Second
	}
	if p.MaxRetryAfter == 0 {
		p.MaxRetryAfter = 60 * time.Second
	}
}

// retryTransport is the outermost layer: it sends a request again after 429, 500/502/503/504, a
// network error or a 2xx body the call's check rejects, with exponential backoff and jitter,
// bounded by attempts and by elapsed time. Retry-After (seconds or HTTP-date, capped) lengthens
// a wait but never shortens it, so "Retry-After: 0" is not a storm. Each attempt goes down the
// whole chain again: a fresh token, the budget, the caps. Errors marked permanent and requests
// whose body cannot be replayed are not retried. Every retried attempt counts in Retries, every
// 429 in Throttled.
type retryTransport struct {
	next   http.RoundTripper
	policy RetryPolicy
	log    *slog.Logger
}

func newRetryTransport(next http.RoundTripper, policy RetryPolicy, log *slog.Logger) *retryTransport {
	policy.SetDefaults()
	return &retryTransport{next: next, policy: policy, log: log}
}

func (t *retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	c := callOf(req)
	bo := backoff.NewExponentialBackOff(backoff.WithInitialInterval(t.policy.InitialInterval),
		backoff.WithMaxInterval(t.policy.MaxInterval), backoff.WithMaxElapsedTime(t.policy.MaxElapsed))
	try := req
	for attempt := 1; ; attempt++ {
		res, err := t.next.RoundTrip(try)
		var cause error
		var retryAfter time.Duration
		switch {
		case err != nil:
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if isPermanent(err) {
				return nil, err
			}
			cause = err
		case retryableStatus(res.StatusCode):
			if res.StatusCode == http.StatusTooManyRequests && c.stats != nil {
				c.stats.Throttled.Add(1)
			}
			retryAfter = parseRetryAfter(res.Header.Get("Retry-After"), t.policy.MaxRetryAfter)
			cause = fmt.Errorf("HTTP %d", res.StatusCode)
		case res.StatusCode >= 200 && res.StatusCode < 300 && c.check != nil:
			body, rerr := bodyBytes(res)
			if rerr == nil {
				rerr = c.check(res.StatusCode, body)
			}
			if rerr == nil {
				return res, nil
			}
			res.Body.Close()
			res, cause = nil, fmt.Errorf("%w: %w", ErrBody, rerr)
		default:
			return res, nil
		}
		wait := bo.NextBackOff()
		if attempt >= t.policy.MaxAttempts || wait == backoff.Stop || !replayable(req) {
			if res != nil {
				return res, nil // the caller sees the last status
			}
			if wait == backoff.Stop {
				return nil, fmt.Errorf("giving up after %s of retries: %w", t.policy.MaxElapsed, cause)
			}
			return nil, cause
		}
		if res != nil {
			drain(res)
		}
		wait = max(wait, retryAfter)
		if c.stats != nil {
			c.stats.Retries.Add(1)
		}
		t.log.Debug("retrying", "stream", c.stream, "path", req.URL.Path, "attempt", attempt, "wait", wait, "cause", cause)
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil, ctx.Err()
		case <-timer.C:
		}
		if try, err = rewind(req); err != nil {
			return nil, err
		}
	}
}

// replayable reports whether req's body, if any, can be sent again.
func replayable(req *http.Request) bool {
	return req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
}

// rewind returns req with a fresh copy of its body, to send again.
func rewind(req *http.Request) (*http.Request, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return req, nil
	}
	body, err := req.GetBody()
	if err != nil {
		return nil, fmt.Errorf("replaying the request body: %w", err)
	}
	r := req.WithContext(req.Context()) // a shallow copy; no layer changes the shared headers
	r.Body = body
	return r, nil
}

// parseRetryAfter reads seconds or an HTTP-date, capped at limit; unparseable or past values
// give 0 ("no hint").
func parseRetryAfter(v string, limit time.Duration) time.Duration {
	if v == "" {
		return 0
	}
	var d time.Duration
	if n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil {
		d = time.Duration(min(n, int64(limit/time.Second)+1)) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = time.Until(t)
	}
	return min(max(d, 0), limit)
}
