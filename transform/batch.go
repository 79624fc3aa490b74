// Package transform turns raw JSON records into Arrow record batches of a declared schema.
package transform

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/marketsync/marketsync/internal/jsonscan"
	"github.com/marketsync/marketsync/schemas"
)

// ErrDuplicateKey means the record's primary key is already in the pending batch: flush the
// batch, then add the record again. Keeping keys unique within a batch lets the loader upsert
// with MERGE, and a later copy of a row (page drift) then wins over an earlier one.
var ErrDuplicateKey = errors.New("primary key already in this batch")

// FieldError is a value that does not fit its declared column. It names everything needed to
// find the record: stream, record id, field, and the offending value (truncated).
type FieldError struct {
	Stream   string
	RecordID string
	Field    string
	Value    string
	Err      error
}

func (e *FieldError) Error() string {
	return fmt.Sprintf("stream %s, record %s, field %s: value %s: %v", e.Stream, e.RecordID, e.Field, e.Value, e.Err)
}

func (e *FieldError) Unwrap() error { return e.Err }

// Meta is what every row of a run carries in the metadata columns.
type Meta struct {
	RunID    string
	SyncedAt int64 // microseconds since the epoch
}

type value struct {
	null bool
	i    int64
	f    float64
	b    []byte
	d    decimal128.Num
	list [][]byte
}

type column struct {
	schemas.Column
	idx     int
	scratch []byte
}

// group is the columns fed by one top-level member: read from its whole value (direct) or
// from below it (nested, e.g. customer.company.name).
type group struct {
	direct []*column
	nested []*column
}

// Batcher accumulates records of one table into an Arrow batch. Its builders are reused across
// batches. It is not safe for concurrent use: one per stream worker.
type Batcher struct {
	table   *schemas.Table
	meta    Meta
	rb      *array.RecordBuilder
	cols    []*column
	byKey   map[string]*group
	pk      *column
	vals    []value
	seen    []bool
	extra   []byte
	keys    map[string]struct{}
	rows    int
	metaIdx int
	digest  Digest
	// order predicts member order from the previous record (APIs emit keys in a stable order),
	// saving a map lookup per member.
	order []orderSlot
	// lastData remembers each column's data bytes in the last batch, to pre-size builders.
	lastData []int
}

type orderSlot struct {
	key string
	g   *group // nil: not a declared column
}

// Digest summarizes the primary keys added since the last ResetDigest: two scans of a listing
// with equal digests listed the same rows. It costs O(1) memory however many rows pass.
type Digest struct {
	Rows int64
	Sum  uint64 // order-independent: the sum of FNV-1a hashes of the keys
}

// SetRunID changes the _run_id written from now on (a repeated scan within a run gets its own,
// so deletions can be judged against the last scan alone).
func (b *Batcher) SetRunID(id string) { b.meta.RunID = id }

// Digest returns the keys added since ResetDigest.
func (b *Batcher) Digest() Digest { return b.digest }

// ResetDigest starts a new digest.
func (b *Batcher) ResetDigest() { b.digest = Digest{} }

func keyHash(k string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(k); i++ {
		h ^= uint64(k[i])
		h *= 1099511628211
	}
	return h
}

// NewBatcher returns a batcher for t. Call Release when done.
func NewBatcher(t *schemas.Table, mem memory.Allocator, meta Meta) *Batcher {
	b := &Batcher{table: t, meta: meta, rb: array.NewRecordBuilder(mem, t.Schema()),
		byKey: map[string]*group{}, keys: map[string]struct{}{}}
	for i, c := range t.Columns {
		cc := &column{Column: c, idx: i}
		b.cols = append(b.cols, cc)
		g := b.byKey[c.Path[0]]
		if g == nil {
			g = &group{}
			b.byKey[c.Path[0]] = g
		}
		if len(c.Path) > 1 {
			g.nested = append(g.nested, cc)
		} else {
			g.direct = append(g.direct, cc)
		}
		if c.Name == t.PrimaryKey {
			b.pk = cc
		}
	}
	b.vals = make([]value, len(b.cols))
	b.seen = make([]bool, len(b.cols))
	b.metaIdx = len(t.Columns)
	return b
}

