package extract

import (
	"bytes"
	"context"
	"golang.org/x/oauth2"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// The stack's own cost per request: BenchmarkStack_InMemory answers from memory below the
// chain (what the layers add), BenchmarkStack_Loopback goes through a real connection.

type cannedRT struct{ body []byte }

func (c cannedRT) RoundTrip(r *http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(bytes.NewReader(c.body)), ContentLength: int64(len(c.body)), Request: r}, nil
}

var benchBody = []byte(`{"content":[{"uuid":"a"},{"uuid":"b"}],"page":{"size":2,"totalElements":2,"totalPages":1,"number":0}}`)

func benchDo(b *testing.B, c *Client, url string) {
	auth := newTokenSource(func(context.Context) (*oauth2.Token, error) { return &oauth2.Token{AccessToken: "tok"}, nil })
	budget := NewBudget("b", -1, 1, 0)
	var st Counters
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		err := c.Do(ctx, Request{Stream: "s", URL: url, Auth: auth, Budget: budget, Stats: &st,
			Parse: func(int, []byte) error { _, _, err := splitWrapped(benchBody); return err }})
		if err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkStack_InMemory(b *testing.B) {
	c := NewClient(discard, RetryPolicy{}, time.Second)
	c.http.Transport = newStack(cannedRT{benchBody}, discard, RetryPolicy{}, time.Second, DefaultMaxBody)
	benchDo(b, c, "http://x/api?page=0")
}

func BenchmarkStack_Loopback(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(benchBody)
	}))
	defer srv.Close()
	c := NewClient(discard, RetryPolicy{}, time.Second)
	defer c.CloseIdle()
	benchDo(b, c, srv.URL+"/api?page=0")
}
