package serve

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/marketsync/marketsync/apisim"
	"github.com/marketsync/marketsync/internal/simcheck"
	"github.com/marketsync/marketsync/pipeline"
	"github.com/marketsync/marketsync/queries"
)

const testUser, testPassword = "bi", "s3cret-for-tests"

// startServer opens a warehouse in dir and serves it on a loopback port.
func startServer(t testing.TB, dir string, mutate ...func(*Config)) (*Warehouse, *Server, string) {
	t.Helper()
	ctx := context.Background()
	wh, err := OpenWarehouse(ctx, filepath.Join(dir, "warehouse.duckdb"), filepath.Join(dir, "parquet"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Users: map[string]string{testUser: testPassword}}
	for _, m := range mutate {
		m(&cfg)
	}
	srv, err := NewServer(wh, cfg)
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

func connString(addr, password string) string {
	host, port, _ := net.SplitHostPort(addr)
	return fmt.Sprintf("postgres://%s:%s@%s:%s/marketsync?sslmode=disable", testUser, password, host, port)
}

func connect(t testing.TB, addr string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, connString(addr, testPassword))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// drain runs q (extended protocol unless simple) and reads every row, returning the row count.
func drain(ctx context.Context, c *pgx.Conn, q string, args ...any) (int, error) {
	rows, err := c.Query(ctx, q, args...)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		if _, err := rows.Values(); err != nil {
			return n, err
		}
		n++
	}
	return n, rows.Err()
}

// biQueries are catalog queries and session statements that psql, pgjdbc (Metabase), Grafana
// and SQLAlchemy (Superset) send on connect and on schema sync, cut to what they ask.
var biQueries = []string{
	// session set-up (pgjdbc, SQLAlchemy, Grafana)
	"SET extra_float_digits = 3",
	"SET application_name = 'Metabase v0.50'",
	"SET TIME ZONE 'UTC'",
	"SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL READ COMMITTED",
	"SHOW TRANSACTION ISOLATION LEVEL",
	"SHOW standard_conforming_strings",
	"SHOW search_path",
	"select pg_catalog.version()",
	"SELECT version()",
	"select current_schema()",
	"SELECT current_database(), current_user",
	"SELECT current_setting('server_version_num')::int",
	// SQLAlchemy's PostgreSQL dialect (Superset)
	`SELECT pg_catalog.pg_namespace.nspname FROM pg_catalog.pg_namespace WHERE pg_catalog.pg_namespace.nspname NOT LIKE 'pg_%' ORDER BY pg_catalog.pg_namespace.nspname`,
	`SELECT pg_catalog.pg_class.relname FROM pg_catalog.pg_class JOIN pg_catalog.pg_namespace ON pg_catalog.pg_namespace.oid = pg_catalog.pg_class.relnamespace
	 WHERE pg_catalog.pg_class.relkind = ANY (ARRAY['r', 'p']) AND pg_catalog.pg_class.relpersistence != 't'
	 AND pg_catalog.pg_table_is_visible(pg_catalog.pg_class.oid) AND pg_catalog.pg_namespace.nspname != 'pg_catalog'`,
	`SELECT pg_catalog.pg_class.relname FROM pg_catalog.pg_class JOIN pg_catalog.pg_namespace ON pg_catalog.pg_namespace.oid = pg_catalog.pg_class.relnamespace
	 WHERE pg_catalog.pg_class.relkind = ANY (ARRAY['v']) AND pg_catalog.pg_table_is_visible(pg_catalog.pg_class.oid)`,
	`SELECT a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod), (SELECT pg_catalog.pg_get_expr(d.adbin, d.adrelid)
	   FROM pg_catalog.pg_attrdef d WHERE d.adrelid = a.attrelid AND d.adnum = a.attnum AND a.atthasdef) AS "default",
	   a.attnotnull, pg_catalog.col_description(a.attrelid, a.attnum) AS comment
	 FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
	 WHERE c.relname = 'invoices' AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`,
	`SELECT t.typname, t.oid FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace WHERE t.typtype = 'e'`,
	`SELECT pg_catalog.obj_description(c.oid, 'pg_class') FROM pg_catalog.pg_class c WHERE c.relname = 'invoices'`,
	// pgjdbc DatabaseMetaData (Metabase)
	`SELECT NULL AS TABLE_CAT, n.nspname AS TABLE_SCHEM, c.relname AS TABLE_NAME,
	   CASE n.nspname ~ '^pg_' OR n.nspname = 'information_schema' WHEN true THEN 'SYSTEM TABLE' ELSE
	   CASE c.relkind WHEN 'r' THEN 'TABLE' WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' ELSE NULL END END AS TABLE_TYPE,
	   d.description AS REMARKS
	 FROM pg_catalog.pg_namespace n, pg_catalog.pg_class c
	 LEFT JOIN pg_catalog.pg_description d ON (c.oid = d.objoid AND d.objsubid = 0 AND d.classoid = 'pg_class'::regclass)
	 WHERE c.relnamespace = n.oid AND c.relkind IN ('r', 'v', 'm', 'p', 'f') ORDER BY TABLE_TYPE, TABLE_SCHEM, TABLE_NAME`,
	`SELECT nspname AS TABLE_SCHEM, NULL AS TABLE_CATALOG FROM pg_catalog.pg_namespace WHERE nspname <> 'pg_toast'
	 AND (nspname !~ '^pg_temp_' OR nspname = (pg_catalog.current_schemas(true))[1]) ORDER BY TABLE_SCHEM`,
	`SELECT n.nspname, c.relname, a.attname, a.atttypid, a.attnotnull, a.atttypmod, a.attlen, t.typtypmod, a.attnum,
	   pg_catalog.pg_get_expr(def.adbin, def.adrelid) AS adsrc, dsc.description, t.typbasetype, t.typtype
	 FROM pg_catalog.pg_namespace n JOIN pg_catalog.pg_class c ON (c.relnamespace = n.oid)
	 JOIN pg_catalog.pg_attribute a ON (a.attrelid = c.oid) JOIN pg_catalog.pg_type t ON (a.atttypid = t.oid)
	 LEFT JOIN pg_catalog.pg_attrdef def ON (a.attrelid = def.adrelid AND a.attnum = def.adnum)
	 LEFT JOIN pg_catalog.pg_description dsc ON (c.oid = dsc.objoid AND a.attnum = dsc.objsubid)
	 WHERE c.relkind IN ('r', 'p', 'v', 'f', 'm') AND a.attnum > 0 AND NOT a.attisdropped AND c.relname LIKE 'companies'
	 ORDER BY nspname, c.relname, attnum`,
	`SELECT typinput = 'pg_catalog.array_in'::regproc AS is_array, typtype, typname, pg_type.oid FROM pg_catalog.pg_type
	 LEFT JOIN (SELECT ns.oid AS nspoid, ns.nspname, r.r FROM pg_catalog.pg_namespace AS ns
	 JOIN (SELECT s.r, (current_schemas(false))[s.r] AS nspname FROM generate_series(1, array_upper(current_schemas(false), 1)) AS s(r)) AS r USING (nspname)) AS sp
	 ON sp.nspoid = typnamespace WHERE pg_type.oid = 1184 ORDER BY sp.r, pg_type.oid DESC LIMIT 1`,
	"SELECT datname FROM pg_catalog.pg_database",
	"SELECT rolname FROM pg_catalog.pg_roles",
	"SELECT has_table_privilege('invoices', 'SELECT')",
	// Grafana's PostgreSQL data source
	`SELECT quote_ident(table_name) AS table_name FROM information_schema.tables WHERE table_schema = current_schema() ORDER BY table_name`,
	`SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'charges' ORDER BY ordinal_position`,
	`SELECT table_schema, table_name FROM information_schema.views`,
	// psql \dt
	`SELECT n.nspname as "Schema", c.relname as "Name",
	   CASE c.relkind WHEN 'r' THEN 'table' WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view' WHEN 'i' THEN 'index' WHEN 'S' THEN 'sequence' WHEN 't' THEN 'TOAST table' WHEN 'f' THEN 'foreign table' WHEN 'p' THEN 'partitioned table' WHEN 'I' THEN 'partitioned index' END as "Type",
	   pg_catalog.pg_get_userbyid(c.relowner) as "Owner"
	 FROM pg_catalog.pg_class c LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace LEFT JOIN pg_catalog.pg_am am ON am.oid = c.relam
	 WHERE c.relkind IN ('r','p','') AND n.nspname <> 'pg_catalog' AND n.nspname !~ '^pg_toast' AND n.nspname <> 'information_schema'
	   AND pg_catalog.pg_table_is_visible(c.oid) ORDER BY 1,2`,
	`SELECT c.oid, n.nspname, c.relname FROM pg_catalog.pg_class c LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
	 WHERE c.relname OPERATOR(pg_catalog.~) '^(companies)$' COLLATE pg_catalog.default AND pg_catalog.pg_table_is_visible(c.oid) ORDER BY 2, 3`,
	"RESET application_name",
	"DISCARD ALL",
}

// TestServe_ClientsReadWhileSyncsCommit is the "done when": pgx runs every shipped view,
// the BI introspection queries and parameterised queries on several connections while the
// scheduler's syncs commit, with no error; the latency is recorded.
func TestServe_ClientsReadWhileSyncsCommit(t *testing.T) {
	sim := simcheck.Start(t, apisim.Config{Seed: 7, Scale: 150, Profile: "fast", Background: 3600})
	dir := t.TempDir()
	wh, _, addr := startServer(t, dir)
	ad, hl := simcheck.Sources(sim, 1000)
	pc := pipeline.Config{AppDirect: ad, HighLevel: hl, Warehouse: wh.Path, ParquetDir: wh.ParquetDir, DuckDBMemoryLimit: "1GB"}
	sched := &Scheduler{Schedule: Schedule{Every: 150 * time.Millisecond},
		Run: func(ctx context.Context) (pipeline.Summary, error) { return pipeline.Run(ctx, pc) }}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := sched.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer sched.Stop()

	const clients = 4
	var (
		mu        sync.Mutex
		latencies []time.Duration
		firstErr  error
	)
	record := func(d time.Duration, err error) {
		mu.Lock()
		defer mu.Unlock()
		latencies = append(latencies, d)
		if err != nil && firstErr == nil {
			firstErr = err
		}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range clients {
		c := connect(t, addr)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for round := 0; ; round++ {
				select {
				case <-stop:
					return
				default:
				}
				for _, q := range queries.All() {
					start := time.Now()
					_, err := drain(ctx, c, fmt.Sprintf(`SELECT * FROM "%s"`, q.Name))
					record(time.Since(start), wrap(q.Name, err))
				}
				bi := biQueries[(round*clients+i)%len(biQueries)]
				start := time.Now()
				_, err := drain(ctx, c, bi, pgx.QueryExecModeSimpleProtocol)
				record(time.Since(start), wrap(bi, err))
				start = time.Now()
				_, err = drain(ctx, c, `SELECT invoice_id, status, total, creation_date, order_ids, company FROM invoices
					WHERE status = $1 AND _deleted_at IS NULL AND total >= $2 AND creation_date < $3 LIMIT $4`, "PAID", 0, time.Now(), 50)
				record(time.Since(start), wrap("parameterised", err))
			}
		}()
	}
	// Until three syncs have committed while the clients read.
	deadline := time.Now().Add(90 * time.Second)
	for sched.Status().Runs < 3 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	st := sched.Status()
	if st.Runs < 3 || st.Failed > 0 {
		t.Fatalf("syncs: %+v", st)
	}
	if firstErr != nil {
		t.Fatal(firstErr)
	}
	slices.Sort(latencies)
	t.Logf("%d queries during %d syncs (%d skipped): p50 %s, p99 %s, max %s", len(latencies), st.Runs, st.Skipped,
		latencies[len(latencies)/2], latencies[len(latencies)*99/100], latencies[len(latencies)-1])

	// The clients saw committed data: the views answer from the synced tables.
	c := connect(t, addr)
	var n int64
	if err := c.QueryRow(ctx, "SELECT count(*) FROM companies WHERE _deleted_at IS NULL").Scan(&n); err != nil || n == 0 {
		t.Fatalf("companies after syncs: %d, %v", n, err)
	}
}

func wrap(what string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%.120s: %w", what, err)
}

// TestServe_BIIntrospection runs every BI catalog query through both protocols.
func TestServe_BIIntrospection(t *testing.T) {
	_, _, addr := startServer(t, t.TempDir())
	c := connect(t, addr)
	ctx := context.Background()
	for _, q := range biQueries {
		for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeDescribeExec} {
			if _, err := drain(ctx, c, q, mode); err != nil {
				t.Errorf("%v %s\n  -> %v", mode, q, err)
			}
		}
	}
	var tables []string
	rows, _ := c.Query(ctx, `SELECT c.relname FROM pg_catalog.pg_class c WHERE c.relkind = 'r' ORDER BY 1`)
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || !slices.Contains(tables, "invoices") || slices.ContainsFunc(tables, func(s string) bool { return s == "pg_roles" }) {
		t.Errorf("pg_class tables: %v %v", tables, err)
	}
	var v string
	if err := c.QueryRow(ctx, "SELECT version()").Scan(&v); err != nil || len(v) < 14 || v[:14] != "PostgreSQL 15." {
		t.Errorf("version(): %q %v", v, err)
	}
}