// Len is the number of rows pending.
func (b *Batcher) Len() int { return b.rows }

// Release frees the builders.
func (b *Batcher) Release() { b.rb.Release() }

// Add converts one JSON object and appends it. On a *FieldError nothing is appended (every value
// is converted before any is appended), so the caller can quarantine the record and go on.
func (b *Batcher) Add(rec []byte) error {
	clear(b.seen) // a column not seen in this record is NULL; vals[i] is valid only if seen[i]
	b.extra = b.extra[:0]
	member := 0
	_, err := jsonscan.Members(rec, 0, func(key []byte, vs int) (int, error) {
		var g *group
		if n := member; n < len(b.order) && b.order[n].key == jsonscan.String(key) {
			g = b.order[n].g
		} else {
			g = b.byKey[jsonscan.String(key)]
			slot := orderSlot{key: string(key), g: g}
			if n < len(b.order) {
				b.order[n] = slot
			} else {
				b.order = append(b.order, slot)
			}
		}
		member++
		if g == nil {
			ve, err := jsonscan.Skip(rec, vs)
			if err != nil {
				return 0, err
			}
			if len(b.extra) == 0 {
				b.extra = append(b.extra, '{')
			} else {
				b.extra = append(b.extra, ',')
			}
			b.extra = append(b.extra, '"')
			b.extra = append(b.extra, key...)
			b.extra = append(b.extra, '"', ':')
			b.extra = append(b.extra, rec[vs:ve]...)
			return ve, nil
		}
		var ve int
		var err error
		if len(g.nested) > 0 && rec[vs] == '{' {
			// One walk of the nested object serves every flattened column under it.
			ve, err = b.walkNested(rec, vs, g.nested, 1)
		} else {
			ve, err = jsonscan.Skip(rec, vs)
		}
		if err != nil {
			return 0, err
		}
		for _, c := range g.direct {
			if err := b.convert(c, rec[vs:ve]); err != nil {
				return 0, err
			}
			b.seen[c.idx] = true
		}
		return ve, nil
	})
	if err != nil {
		var fe *FieldError
		if errors.As(err, &fe) {
			fe.RecordID = b.recordID(rec)
			return fe
		}
		return &FieldError{Stream: b.table.Name, RecordID: b.recordID(rec), Field: "(record)", Value: truncate(string(rec), 80), Err: err}
	}
	pk := b.vals[b.pk.idx]
	if !b.seen[b.pk.idx] || pk.null {
		return &FieldError{Stream: b.table.Name, RecordID: "(none)", Field: b.pk.Name, Value: "null", Err: errors.New("primary key is missing or null")}
	}
	var key string
	if b.pk.Kind == schemas.Int64 {
		key = strconv.FormatInt(pk.i, 10)
	} else {
		key = string(pk.b)
	}
	if _, dup := b.keys[key]; dup {
		return ErrDuplicateKey
	}
	b.keys[key] = struct{}{}
	b.digest.Rows++
	b.digest.Sum += keyHash(key)
	b.appendRow()
	return nil
}

// walkNested walks the object at rec[vs] once, converting the columns whose path continues
// below it (path[depth] is the key at this level). It returns the end of the object.
func (b *Batcher) walkNested(rec []byte, vs int, cols []*column, depth int) (int, error) {
	return jsonscan.Members(rec, vs, func(key []byte, ks int) (int, error) {
		var deeper []*column
		for _, c := range cols {
			if c.Path[depth] != jsonscan.String(key) {
				continue
			}
			if len(c.Path) == depth+1 {
				ke, err := jsonscan.Skip(rec, ks)
				if err != nil {
					return 0, err
				}
				if err := b.convert(c, rec[ks:ke]); err != nil {
					return 0, err
				}
				b.seen[c.idx] = true
				continue
			}
			deeper = append(deeper, c)
		}
		if len(deeper) > 0 && rec[ks] == '{' {
			return b.walkNested(rec, ks, deeper, depth+1)
		}
		return jsonscan.Skip(rec, ks)
	})
}

