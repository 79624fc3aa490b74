package simcheck

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math/big"
	"slices"
	"sort"
	"strings"

	"github.com/marketsync/marketsync/apisim"
	"github.com/marketsync/marketsync/load"
	"github.com/marketsync/marketsync/schemas"
)

// RowOptions relaxes the whole-row comparison where the product's documented behaviour allows
// the warehouse to lag the source.
type RowOptions struct {
	// UndetectedDeletes tolerates live warehouse rows the source no longer lists: deletions are
	// only detected by verified full scans, so after an incremental run they may remain.
	UndetectedDeletes bool
	// IgnoreMembership skips source rows the warehouse lacks (a source that changed while it was
	// listed); rows present on both sides must still be equal, and no live row soft-deleted.
	IgnoreMembership bool
	// OnlyMembership checks rows' presence and liveness only, not their values.
	OnlyMembership bool
	// SkipStale skips rows marked _stale_since: the warehouse says they are not current.
	SkipStale bool
	// Only, if set, limits the comparison to the source rows it accepts (and to warehouse rows
	// with their keys).
	Only func(table string, r apisim.Row) bool
	// MaxDiffs caps the differences listed per table and column (default 3); the count of all
	// is always given.
	MaxDiffs int
	// Family is the AppDirect API family the warehouse was synced through: "reseller"
	// compares companies, users and opportunities with the rows the AppReseller endpoints
	// serve (apisim.ResellerRows); "" or "marketplace" with the marketplace endpoints'.
	Family string
	// Tenant, if set, compares only the warehouse rows of that tenant (the tenant column) with
	// the source: each tenant of a multi-tenant warehouse has its own simulator. "" reads every
	// row, so two tenants' rows with one key show as duplicates.
	Tenant string
}

// Diff is one cell (or row) where the warehouse differs from the source.
type Diff struct {
	Table, Key, Column string
	Source, Warehouse  string
}

func (d Diff) String() string {
	return fmt.Sprintf("%s key %s column %s: source %s, warehouse %s", d.Table, d.Key, d.Column, d.Source, d.Warehouse)
}

// CompareRows compares every column of every row of the given streams' tables (charges brings
// locations) with the simulator's canonical rows, and returns a description of the
// differences ("" if none). Each names table, key, column, source value and warehouse value.
func CompareRows(ctx context.Context, db *sql.DB, sim *apisim.Server, streams []string, opt RowOptions) (string, error) {
	return compareAll(sim, streams, opt, func(t *schemas.Table) (map[string]*warehouseRow, []Diff, error) {
		return duckRows(ctx, db, t, opt.Tenant)
	})
}

// compareAll runs the whole-row comparison of the streams' tables over the rows read reads.
func compareAll(sim *apisim.Server, streams []string, opt RowOptions, read func(*schemas.Table) (map[string]*warehouseRow, []Diff, error)) (string, error) {
	if opt.MaxDiffs == 0 {
		opt.MaxDiffs = 3
	}
	var all []Diff
	for _, name := range tablesOf(streams) {
		t, err := schemas.Lookup(name)
		if err != nil {
			return "", err
		}
		rows := sim.Rows
		if opt.Family == "reseller" {
			rows = sim.ResellerRows
		}
		src, err := rows(name)
		if err != nil {
			return "", err
		}
		if name == "locations" { // the extractor lists installed locations only (isInstalled=true)
			src = slices.DeleteFunc(src, func(r apisim.Row) bool { return r.Values["isInstalled"] != true })
		}
		if opt.Only != nil {
			src = slices.DeleteFunc(src, func(r apisim.Row) bool { return !opt.Only(name, r) })
			opt.UndetectedDeletes = true // rows outside the filter are not judged
		}
		wh, diffs, err := read(t)
		if err != nil {
			return "", err
		}
		diffs, err = judge(t, wh, diffs, src, opt)
		if err != nil {
			return "", err
		}
		all = append(all, diffs...)
	}
	if len(all) == 0 {
		return "", nil
	}
	byColumn := map[string][]Diff{}
	var cols []string
	for _, d := range all {
		k := d.Table + "." + d.Column
		if byColumn[k] == nil {
			cols = append(cols, k)
		}
		byColumn[k] = append(byColumn[k], d)
	}
	sort.Strings(cols)
	var lines []string
	for _, k := range cols {
		ds := byColumn[k]
		lines = append(lines, fmt.Sprintf("%s: %d rows differ", k, len(ds)))
		for i, d := range ds {
			if i == opt.MaxDiffs {
				lines = append(lines, fmt.Sprintf("  … and %d more", len(ds)-i))
				break
			}
			lines = append(lines, "  "+d.String())
		}
	}
	return strings.Join(lines, "\n"), nil
}

