package transform

// The reference decoding the property test and FuzzBatcherAdd compare the Batcher with, cell by
// cell. It shares no code with the Batcher: records are decoded with encoding/json (UseNumber),
// column paths followed through the decoded maps, and values converted with math/big, regexp and
// the time package.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/marketsync/marketsync/schemas"
)

// refCell is one expected cell.
type refCell struct {
	null bool
	s    string // String; JSON and _extra as canonical JSON
	b    bool
	i    int64 // Int64; Timestamp in microseconds
	f    float64
	d    *big.Int // Decimal, unscaled at scale 10
	list []*string
	// rounded: a Decimal whose exact value had more than 10 fraction digits.
	rounded bool
}

// refRow is one expected row: the declared columns, then _extra.
type refRow struct {
	cells   []refCell
	key     string
	rounded int64
	rec     []byte
}

// refRecord decodes rec the reference way. An error means the Batcher must reject the record
// with a *FieldError.
func refRecord(t *schemas.Table, rec []byte) (refRow, error) {
	row := refRow{rec: rec}
	if !utf8.Valid(rec) {
		return row, errors.New("not UTF-8")
	}
	m, err := refDecode(rec)
	if err != nil {
		return row, err
	}
	obj, ok := m.(map[string]any)
	if !ok {
		return row, errors.New("not an object")
	}
	declared := map[string]bool{}
	for _, c := range t.Columns {
		declared[c.Path[0]] = true
		var v any = obj
		for _, k := range c.Path {
			mm, ok := v.(map[string]any)
			if !ok {
				v = nil
				break
			}
			v = mm[k] // absent: nil
		}
		cell, err := refConvert(c.Kind, v)
		if err != nil {
			return row, fmt.Errorf("column %s: %w", c.Name, err)
		}
		row.cells = append(row.cells, cell)
		if cell.rounded {
			row.rounded++
		}
		if c.Name == t.PrimaryKey {
			if cell.null {
				return row, errors.New("primary key missing or null")
			}
			if c.Kind == schemas.Int64 {
				row.key = strconv.FormatInt(cell.i, 10)
			} else {
				row.key = cell.s
			}
		}
	}
	extra := map[string]any{}
	for k, v := range obj {
		if !declared[k] {
			extra[k] = v
		}
	}
	if len(extra) == 0 {
		row.cells = append(row.cells, refCell{null: true})
	} else {
		row.cells = append(row.cells, refCell{s: refCanonical(extra)})
	}
	return row, nil
}

// refDecode decodes one JSON value, which must be the whole of rec.
func refDecode(rec []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(rec))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("data after the value")
	}
	return v, nil
}

