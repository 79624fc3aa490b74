package extract

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// Counters are a stream's request statistics; safe for concurrent use.
type Counters struct {
	Requests  atomic.Int64
	Retries   atomic.Int64
	Throttled atomic.Int64 // 429 answers
	Bytes     atomic.Int64
}

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

// Client is the one HTTP stack every request goes through.
type Client struct {
	http    *http.Client
	log     *slog.Logger
	retry   RetryPolicy
	maxBody int64
}

// maxRefreshes bounds how often one request gets a fresh token after a 401: a token can be
// revoked again before its first use, but credentials that keep failing are not retried forever.
const maxRefreshes = 3

// DefaultMaxBody caps a response body (a page of 250 records is well under 1 MB).
const DefaultMaxBody = 64 << 20

// NewClient returns a client. TLS verification is always on.
func NewClient(log *slog.Logger, retry RetryPolicy, timeout time.Duration) *Client {
	retry.SetDefaults()
	if timeout == 0 {
		timeout = 60 * time.Second
	}
	tr := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:     &tls.Config{MinVersion: tls.VersionTLS12},
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: 10 * time.Second,
	}
	return &Client{http: &http.Client{Transport: tr, Timeout: timeout}, log: log, retry: retry, maxBody: DefaultMaxBody}
}

// CloseIdle closes idle connections (so a finished run leaves no goroutines behind).
func (c *Client) CloseIdle() { c.http.CloseIdleConnections() }

// Authorizer supplies a bearer token; Invalidate drops a token the server refused.
type Authorizer interface {
	Token(ctx context.Context) (string, error)
	Invalidate(token string)
}

// Request describes one logical request; Do may send it several times.
type Request struct {
	Stream string
	Method string // default GET
	URL    string
	Header http.Header
	Form   url.Values // POST body, form-encoded
	Basic  [2]string  // HTTP Basic user, password (token endpoints)
	Auth   Authorizer // nil: no bearer token
	Budget *Budget    // nil: not rate limited
	Stats  *Counters
	// Parse validates and decodes a 2xx body; an error is treated like a transient fault
	// (truncated or invalid JSON) and retried.
	Parse func(status int, body []byte) error
}

type attemptError struct {
	err        error
	retry      bool
	retryAfter time.Duration
	auth       bool // getting the token failed: its own request already retried
}

// Do sends req with retries: 429, 5xx, network errors and unparseable bodies are retried with
// exponential backoff and jitter (bounded by attempts and elapsed time), honouring Retry-After
// (seconds or HTTP-date, capped; 0 means "use the backoff", never "retry at once"). A 401 drops
// the token and retries once with a fresh one. Other statuses fail at once with *HTTPError.
func (c *Client) Do(ctx context.Context, req Request) error {
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval, bo.MaxInterval, bo.MaxElapsedTime = c.retry.InitialInterval, c.retry.MaxInterval, c.retry.MaxElapsed
	bo.Reset()
	refreshes := 0
	var last error
	for attempt := 1; ; attempt++ {
		ae := c.attempt(ctx, req)
		if ae == nil {
			return nil
		}
		last = ae.err
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if ae.auth {
			return last
		}
		var he *HTTPError
		if errors.As(ae.err, &he) && he.Status == 401 && req.Auth != nil && refreshes < maxRefreshes {
			refreshes++ // the token expired or was revoked: a fresh token, no backoff
			continue
		}
		if !ae.retry || attempt >= c.retry.MaxAttempts {
			return last
		}
		wait := bo.NextBackOff()
		if wait == backoff.Stop {
			return fmt.Errorf("giving up after %s of retries: %w", c.retry.MaxElapsed, last)
		}
		if ae.retryAfter > wait {
			wait = ae.retryAfter
		}
		if req.Stats != nil {
			req.Stats.Retries.Add(1)
		}
		c.log.Debug("retrying", "stream", req.Stream, "path", pathOf(req.URL), "attempt", attempt, "wait", wait, "cause", last)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

func pathOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable URL)"
	}
	return u.Path
}

