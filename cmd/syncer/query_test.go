package main

import (
	"database/sql"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	_ "github.com/duckdb/duckdb-go/v2"
)

// typesTable has a column of every type the warehouse uses and DuckDB's common ones, with
// values chosen to break naive rendering (unicode, newlines, quotes, huge and exact numbers,
// time zones, key order), a row of NULLs and a row of edge values.
const typesTable = `CREATE TABLE t AS SELECT * FROM (VALUES
 (1, true, 42::INTEGER, 9007199254740993::BIGINT, 170141183460469231731687303715884105727::HUGEINT, 0.1::DOUBLE,
  12345678901234.5678::DECIMAL(18,4), 'héllo, "wörld"' || chr(10) || 'line2 ✓ ''q''', DATE '2024-02-29', TIME '13:45:07.123456',
  TIMESTAMP '2024-02-29 13:45:07.123456', TIMESTAMPTZ '2024-02-29 13:45:07.123456+02', INTERVAL '1 year 2 months 3 days 04:05:06.789',
  '6b4bd452-895d-4098-aa56-e6046b238e0f'::UUID, '\xAA\x00ab'::BLOB, '{"z":1,"a":[true,null],"m":"ü"}'::JSON, [1, 2, NULL]::INTEGER[],
  {'b': 'x', 'a': 2}, MAP {'k1': 1, 'k2': 2}, ['x', 'y']::VARCHAR[], 'nan'::DOUBLE,
  {'t': TIMESTAMPTZ '2024-02-29 13:45:07.123456+02', 'f': 'nan'::DOUBLE, 'l': ['inf'::DOUBLE, '-inf'::DOUBLE]}),
 (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
 (3, false, (-2147483648)::INTEGER, (-9223372036854775808)::BIGINT, (-1)::HUGEINT, 1e300::DOUBLE,
  (-0.0001)::DECIMAL(18,4), '', DATE '1970-01-01', TIME '00:00:00', TIMESTAMP '1969-12-31 23:59:59.999999',
  TIMESTAMPTZ '1969-12-31 23:59:59.999999+00', INTERVAL '-36 hours', '00000000-0000-0000-0000-000000000000'::UUID, ''::BLOB,
  '[]'::JSON, []::INTEGER[], {'b': NULL, 'a': -1}, MAP {}::MAP(VARCHAR, INTEGER), ['a,b', '']::VARCHAR[], '-inf'::DOUBLE,
  {'t': TIMESTAMPTZ '1969-12-31 23:59:59.999999+00', 'f': 1.5, 'l': []})
) v(id, b, i, bi, hi, d, dec, s, dt, tm, ts, tstz, iv, u, bl, j, l, st, m, vl, dn, nz)`

// query round-trips every column type in every format: the output, parsed back (JSON by a
// JSON parser, CSV by a CSV reader, the table by its column positions), is read by DuckDB into
// the column's type and must equal the stored value; columns keep the query's order.
func TestQuery_RoundTripsEveryTypeInEveryFormat(t *testing.T) {
	wh := typesWarehouse(t)
	roundTripTypes(t, wh, func(args ...string) (int, string, string) { return syncer(t, args...) }, func() *sql.DB {
		db, err := sql.Open("duckdb", wh+"?access_mode=read_only")
		if err != nil {
			t.Fatal(err)
		}
		return db
	})
}

// typesWarehouse creates a warehouse holding typesTable.
func typesWarehouse(t *testing.T) string {
	wh := filepath.Join(t.TempDir(), "types.duckdb")
	db, err := sql.Open("duckdb", wh)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(typesTable); err != nil {
		t.Fatal(err)
	}
	return wh
}

