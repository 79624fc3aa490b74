package serve

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/marketsync/marketsync/pipeline"
)

// TestServe_TypesMapToPostgreSQL checks the OID each DuckDB type is described with and the
// value a client decodes, in text (simple protocol) and binary (pgx's extended protocol).
func TestServe_TypesMapToPostgreSQL(t *testing.T) {
	_, _, addr := startServer(t, t.TempDir())
	c := connect(t, addr)
	ctx := context.Background()
	cases := []struct {
		expr string
		oid  uint32
		want any
	}{
		{"true", oidBool, true},
		{"42::BIGINT", oidInt8, int64(42)},
		{"7::INTEGER", oidInt4, int32(7)},
		{"3::SMALLINT", oidInt2, int16(3)},
		{"1.5::DOUBLE", oidFloat8, 1.5},
		{"'héllo'", oidText, "héllo"},
		{"'12345.678'::DECIMAL(18,3)", oidNumeric, "12345.678"},
		{"'-0.05'::DECIMAL(10,4)", oidNumeric, "-0.0500"},
		{"123456789012345678901234::HUGEINT", oidNumeric, "123456789012345678901234"},
		{"TIMESTAMPTZ '2026-06-01 12:34:56.789+00'", oidTimestampTZ, time.Date(2026, 6, 1, 12, 34, 56, 789000000, time.UTC)},
		{"TIMESTAMP '2026-06-01 12:34:56'", oidTimestamp, time.Date(2026, 6, 1, 12, 34, 56, 0, time.UTC)},
		{"DATE '2026-02-03'", oidDate, time.Date(2026, 2, 3, 0, 0, 0, 0, time.UTC)},
		{`'{"a": [1, 2]}'::JSON`, oidJSON, map[string]any{"a": []any{1.0, 2.0}}},
		{"['a', 'b c', NULL]", 1009, []any{"a", "b c", nil}},
		{"[1, 2, 3]::BIGINT[]", 1016, []any{int64(1), int64(2), int64(3)}},
		{"[true, false]", 1000, []any{true, false}},
		{"'6b4bd452-895d-4098-aa56-e6046b238e0f'::UUID", oidUUID, "6b4bd452-895d-4098-aa56-e6046b238e0f"},
		{"INTERVAL '1 day 2 hours'", oidInterval, "1 day 02:00:00"},
		{"{'x': 1, 'y': 'z'}", oidJSON, map[string]any{"x": 1.0, "y": "z"}},
		{"'\\x01\\xFF'::BLOB", oidBytea, []byte{1, 0xff}},
	}
	for _, tc := range cases {
		for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeDescribeExec} {
			rows, err := c.Query(ctx, "SELECT "+tc.expr+" AS v", mode)
			if err != nil {
				t.Errorf("%s: %v", tc.expr, err)
				continue
			}
			var got any
			if rows.Next() {
				vals, err := rows.Values()
				if err != nil {
					t.Errorf("%v %s: %v", mode, tc.expr, err)
				} else {
					got = vals[0]
				}
			}
			fd := rows.FieldDescriptions()
			rows.Close()
			if err := rows.Err(); err != nil {
				t.Errorf("%v %s: %v", mode, tc.expr, err)
				continue
			}
			if len(fd) != 1 || fd[0].DataTypeOID != tc.oid {
				t.Errorf("%s: described as %+v, want OID %d", tc.expr, fd, tc.oid)
			}
			if !sameValue(got, tc.want) {
				t.Errorf("%v %s: got %#v, want %#v", mode, tc.expr, got, tc.want)
			}
		}
	}
	// NULL of every kind, and parameters of several types in both formats.
	var s *string
	var n *int64
	if err := c.QueryRow(ctx, "SELECT NULL::VARCHAR, NULL::BIGINT").Scan(&s, &n); err != nil || s != nil || n != nil {
		t.Fatalf("NULLs: %v %v %v", s, n, err)
	}
	var out string
	ts := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	num := pgtype.Numeric{}
	_ = num.Scan("12.50")
	err := c.QueryRow(ctx, "SELECT concat_ws('|', $1::BIGINT, $2::DOUBLE, $3::BOOLEAN, $4::TIMESTAMPTZ, $5::VARCHAR, $6::DECIMAL(10,2), $7::DATE)",
		int64(-9), 2.25, true, ts, "x'y", num, ts).Scan(&out)
	if want := "-9|2.25|true|2026-01-02 03:04:05+00|x'y|12.50|2026-01-02"; err != nil || out != want {
		t.Fatalf("parameters: %q %v, want %q", out, err, want)
	}
}

