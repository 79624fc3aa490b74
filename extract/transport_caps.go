package extract

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync"
	"time"
)

const userAgent = "marketsync-syncer"

// capsTransport is the layer next to the wire. Every attempt that reaches it is one request the
// server sees: it is counted (net/http's own resends on a fresh connection included), bounded in time (including reading the body), and its body is read
// whole under a size cap. A 2xx body must be JSON: XML or HTML fails loudly with ErrContentType
// instead of reaching a parser as a puzzling syntax error.
type capsTransport struct {
	next    http.RoundTripper
	log     *slog.Logger
	timeout time.Duration // per attempt; 0: none
	maxBody int64
}

func (t *capsTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	c := callOf(req)
	if req.Header.Get("User-Agent") == "" || req.Header.Get("Accept") == "" {
		// Requests built by others (oauth2's token requests) get the headers Client.Do sets.
		req = req.Clone(req.Context())
		setDefault(req.Header, "User-Agent", userAgent)
		setDefault(req.Header, "Accept", "application/json")
	}
	ctx := req.Context()
	caller := ctx // the run's context, before this attempt's timeout
	if t.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t.timeout)
		defer cancel() // after the body is read: the timeout covers it
		req = req.WithContext(ctx)
	}
	var sends *wireAttempts
	if c.stats != nil {
		c.stats.Requests.Add(1)
		sends = &wireAttempts{}
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), sends.trace()))
	}
	start := time.Now()
	res, err := t.next.RoundTrip(req)
	if c.stats != nil {
		sent, resent := sends.done()
		if err != nil && caller.Err() != nil && sent == 0 {
			c.stats.Requests.Add(-1) // the run was cancelled before the request was sent: no attempt
		}
		// net/http sent the request again on a new connection after a reused one failed once the
		// request was written: the server may have read it (a connection dropped without an
		// answer), so each such attempt is one more request and a retry.
		c.stats.Requests.Add(int64(resent))
		c.stats.Retries.Add(int64(resent))
	}
	if err != nil {
		if certificateError(err) {
			return nil, permanent(fmt.Errorf("TLS: %w", err))
		}
		return nil, fmt.Errorf("network error: %w", err)
	}
	data, err := readCapped(res, t.maxBody)
	res.Body.Close()
	if err != nil {
		return nil, err
	}
	if c.stats != nil {
		c.stats.Bytes.Add(int64(len(data)))
	}
	t.log.Debug("response", "stream", c.stream, "method", req.Method, "path", req.URL.Path, "status", res.StatusCode,
		"bytes", len(data), "took", time.Since(start))
	if res.StatusCode >= 200 && res.StatusCode < 300 && len(data) > 0 {
		if err := requireJSON(res.Header, data); err != nil {
			return nil, permanent(err)
		}
	}
	res.Body, res.ContentLength = &bufferedBody{Reader: bytes.NewReader(data), data: data}, int64(len(data))
	return res, nil
}

func setDefault(h http.Header, key, value string) {
	if h.Get(key) == "" {
		h.Set(key, value)
	}
}

// certificateError reports a TLS verification failure: no retry makes a certificate valid.
func certificateError(err error) bool {
	var cv *tls.CertificateVerificationError
	var ua x509.UnknownAuthorityError
	var hn x509.HostnameError
	var ci x509.CertificateInvalidError
	return errors.As(err, &cv) || errors.As(err, &ua) || errors.As(err, &hn) || errors.As(err, &ci)
}

// readCapped reads res's body whole, failing (permanently) when it is larger than limit. A read
// error (a connection cut mid-body) is transient.
func readCapped(res *http.Response, limit int64) ([]byte, error) {
	if res.ContentLength > limit {
		return nil, permanent(fmt.Errorf("%w (%d bytes)", ErrTooLarge, limit))
	}
	var buf bytes.Buffer
	if res.ContentLength > 0 {
		buf.Grow(int(res.ContentLength) + bytes.MinRead) // one allocation, no regrowth
	}
	if _, err := buf.ReadFrom(io.LimitReader(res.Body, limit+1)); err != nil {
		return nil, fmt.Errorf("reading body: %w", err)
	}
	if int64(buf.Len()) > limit {
		return nil, permanent(fmt.Errorf("%w (%d bytes)", ErrTooLarge, limit))
	}
	return buf.Bytes(), nil
}

