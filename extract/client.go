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
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Counters are a stream's request statistics; safe for concurrent use. Every layer of the
// HTTP stack adds to the Counters of the request's own call, so concurrent streams never mix.
type Counters struct {
	Requests  atomic.Int64 // attempts sent, retries and 401 resends included
	Retries   atomic.Int64 // attempts sent again after a 429, a 5xx, a network error or a bad body
	Throttled atomic.Int64 // 429 answers
	Bytes     atomic.Int64 // response body bytes
	Waited    atomic.Int64 // nanoseconds during which a request waited on its budget (limiter and pauses)

	waitMu    sync.Mutex
	waiting   int       // requests waiting on a budget now
	waitSince time.Time // when the first of them began
}

// beginWait and endWait bracket one request's wait on its budget. Waited grows by the wall time
// during which at least one request waited: concurrent waits overlap, they do not add up, so a
// stream's wait never exceeds its duration.
func (c *Counters) beginWait() {
	c.waitMu.Lock()
	if c.waiting == 0 {
		c.waitSince = time.Now()
	}
	c.waiting++
	c.waitMu.Unlock()
}

func (c *Counters) endWait() {
	c.waitMu.Lock()
	if c.waiting--; c.waiting == 0 {
		c.Waited.Add(int64(time.Since(c.waitSince)))
	}
	c.waitMu.Unlock()
}

// Client is the one HTTP stack every request goes through.
type Client struct {
	http          *http.Client
	wire          *http.Transport
	maxRetryAfter time.Duration
}

// DefaultMaxBody caps a response body (a page of 250 records is well under 1 MB).
const DefaultMaxBody = 64 << 20

// NewClient returns a client whose requests are retried by retry and whose attempts each get
// timeout (default 60s, reading the body included). TLS verification is always on.
func NewClient(log *slog.Logger, retry RetryPolicy, timeout time.Duration) *Client {
	retry.SetDefaults()
	if timeout == 0 {
		timeout = 60 * time.Second
	}
	wire := newWire((&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext)
	// No http.Client.Timeout: it would bound all retries of a request together; each attempt
	// gets its own in capsTransport.
	return &Client{http: &http.Client{Transport: newStack(wire, log, retry, timeout, DefaultMaxBody)}, wire: wire, maxRetryAfter: retry.MaxRetryAfter}
}

// newWire is the transport every request leaves by. Its connections count the bytes written to
// them, so capsTransport can tell a resend net/http made after writing a request from one it
// made because the connection failed before anything of the request left (see sentConn).
// It speaks HTTP/1.1: a custom dialer and TLS config turn net/http's automatic HTTP/2 off.
func newWire(dial func(ctx context.Context, network, addr string) (net.Conn, error)) *http.Transport {
	return &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := dial(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return &sentConn{Conn: c}, nil
		},
		TLSClientConfig:     &tls.Config{MinVersion: tls.VersionTLS12},
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: 10 * time.Second,
	}
}

// sentConn is a connection that counts the bytes written to it. A write is counted before it
// starts (the peer may answer before Write returns) and corrected after it for what it did not
// write: a write that sent nothing has left the count as it was before net/http learns so.
//
// Once a read failed (the server closed the connection: net/http's reader waits on every idle
// connection), nothing more is written to it: the request would reach a closed socket, which
// the server never reads. The write fails with nothing sent, and net/http sends the request
// on a new connection, as it does when it notices the close first.
type sentConn struct {
	net.Conn
	sent     atomic.Int64
	answered atomic.Int64 // sent as of the last read that returned data
	closed   atomic.Bool  // a read failed: the peer closed or reset the connection
	reset    atomic.Bool  // a read failed with a reset: the peer closed with our data unread
}

// A request written just as the server closed an idle connection reaches a socket the server
// closed: its reset comes back a round trip after the FIN the read already returned. Before the
// read reports the close (net/http then decides whether to resend), it waits that long for the
// reset, and only when a request went unanswered. Enough for loopback and a LAN (a loaded test
// machine took over 1 ms); farther away such a race still counts as a request and a retry.
const (
	resetWait = 5 * time.Millisecond
	resetPoll = 250 * time.Microsecond
)

func (c *sentConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.answered.Store(c.sent.Load())
	}
	if err != nil {
		c.closed.Store(true)
		// A reset says the server closed with our data unread; so does one that came after its
		// FIN (the request reached a socket it had closed), which the EOF read hides.
		reset := errors.Is(err, syscall.ECONNRESET)
		if !reset && errors.Is(err, io.EOF) {
			reset = resetPending(c.Conn)
			for waited := time.Duration(0); !reset && waited < resetWait && c.sent.Load() > c.answered.Load(); waited += resetPoll {
				time.Sleep(resetPoll)
				reset = resetPending(c.Conn)
			}
		}
		if reset {
			c.reset.Store(true)
		}
	}
	return n, err
}