func refCanonical(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func refConvert(k schemas.Kind, v any) (refCell, error) {
	if v == nil {
		return refCell{null: true}, nil
	}
	text := func() (string, bool) {
		switch x := v.(type) {
		case string:
			return x, true
		case json.Number:
			return string(x), true
		}
		return "", false
	}
	switch k {
	case schemas.String:
		switch x := v.(type) {
		case string:
			return refCell{s: x}, nil
		case json.Number:
			return refCell{s: string(x)}, nil
		case bool:
			return refCell{s: strconv.FormatBool(x)}, nil
		}
		return refCell{}, errors.New("object or array for a string")
	case schemas.Bool:
		switch x := v.(type) {
		case bool:
			return refCell{b: x}, nil
		case string:
			if x == "true" || x == "false" {
				return refCell{b: x == "true"}, nil
			}
		}
		return refCell{}, errors.New("not a boolean")
	case schemas.Int64:
		s, ok := text()
		n, ok2 := new(big.Int).SetString(s, 10)
		if !ok || !ok2 || !n.IsInt64() {
			return refCell{}, errors.New("not an int64")
		}
		return refCell{i: n.Int64()}, nil
	case schemas.Float64:
		s, ok := text()
		f, err := strconv.ParseFloat(s, 64)
		if !ok || err != nil {
			return refCell{}, errors.New("not a float")
		}
		return refCell{f: f}, nil
	case schemas.Timestamp:
		s, ok := text()
		if !ok {
			return refCell{}, errors.New("not a timestamp type")
		}
		us, ok := refTimestamp(s)
		if !ok {
			return refCell{}, errors.New("not a timestamp")
		}
		return refCell{i: us}, nil
	case schemas.Decimal:
		s, ok := text()
		if !ok {
			return refCell{}, errors.New("not a decimal type")
		}
		d, rounded, ok := refDecimal(s)
		if !ok {
			return refCell{}, errors.New("not a DECIMAL(38,10)")
		}
		return refCell{d: d, rounded: rounded}, nil
	case schemas.JSON:
		return refCell{s: refCanonical(v)}, nil
	case schemas.StringList:
		arr, ok := v.([]any)
		if !ok {
			return refCell{}, errors.New("not an array")
		}
		list := []*string{}
		for _, e := range arr {
			var s string
			switch x := e.(type) {
			case nil:
				list = append(list, nil)
				continue
			case string:
				s = x
			case json.Number:
				s = string(x)
			case bool:
				s = strconv.FormatBool(x)
			default:
				return refCell{}, errors.New("object or array in a string list")
			}
			list = append(list, &s)
		}
		return refCell{list: list}, nil
	}
	panic("unknown kind")
}

var (
	refEpochRe = regexp.MustCompile(`^(?:0|([1-9][0-9]{8,12})(?:\.([0-9]+))?)$`)
	refBasicRe = regexp.MustCompile(`^([0-9]{4})([0-9]{2})([0-9]{2})$`)
	refISORe   = regexp.MustCompile(`^([0-9]{4})([-/])([0-9]{2})([-/])([0-9]{2})(?:[T ]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]+))?(Z|([+-])([0-9]{2}):?([0-9]{2}))?)?$`)
)

// refTimestamp is the documented timestamp rule, written independently of ParseTimestamp.
func refTimestamp(s string) (int64, bool) {
	atoi := func(s string) int { n, _ := strconv.Atoi(s); return n }
	date := func(y, mo, d, h, mi, sec int) (time.Time, bool) {
		t := time.Date(y, time.Month(mo), d, h, mi, sec, 0, time.UTC)
		return t, t.Year() == y && int(t.Month()) == mo && t.Day() == d && t.Hour() == h && t.Minute() == mi && t.Second() == sec
	}
	if m := refBasicRe.FindStringSubmatch(s); m != nil {
		t, ok := date(atoi(m[1]), atoi(m[2]), atoi(m[3]), 0, 0, 0)
		return t.UnixMicro(), ok
	}
	if m := refEpochRe.FindStringSubmatch(s); m != nil {
		if s == "0" {
			return 0, true
		}
		r, _ := new(big.Rat).SetString(s)
		n, _ := new(big.Int).SetString(m[1], 10)
		if n.Cmp(big.NewInt(1e11)) < 0 {
			r.Mul(r, big.NewRat(1e6, 1))
		} else {
			r.Mul(r, big.NewRat(1e3, 1))
		}
		q := new(big.Int).Quo(r.Num(), r.Denom()) // non-negative: truncation is the floor
		return q.Int64(), true
	}
	m := refISORe.FindStringSubmatch(s)
	if m == nil || m[2] != m[4] {
		return 0, false
	}
	if m[6] == "" { // a date alone
		t, ok := date(atoi(m[1]), atoi(m[3]), atoi(m[5]), 0, 0, 0)
		return t.UnixMicro(), ok
	}
	t, ok := date(atoi(m[1]), atoi(m[3]), atoi(m[5]), atoi(m[6]), atoi(m[7]), atoi(m[8]))
	if !ok {
		return 0, false
	}
	frac := (m[9] + "000000")[:6]
	us := t.Unix()*1e6 + int64(atoi(frac))
	if m[11] != "" {
		oh, om := atoi(m[12]), atoi(m[13])
		if oh > 23 || om > 59 {
			return 0, false
		}
		off := int64(oh*3600+om*60) * 1e6
		if m[11] == "+" {
			off = -off
		}
		us += off
	}
	return us, true
}

var refDecimalRe = regexp.MustCompile(`^([+-]?)([0-9]*)(?:\.([0-9]*))?(?:[eE]([+-]?[0-9]+))?$`)

// refDecimal is the exact value of s at scale 10, rounded half-even: the unscaled integer.
func refDecimal(s string) (*big.Int, bool, bool) {
	m := refDecimalRe.FindStringSubmatch(s)
	if m == nil || m[2]+m[3] == "" {
		return nil, false, false
	}
	mant, _ := new(big.Int).SetString(m[2]+m[3], 10)
	if mant.Sign() == 0 {
		return new(big.Int), false, true
	}
	// value = mant * 10^e, e = exponent - len(fraction); scaled: mant * 10^(e+10).
	e := new(big.Int)
	if m[4] != "" {
		e.SetString(m[4], 10)
	}
	e.Sub(e, big.NewInt(int64(len(m[3])-10)))
	digits := int64(len(mant.String()))
	switch {
	case e.Cmp(big.NewInt(40)) > 0: // >= 10^41
		return nil, false, false
	case new(big.Int).Add(e, big.NewInt(digits+2)).Sign() < 0: // < 10^-2 unscaled: rounds to 0
		return new(big.Int), true, true
	}
	r := new(big.Rat).SetInt(mant)
	p := new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), new(big.Int).Abs(e), nil))
	if e.Sign() >= 0 {
		r.Mul(r, p)
	} else {
		r.Quo(r, p)
	}
	q, rem := new(big.Int).QuoRem(r.Num(), r.Denom(), new(big.Int))
	rounded := rem.Sign() != 0
	if rounded {
		twice := new(big.Int).Lsh(rem, 1)
		if c := twice.Cmp(r.Denom()); c > 0 || (c == 0 && q.Bit(0) == 1) {
			q.Add(q, big.NewInt(1))
		}
	}
	if q.Cmp(new(big.Int).Exp(big.NewInt(10), big.NewInt(38), nil)) >= 0 {
		return nil, false, false
	}
	if m[1] == "-" {
		q.Neg(q)
	}
	return q, rounded, true
}

