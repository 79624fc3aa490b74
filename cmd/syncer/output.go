package main

import (
	"bufio"
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/big"
	"regexp"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"
)

// queryFormats are the --format values of query and status.
const queryFormats = "table, csv, json or jsonl"

// tableBlock is how many rows the table format aligns together: it prints each block as soon as
// it is full, so a large result streams instead of being held whole.
const tableBlock = 500

// colKind is how a column's values are rendered, decided from its type.
type colKind int

const (
	kindPlain       colKind = iota // Go's value as is (booleans, integers, strings)
	kindFloat                      // shortest text that reads back as the same double
	kindNumber                     // exact decimal text (DECIMAL, HUGEINT), a JSON number
	kindText                       // DuckDB's own text of the value (UUID, INTERVAL, BLOB, …), a JSON string
	kindJSON                       // JSON text (JSON, LIST, STRUCT, MAP, …), JSON as is
	kindDate                       // 2006-01-02
	kindTime                       // 15:04:05.999999
	kindTimestamp                  // 2006-01-02T15:04:05.999999 (no zone)
	kindTimestampTZ                // ISO-8601 in UTC: 2006-01-02T15:04:05.999999Z
)

var nestedType = regexp.MustCompile(`^(STRUCT|MAP|UNION)\(|\[\d*\]$`)

// kindOf classifies a column by its database type name (DuckDB's, or PostgreSQL's through a
// running syncer serve).
func kindOf(typ string) colKind {
	t := strings.ToUpper(strings.TrimSpace(typ))
	switch {
	case t == "JSON" || nestedType.MatchString(t):
		return kindJSON
	case strings.HasPrefix(t, "DECIMAL") || strings.HasPrefix(t, "NUMERIC") || t == "HUGEINT" || t == "UHUGEINT" || t == "BIGNUM" || t == "VARINT":
		return kindNumber
	case t == "DOUBLE" || t == "FLOAT" || t == "REAL" || t == "FLOAT4" || t == "FLOAT8":
		return kindFloat
	case t == "DATE":
		return kindDate
	case t == "TIME":
		return kindTime
	case t == "TIMESTAMPTZ" || t == "TIMESTAMP WITH TIME ZONE":
		return kindTimestampTZ
	case strings.HasPrefix(t, "TIMESTAMP"):
		return kindTimestamp
	case t == "UUID" || t == "INTERVAL" || t == "BLOB" || t == "BYTEA" || t == "BIT" || t == "TIMETZ" || t == "TIME WITH TIME ZONE":
		return kindText
	}
	return kindPlain
}

// printQuery runs q and prints its rows in the query's column order, as they arrive: an
// aligned table (in blocks of tableBlock rows), CSV, a JSON array of objects, or JSON lines.
// Every type prints natively: JSON, lists, structs and maps as JSON; DECIMAL and HUGEINT
// exact; DATE as a date; TIMESTAMPTZ as ISO-8601 in UTC.
func printQuery(ctx context.Context, db queryer, q, format string, w io.Writer) error {
	if err := checkFormat(format); err != nil {
		return err
	}
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		return queryError(err)
	}
	defer func() { rows.Close() }()
	cols, err := rows.Columns()
	if err != nil {
		return err
	}
	types, err := rows.ColumnTypes()
	if err != nil {
		return err
	}
	kinds := make([]colKind, len(cols))
	for i, ct := range types {
		kinds[i] = kindOf(ct.DatabaseTypeName())
	}
	duck := isDuckDB(db)
	// DuckDB's JSON text of nested values needs fixing: bare NaN tokens, zoned timestamps.
	fixes := make([]bool, len(cols))
	shapes := make([]*typeShape, len(cols))
	for i, ct := range types {
		if duck && kinds[i] == kindJSON && !strings.EqualFold(ct.DatabaseTypeName(), "JSON") {
			fixes[i], shapes[i] = true, parseNestedType(ct.DatabaseTypeName())
		}
	}
	// DuckDB renders what Go's values cannot carry exactly (key order of structs and JSON,
	// decimals, UUIDs, intervals): such columns are read as its own text.
	if duck {
		var casts []string
		for i, k := range kinds {
			switch k {
			case kindJSON:
				casts = append(casts, fmt.Sprintf(`CAST(to_json(%[1]s) AS VARCHAR) AS %[1]s`, quoteIdent(cols[i])))
			case kindNumber, kindText:
				casts = append(casts, fmt.Sprintf(`CAST(%[1]s AS VARCHAR) AS %[1]s`, quoteIdent(cols[i])))
			}
		}
		if len(casts) > 0 && !duplicates(cols) {
			// q on lines of its own: a trailing -- comment ends before the closing parenthesis.
			wrapped := fmt.Sprintf("SELECT * REPLACE (%s) FROM (\n%s\n)", strings.Join(casts, ", "), strings.TrimRight(strings.TrimSpace(q), "; \n\t"))
			if wr, err := db.QueryContext(ctx, wrapped); err == nil {
				rows.Close()
				rows = wr
			} // else (a statement that is not a subquery, e.g. SHOW): Go's values, as read
		}
	}
	bw := bufio.NewWriter(w)
	out := newRowWriter(format, cols, kinds, bw)
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	n := 0
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return fmt.Errorf("reading results: %w", err)
		}
		for i, fix := range fixes {
			if s, ok := vals[i].(string); ok && fix {
				vals[i] = fixNestedJSON(s, shapes[i])
			}
		}
		if err := out.row(vals); err != nil {
			return err
		}
		if n++; n%tableBlock == 0 {
			if err := bw.Flush(); err != nil {
				return err
			}
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reading results: %w", err)
	}
	if err := out.end(n); err != nil {
		return err
	}
	return bw.Flush()
}