func tablesOf(streams []string) []string {
	var out []string
	for _, s := range streams {
		out = append(out, s)
		if s == "charges" {
			out = append(out, "locations")
		}
	}
	return out
}

// warehouseRow is one row read back with every column in canonical form.
type warehouseRow struct {
	cells   []any // per declared column, canonical (see canonWarehouse)
	extra   any   // canonical JSON text of _extra, or nil
	deleted bool
	stale   bool
}

// duckRows reads a DuckDB table's rows in canonical form, noting duplicate keys.
func duckRows(ctx context.Context, db *sql.DB, t *schemas.Table, tenant string) (map[string]*warehouseRow, []Diff, error) {
	exprs := make([]string, 0, len(t.Columns)+3)
	exprs = append(exprs, fmt.Sprintf("CAST(%s AS VARCHAR)", load.Quote(t.PrimaryKey)))
	for _, c := range t.Columns {
		exprs = append(exprs, selectExpr(c))
	}
	exprs = append(exprs, fmt.Sprintf("%s IS NOT NULL", load.Quote(schemas.ColStaleSince)),
		fmt.Sprintf("CAST(%s AS VARCHAR)", load.Quote(schemas.ColExtra)), fmt.Sprintf("%s IS NOT NULL", load.Quote(schemas.ColDeletedAt)))
	q, args := fmt.Sprintf("SELECT %s FROM %s", strings.Join(exprs, ", "), load.Quote(t.Name)), []any{}
	if tenant != "" {
		q += fmt.Sprintf(" WHERE %s = ?", load.Quote(schemas.ColTenant))
		args = append(args, tenant)
	}
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, nil, fmt.Errorf("reading %s for the whole-row check: %w", t.Name, err)
	}
	defer rows.Close()
	wh := map[string]*warehouseRow{}
	var diffs []Diff
	for rows.Next() {
		dest := make([]any, len(exprs))
		ptrs := make([]any, len(exprs))
		for i := range dest {
			ptrs[i] = &dest[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, nil, fmt.Errorf("reading %s: %w", t.Name, err)
		}
		key := fmt.Sprint(dest[0])
		r := &warehouseRow{deleted: dest[len(dest)-1] == true, stale: dest[len(dest)-3] == true}
		for i, c := range t.Columns {
			r.cells = append(r.cells, canonWarehouse(c.Kind, dest[i+1]))
		}
		r.extra = canonWarehouse(schemas.JSON, dest[len(dest)-2])
		if _, dup := wh[key]; dup {
			diffs = append(diffs, Diff{Table: t.Name, Key: key, Column: "(row)", Source: "one row", Warehouse: "duplicate rows"})
		}
		wh[key] = r
	}
	return wh, diffs, rows.Err()
}