func (c *Client) attempt(ctx context.Context, req Request) *attemptError {
	if req.Budget != nil {
		if err := req.Budget.Wait(ctx); err != nil {
			return &attemptError{err: err}
		}
	}
	var tok string
	if req.Auth != nil {
		var err error
		if tok, err = req.Auth.Token(ctx); err != nil {
			return &attemptError{err: err, auth: true}
		}
	}
	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
	var body io.Reader
	if req.Form != nil {
		body = strings.NewReader(req.Form.Encode())
	}
	hr, err := http.NewRequestWithContext(ctx, method, req.URL, body)
	if err != nil {
		return &attemptError{err: fmt.Errorf("stream %s: building request for %s: %w", req.Stream, pathOf(req.URL), err)}
	}
	for k, vs := range req.Header {
		hr.Header[k] = vs
	}
	hr.Header.Set("Accept", "application/json")
	hr.Header.Set("User-Agent", "marketsync-syncer")
	if req.Form != nil {
		hr.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if req.Basic[0] != "" {
		hr.SetBasicAuth(req.Basic[0], req.Basic[1])
	}
	if tok != "" {
		hr.Header.Set("Authorization", "Bearer "+tok)
	}
	if req.Stats != nil {
		req.Stats.Requests.Add(1)
	}
	start := time.Now()
	res, err := c.http.Do(hr)
	if err != nil {
		if ctx.Err() != nil {
			return &attemptError{err: ctx.Err()}
		}
		// Network errors carry the URL; report only the path.
		return &attemptError{err: fmt.Errorf("stream %s: %s %s: network error: %w", req.Stream, method, pathOf(req.URL), unwrapURLError(err)), retry: true}
	}
	defer res.Body.Close()
	if req.Budget != nil {
		req.Budget.Observe(res.Header)
	}
	data, err := io.ReadAll(io.LimitReader(res.Body, c.maxBody+1))
	if err != nil {
		return &attemptError{err: fmt.Errorf("stream %s: %s %s: reading body: %w", req.Stream, method, pathOf(req.URL), unwrapURLError(err)), retry: true}
	}
	if int64(len(data)) > c.maxBody {
		return &attemptError{err: fmt.Errorf("stream %s: %s %s: %w (%d bytes)", req.Stream, method, pathOf(req.URL), ErrTooLarge, c.maxBody)}
	}
	if req.Stats != nil {
		req.Stats.Bytes.Add(int64(len(data)))
	}
	c.log.Debug("response", "stream", req.Stream, "method", method, "path", pathOf(req.URL), "status", res.StatusCode, "bytes", len(data), "took", time.Since(start))
	if res.StatusCode >= 200 && res.StatusCode < 300 {
		if req.Parse != nil {
			if err := req.Parse(res.StatusCode, data); err != nil {
				return &attemptError{err: fmt.Errorf("stream %s: %s %s: %w: %w", req.Stream, method, pathOf(req.URL), ErrBody, err), retry: true}
			}
		}
		return nil
	}
	he := &HTTPError{Stream: req.Stream, Method: method, Path: pathOf(req.URL), Status: res.StatusCode, Body: excerpt(data)}
	if res.StatusCode == 401 && req.Auth != nil {
		req.Auth.Invalidate(tok)
	}
	ra := parseRetryAfter(res.Header.Get("Retry-After"), c.retry.MaxRetryAfter)
	he.RetryAfter = ra
	if res.StatusCode == 429 {
		if req.Stats != nil {
			req.Stats.Throttled.Add(1)
		}
		if req.Budget != nil && ra > 0 {
			req.Budget.Pause(ra) // every worker on this budget waits, not just this one
		}
	}
	return &attemptError{err: he, retry: retryableStatus(res.StatusCode), retryAfter: ra}
}

func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func excerpt(b []byte) string {
	s := strings.ToValidUTF8(string(b), "?")
	if len(s) > 512 {
		s = s[:512] + "…"
	}
	return s
}

// parseRetryAfter reads seconds or an HTTP-date, capped at limit; unparseable or past values
// give 0 ("no hint").
func parseRetryAfter(v string, limit time.Duration) time.Duration {
	if v == "" {
		return 0
	}
	var d time.Duration
	if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
		d = time.Duration(n) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = time.Until(t)
	}
	if d < 0 {
		d = 0
	}
	return min(d, limit)
}
