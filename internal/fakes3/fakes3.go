// Package fakes3 runs an in-memory S3-compatible server (gofakes3) on loopback, for tests of
// the lake on S3 storage.
package fakes3

import (
	"net"
	"net/http"
	"testing"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

// Server is a running fake S3 endpoint.
type Server struct {
	URL     string // http://127.0.0.1:PORT, for s3.endpoint
	backend *s3mem.Backend
}

// Start serves a fake S3 with the given buckets until the test ends. It accepts any
// credentials (signatures are not checked).
func Start(t testing.TB, buckets ...string) *Server {
	t.Helper()
	backend := s3mem.New()
	for _, b := range buckets {
		if err := backend.CreateBucket(b); err != nil {
			t.Fatal(err)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: gofakes3.New(backend, gofakes3.WithLogger(gofakes3.DiscardLog())).Server()}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return &Server{URL: "http://" + ln.Addr().String(), backend: backend}
}

// Keys lists the object keys of a bucket under prefix.
func (s *Server) Keys(bucket, prefix string) ([]string, error) {
	list, err := s.backend.ListBucket(bucket, &gofakes3.Prefix{Prefix: prefix, HasPrefix: true}, gofakes3.ListBucketPage{})
	if err != nil {
		return nil, err
	}
	var out []string
	for _, o := range list.Contents {
		out = append(out, o.Key)
	}
	return out, nil
}