// roundTripTypes runs the round trip of typesTable in wh: query runs syncer (in this process or
// another) and check opens a handle on wh to compare the printed values with the stored ones.
func roundTripTypes(t *testing.T, wh string, query func(args ...string) (int, string, string), check func() *sql.DB) (printed map[string]string) {
	t.Helper()
	db := check()
	cols, typ := []string{}, map[string]string{}
	rs, err := db.Query(`SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 't' ORDER BY ordinal_position`)
	if err != nil {
		t.Fatal(err)
	}
	for rs.Next() {
		var c, d string
		if err := rs.Scan(&c, &d); err != nil {
			t.Fatal(err)
		}
		cols, typ[c] = append(cols, c), d
	}
	rs.Close()
	db.Close()
	nested := func(c string) bool { return kindOf(typ[c]) == kindJSON }

	// cells[format][row id][column] is what the output says; null marks a NULL.
	type cell struct {
		text string // the value's text (a JSON value's raw text for nested columns)
		json bool   // text is JSON (a JSON format's raw value)
		null bool
	}
	outputs := map[string]map[string]map[string]cell{}
	printed = map[string]string{}
	queryAs := func(format string) string {
		code, out, errOut := query("query", "SELECT * FROM t ORDER BY id", "--warehouse", wh, "--format", format)
		if code != exitOK {
			t.Fatalf("query --format %s: exit %d: %s", format, code, errOut)
		}
		printed[format] = out
		return out
	}
	decodeObject := func(t *testing.T, dec *json.Decoder) (keys []string, vals map[string]json.RawMessage) {
		vals = map[string]json.RawMessage{}
		if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
			t.Fatalf("want an object: %v %v", tok, err)
		}
		for dec.More() {
			k, err := dec.Token()
			if err != nil {
				t.Fatal(err)
			}
			var v json.RawMessage
			if err := dec.Decode(&v); err != nil {
				t.Fatal(err)
			}
			keys, vals[k.(string)] = append(keys, k.(string)), v
		}
		if _, err := dec.Token(); err != nil {
			t.Fatal(err)
		}
		return keys, vals
	}
	fromJSON := func(t *testing.T, keys []string, vals map[string]json.RawMessage) map[string]cell {
		if strings.Join(keys, ",") != strings.Join(cols, ",") {
			t.Fatalf("keys %v, want the query's order %v", keys, cols)
		}
		row := map[string]cell{}
		for _, c := range cols {
			raw := string(vals[c])
			switch {
			case raw == "null":
				row[c] = cell{null: true}
			case nested(c):
				row[c] = cell{text: raw, json: true}
			case strings.HasPrefix(raw, `"`):
				var s string
				if err := json.Unmarshal(vals[c], &s); err != nil {
					t.Fatal(err)
				}
				row[c] = cell{text: s}
			default: // numbers and booleans: their exact text
				row[c] = cell{text: raw}
			}
		}
		return row
	}

	// JSON: an array of objects.
	outputs["json"] = map[string]map[string]cell{}
	dec := json.NewDecoder(strings.NewReader(queryAs("json")))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('[') {
		t.Fatalf("json: want an array: %v", err)
	}
	for dec.More() {
		keys, vals := decodeObject(t, dec)
		outputs["json"][string(vals["id"])] = fromJSON(t, keys, vals)
	}
	// JSON lines: one object a line.
	outputs["jsonl"] = map[string]map[string]cell{}
	for _, line := range strings.Split(strings.TrimSpace(queryAs("jsonl")), "\n") {
		keys, vals := decodeObject(t, json.NewDecoder(strings.NewReader(line)))
		outputs["jsonl"][string(vals["id"])] = fromJSON(t, keys, vals)
	}
	// CSV: a header in the query's order; NULL is an empty field, '' a quoted one.
	csvOut := queryAs("csv")
	recs, err := csv.NewReader(strings.NewReader(csvOut)).ReadAll()
	if err != nil || len(recs) != 4 || strings.Join(recs[0], ",") != strings.Join(cols, ",") {
		t.Fatalf("csv: %v %v\n%s", err, recs, csvOut)
	}
	outputs["csv"] = map[string]map[string]cell{}
	for _, rec := range recs[1:] {
		row := map[string]cell{}
		for i, c := range cols {
			row[c] = cell{text: rec[i], json: nested(c), null: rec[i] == "" && rec[0] == "2"}
		}
		outputs["csv"][rec[0]] = row
	}
	if !strings.Contains(csvOut, "\r\n3,false,") || !strings.Contains(strings.Split(csvOut, "\r\n3,")[1], `,"",`) {
		t.Errorf("csv: the empty string of row 3 should be a quoted empty field, unlike NULL:\n%s", csvOut)
	}
	// The table: cells found by the header's column positions (in runes); NULL prints NULL.
	lines := strings.Split(strings.TrimRight(queryAs("table"), "\n"), "\n")
	if len(lines) != 5 || lines[4] != "(3 rows)" {
		t.Fatalf("table: %q", lines)
	}
	head := []rune(lines[0])
	var starts []int
	for i := range head {
		if head[i] != ' ' && (i == 0 || head[i-1] == ' ') {
			starts = append(starts, i)
		}
	}
	if len(starts) != len(cols) {
		t.Fatalf("table header %q: %d columns, want %d", lines[0], len(starts), len(cols))
	}
	table := map[string]map[string]string{}
	for _, l := range lines[1:4] {
		r := []rune(l)
		row := map[string]string{}
		for i, c := range cols {
			end := len(r)
			if i+1 < len(starts) {
				end = starts[i+1]
			}
			row[c] = strings.TrimRight(string(r[min(starts[i], len(r)):min(end, len(r))]), " ")
		}
		table[row["id"]] = row
	}
	for id, row := range outputs["csv"] { // the table shows the CSV text, control characters escaped
		for _, c := range cols {
			want := tableCell(row[c].text)
			if row[c].null {
				want = "NULL"
			}
			if got := table[id][c]; got != want {
				t.Errorf("table row %s column %s: %q, want %q", id, c, got, want)
			}
		}
	}

	// DuckDB reads every value back into its column's type: it must equal the stored one.
	db = check()
	for format, rows := range outputs {
		if len(rows) != 3 {
			t.Errorf("%s: %d rows, want 3", format, len(rows))
		}
		for id, row := range rows {
			for _, c := range cols {
				v := row[c]
				var q string
				var args []any
				switch {
				case v.null:
					q = fmt.Sprintf(`SELECT %s IS NULL FROM t WHERE id = %s`, quoteIdent(c), id)
				case typ[c] == "JSON":
					// JSON keeps its own text: key order and spelling as stored.
					q, args = fmt.Sprintf(`SELECT CAST(%s AS VARCHAR) = ? FROM t WHERE id = %s`, quoteIdent(c), id), []any{v.text}
				case nested(c):
					q, args = fmt.Sprintf(`SELECT CAST(CAST(? AS JSON) AS %s) IS NOT DISTINCT FROM %s FROM t WHERE id = %s`, typ[c], quoteIdent(c), id), []any{v.text}
				default:
					q, args = fmt.Sprintf(`SELECT CAST(? AS %s) IS NOT DISTINCT FROM %s FROM t WHERE id = %s`, typ[c], quoteIdent(c), id), []any{v.text}
				}
				var same bool
				if err := db.QueryRow(q, args...).Scan(&same); err != nil || !same {
					var stored string
					_ = db.QueryRow(fmt.Sprintf(`SELECT CAST(%s AS VARCHAR) FROM t WHERE id = %s`, quoteIdent(c), id)).Scan(&stored)
					t.Errorf("%s row %s column %s (%s): printed %q (null %v), DuckDB has %q (%v)", format, id, c, typ[c], v.text, v.null, stored, err)
				}
			}
		}
	}

	db.Close()

	// Dates print as dates, TIMESTAMPTZ as ISO-8601 in UTC, DECIMAL and HUGEINT exactly.
	r1 := outputs["json"]["1"]
	for c, want := range map[string]string{"dt": "2024-02-29", "tstz": "2024-02-29T11:45:07.123456Z", "dec": "12345678901234.5678",
		"hi": "170141183460469231731687303715884105727", "st": `{"b":"x","a":2}`, "d": "0.1", "dn": "NaN",
		"nz": `{"t":"2024-02-29T11:45:07.123456Z","f":"NaN","l":["Infinity","-Infinity"]}`} {
		if r1[c].text != want {
			t.Errorf("json column %s: %q, want %q", c, r1[c].text, want)
		}
	}
	// Another column order is kept too.
	_, out, errOut := query("query", "SELECT vl, id, st FROM t WHERE id = 1", "--warehouse", wh, "--format", "jsonl")
	if want := `{"vl": ["x","y"], "id": 1, "st": {"b":"x","a":2}}`; strings.TrimSpace(out) != want {
		t.Errorf("jsonl: %s, want %s (%s)", out, want, errOut)
	}
	// A trailing comment does not break the rendering of exact types.
	_, out, errOut = query("query", "SELECT dec FROM t WHERE id = 1 -- the decimal", "--warehouse", wh, "--format", "csv")
	if out != "dec\r\n12345678901234.5678\r\n" {
		t.Errorf("csv with a trailing comment: %q (%s)", out, errOut)
	}
	if !utf8.ValidString(out) {
		t.Error("output is not UTF-8")
	}
	return printed
}

