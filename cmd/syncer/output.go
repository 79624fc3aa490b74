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
	defer func() { rows.Close() }()
	cols, err := rows.Columns()
	if err != nil {
		return err
	}
	// The driver decodes JSON values into Go maps, which loses their key order: read such
	// columns as their text instead.
	jsonCol := make([]bool, len(cols))
	if types, err := rows.ColumnTypes(); err == nil {
		var casts []string
		for i, ct := range types {
			if strings.EqualFold(ct.DatabaseTypeName(), "JSON") {
				jsonCol[i] = true
				casts = append(casts, fmt.Sprintf(`CAST(%[1]s AS VARCHAR) AS %[1]s`, quoteIdent(cols[i])))
			}
		}
		if len(casts) > 0 {
			rows.Close()
			wrapped := fmt.Sprintf("SELECT * REPLACE (%s) FROM (%s)", strings.Join(casts, ", "), strings.TrimRight(strings.TrimSpace(q), ";"))
			if rows, err = db.QueryContext(ctx, wrapped); err != nil {
				return fmt.Errorf("running query: %w", err)
			}
		}
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
		// Objects keep the query's column order, and JSON values their own text.
		var b strings.Builder
		b.WriteString("[")
		for ri, r := range out {
			if ri > 0 {
				b.WriteString(",")
			}
			b.WriteString("\n  {")
			for i, c := range cols {
				if i > 0 {
					b.WriteString(", ")
				}
				k, _ := json.Marshal(c)
				b.Write(k)
				b.WriteString(": ")
				if s, ok := r[i].(string); ok && jsonCol[i] && json.Valid([]byte(s)) {
					b.WriteString(s)
					continue
				}
				v, err := json.Marshal(jsonValue(r[i]))
				if err != nil {
					v, _ = json.Marshal(text(r[i]))
				}
				b.Write(v)
			}
			b.WriteString("}")
		}
		if len(out) > 0 {
			b.WriteString("\n")
		}
		b.WriteString("]\n")
		_, err := io.WriteString(w, b.String())
		return err
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
	case []any, map[string]any, map[any]any:
		if b, err := json.Marshal(jsonValue(x)); err == nil { // lists and structs print as JSON, not Go syntax
			return string(b)
		}
	}
	return fmt.Sprint(v)
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

func jsonValue(v any) any {
	switch x := v.(type) {
	case nil, bool, int64, int32, int16, int8, uint64, uint32, float64, float32, string:
		return x
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = jsonValue(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = jsonValue(e)
		}
		return out
	case map[any]any: // DuckDB MAP
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[fmt.Sprint(k)] = jsonValue(e)
		}
		return out
	}
	return text(v)
}