func (b *Batcher) recordID(rec []byte) string {
	v := jsonscan.Get(rec, b.pk.Path...)
	if jsonscan.IsNull(v) {
		return "(none)"
	}
	if s, err := jsonscan.Unquote(v, nil); err == nil {
		return truncate(string(s), 80)
	}
	return truncate(string(v), 80)
}

func (b *Batcher) fail(c *column, v []byte, err error) error {
	return &FieldError{Stream: b.table.Name, Field: c.Name, Value: truncate(string(v), 80), Err: err}
}

// convert parses raw JSON v for column c into b.vals[c.idx]; it appends nothing.
func (b *Batcher) convert(c *column, v []byte) error {
	out := &b.vals[c.idx]
	if jsonscan.IsNull(v) {
		out.null = true
		return nil
	}
	kind := jsonscan.Kind(v)
	out.null, out.list = false, out.list[:0]
	switch c.Kind {
	case schemas.String:
		switch kind {
		case '"':
			s, err := jsonscan.Unquote(v, &c.scratch)
			if err != nil {
				return b.fail(c, v, err)
			}
			out.b = s
		case '0', 't', 'f': // ids and codes sent as numbers or booleans keep their text
			out.b = v
		default:
			return b.fail(c, v, fmt.Errorf("%w: want a string, got an object or array", ErrType))
		}
	case schemas.JSON:
		out.b = v
	case schemas.Int64:
		s, err := b.scalarText(c, v)
		if err != nil {
			return err
		}
		n, perr := strconv.ParseInt(jsonscan.String(s), 10, 64)
		if perr != nil {
			return b.fail(c, v, ErrNumber)
		}
		out.i = n
	case schemas.Float64:
		s, err := b.scalarText(c, v)
		if err != nil {
			return err
		}
		f, perr := strconv.ParseFloat(jsonscan.String(s), 64)
		if perr != nil {
			return b.fail(c, v, fmt.Errorf("%w: not a number", ErrType))
		}
		out.f = f
	case schemas.Bool:
		s := v
		if kind == '"' {
			s = v[1 : len(v)-1]
		}
		switch string(s) {
		case "true":
			out.i = 1
		case "false":
		default:
			return b.fail(c, v, fmt.Errorf("%w: want true or false", ErrType))
		}
	case schemas.Timestamp:
		s, err := b.scalarText(c, v)
		if err != nil {
			return err
		}
		us, perr := ParseTimestamp(jsonscan.String(s))
		if perr != nil {
			return b.fail(c, v, perr)
		}
		out.i = us
	case schemas.Decimal:
		s, err := b.scalarText(c, v)
		if err != nil {
			return err
		}
		d, perr := ParseDecimal(jsonscan.String(s))
		if perr != nil {
			return b.fail(c, v, perr)
		}
		out.d = d
	case schemas.StringList:
		if kind != '[' {
			return b.fail(c, v, fmt.Errorf("%w: want an array of strings", ErrType))
		}
		err := jsonscan.Array(v, func(e []byte) error {
			if jsonscan.Kind(e) == '"' {
				s, err := jsonscan.Unquote(e, nil)
				if err != nil {
					return err
				}
				out.list = append(out.list, s)
				return nil
			}
			if jsonscan.IsNull(e) {
				out.list = append(out.list, nil)
				return nil
			}
			if k := jsonscan.Kind(e); k == '{' || k == '[' {
				return fmt.Errorf("%w: list element is an object or array", ErrType)
			}
			out.list = append(out.list, e)
			return nil
		})
		if err != nil {
			return b.fail(c, v, err)
		}
	}
	return nil
}