func sameValue(got, want any) bool {
	switch w := want.(type) {
	case string:
		switch g := got.(type) {
		case string:
			return g == w
		case pgtype.Numeric:
			v, err := g.Value()
			return err == nil && v == w
		case [16]byte:
			return string(appendUUID(nil, g[:])) == w
		case pgtype.Interval:
			return w == "1 day 02:00:00" && g.Days == 1 && g.Microseconds == 2*3600*1e6
		}
		return false
	case time.Time:
		g, ok := got.(time.Time)
		return ok && g.Equal(w)
	case []byte:
		g, ok := got.([]byte)
		return ok && bytes.Equal(g, w)
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return false
		}
		for i := range g {
			if g[i] != w[i] {
				return false
			}
		}
		return true
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok || len(g) != len(w) {
			return false
		}
		for k, v := range w {
			if vs, ok := v.([]any); ok {
				if !sameValue(g[k], vs) {
					return false
				}
			} else if g[k] != v {
				return false
			}
		}
		return true
	}
	return got == want
}

// TestServe_ResultsStream reads a result far larger than one chunk row by row: the server
// sends rows as DuckDB produces them, and the client can stop early.
func TestServe_ResultsStream(t *testing.T) {
	_, _, addr := startServer(t, t.TempDir())
	c := connect(t, addr)
	ctx := context.Background()
	n, err := drain(ctx, c, "SELECT range AS i, repeat('x', 100) AS pad FROM range(100000)")
	if err != nil || n != 100000 {
		t.Fatalf("rows: %d %v", n, err)
	}
	// Stopping early: cancelling (pgx would otherwise read the rest; it then drops the
	// connection) interrupts the query at once and the server goes on.
	qctx, cancel := context.WithCancel(ctx)
	defer cancel()
	rows, err := c.Query(qctx, "SELECT range FROM range(100000000)")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if !rows.Next() {
		t.Fatal(rows.Err())
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("first of 100M rows after %s: the result is not streamed", d)
	}
	cancel()
	rows.Close()
	if d := time.Since(start); d > 20*time.Second {
		t.Fatalf("cancelling the rest of 100M rows took %s", d)
	}
	var one int
	if err := connect(t, addr).QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
		t.Fatal(err)
	}
}

// TestServe_CancelAndTimeout: a CancelRequest (pgx sends one when the context ends) and
// statement_timeout interrupt a running query with SQLSTATE 57014.
func TestServe_CancelAndTimeout(t *testing.T) {
	_, _, addr := startServer(t, t.TempDir())
	c := connect(t, addr)
	slow := "SELECT count(*) FROM range(10000000000) t(a) WHERE a % 7 = 3"
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := drain(ctx, c, slow)
	if err == nil || time.Since(start) > 10*time.Second {
		t.Fatalf("cancel: %v after %s", err, time.Since(start))
	}
	c2 := connect(t, addr)
	bg := context.Background()
	if _, err := c2.Exec(bg, "SET statement_timeout = 200"); err != nil {
		t.Fatal(err)
	}
	_, err = drain(bg, c2, slow)
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "57014" {
		t.Fatalf("statement_timeout: %v", err)
	}
	var v string
	if err := c2.QueryRow(bg, "SHOW statement_timeout").Scan(&v); err != nil || v != "200" {
		t.Fatalf("SHOW statement_timeout: %q %v", v, err)
	}
}

