package main

import (
	"context"
	"database/sql"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// printQuery runs q and prints its rows as an aligned table, CSV or JSON (an array of objects).
func printQuery(ctx context.Context, db *sql.DB, q, format string, w io.Writer) error {
	if format != "table" && format != "csv" && format != "json" {
		return usagef("--format %q: want table, csv or json", format)
	}
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		if strings.Contains(err.Error(), "Parser Error") || strings.Contains(err.Error(), "Catalog Error") || strings.Contains(err.Error(), "Binder Error") {
			return usagef("the query is not valid here: %v", err)
		}
		return fmt.Errorf("running query: %w", err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return err
	}
	var out [][]any
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return fmt.Errorf("reading results: %w", err)
		}
		out = append(out, vals)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reading results: %w", err)
	}
	switch format {
	case "json":
		objs := make([]map[string]any, 0, len(out))
		for _, r := range out {
			m := map[string]any{}
			for i, c := range cols {
				m[c] = jsonValue(r[i])
			}
			objs = append(objs, m)
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(objs)
	case "csv":
		cw := csv.NewWriter(w)
		_ = cw.Write(cols)
		for _, r := range out {
			rec := make([]string, len(r))
			for i, v := range r {
				rec[i] = text(v)
			}
			_ = cw.Write(rec)
		}
		cw.Flush()
		return cw.Error()
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(cols, "\t"))
	for _, r := range out {
		rec := make([]string, len(r))
		for i, v := range r {
			rec[i] = text(v)
		}
		fmt.Fprintln(tw, strings.Join(rec, "\t"))
	}
	fmt.Fprintf(tw, "(%d rows)\n", len(out))
	return tw.Flush()
}

func text(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case time.Time:
		return x.UTC().Format(time.RFC3339)
	case []byte:
		return string(x)
	case fmt.Stringer:
		return x.String()
	}
	return fmt.Sprint(v)
}

func jsonValue(v any) any {
	switch x := v.(type) {
	case nil, bool, int64, int32, float64, string:
		return x
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	}
	return text(v)
}