// queryer runs queries: a *sql.DB, or a connection or transaction of one.
type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// isDuckDB tells DuckDB from PostgreSQL (a running syncer serve, through its protocol). A bare
// connection is the warehouse holder's own, DuckDB.
func isDuckDB(db queryer) bool {
	if d, ok := db.(interface{ Driver() driver.Driver }); ok {
		return strings.Contains(fmt.Sprintf("%T", d.Driver()), "duckdb")
	}
	return true
}

func checkFormat(format string) error {
	if format != "table" && format != "csv" && format != "json" && format != "jsonl" {
		return usagef("--format %q: want %s", format, queryFormats)
	}
	return nil
}

func queryError(err error) error {
	if s := err.Error(); strings.Contains(s, "Parser Error") || strings.Contains(s, "Catalog Error") || strings.Contains(s, "Binder Error") {
		return usagef("the query is not valid here: %v", err)
	}
	return fmt.Errorf("running query: %w", err)
}

func duplicates(cols []string) bool {
	seen := map[string]bool{}
	for _, c := range cols {
		if seen[strings.ToLower(c)] {
			return true
		}
		seen[strings.ToLower(c)] = true
	}
	return false
}

// rowWriter writes one format row by row.
type rowWriter struct {
	format string
	cols   []string
	kinds  []colKind
	w      *bufio.Writer
	block  [][]string // table: rows not yet printed
}

func newRowWriter(format string, cols []string, kinds []colKind, w *bufio.Writer) *rowWriter {
	r := &rowWriter{format: format, cols: cols, kinds: kinds, w: w}
	switch format {
	case "csv":
		r.csvLine(cols, nil)
	case "json":
		w.WriteString("[")
	}
	return r
}

func (r *rowWriter) row(vals []any) error {
	switch r.format {
	case "csv":
		rec := make([]string, len(vals))
		null := make([]bool, len(vals))
		for i, v := range vals {
			rec[i], null[i] = textOf(v, r.kinds[i]), v == nil
		}
		r.csvLine(rec, null)
	case "json", "jsonl":
		if r.format == "json" {
			if r.block == nil {
				r.block = [][]string{} // marks "a row was written"
				r.w.WriteString("\n  ")
			} else {
				r.w.WriteString(",\n  ")
			}
		}
		r.w.WriteString("{")
		for i, c := range r.cols {
			if i > 0 {
				r.w.WriteString(", ")
			}
			k, _ := json.Marshal(c)
			r.w.Write(k)
			r.w.WriteString(": ")
			r.w.WriteString(jsonOf(vals[i], r.kinds[i]))
		}
		r.w.WriteString("}")
		if r.format == "jsonl" {
			r.w.WriteString("\n")
		}
	default:
		rec := make([]string, len(vals))
		for i, v := range vals {
			if v == nil {
				rec[i] = "NULL"
				continue
			}
			rec[i] = tableCell(textOf(v, r.kinds[i]))
		}
		r.block = append(r.block, rec)
		if len(r.block) == tableBlock {
			return r.flushTable()
		}
	}
	return nil
}

func (r *rowWriter) end(n int) error {
	switch r.format {
	case "json":
		if n > 0 {
			r.w.WriteString("\n")
		}
		r.w.WriteString("]\n")
	case "table":
		if err := r.flushTable(); err != nil {
			return err
		}
		fmt.Fprintf(r.w, "(%d rows)\n", n)
	}
	return nil
}