// refHasLoneSurrogate reports whether JSON text escapes half a surrogate pair, which DuckDB's
// JSON type rejects. Backslashes occur only in strings of valid JSON, so a flat scan is exact.
func refHasLoneSurrogate(text string) bool {
	hex := func(i int) int {
		if i+4 > len(text) {
			return -1
		}
		n, err := strconv.ParseUint(text[i:i+4], 16, 32)
		if err != nil {
			return -1
		}
		return int(n)
	}
	for i := 0; i < len(text); i++ {
		if text[i] != '\\' {
			continue
		}
		if i+1 >= len(text) || text[i+1] != 'u' {
			i++
			continue
		}
		r := hex(i + 2)
		switch {
		case r >= 0xd800 && r < 0xdc00:
			if i+12 > len(text) || text[i+6:i+8] != `\u` {
				return true
			}
			if r2 := hex(i + 8); r2 < 0xdc00 || r2 > 0xdfff {
				return true
			}
			i += 11
		case r >= 0xdc00 && r <= 0xdfff:
			return true
		default:
			i += 5
		}
	}
	return false
}

// refChecker feeds records to one Batcher and checks every outcome and every produced cell
// against refRecord, the way the pipeline drives a Batcher: on ErrDuplicateKey it flushes and
// adds the record again.
type refChecker struct {
	t       testing.TB
	table   *schemas.Table
	b       *Batcher
	meta    Meta
	pending []refRow
	keys    map[string]bool
	rounded int64
	rows    int64 // rows checked
	invalid int64 // records rejected
}

func newRefChecker(t testing.TB, table *schemas.Table, b *Batcher, meta Meta) *refChecker {
	return &refChecker{t: t, table: table, b: b, meta: meta, keys: map[string]bool{}}
}

func (c *refChecker) add(rec []byte) {
	c.t.Helper()
	want, werr := refRecord(c.table, rec)
	before := c.b.Len()
	err := c.b.Add(rec)
	switch {
	case werr != nil:
		var fe *FieldError
		if !errors.As(err, &fe) {
			c.t.Fatalf("%s: record %q: got %v, want a *FieldError (reference: %v)", c.table.Name, rec, err, werr)
		}
		if c.b.Len() != before {
			c.t.Fatalf("%s: rejected record %q left a row pending", c.table.Name, rec)
		}
		c.invalid++
	case c.keys[want.key]:
		if err != ErrDuplicateKey {
			c.t.Fatalf("%s: record %q repeats key %q in the batch: got %v, want ErrDuplicateKey", c.table.Name, rec, want.key, err)
		}
		if c.b.Len() != before {
			c.t.Fatalf("%s: duplicate record %q left a row pending", c.table.Name, rec)
		}
		c.flush()
		if err := c.b.Add(rec); err != nil {
			c.t.Fatalf("%s: record %q after a flush: %v", c.table.Name, rec, err)
		}
		c.accept(want)
	default:
		if err != nil {
			c.t.Fatalf("%s: record %q: %v (reference accepts it)", c.table.Name, rec, err)
		}
		c.accept(want)
	}
	if c.b.Rounded() != c.rounded {
		c.t.Fatalf("%s: after record %q Rounded() = %d, want %d", c.table.Name, rec, c.b.Rounded(), c.rounded)
	}
}

func (c *refChecker) accept(want refRow) {
	c.pending = append(c.pending, want)
	c.keys[want.key] = true
	c.rounded += want.rounded
	if c.b.Len() != len(c.pending) {
		c.t.Fatalf("%s: %d rows pending, want %d", c.table.Name, c.b.Len(), len(c.pending))
	}
}