// scalarText returns the text of a number, or of a string holding one.
func (b *Batcher) scalarText(c *column, v []byte) ([]byte, error) {
	switch jsonscan.Kind(v) {
	case '0':
		return v, nil
	case '"':
		s, err := jsonscan.Unquote(v, &c.scratch)
		if err != nil {
			return nil, b.fail(c, v, err)
		}
		return s, nil
	}
	return nil, b.fail(c, v, fmt.Errorf("%w: want a %s", ErrType, c.Kind))
}

func (b *Batcher) appendRow() {
	for _, c := range b.cols {
		if !b.seen[c.idx] {
			b.rb.Field(c.idx).AppendNull()
			continue
		}
		appendValue(b.rb.Field(c.idx), c.Kind, &b.vals[c.idx])
	}
	m := b.metaIdx
	b.rb.Field(m).(*array.StringBuilder).Append(b.table.Source)
	b.rb.Field(m + 1).(*array.TimestampBuilder).Append(arrow.Timestamp(b.meta.SyncedAt))
	b.rb.Field(m + 2).(*array.StringBuilder).Append(b.meta.RunID)
	b.rb.Field(m + 3).AppendNull()
	if len(b.extra) > 0 {
		b.extra = append(b.extra, '}')
		b.rb.Field(m + 4).(*array.StringBuilder).BinaryBuilder.Append(b.extra)
	} else {
		b.rb.Field(m + 4).AppendNull()
	}
	b.rows++
}

func appendValue(fb array.Builder, k schemas.Kind, v *value) {
	if v.null {
		fb.AppendNull()
		return
	}
	switch k {
	case schemas.String, schemas.JSON:
		sb := fb.(*array.StringBuilder)
		// The unchecked append skips a capacity check per value when Flush already reserved room.
		if sb.Len() < sb.Cap() && sb.DataLen()+len(v.b) <= sb.DataCap() {
			sb.BinaryBuilder.UnsafeAppend(v.b)
		} else {
			sb.BinaryBuilder.Append(v.b)
		}
	case schemas.Int64:
		fb.(*array.Int64Builder).Append(v.i)
	case schemas.Float64:
		fb.(*array.Float64Builder).Append(v.f)
	case schemas.Bool:
		fb.(*array.BooleanBuilder).Append(v.i == 1)
	case schemas.Timestamp:
		fb.(*array.TimestampBuilder).Append(arrow.Timestamp(v.i))
	case schemas.Decimal:
		fb.(*array.Decimal128Builder).Append(v.d)
	case schemas.StringList:
		lb := fb.(*array.ListBuilder)
		lb.Append(true)
		sb := lb.ValueBuilder().(*array.StringBuilder)
		for _, e := range v.list {
			if e == nil {
				sb.AppendNull()
			} else {
				sb.BinaryBuilder.Append(e)
			}
		}
	}
}

// Flush returns the pending rows as a batch (nil if none) and resets the builders for reuse.
// The caller owns the batch and must Release it.
func (b *Batcher) Flush() arrow.RecordBatch {
	if b.rows == 0 {
		return nil
	}
	rows := b.rows
	if b.lastData == nil {
		b.lastData = make([]int, len(b.cols)+len(schemas.MetaColumns))
	}
	for i := range b.lastData {
		if sb, ok := b.rb.Field(i).(*array.StringBuilder); ok {
			b.lastData[i] = sb.DataLen()
		}
	}
	rec := b.rb.NewRecordBatch()
	b.rows = 0
	clear(b.keys)
	// The next batch is likely as large: reserve now instead of growing (and copying) per row.
	b.rb.Reserve(rows)
	for i, n := range b.lastData {
		if sb, ok := b.rb.Field(i).(*array.StringBuilder); ok && n > 0 {
			sb.ReserveData(n)
		}
	}
	return rec
}