// flushTable prints the pending rows aligned under the header (each block repeats it).
func (r *rowWriter) flushTable() error {
	if len(r.block) == 0 && r.block != nil {
		return nil
	}
	tw := tabwriter.NewWriter(r.w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(r.cols, "\t"))
	for _, rec := range r.block {
		fmt.Fprintln(tw, strings.Join(rec, "\t"))
	}
	r.block = r.block[:0]
	return tw.Flush()
}

// csvLine writes one RFC 4180 record. A NULL is an empty field, an empty string a quoted one
// (""), so the two stay apart.
func (r *rowWriter) csvLine(rec []string, null []bool) {
	for i, f := range rec {
		if i > 0 {
			r.w.WriteByte(',')
		}
		if (f == "" && (null == nil || !null[i])) || strings.ContainsAny(f, ",\"\r\n") || strings.HasPrefix(f, " ") || strings.HasSuffix(f, " ") {
			if f == "" && null == nil {
				continue // an empty header name
			}
			r.w.WriteByte('"')
			r.w.WriteString(strings.ReplaceAll(f, `"`, `""`))
			r.w.WriteByte('"')
			continue
		}
		r.w.WriteString(f)
	}
	r.w.WriteString("\r\n")
}

// tableCell shows control characters (a newline would break the table's rows) as escapes.
func tableCell(s string) string {
	if !strings.ContainsAny(s, "\t\n\r\x00\x1b") {
		return s
	}
	q := strconv.Quote(s)
	return q[1 : len(q)-1]
}

// textOf is a value's text for CSV and the table (NULL: "").
func textOf(v any, k colKind) string {
	switch x := v.(type) {
	case nil:
		return ""
	case time.Time:
		return timeText(x, k)
	case float64:
		return floatText(x, 64)
	case float32:
		return floatText(float64(x), 32)
	case []byte:
		return string(x)
	case *big.Int:
		return x.String()
	case fmt.Stringer:
		return x.String()
	case []any, map[string]any, map[any]any:
		return jsonOf(x, kindJSON)
	}
	return fmt.Sprint(v)
}

func timeText(t time.Time, k colKind) string {
	if k == kindTimestamp || k == kindTimestampTZ {
		// DuckDB's infinite timestamps arrive as the extreme microsecond counts.
		switch t.UnixMicro() {
		case math.MaxInt64:
			return "infinity"
		case -math.MaxInt64:
			return "-infinity"
		}
	}
	switch k {
	case kindDate:
		return t.Format("2006-01-02")
	case kindTime:
		return t.Format("15:04:05.999999999")
	case kindTimestamp:
		return t.Format("2006-01-02T15:04:05.999999999")
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func floatText(f float64, bits int) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	}
	return strconv.FormatFloat(f, 'g', -1, bits)
}

// jsonOf is a value as JSON text.
func jsonOf(v any, k colKind) string {
	if v == nil {
		return "null"
	}
	if s, ok := v.(string); ok {
		switch k {
		case kindJSON:
			if json.Valid([]byte(s)) {
				return s // DuckDB's JSON text: key order kept
			}
		case kindNumber:
			if json.Valid([]byte(s)) {
				return s // exact decimal digits
			}
		}
	}
	switch x := v.(type) {
	case bool, int64, int32, int16, int8, int, uint64, uint32, uint16, uint8:
		b, _ := json.Marshal(x)
		return string(b)
	case float64, float32:
		f := textOf(x, k)
		if n, err := strconv.ParseFloat(f, 64); err != nil || math.IsNaN(n) || math.IsInf(n, 0) {
			b, _ := json.Marshal(f) // NaN and infinities are not JSON numbers
			return string(b)
		}
		return f
	case *big.Int:
		return x.String()
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = jsonOf(e, kindPlain)
		}
		return "[" + strings.Join(parts, ",") + "]"
	case map[string]any, map[any]any:
		b, err := json.Marshal(goJSON(x))
		if err == nil {
			return string(b)
		}
	}
	b, err := json.Marshal(textOf(v, k))
	if err != nil || !utf8.Valid(b) {
		b, _ = json.Marshal(strings.ToValidUTF8(textOf(v, k), "\uFFFD"))
	}
	return string(b)
}

// goJSON turns a decoded nested value into one encoding/json can write (map keys as text).
func goJSON(v any) any {
	switch x := v.(type) {
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = goJSON(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = goJSON(e)
		}
		return out
	case map[any]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[fmt.Sprint(k)] = goJSON(e)
		}
		return out
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	}
	return v
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// A typeShape is the shape of a nested column's type, enough to find its TIMESTAMPTZ values
// in DuckDB's to_json text (which prints them in the session's zone, "2024-02-29 13:45:07+02").
type typeShape struct {
	tstz   bool
	fields map[string]*typeShape // STRUCT, UNION members by name
	elem   *typeShape            // LIST, ARRAY
	key    *typeShape            // MAP
	val    *typeShape            // MAP
	union  bool
}