// flush takes the pending batch and compares every cell.
func (c *refChecker) flush() {
	c.t.Helper()
	batch := c.b.Flush()
	if len(c.pending) == 0 {
		if batch != nil {
			batch.Release()
			c.t.Fatalf("%s: Flush with nothing pending returned a batch", c.table.Name)
		}
		return
	}
	if batch == nil {
		c.t.Fatalf("%s: Flush returned nil with %d rows pending", c.table.Name, len(c.pending))
	}
	defer batch.Release()
	if int(batch.NumRows()) != len(c.pending) {
		c.t.Fatalf("%s: batch of %d rows, want %d", c.table.Name, batch.NumRows(), len(c.pending))
	}
	n := len(c.table.Columns)
	for r, want := range c.pending {
		for i, col := range c.table.Columns {
			if msg := refCompare(col.Kind, batch.Column(i), r, want.cells[i]); msg != "" {
				c.t.Fatalf("%s: record %q: column %s: %s", c.table.Name, want.rec, col.Name, msg)
			}
		}
		if msg := refCompare(schemas.JSON, batch.Column(n+4), r, want.cells[n]); msg != "" {
			c.t.Fatalf("%s: record %q: column _extra: %s", c.table.Name, want.rec, msg)
		}
		if s := batch.Column(n).(*array.String).Value(r); s != c.table.Source {
			c.t.Fatalf("%s: _source %q", c.table.Name, s)
		}
		if ts := batch.Column(n + 1).(*array.Timestamp).Value(r); int64(ts) != c.meta.SyncedAt {
			c.t.Fatalf("%s: _synced_at %d", c.table.Name, ts)
		}
		if s := batch.Column(n + 2).(*array.String).Value(r); s != c.meta.RunID {
			c.t.Fatalf("%s: _run_id %q", c.table.Name, s)
		}
		if !batch.Column(n + 3).IsNull(r) {
			c.t.Fatalf("%s: _deleted_at set", c.table.Name)
		}
	}
	c.rows += int64(len(c.pending))
	c.pending = c.pending[:0]
	clear(c.keys)
}

// refCompare compares cell r of col with want; "" if equal.
func refCompare(k schemas.Kind, col arrow.Array, r int, want refCell) string {
	if col.IsNull(r) || want.null {
		if col.IsNull(r) != want.null {
			return fmt.Sprintf("NULL is %v, want %v", col.IsNull(r), want.null)
		}
		return ""
	}
	switch k {
	case schemas.String:
		if got := col.(*array.String).Value(r); got != want.s {
			return fmt.Sprintf("got %q, want %q", got, want.s)
		}
	case schemas.JSON:
		got := col.(*array.String).Value(r)
		if !utf8.ValidString(got) || !json.Valid([]byte(got)) || refHasLoneSurrogate(got) {
			return fmt.Sprintf("%q is not JSON a strict parser accepts", got)
		}
		v, err := refDecode([]byte(got))
		if err != nil {
			return err.Error()
		}
		if c := refCanonical(v); c != want.s {
			return fmt.Sprintf("got %s (canonical %s), want %s", got, c, want.s)
		}
	case schemas.Bool:
		if got := col.(*array.Boolean).Value(r); got != want.b {
			return fmt.Sprintf("got %v, want %v", got, want.b)
		}
	case schemas.Int64:
		if got := col.(*array.Int64).Value(r); got != want.i {
			return fmt.Sprintf("got %d, want %d", got, want.i)
		}
	case schemas.Float64:
		if got := col.(*array.Float64).Value(r); got != want.f && !(got != got && want.f != want.f) {
			return fmt.Sprintf("got %v, want %v", got, want.f)
		}
	case schemas.Timestamp:
		if got := int64(col.(*array.Timestamp).Value(r)); got != want.i {
			return fmt.Sprintf("got %d (%s), want %d (%s)", got, time.UnixMicro(got).UTC(), want.i, time.UnixMicro(want.i).UTC())
		}
	case schemas.Decimal:
		if got := col.(*array.Decimal128).Value(r).BigInt(); got.Cmp(want.d) != 0 {
			return fmt.Sprintf("got %s, want %s (unscaled)", got, want.d)
		}
	case schemas.StringList:
		l := col.(*array.List)
		vals := l.ListValues().(*array.String)
		start, end := l.ValueOffsets(r)
		var got []string
		for i := start; i < end; i++ {
			if vals.IsNull(int(i)) {
				got = append(got, "<nil>")
			} else {
				got = append(got, strconv.Quote(vals.Value(int(i))))
			}
		}
		var exp []string
		for _, e := range want.list {
			if e == nil {
				exp = append(exp, "<nil>")
			} else {
				exp = append(exp, strconv.Quote(*e))
			}
		}
		if strings.Join(got, ",") != strings.Join(exp, ",") {
			return fmt.Sprintf("got [%s], want [%s]", strings.Join(got, ","), strings.Join(exp, ","))
		}
	}
	return ""
}
