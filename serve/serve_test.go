package serve

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

const testUser, testPassword = "bi", "s3cret-for-tests"

// startServer opens a warehouse in a temp dir and serves it on a loopback port.
func startServer(t testing.TB, dir string) (*Warehouse, *Server, string) {
	t.Helper()
	ctx := context.Background()
	wh, err := OpenWarehouse(ctx, filepath.Join(dir, "warehouse.duckdb"), filepath.Join(dir, "parquet"))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := NewServer(wh, Config{Users: map[string]string{testUser: testPassword}})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; err != nil {
			t.Error(err)
		}
		wh.Close()
	})
	return wh, srv, ln.Addr().String()
}

func connString(addr string) string {
	host, port, _ := net.SplitHostPort(addr)
	return fmt.Sprintf("postgres://%s:%s@%s:%s/marketsync?sslmode=disable", testUser, testPassword, host, port)
}

func connect(t testing.TB, addr string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, connString(addr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

func TestSmoke(t *testing.T) {
	_, _, addr := startServer(t, t.TempDir())
	c := connect(t, addr)
	ctx := context.Background()
	var n int64
	var s string
	var ts time.Time
	if err := c.QueryRow(ctx, "SELECT 42::BIGINT, 'hi', TIMESTAMPTZ '2024-01-02 03:04:05+00'").Scan(&n, &s, &ts); err != nil {
		t.Fatal(err)
	}
	t.Log(n, s, ts)
	if err := c.QueryRow(ctx, "SELECT count(*) FROM companies WHERE id <> $1", "x").Scan(&n); err != nil {
		t.Fatal(err)
	}
	_, err := c.Exec(ctx, "INSERT INTO companies (id) VALUES ('x')")
	t.Log(err)
	rows, err := c.Query(ctx, "SELECT * FROM revenue_by_month")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
	}
	t.Log(rows.Err(), rows.FieldDescriptions())
}