// TestServe_RefusesEveryWrite sends each kind of write or privileged statement, one by one, in
// both protocols, and expects a PostgreSQL error with SQLSTATE 25006 or 42501; afterwards the
// connection still works and nothing changed.
func TestServe_RefusesEveryWrite(t *testing.T) {
	dir := t.TempDir()
	_, _, addr := startServer(t, dir)
	c := connect(t, addr)
	ctx := context.Background()
	outside := filepath.Join(dir, "stolen.csv")
	cases := []struct {
		sql, code string
	}{
		{"INSERT INTO companies (id) VALUES ('x')", "25006"},
		{"UPDATE companies SET name = 'x'", "25006"},
		{"DELETE FROM invoices", "25006"},
		{"CREATE TABLE t (a INT)", "25006"},
		{"CREATE TEMP TABLE t (a INT)", "25006"},
		{"CREATE VIEW v AS SELECT 1", "25006"},
		{"CREATE MACRO m(a) AS a", "25006"},
		{"DROP TABLE companies", "25006"},
		{"ALTER TABLE companies ADD COLUMN x INT", "25006"},
		{"TRUNCATE invoices", "25006"},
		{"MERGE INTO companies USING (SELECT 1 AS id) s ON false WHEN NOT MATCHED THEN INSERT (id) VALUES ('x')", "25006"},
		{"BEGIN READ WRITE", "25006"},
		{"COPY companies TO '" + outside + "'", "42501"},
		{"COPY (SELECT 1) TO '" + outside + "' (FORMAT csv)", "42501"},
		{"COPY companies FROM '/etc/passwd'", "42501"},
		{"EXPORT DATABASE '" + dir + "/export'", "42501"},
		{"ATTACH '" + dir + "/other.duckdb' AS other", "42501"},
		{"ATTACH ':memory:' AS mem", "42501"},
		{"DETACH _pg", "42501"},
		{"INSTALL httpfs", "42501"},
		{"LOAD httpfs", "42501"},
		{"FORCE INSTALL httpfs", "42501"},
		{"SET memory_limit = '1GB'", "42501"},
		{"SET GLOBAL threads = 1", "42501"},
		{"SET enable_external_access = true", "42501"},
		{"SET VARIABLE x = 1", "42501"},
		{"RESET memory_limit", "42501"},
		{"PRAGMA enable_profiling", "42501"},
		{"CALL pragma_version()", "42501"},
		{"CHECKPOINT", "42501"},
		{"FORCE CHECKPOINT", "42501"},
		{"VACUUM", "42501"},
		{"USE _pg", "42501"},
		{"SELECT * FROM force_checkpoint()", "42501"},
		{"SELECT * FROM checkpoint()", "42501"},
		{"SELECT * FROM enable_logging()", "42501"},
		{"SELECT write_log('x')", "42501"},
		{"SELECT * FROM query('SELECT 1')", "42501"},
		{"SELECT * FROM read_csv('/etc/passwd')", "42501"},
		{"SELECT * FROM read_text('/etc/hostname')", "42501"},
		{"SELECT * FROM glob('/etc/*')", "42501"},
		{"SELECT * FROM read_parquet('" + dir + "/../*.parquet')", "42501"},
		{"WITH x AS (SELECT 1) INSERT INTO companies (id) SELECT 'x'", "25006"},
		// EXPLAIN ANALYZE runs what it wraps (DuckDB types it EXPLAIN whatever that is).
		{"EXPLAIN ANALYZE SET memory_limit = '3MB'", "42501"},
		{"EXPLAIN ANALYZE SET threads = 1", "42501"},
		{"EXPLAIN ANALYZE COPY (SELECT 1) TO '" + outside + "'", "42501"},
		{"EXPLAIN ANALYZE CHECKPOINT", "42501"},
		{"EXPLAIN ANALYZE FORCE CHECKPOINT", "42501"},
	}
	for _, tc := range cases {
		for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeDescribeExec} {
			_, err := drain(ctx, c, tc.sql, mode)
			var pe *pgconn.PgError
			if !errors.As(err, &pe) {
				t.Errorf("%v %s: want SQLSTATE %s, got %v", mode, tc.sql, tc.code, err)
				continue
			}
			if pe.Code != tc.code {
				t.Errorf("%v %s: want SQLSTATE %s, got %s %q", mode, tc.sql, tc.code, pe.Code, pe.Message)
			}
			if pe.Message == "" {
				t.Errorf("%s: refusal without a message", tc.sql)
			}
		}
	}
	// The connection is usable and nothing was written.
	var n int64
	if err := c.QueryRow(ctx, "SELECT count(*) FROM companies").Scan(&n); err != nil || n != 0 {
		t.Fatalf("companies: %d %v", n, err)
	}
	if _, err := drain(ctx, c, "SELECT * FROM duckdb_databases() WHERE database_name IN ('other', 'mem')"); err != nil {
		t.Fatal(err)
	}
	if err := c.QueryRow(ctx, "SELECT count(*) FROM duckdb_databases() WHERE database_name IN ('other', 'mem')").Scan(&n); err != nil || n != 0 {
		t.Fatalf("attached databases: %d %v", n, err)
	}
	if err := c.QueryRow(ctx, "SELECT current_setting('enable_external_access')::VARCHAR").Scan(new(string)); err != nil {
		t.Fatal(err)
	}
	var threads int64
	if err := c.QueryRow(ctx, "SELECT current_setting('threads')::BIGINT").Scan(&threads); err != nil || threads == 1 && runtime.NumCPU() > 1 {
		t.Fatalf("threads %d after the refusals (%v)", threads, err)
	}
	if _, err := os.Stat(outside); err == nil {
		t.Fatalf("%s was written", outside)
	}
	// Inside an explicit transaction block a refusal aborts the block, as in PostgreSQL.
	tx, err := c.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "DELETE FROM invoices"); err == nil {
		t.Fatal("DELETE in a block was accepted")
	}
	var pe *pgconn.PgError
	if _, err := tx.Exec(ctx, "SELECT 1"); !errors.As(err, &pe) || pe.Code != "25P02" {
		t.Fatalf("after a refusal in a block: %v", err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
}