// parseNestedType reads a DuckDB type name such as STRUCT("a b" TIMESTAMP WITH TIME ZONE[],
// m MAP(VARCHAR, DOUBLE)). It returns nil when the type holds no TIMESTAMPTZ (nothing to fix).
func parseNestedType(s string) *typeShape {
	p := &typeParser{s: s}
	t := p.typ()
	if p.bad || !t.hasTZ() {
		return nil
	}
	return t
}

type typeParser struct {
	s   string
	i   int
	bad bool
}

func (p *typeParser) space() {
	for p.i < len(p.s) && p.s[p.i] == ' ' {
		p.i++
	}
}

func (p *typeParser) prefix(w string) bool {
	if len(p.s)-p.i >= len(w) && strings.EqualFold(p.s[p.i:p.i+len(w)], w) {
		p.i += len(w)
		return true
	}
	return false
}

func (p *typeParser) expect(c byte) {
	p.space()
	if p.i < len(p.s) && p.s[p.i] == c {
		p.i++
		return
	}
	p.bad = true
}

func (p *typeParser) typ() *typeShape {
	p.space()
	t := &typeShape{}
	switch {
	case p.prefix("STRUCT("), p.prefix("UNION("):
		t.union = strings.EqualFold(p.s[p.i-6:p.i], "UNION(")
		t.fields = map[string]*typeShape{}
		for !p.bad {
			name := p.name()
			t.fields[name] = p.typ()
			p.space()
			if p.i < len(p.s) && p.s[p.i] == ',' {
				p.i++
				continue
			}
			p.expect(')')
			break
		}
	case p.prefix("MAP("):
		t.key = p.typ()
		p.expect(',')
		t.val = p.typ()
		p.expect(')')
	default: // a scalar type: its name, with parenthesized arguments (DECIMAL(18,4), ENUM('a', 'b'))
		start, depth := p.i, 0
		for ; p.i < len(p.s); p.i++ {
			c := p.s[p.i]
			if c == '\'' {
				for p.i++; p.i < len(p.s) && p.s[p.i] != '\''; p.i++ {
				}
				continue
			}
			if depth == 0 && (c == ',' || c == ')' || c == '[') {
				break
			}
			if c == '(' {
				depth++
			} else if c == ')' {
				depth--
			}
		}
		name := strings.ToUpper(strings.TrimSpace(p.s[start:p.i]))
		t.tstz = name == "TIMESTAMP WITH TIME ZONE" || name == "TIMESTAMPTZ"
	}
	for p.i < len(p.s) && p.s[p.i] == '[' { // LIST (T[]) and ARRAY (T[3])
		end := strings.IndexByte(p.s[p.i:], ']')
		if end < 0 {
			p.bad = true
			break
		}
		p.i += end + 1
		t = &typeShape{elem: t}
	}
	return t
}

// name reads a STRUCT field name: bare, or double-quoted with "" for a quote.
func (p *typeParser) name() string {
	p.space()
	if p.i < len(p.s) && p.s[p.i] == '"' {
		var b strings.Builder
		for p.i++; p.i < len(p.s); p.i++ {
			if p.s[p.i] == '"' {
				if p.i+1 < len(p.s) && p.s[p.i+1] == '"' {
					b.WriteByte('"')
					p.i++
					continue
				}
				p.i++
				return b.String()
			}
			b.WriteByte(p.s[p.i])
		}
		p.bad = true
		return b.String()
	}
	start := p.i
	for p.i < len(p.s) && p.s[p.i] != ' ' {
		p.i++
	}
	return p.s[start:p.i]
}

func (t *typeShape) hasTZ() bool {
	if t == nil {
		return false
	}
	if t.tstz || t.elem.hasTZ() || t.key.hasTZ() || t.val.hasTZ() {
		return true
	}
	for _, f := range t.fields {
		if f.hasTZ() {
			return true
		}
	}
	return false
}

// fixNestedJSON rewrites DuckDB's to_json text of a nested value: NaN and infinities, which it
// writes as bare tokens (not JSON), become the strings "NaN", "Infinity", "-Infinity" as at the
// top level; with a type (t non-nil), TIMESTAMPTZ values become ISO-8601 in UTC like a
// top-level TIMESTAMPTZ column. Text it cannot follow is returned as is.
func fixNestedJSON(s string, t *typeShape) string {
	if t == nil && !strings.ContainsAny(s, "NI") {
		return s
	}
	f := &jsonFixer{s: s}
	f.value(t)
	f.space()
	if f.bad || f.i != len(s) {
		return s
	}
	return f.b.String()
}