// judge compares the warehouse rows wh of t (diffs: what reading them found) with the source.
func judge(t *schemas.Table, wh map[string]*warehouseRow, diffs []Diff, src []apisim.Row, opt RowOptions) ([]Diff, error) {
	declared := map[string]bool{}
	for _, c := range t.Columns {
		declared[c.Path[0]] = true
	}
	seen := map[string]bool{}
	for _, s := range src {
		seen[s.Key] = true
		r, ok := wh[s.Key]
		switch {
		case !ok && opt.IgnoreMembership:
			continue
		case !ok:
			diffs = append(diffs, Diff{Table: t.Name, Key: s.Key, Column: "(row)", Source: "live", Warehouse: "missing"})
			continue
		case r.deleted:
			diffs = append(diffs, Diff{Table: t.Name, Key: s.Key, Column: "(row)", Source: "live", Warehouse: "soft-deleted"})
			continue
		case r.stale && opt.SkipStale, opt.OnlyMembership:
			continue
		}
		rec, err := decode(s.Record)
		if err != nil {
			return nil, fmt.Errorf("%s key %s: source record is not JSON: %w", t.Name, s.Key, err)
		}
		for i, c := range t.Columns {
			want := canonSource(c, s, rec)
			if !equal(want, r.cells[i]) {
				diffs = append(diffs, Diff{Table: t.Name, Key: s.Key, Column: c.Name, Source: show(want), Warehouse: show(r.cells[i])})
			}
		}
		if want := extraOf(rec, declared); !equal(want, r.extra) {
			diffs = append(diffs, Diff{Table: t.Name, Key: s.Key, Column: schemas.ColExtra, Source: show(want), Warehouse: show(r.extra)})
		}
	}
	for key, r := range wh {
		if !seen[key] && !r.deleted && !opt.UndetectedDeletes {
			diffs = append(diffs, Diff{Table: t.Name, Key: key, Column: "(row)", Source: "absent", Warehouse: "live"})
		}
	}
	sort.Slice(diffs, func(i, j int) bool {
		if diffs[i].Column != diffs[j].Column {
			return diffs[i].Column < diffs[j].Column
		}
		return diffs[i].Key < diffs[j].Key
	})
	return diffs, nil
}

// selectExpr reads a column as text or a plain Go value the comparison canonicalizes.
func selectExpr(c schemas.Column) string {
	q := load.Quote(c.Name)
	switch c.Kind {
	case schemas.Timestamp:
		return "epoch_us(" + q + ")"
	case schemas.Bool:
		return q
	case schemas.StringList:
		return "CAST(to_json(" + q + ") AS VARCHAR)"
	default:
		return "CAST(" + q + " AS VARCHAR)"
	}
}

// canonWarehouse puts a scanned warehouse value in the form canonSource gives the source's.
func canonWarehouse(k schemas.Kind, v any) any {
	if v == nil {
		return nil
	}
	switch k {
	case schemas.Timestamp:
		return v.(int64)
	case schemas.Bool:
		return v.(bool)
	case schemas.Decimal:
		return normDecimal(v.(string))
	case schemas.JSON, schemas.StringList:
		j, err := decode([]byte(v.(string)))
		if err != nil {
			return "invalid JSON: " + v.(string)
		}
		return canonJSON(j)
	}
	return v.(string)
}

// canonSource is the value the warehouse must hold in column c for source row s, by the rules
// the README documents: typed leaves from the simulator's canonical values, JSON members
// verbatim (compared canonically), money rounded half-even to 10 fraction digits.
func canonSource(c schemas.Column, s apisim.Row, rec map[string]any) any {
	if c.Kind == schemas.JSON || c.Kind == schemas.StringList {
		v, ok := at(rec, c.Path)
		if !ok || v == nil {
			return nil
		}
		if c.Kind == schemas.StringList {
			list, ok := v.([]any)
			if !ok {
				return fmt.Sprintf("not an array: %v", v)
			}
			out := make([]any, len(list))
			for i, e := range list {
				switch e := e.(type) {
				case nil:
				case string:
					out[i] = e
				case json.Number:
					out[i] = e.String()
				default:
					out[i] = fmt.Sprint(e)
				}
			}
			return canonJSON(out)
		}
		return canonJSON(v)
	}
	v, ok := s.Values[strings.Join(c.Path, ".")]
	if !ok || v == nil {
		return nil
	}
	switch c.Kind {
	case schemas.Timestamp:
		switch n := v.(type) {
		case int64:
			return n
		case json.Number:
			i, _ := n.Int64()
			return i
		case float64:
			return int64(n)
		}
	case schemas.Decimal:
		return roundDecimal(fmt.Sprint(v), 10)
	case schemas.Bool:
		switch b := v.(type) {
		case bool:
			return b
		case string: // the documented "true"/"false" strings
			if b == "true" || b == "false" {
				return b == "true"
			}
		}
	case schemas.Int64:
		return normDecimal(fmt.Sprint(v))
	}
	switch v := v.(type) {
	case bool:
		if v {
			return "true"
		}
		return "false"
	case json.Number:
		return v.String()
	}
	return fmt.Sprint(v)
}