func (c *sentConn) Write(p []byte) (int, error) {
	if c.closed.Load() {
		return 0, errPeerClosed
	}
	c.sent.Add(int64(len(p)))
	n, err := c.Conn.Write(p)
	if n < len(p) {
		c.sent.Add(int64(n - len(p)))
	}
	return n, err
}

var errPeerClosed = errors.New("the server closed the connection")

// sentConnOf returns the sentConn under a connection httptrace reports (TLS unwrapped), or nil
// for a connection another transport dialled.
func sentConnOf(c net.Conn) *sentConn {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	sc, _ := c.(*sentConn)
	return sc
}

// newStack is the HTTP policy, outermost first:
//
//	retry → budget → auth → caps → wire
//
// Retry is outermost so that every attempt waits for the budget again and takes a token (fresh
// if the last was refused or is expiring); auth is below the budget so that the token is taken
// when the request can go, not before a wait in the queue; caps is innermost so that it sees,
// counts and bounds exactly what crosses the wire.
func newStack(wire http.RoundTripper, log *slog.Logger, retry RetryPolicy, timeout time.Duration, maxBody int64) http.RoundTripper {
	var rt http.RoundTripper = &capsTransport{next: wire, log: log, timeout: timeout, maxBody: maxBody}
	rt = &authTransport{next: rt}
	rt = &budgetTransport{next: rt, maxPause: retry.MaxRetryAfter}
	return newRetryTransport(rt, retry, log)
}

// CloseIdle closes idle connections (so a finished run leaves no goroutines behind).
func (c *Client) CloseIdle() { c.wire.CloseIdleConnections() }

// Request describes one logical request; the stack may send it several times.
type Request struct {
	Stream string
	Method string // default GET
	URL    string
	Header http.Header
	Form   url.Values // POST body, form-encoded
	Auth   Authorizer // nil: no bearer token
	Budget *Budget    // nil: not rate limited
	Stats  *Counters  // nil: not counted
	// Parse validates and decodes a 2xx body; an error is treated like a transient fault
	// (truncated or invalid JSON) and retried. It runs once per 2xx attempt; the last call
	// that returned nil saw the body Do accepted.
	Parse func(status int, body []byte) error
	// Date, when set, receives the server's clock from the accepted 2xx response's Date header
	// (left unchanged when the header is absent or unparseable).
	Date *time.Time
}

// Do sends req through the stack (see newStack and each layer's doc). A status that is not
// retried, or the last one of the retries, is returned as *HTTPError; ctx's error is returned
// as is; every other error names the stream, method and path (never the query: it can hold
// secrets).
func (c *Client) Do(ctx context.Context, req Request) error {
	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
	var body io.Reader
	if req.Form != nil {
		body = strings.NewReader(req.Form.Encode())
	}
	cctx := withCall(ctx, &call{stream: req.Stream, stats: req.Stats, budget: req.Budget, auth: req.Auth, check: req.Parse})
	hr, err := http.NewRequestWithContext(cctx, method, req.URL, body)
	if err != nil {
		return fmt.Errorf("stream %s: building request for %s: %w", req.Stream, pathOf(req.URL), err)
	}
	for k, vs := range req.Header {
		hr.Header[k] = vs
	}
	hr.Header.Set("Accept", "application/json")
	hr.Header.Set("User-Agent", userAgent)
	if req.Form != nil {
		hr.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	res, err := c.http.Do(hr)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("stream %s: %s %s: %w", req.Stream, method, pathOf(req.URL), unwrapURLError(err))
	}
	defer res.Body.Close()
	if res.StatusCode >= 200 && res.StatusCode < 300 {
		if req.Date != nil {
			if t, err := http.ParseTime(res.Header.Get("Date")); err == nil {
				*req.Date = t.UTC()
			}
		}
		return nil // Parse ran in retryTransport, on this body
	}
	data, err := bodyBytes(res)
	if err != nil {
		return fmt.Errorf("stream %s: %s %s: HTTP %d: reading body: %w", req.Stream, method, pathOf(req.URL), res.StatusCode, err)
	}
	return &HTTPError{Stream: req.Stream, Method: method, Path: pathOf(req.URL), Status: res.StatusCode, Body: excerpt(data),
		RetryAfter: parseRetryAfter(res.Header.Get("Retry-After"), c.maxRetryAfter)}
}

func pathOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable URL)"
	}
	return u.Path
}

// unwrapURLError drops the *url.Error around a transport error: its text holds the whole URL.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