// requireJSON accepts a body declared as JSON (application/json, */*+json). A body with no
// declared type or text/plain (what Go's server sniffs for JSON sent without a type) is accepted
// when it looks like JSON, and relabelled application/json so every parser downstream (oauth2's
// token parser among them) reads it as JSON. Anything else is ErrContentType.
func requireJSON(h http.Header, body []byte) error {
	declared := h.Get("Content-Type")
	mt := ""
	if declared != "" {
		var err error
		if mt, _, err = mime.ParseMediaType(declared); err != nil {
			return fmt.Errorf("%w: unparseable Content-Type %q", ErrContentType, declared)
		}
	}
	switch {
	case mt == "application/json" || strings.HasSuffix(mt, "+json"):
		return nil
	case mt == "" || mt == "text/plain":
		if b := bytes.TrimLeft(body, " \t\r\n"); len(b) > 0 && (b[0] == '{' || b[0] == '[') {
			h.Set("Content-Type", "application/json")
			return nil
		}
	}
	if mt == "" {
		mt = "undeclared"
	}
	return fmt.Errorf("%w: a %d-byte %s body where JSON was expected (the API ignored Accept: application/json): %q",
		ErrContentType, len(body), mt, excerpt(body[:min(len(body), 64)]))
}

// bufferedBody is a body capsTransport has read whole; layers above it read data directly
// instead of copying it.
type bufferedBody struct {
	*bytes.Reader
	data []byte
}

func (*bufferedBody) Close() error { return nil }

// bodyBytes returns res's whole body. Below capsTransport (in tests of single layers) it reads
// the body and puts a buffered copy back.
func bodyBytes(res *http.Response) ([]byte, error) {
	if b, ok := res.Body.(*bufferedBody); ok {
		return b.data, nil
	}
	data, err := io.ReadAll(res.Body)
	res.Body.Close()
	res.Body = &bufferedBody{Reader: bytes.NewReader(data), data: data}
	return data, err
}

// drain closes a response that will not be used, after reading what is left (at most 1 MiB), so
// its keep-alive connection can be reused.
func drain(res *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 1<<20))
	res.Body.Close()
}

func excerpt(b []byte) string {
	s := strings.ToValidUTF8(string(b), "?")
	if len(s) > 512 {
		s = s[:512] + "…"
	}
	return s
}

// wireAttempts follows net/http's attempts at one request through httptrace: each connection
// it got (GotConn) starts one; an attempt counts as sent when net/http wrote the request
// (WroteRequest without error) and, on a connection newWire dialled, bytes of it left on that
// connection and the server did not answer them with a reset. (WroteRequest alone is not
// proof: HTTP/1 reports it before flushing, and a connection the server reset fails the flush
// with nothing sent, which net/http resends.) An HTTP/2 attempt net/http followed with another
// was refused unprocessed (GOAWAY past its stream, REFUSED_STREAM): the only ones it resends.
type wireAttempts struct {
	mu     sync.Mutex
	sent   int       // attempts sent
	resent int       // attempts sent over HTTP/1 that net/http followed with another
	conn   *sentConn // the current attempt's connection, if countable
	at     int64     // its bytes sent when the attempt began
	h2     bool      // the current attempt is an HTTP/2 stream
	wrote  bool      // the current attempt was written
	open   bool      // an attempt is under way
}

func (w *wireAttempts) trace() *httptrace.ClientTrace {
	return &httptrace.ClientTrace{
		GotConn: func(info httptrace.GotConnInfo) {
			w.mu.Lock()
			defer w.mu.Unlock()
			if w.closeLocked() && !w.h2 {
				w.resent++
			}
			w.open, w.wrote, w.conn, w.h2 = true, false, sentConnOf(info.Conn), false
			if tc, ok := info.Conn.(*tls.Conn); ok && tc.ConnectionState().NegotiatedProtocol == "h2" {
				w.h2 = true
			}
			if w.conn != nil {
				w.at = w.conn.sent.Load()
			}
		},
		WroteRequest: func(info httptrace.WroteRequestInfo) {
			w.mu.Lock()
			defer w.mu.Unlock()
			if w.open && info.Err == nil {
				w.wrote = true
			}
		},
	}
}

// closeLocked ends the current attempt and reports whether it was sent.
func (w *wireAttempts) closeLocked() bool {
	sent := w.open && w.wrote && (w.h2 || w.conn == nil || (w.conn.sent.Load() > w.at && !w.conn.reset.Load()))
	if sent {
		w.sent++
	}
	w.open = false
	return sent
}

// done ends the last attempt (call it when RoundTrip returned, before the body is read: the
// connection is not reused before) and returns how many attempts were sent, and how many of
// them net/http sent again (each one the server may have read: a request and a retry).
func (w *wireAttempts) done() (sent, resent int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closeLocked()
	return w.sent, w.resent
}
