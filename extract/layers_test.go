package extract

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"testing"
)

// Helpers shared by the tests of single transport layers.

var discard = slog.New(slog.DiscardHandler)

// send makes one request through rt with c as its call, as Client.Do would.
func send(t *testing.T, rt http.RoundTripper, c *call, method, url string, body string) (*http.Response, error) {
	t.Helper()
	req := newReq(t, c, method, url, body)
	return rt.RoundTrip(req)
}

func newReq(t *testing.T, c *call, method, url, body string) *http.Request {
	t.Helper()
	var req *http.Request
	var err error
	if body != "" {
		req, err = http.NewRequestWithContext(withCall(context.Background(), c), method, url, strings.NewReader(body))
	} else {
		req, err = http.NewRequestWithContext(withCall(context.Background(), c), method, url, nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// roundTripFunc is a hand-written fake layer.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