func at(rec map[string]any, path []string) (any, bool) {
	var cur any = rec
	for _, p := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[p]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// extraOf is the canonical _extra a record must produce: every member no declared column reads.
func extraOf(rec map[string]any, declared map[string]bool) any {
	extra := map[string]any{}
	for k, v := range rec {
		if !declared[k] {
			extra[k] = v
		}
	}
	if len(extra) == 0 {
		return nil
	}
	return canonJSON(extra)
}

func decode(b []byte) (map[string]any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	if m, ok := v.(map[string]any); ok {
		return m, nil
	}
	return map[string]any{"": v}, nil
}

// canonJSON renders a decoded JSON value with sorted keys and numbers as exact normalized text.
func canonJSON(v any) string {
	var b strings.Builder
	writeCanon(&b, v)
	return b.String()
}

func writeCanon(b *strings.Builder, v any) {
	switch v := v.(type) {
	case map[string]any:
		if len(v) == 1 {
			if inner, ok := v[""]; ok { // decode's wrapper for a non-object top level
				writeCanon(b, inner)
				return
			}
		}
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(',')
			}
			kb, _ := json.Marshal(k)
			b.Write(kb)
			b.WriteByte(':')
			writeCanon(b, v[k])
		}
		b.WriteByte('}')
	case []any:
		b.WriteByte('[')
		for i, e := range v {
			if i > 0 {
				b.WriteByte(',')
			}
			writeCanon(b, e)
		}
		b.WriteByte(']')
	case json.Number:
		b.WriteString(normDecimal(v.String()))
	default:
		j, _ := json.Marshal(v)
		b.Write(j)
	}
}

// normDecimal renders decimal text exactly, without exponent, trailing fraction zeros or "-0":
// the simulator's canonical form.
func normDecimal(s string) string {
	if n, err := apisim.NormalizeDecimal(strings.TrimSpace(s)); err == nil {
		return n
	}
	return s
}

func ratText(r *big.Rat) string {
	if r.IsInt() {
		return r.Num().String()
	}
	// A terminating decimal: find its fraction digits (denominator 2^a 5^b).
	for prec := 1; prec <= 400; prec++ {
		t := r.FloatString(prec)
		back, _ := new(big.Rat).SetString(t)
		if back.Cmp(r) == 0 {
			return strings.TrimRight(strings.TrimRight(t, "0"), ".")
		}
	}
	return r.FloatString(400)
}

// roundDecimal rounds decimal text half-even to scale fraction digits (the warehouse's rule for
// money with more digits than DECIMAL(38,10) holds).
func roundDecimal(s string, scale int) string {
	r, ok := new(big.Rat).SetString(strings.TrimSpace(s))
	if !ok {
		return s
	}
	p := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(scale)), nil)
	scaled := new(big.Rat).Mul(r, new(big.Rat).SetInt(p))
	q, m := new(big.Int).QuoRem(scaled.Num(), scaled.Denom(), new(big.Int))
	// Compare the remainder with half the denominator to round half-even.
	twice := new(big.Int).Mul(new(big.Int).Abs(m), big.NewInt(2))
	switch c := twice.Cmp(scaled.Denom()); {
	case c > 0, c == 0 && q.Bit(0) == 1:
		if scaled.Sign() < 0 {
			q.Sub(q, big.NewInt(1))
		} else {
			q.Add(q, big.NewInt(1))
		}
	}
	return ratText(new(big.Rat).SetFrac(q, p))
}

func equal(a, b any) bool { return a == b }

func show(v any) string {
	switch v := v.(type) {
	case nil:
		return "NULL"
	case string:
		if len(v) > 120 {
			v = v[:120] + "…"
		}
		return fmt.Sprintf("%q", v)
	}
	return fmt.Sprint(v)
}
