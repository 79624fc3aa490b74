package load

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// Experiment (not CI): the cost of DuckDB's JSON type on insert (VARCHAR -> JSON casts parse
// every value) against VARCHAR, and of hashing the content.
func TestExp18JSONInsert(t *testing.T) {
	if os.Getenv("EXP18") == "" {
		t.Skip("experiment")
	}
	ctx := context.Background()
	d, err := Open(ctx, filepath.Join(t.TempDir(), "w.duckdb"))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	run := timedExec(t, d.Conn())
	// 250k rows, 6 JSON-ish columns of ~120 bytes each
	run(`CREATE TEMP TABLE src AS SELECT i, '{"id":"' || i || '","name":"company ' || i || '","address":{"street":"' || i || ' Main St","city":"Springfield","country":"US"},"tags":["a","b","c"]}' AS j FROM range(250000) t(i)`)
	run(`CREATE TABLE tj (i BIGINT, a JSON, b JSON, c JSON, d JSON, e JSON, f JSON)`)
	run(`CREATE TABLE tv (i BIGINT, a VARCHAR, b VARCHAR, c VARCHAR, d VARCHAR, e VARCHAR, f VARCHAR)`)
	for r := 0; r < 3; r++ {
		run("DELETE FROM tj")
		run("DELETE FROM tv")
		run("CHECKPOINT")
		j := run(`INSERT INTO tj SELECT i, j, j, j, j, j, j FROM src`)
		v := run(`INSERT INTO tv SELECT i, j, j, j, j, j, j FROM src`)
		h := run(`CREATE OR REPLACE TEMP TABLE hh AS SELECT (hash(i, j, j, j, j, j, j) >> 1)::BIGINT FROM src`)
		t.Logf("250k rows x 6 cols of %d bytes: INSERT into JSON %v, into VARCHAR %v; hash of the row %v", 150, j, v, h)
	}
}