// TestServe_Authentication: SCRAM-SHA-256 accepts the configured password only, for known
// users only, with the same error either way.
func TestServe_Authentication(t *testing.T) {
	_, _, addr := startServer(t, t.TempDir())
	ctx := context.Background()
	for _, cs := range []string{connString(addr, "wrong-password"), strings.Replace(connString(addr, testPassword), testUser+":", "nobody:", 1)} {
		_, err := pgx.Connect(ctx, cs)
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "28P01" {
			t.Errorf("%s: want 28P01, got %v", cs, err)
		}
	}
	c := connect(t, addr)
	if err := c.Ping(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestServe_TLS: with a certificate configured, sslmode=require connects over TLS; with
// RequireTLS, a plaintext client is refused.
func TestServe_TLS(t *testing.T) {
	cert := selfSigned(t)
	_, _, addr := startServer(t, t.TempDir(), func(c *Config) {
		c.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
		c.RequireTLS = true
	})
	ctx := context.Background()
	cs := strings.Replace(connString(addr, testPassword), "sslmode=disable", "sslmode=require", 1)
	c, err := pgx.Connect(ctx, cs)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	if _, ok := c.PgConn().Conn().(*tls.Conn); !ok {
		t.Fatalf("connection is %T, not TLS", c.PgConn().Conn())
	}
	var one int
	if err := c.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
		t.Fatal(err)
	}
	_, err = pgx.Connect(ctx, connString(addr, testPassword))
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "28000" {
		t.Fatalf("plaintext with require_tls: %v", err)
	}
}

func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// TestScheduler_SkipsOverlappingRuns: a run due while the previous one runs is skipped and
// counted; Stop cancels the running one and waits for it.
func TestScheduler_SkipsOverlappingRuns(t *testing.T) {
	var started atomic.Int32
	release := make(chan struct{})
	s := &Scheduler{Schedule: Schedule{Every: 20 * time.Millisecond}, Run: func(ctx context.Context) (pipeline.Summary, error) {
		started.Add(1)
		select {
		case <-release:
		case <-ctx.Done():
			return pipeline.Summary{}, ctx.Err()
		}
		return pipeline.Summary{RunID: "r"}, nil
	}}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for s.Status().Skipped < 3 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if st := s.Status(); st.Skipped < 3 || started.Load() != 1 || !st.Running {
		t.Fatalf("while running: %+v, started %d", st, started.Load())
	}
	close(release)
	for s.Status().Runs < 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	s.Stop()
	st := s.Status()
	if st.Runs < 2 || st.Running {
		t.Fatalf("after: %+v", st)
	}
	if err := (&Scheduler{Schedule: Schedule{Cron: "not cron"}}).Start(context.Background()); err == nil {
		t.Fatal("a bad cron expression was accepted")
	}
}

// TestServe_Psql runs psql's \dt and \d companies when psql is installed (.ci/run installs
// Debian's postgresql-client when it can).
func TestServe_Psql(t *testing.T) {
	psql, err := exec.LookPath("psql")
	if err != nil {
		t.Skip("psql is not installed (apt-get install postgresql-client); the pgx tests cover the same queries")
	}
	_, _, addr := startServer(t, t.TempDir())
	host, port, _ := net.SplitHostPort(addr)
	run := func(cmd string) string {
		c := exec.Command(psql, "-X", "-h", host, "-p", port, "-U", testUser, "-d", "marketsync", "-v", "ON_ERROR_STOP=1", "-c", cmd)
		c.Env = append(c.Environ(), "PGPASSWORD="+testPassword, "PGSSLMODE=disable", "PGCONNECT_TIMEOUT=10")
		out, err := c.CombinedOutput()
		if err != nil {
			t.Fatalf("psql -c %q: %v\n%s", cmd, err, out)
		}
		return string(out)
	}
	if out := run(`\dt`); !strings.Contains(out, "companies") || !strings.Contains(out, "invoices") || !strings.Contains(out, "table") {
		t.Errorf(`\dt:\n%s`, out)
	}
	if out := run(`\d companies`); !strings.Contains(out, "creation_date") || !strings.Contains(out, "timestamptz") || !strings.Contains(out, "not null") {
		t.Errorf(`\d companies:\n%s`, out)
	}
	if out := run(`\dv`); !strings.Contains(out, "revenue_by_month") {
		t.Errorf(`\dv:\n%s`, out)
	}
	if out := run("SELECT status, count(*) FROM invoices GROUP BY 1"); !strings.Contains(out, "(0 rows)") {
		t.Errorf("query:\n%s", out)
	}
	c := exec.Command(psql, "-X", "-h", host, "-p", port, "-U", testUser, "-d", "marketsync", "-c", "DELETE FROM invoices")
	c.Env = append(c.Environ(), "PGPASSWORD="+testPassword, "PGSSLMODE=disable")
	if out, err := c.CombinedOutput(); err == nil || !strings.Contains(string(out), "read-only") {
		t.Errorf("psql DELETE: %v\n%s", err, out)
	}
}