// A result larger than a table block streams: the table repeats its header per block, CSV and
// JSON lines are written as rows arrive (the writer is flushed every block).
func TestQuery_StreamsLargeResults(t *testing.T) {
	dir := t.TempDir()
	wh := filepath.Join(dir, "big.duckdb")
	db, err := sql.Open("duckdb", wh)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE n AS SELECT range AS i FROM range(1200)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	_, out, _ := syncer(t, "query", "SELECT i FROM n ORDER BY i", "--warehouse", wh)
	if h := strings.Count(out, "i\n"); h != 3 || !strings.HasSuffix(out, "(1200 rows)\n") {
		t.Fatalf("table of 1200 rows: %d headers (want one per block of %d), tail %q", h, tableBlock, out[max(0, len(out)-40):])
	}
	var w countingWriter
	db, err = sql.Open("duckdb", wh+"?access_mode=read_only")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := printQuery(t.Context(), db, "SELECT i FROM n ORDER BY i", "jsonl", &w); err != nil {
		t.Fatal(err)
	}
	if w.writes < 3 {
		t.Fatalf("%d writes for 1200 rows: the output was buffered whole", w.writes)
	}
}

type countingWriter struct{ writes int }

func (c *countingWriter) Write(p []byte) (int, error) { c.writes++; return len(p), nil }