type jsonFixer struct {
	s   string
	i   int
	b   strings.Builder
	bad bool
}

func (f *jsonFixer) space() {
	for f.i < len(f.s) && strings.IndexByte(" \t\r\n", f.s[f.i]) >= 0 {
		f.b.WriteByte(f.s[f.i])
		f.i++
	}
}

// member reads what precedes the next member of an object or array: its closing byte (true:
// the container ended) or, after the first member, a comma (false: a member follows).
func (f *jsonFixer) member(first bool, closer byte) bool {
	f.space()
	if f.i < len(f.s) && f.s[f.i] == closer {
		f.b.WriteByte(closer)
		f.i++
		return true
	}
	if !first {
		if f.i >= len(f.s) || f.s[f.i] != ',' {
			f.bad = true
			return true
		}
		f.b.WriteByte(',')
		f.i++
		f.space()
	}
	return false
}

func (f *jsonFixer) value(t *typeShape) {
	f.space()
	if f.i >= len(f.s) || f.bad {
		f.bad = true
		return
	}
	switch c := f.s[f.i]; {
	case c == '{':
		f.b.WriteByte('{')
		f.i++
		for first := true; !f.bad && !f.member(first, '}'); first = false {
			key, raw := f.str()
			var kt, vt *typeShape
			if t != nil {
				if t.fields != nil {
					vt = t.fields[key]
				} else {
					kt, vt = t.key, t.val
				}
			}
			f.emitString(key, raw, kt)
			f.space()
			if f.i >= len(f.s) || f.s[f.i] != ':' {
				f.bad = true
				return
			}
			f.b.WriteByte(':')
			f.i++
			f.value(vt)
		}
	case c == '[':
		f.b.WriteByte('[')
		f.i++
		var et *typeShape
		if t != nil {
			et = t.elem
		}
		for first := true; !f.bad && !f.member(first, ']'); first = false {
			f.value(et)
		}
	case c == '"':
		s, raw := f.str()
		if t != nil && t.union {
			t = &typeShape{tstz: anyTZ(t.fields)}
		}
		f.emitString(s, raw, t)
	default:
		for _, tok := range []string{"-Infinity", "Infinity", "NaN"} {
			if strings.HasPrefix(f.s[f.i:], tok) {
				f.b.WriteString(`"` + tok + `"`)
				f.i += len(tok)
				return
			}
		}
		start := f.i
		for f.i < len(f.s) && strings.IndexByte(",]} \t\r\n", f.s[f.i]) < 0 {
			f.i++
		}
		if f.i == start {
			f.bad = true
		}
		f.b.WriteString(f.s[start:f.i])
	}
}

func anyTZ(fields map[string]*typeShape) bool {
	for _, f := range fields {
		if f.tstz {
			return true
		}
	}
	return false
}

// str reads a JSON string, returning its value and its text.
func (f *jsonFixer) str() (string, string) {
	if f.i >= len(f.s) || f.s[f.i] != '"' {
		f.bad = true
		return "", ""
	}
	end := f.i + 1
	for ; end < len(f.s); end++ {
		if f.s[end] == '\\' {
			end++
			continue
		}
		if f.s[end] == '"' {
			break
		}
	}
	if end >= len(f.s) {
		f.bad = true
		return "", ""
	}
	raw := f.s[f.i : end+1]
	var v string
	if err := json.Unmarshal([]byte(raw), &v); err != nil {
		f.bad = true
	}
	f.i = end + 1
	return v, raw
}

// emitString writes a JSON string as it was (raw), or a TIMESTAMPTZ's (t.tstz) in ISO-8601 UTC.
func (f *jsonFixer) emitString(s, raw string, t *typeShape) {
	if t != nil && t.tstz {
		if ts, ok := parseDuckTZ(s); ok {
			raw = `"` + ts.UTC().Format(time.RFC3339Nano) + `"`
		}
	}
	f.b.WriteString(raw)
}

// parseDuckTZ reads DuckDB's text of a TIMESTAMPTZ: 2024-02-29 13:45:07.123456+02 (the offset
// may have minutes and seconds). Other text (infinity, BC dates) is not a time.Time.
func parseDuckTZ(s string) (time.Time, bool) {
	for _, layout := range []string{"2006-01-02 15:04:05.999999999-07", "2006-01-02 15:04:05.999999999-07:00", "2006-01-02 15:04:05.999999999-07:00:00"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}
