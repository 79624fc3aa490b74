package extract

import (
	"context"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// resendClient is the production stack over newWire with dial as its dialer.
func resendClient(dial func(ctx context.Context, network, addr string) (net.Conn, error)) *Client {
	wire := newWire(dial)
	return &Client{http: &http.Client{Transport: newStack(wire, discard, RetryPolicy{InitialInterval: time.Millisecond, MaxInterval: time.Millisecond}, 5*time.Second, DefaultMaxBody)}, wire: wire}
}

// deadAfterOne is a connection whose second request cannot be written: the server reset it
// (the write fails with nothing sent), as a peer that dropped an idle keep-alive connection.
type deadAfterOne struct {
	net.Conn
	writes int
}

func (c *deadAfterOne) Write(p []byte) (int, error) {
	if c.writes++; c.writes > 1 {
		c.Conn.Close()
		return 0, &net.OpError{Op: "write", Net: "tcp", Err: syscall.ECONNRESET}
	}
	return c.Conn.Write(p)
}

// net/http resends a request on a new connection when a reused one fails. Counted are the
// attempts that reached the server: a resend after the request was written (the server read
// it and dropped the connection) is one more request and a retry; a resend because nothing of
// the request could be written (a reset connection) is not. Both are held against the server's
// own count.
func TestCaps_TransportResendsCountAsTheServerSawThem(t *testing.T) {
	ok := func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{}`))
	}
	const n = 12
	t.Run("reset before the request is written: not a request", func(t *testing.T) {
		var served atomic.Int64
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { served.Add(1); ok(w) }))
		defer srv.Close()
		var dials atomic.Int64
		c := resendClient(func(ctx context.Context, network, addr string) (net.Conn, error) {
			dials.Add(1)
			conn, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return &deadAfterOne{Conn: conn}, nil
		})
		defer c.CloseIdle()
		var st Counters
		for i := 0; i < n; i++ {
			if err := c.Do(context.Background(), Request{Stream: "s", URL: srv.URL, Stats: &st}); err != nil {
				t.Fatal(err)
			}
		}
		if dials.Load() != n {
			t.Fatalf("%d connections for %d requests: net/http did not resend on a new connection", dials.Load(), n)
		}
		if st.Requests.Load() != served.Load() || st.Retries.Load() != 0 {
			t.Fatalf("%d requests, %d retries counted; the server saw %d requests (and no retry)", st.Requests.Load(), st.Retries.Load(), served.Load())
		}
	})
	t.Run("dropped after the server read it: a request and a retry", func(t *testing.T) {
		var served atomic.Int64
		var mu sync.Mutex
		perConn := map[string]int{}
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			served.Add(1)
			mu.Lock()
			perConn[r.RemoteAddr]++
			second := perConn[r.RemoteAddr] == 2
			mu.Unlock()
			if second {
				panic(http.ErrAbortHandler) // read, then the connection dropped without an answer
			}
			ok(w)
		}))
		srv.Config.ErrorLog = log.New(io.Discard, "", 0)
		defer srv.Close()
		var dials atomic.Int64
		c := resendClient(func(ctx context.Context, network, addr string) (net.Conn, error) {
			dials.Add(1)
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		})
		defer c.CloseIdle()
		var st Counters
		for i := 0; i < n; i++ {
			if err := c.Do(context.Background(), Request{Stream: "s", URL: srv.URL, Stats: &st}); err != nil {
				t.Fatal(err)
			}
		}
		if dials.Load() != n {
			t.Fatalf("%d connections for %d requests: net/http did not resend on a new connection", dials.Load(), n)
		}
		if st.Requests.Load() != served.Load() || st.Retries.Load() != n-1 {
			t.Fatalf("%d requests, %d retries counted; the server saw %d requests, %d of them dropped", st.Requests.Load(), st.Retries.Load(), served.Load(), n-1)
		}
	})
	t.Run("server closes idle keep-alive connections after each response", func(t *testing.T) {
		var served atomic.Int64
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { served.Add(1); ok(w) }))
		srv.Config.ConnState = func(c net.Conn, s http.ConnState) {
			if s == http.StateIdle {
				c.Close()
			}
		}
		srv.Start()
		defer srv.Close()
		c := resendClient((&net.Dialer{}).DialContext)
		defer c.CloseIdle()
		var st Counters
		for i := 0; i < 200; i++ {
			if err := c.Do(context.Background(), Request{Stream: "s", URL: srv.URL, Stats: &st}); err != nil && !errors.Is(err, context.Canceled) {
				t.Fatal(err)
			}
		}
		t.Logf("%d requests, %d retries counted; the server saw %d", st.Requests.Load(), st.Retries.Load(), served.Load())
		if st.Requests.Load() != served.Load() {
			t.Fatalf("%d requests, %d retries counted; the server saw %d", st.Requests.Load(), st.Retries.Load(), served.Load())
		}
	})
}

// Over HTTP/2 (not what NewClient speaks: its custom dialer and TLS config keep net/http on
// HTTP/1.1, but the counting must hold if a wire does), net/http resends only streams the
// server refused unprocessed: a GOAWAY's streams past its last one. A server that answers every
// eighth request with a graceful GOAWAY (Connection: close), under concurrent requests, makes
// net/http resend some; the counters equal what the handler served, and no resend is a
// retry. (Each attempt has a minute: net/http backs off up to 31 s between its own resends.)
func TestCaps_HTTP2GoawayResendsAreNotCounted(t *testing.T) {
	var served atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if served.Add(1)%8 == 0 {
			w.Header().Set("Connection", "close") // HTTP/2: a GOAWAY, the connection closes when idle
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{}`))
	}))
	srv.EnableHTTP2 = true
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // clients leaving mid-handshake as connections close
	srv.StartTLS()
	defer srv.Close()
	wire := newWire((&net.Dialer{}).DialContext)
	wire.TLSClientConfig = srv.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
	wire.ForceAttemptHTTP2 = true
	c := &Client{http: &http.Client{Transport: newStack(wire, discard, RetryPolicy{MaxAttempts: 1}, time.Minute, DefaultMaxBody)}, wire: wire}
	defer c.CloseIdle()
	var conns, h2 atomic.Int64
	ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{GotConn: func(httptrace.GotConnInfo) { conns.Add(1) }})
	var st Counters
	const workers, each = 8, 40
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range each {
				err := c.Do(ctx, Request{Stream: "s", URL: srv.URL, Stats: &st, Parse: func(int, []byte) error { return nil }})
				if err != nil {
					t.Error(err)
					return
				}
				h2.Add(1)
			}
		})
	}
	wg.Wait()
	t.Logf("%d requests, %d retries counted; %d attempts by net/http; the server served %d", st.Requests.Load(), st.Retries.Load(), conns.Load(), served.Load())
	if conns.Load() == workers*each {
		t.Skip("net/http resent nothing this time: nothing to count")
	}
	if st.Requests.Load() != served.Load() || st.Retries.Load() != 0 {
		t.Fatalf("%d requests, %d retries counted; the server served %d, none twice", st.Requests.Load(), st.Retries.Load(), served.Load())
	}
}