// TIMESTAMPTZ inside LIST, STRUCT, MAP and UNION prints ISO-8601 in UTC like a top-level
// column, whatever the zone of the process (DuckDB's to_json writes the session's zone), and
// NaN and infinities inside them are JSON strings as at the top level: every JSON output parses.
func TestQuery_NestedTimestampsAndNaNAreJSONInAnyZone(t *testing.T) {
	bin := binary(t)
	wh := typesWarehouse(t)
	q := `SELECT [TIMESTAMPTZ '2024-02-29 11:45:07+00'] AS l, {'a "b"': TIMESTAMPTZ '2024-02-29 11:45:07.5+00', 'f': 'nan'::DOUBLE,
  'e': 'x'::ENUM('x', 'y,)'), 'd': 1.25::DECIMAL(5,2)} AS s, MAP {TIMESTAMPTZ '2024-02-29 11:45:07+00': 'inf'::DOUBLE} AS m,
  union_value(t := TIMESTAMPTZ '2024-02-29 11:45:07+00')::UNION(t TIMESTAMPTZ, i INTEGER) AS u, [[TIMESTAMPTZ '1970-01-01 00:00:00+00']]::TIMESTAMPTZ[1][] AS a,
  'infinity'::TIMESTAMPTZ AS top_inf, '-infinity'::TIMESTAMP AS top_ninf, ['-infinity'::TIMESTAMPTZ] AS l_inf`
	want := `{"l": ["2024-02-29T11:45:07Z"], "s": {"a \"b\"":"2024-02-29T11:45:07.5Z","f":"NaN","e":"x","d":1.25}, "m": {"2024-02-29T11:45:07Z":"Infinity"}, ` +
		`"u": {"t":"2024-02-29T11:45:07Z"}, "a": [["1970-01-01T00:00:00Z"]], "top_inf": "infinity", "top_ninf": "-infinity", "l_inf": ["-infinity"]}`
	for _, zone := range []string{"UTC", "Asia/Kolkata", "America/St_Johns"} {
		cmd := exec.Command(bin, "query", q, "--warehouse", wh, "--format", "jsonl")
		cmd.Env = append(os.Environ(), "TZ="+zone)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("TZ=%s: %v\n%s", zone, err, out)
		}
		if got := strings.TrimSpace(string(out)); got != want {
			t.Errorf("TZ=%s:\n got %s\nwant %s", zone, got, want)
		}
		if !json.Valid(out) {
			t.Errorf("TZ=%s: not JSON: %s", zone, out)
		}
	}
}
