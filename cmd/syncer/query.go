package main

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/marketsync/marketsync/internal/control"
	"github.com/marketsync/marketsync/queries"
)

func runQuery(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("query", `query NAME|"SQL" [--format table|csv|json|jsonl] [--warehouse PATH]`, stdout)
	cfgPath := fs.String("config", "", "YAML config `file` (for its warehouse path)")
	warehouse := fs.String("warehouse", "", "DuckDB warehouse `path`")
	format := fs.String("format", "table", "output format: "+queryFormats)
	// Allow flags after the positional argument: syncer query NAME --format csv.
	var pos []string
	for len(args) > 0 {
		if err := parseFlags(fs, args); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(pos) != 1 {
		return usagef(`want exactly one query name or SQL statement (see syncer queries); got %d`, len(pos))
	}
	q := pos[0]
	if known, ok := queries.Lookup(q); ok {
		q = fmt.Sprintf(`SELECT * FROM "%s"`, known.Name)
	} else if !strings.ContainsAny(q, " \n\t") {
		return usagef("%q is not a shipped query (see syncer queries) nor SQL", q)
	}
	if err := checkFormat(*format); err != nil {
		return err
	}
	return readWarehouse(ctx, *warehouse, *cfgPath, control.Request{Cmd: "query", SQL: q, Format: *format}, false, stdout, stderr,
		func(db *sql.DB) error { return printQuery(ctx, db, q, *format, stdout) })
}

func runQueries(_ context.Context, args []string, stdout, _ io.Writer) error {
	fs := newFlags("queries", "queries", stdout)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	for _, q := range queries.All() {
		fmt.Fprintf(tw, "%s\t%s\n", q.Name, q.Description)
	}
	return tw.Flush()
}
