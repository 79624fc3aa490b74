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
	SyncedAt int64  // microseconds since the epoch
	Tenant   string // the tenant column; "" is schemas.DefaultTenant
}

// value is one column's converted value in the record being added. convert overwrites the
// whole slot every time, so nothing a previous record (or an earlier duplicate member) set can
// leak into this one; the slot is read only if the column was seen in this record.
type value struct {
	null    bool
	rounded bool // a decimal rounded half-even to the column's scale
	i       int64
	f       float64
	b       []byte
	d       decimal128.Num
	list    [][]byte
	// err: the value does not fit the column. It fails the record only if no later duplicate of
	// the member replaces it (last wins, as in encoding/json).
	err error
}

type column struct {
	schemas.Column
	idx     int
	scratch []byte
}

// node is one member name on the way down the declared column paths: the columns read from
// the member's whole value (leaves), and the names one level below it (children).
type node struct {
	key      string
	leaves   []*column
	children []*node
	// all is every column at or below this node: they are NULL again whenever the member occurs,
	// so a repeated member replaces the earlier one entirely (last wins, as in encoding/json).
	all []*column
	// raw: a leaf keeps the member's JSON text (Kind JSON), so the value is checked strictly even
	// where a conversion would not look (a string's escapes, a nested object's numbers).
	raw bool
	// order predicts the members of this object by position, as Batcher.order does at the top
	// level: a slot is used only when its raw key equals the member's, and it is rewritten in
	// place (no allocation) when the shape changes.
	order []childSlot
}

// childSlot is one predicted member of a nested object: its raw name (checked valid), the node
// it names (nil: not a declared path), and whether the raw name escapes a lone surrogate.
type childSlot struct {
	key  []byte
	ch   *node
	lone bool
}

func (n *node) child(key string) *node {
	for _, c := range n.children {
		if c.key == key {
			return c
		}
	}
	return nil
}

// Batcher accumulates records of one table into an Arrow batch. Its builders are reused across
// batches. It is not safe for concurrent use: one per stream worker.
type Batcher struct {
	table    *schemas.Table
	meta     Meta
	schema   *arrow.Schema
	builders []*colBuilder // one per column of the schema, declared then metadata
	cols     []*column
	decimals []*column
	byKey    map[string]*node
	pk       *column
	// Per-record state, reset by every Add before use: vals[i] is valid only if seen[i]; the
	// unknown members and the _extra text built from them; scratch for escaped member names and
	// for the strict checks (whose LoneSurrogates is cleared before each member).
	vals   []value
	seen   []bool
	bad    bool // some vals[i].err was set in this record
	plain  bool // the value being converted is a plain string (see setLeaves)
	extras []extraMember
	extra  []byte
	last   map[string]int // unknown member name -> its last index in extras, for many members
	keyBuf []byte
	strict jsonscan.Strict
	// Per-batch and cumulative state.
	keys    map[string]struct{}
	rows    int
	rounded int64
	metaIdx int
	digest  Digest
	// order predicts member order from the previous record (APIs emit keys in a stable order),
	// saving a map lookup per member. A slot is only a prediction: it is used when its raw key
	// equals the member's, so it can never map a member wrongly. slots interns the slot of each
	// raw name seen (checked once), so an optional member shifting the order costs a lookup,
	// not an allocation; it is bounded, so names that never repeat cannot grow it.
	order []*orderSlot
	slots map[string]*orderSlot
	spare childSlot // the slot of a nested member past maxChildSlots
	// The metadata columns' constant text, and the longest of it plus 2 (_extra's braces).
	source, runID, tenant []byte
	constText             int
	// textBound bounds the text of any one column of the pending batch.
	textBound int
}

// maxBatchText is the most text one string column of a batch holds (arrow's 32-bit offsets);
// a variable so that a test can reach it.
var maxBatchText = 1<<31 - 1

type orderSlot struct {
	key  string // the raw member name (still escaped), checked valid
	name string // its unescaped text
	lone bool   // the raw name escapes a lone surrogate
	g    *node  // nil: not a declared column
}

// extraMember is an unknown member of the record, bound for _extra.
type extraMember struct {
	name string // unescaped, to find repeats
	key  []byte // raw, as written
	val  []byte
	lone bool // key or value escapes a lone surrogate: write them repaired
}

// Digest summarizes the primary keys added since the last ResetDigest: two scans of a listing
// with equal digests listed the same rows. It costs O(1) memory however many rows pass.
type Digest struct {
	Rows int64
	Sum  uint64 // order-independent: the sum of FNV-1a hashes of the keys
}

// SetRunID changes the _run_id written from now on (a repeated scan within a run gets its own,
// so deletions can be judged against the last scan alone).
func (b *Batcher) SetRunID(id string) {
	b.meta.RunID, b.runID = id, []byte(id)
	b.constText = max(b.constText, len(id)+2)
}

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
	if meta.Tenant == "" {
		meta.Tenant = schemas.DefaultTenant
	}
	b := &Batcher{table: t, meta: meta, schema: t.Schema(),
		byKey: map[string]*node{}, keys: map[string]struct{}{},
		source: []byte(t.Source), runID: []byte(meta.RunID), tenant: []byte(meta.Tenant),
		constText: max(len(t.Source), len(meta.RunID), len(meta.Tenant)) + 2}
	for i, c := range t.AllColumns() {
		b.builders = append(b.builders, newColBuilder(mem, c, b.schema.Field(i).Type))
	}
	for i, c := range t.Columns {
		cc := &column{Column: c, idx: i}
		b.cols = append(b.cols, cc)
		n := b.byKey[c.Path[0]]
		if n == nil {
			n = &node{key: c.Path[0]}
			b.byKey[c.Path[0]] = n
		}
		n.all = append(n.all, cc)
		for _, k := range c.Path[1:] {
			ch := n.child(k)
			if ch == nil {
				ch = &node{key: k}
				n.children = append(n.children, ch)
			}
			n = ch
			n.all = append(n.all, cc)
		}
		n.leaves = append(n.leaves, cc)
		n.raw = n.raw || c.Kind == schemas.JSON
		if c.Name == t.PrimaryKey {
			b.pk = cc
		}
		if c.Kind == schemas.Decimal {
			b.decimals = append(b.decimals, cc)
		}
	}
	b.vals = make([]value, len(b.cols))
	b.seen = make([]bool, len(b.cols))
	b.metaIdx = len(t.Columns)
	return b
}

// Len is the number of rows pending.
func (b *Batcher) Len() int { return b.rows }

// Rounded is the number of decimal values rounded half-even to 10 fraction digits (see
// ParseDecimal) in the rows added so far, across batches. Records that were rejected do not
// count; a record re-added after ErrDuplicateKey counts once.
func (b *Batcher) Rounded() int64 { return b.rounded }

// Release frees the builders.
func (b *Batcher) Release() {
	for _, cb := range b.builders {
		cb.release()
	}
}

// Add converts one JSON object and appends it. On a *FieldError nothing is appended (every value
// is converted before any is appended), so the caller can quarantine the record and go on.
//
// The record must be valid JSON (RFC 8259, UTF-8) throughout, or it is a *FieldError: every part
// of it reaches the warehouse, and a JSON column holding invalid text would fail the load of the
// whole batch. Member names compare unescaped ("\u0075uid" is uuid); a repeated member
// replaces the earlier one (last wins, as in encoding/json), also in _extra. Escaped lone
// surrogates read as U+FFFD, in strings as in stored JSON text.
func (b *Batcher) Add(rec []byte) error {
	clear(b.seen) // a column not seen in this record is NULL; vals[i] is valid only if seen[i]
	b.bad = false
	b.extras = b.extras[:0]
	member := 0
	end, err := jsonscan.Members(rec, 0, func(key []byte, vs int) (int, error) {
		n := member
		member++
		if n >= len(b.order) || b.order[n].key != jsonscan.String(key) {
			slot, err := b.slot(key)
			if err != nil {
				return 0, err
			}
			if n < len(b.order) {
				b.order[n] = slot
			} else {
				b.order = append(b.order, slot)
			}
		}
		slot := b.order[n]
		b.strict.LoneSurrogates = false
		g := slot.g
		if g == nil {
			ve, err := b.strict.Skip(rec, vs, 1)
			if err != nil {
				return 0, err
			}
			b.extras = append(b.extras, extraMember{name: slot.name, key: key, val: rec[vs:ve], lone: slot.lone || b.strict.LoneSurrogates})
			return ve, nil
		}
		for _, c := range g.all {
			b.seen[c.idx] = false
		}
		var ve int
		var err error
		switch {
		case len(g.children) > 0 && rec[vs] == '{':
			// One walk of the nested object serves every flattened column under it.
			ve, err = b.walk(rec, vs, g, 2)
		case rec[vs] == '"' && !g.raw && len(g.leaves) > 0:
			// A plain string is found and checked in one pass; any other is checked by every
			// conversion of a string (Unquote).
			ve, b.plain, err = jsonscan.SkipString(rec, vs)
		default:
			ve, err = b.strict.Skip(rec, vs, 1)
		}
		if err != nil {
			return 0, err
		}
		err = b.setLeaves(g, rec[vs:ve])
		return ve, err
	})
	if err == nil {
		for _, c := range rec[end:] {
			if c != ' ' && c != '\t' && c != '\n' && c != '\r' {
				err = fmt.Errorf("%w: data after the record at offset %d", jsonscan.ErrSyntax, end)
				break
			}
		}
	}
	if err == nil && b.bad {
		for _, c := range b.cols {
			if b.seen[c.idx] && b.vals[c.idx].err != nil {
				err = b.vals[c.idx].err
				break
			}
		}
	}
	if err != nil {
		var fe *FieldError
		if errors.As(err, &fe) {
			fe.RecordID = b.recordID(rec)
			return fe
		}
		return &FieldError{Stream: b.table.Name, RecordID: b.recordID(rec), Field: "(record)", Value: truncate(string(rec), 80), Err: err}
	}
	pk := &b.vals[b.pk.idx]
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
	// Arrow strings have 32-bit offsets: no column of a batch may hold 2 GiB of text. A record
	// puts at most its own length (plus the braces of _extra) into any column, so the bound is
	// checked once per record.
	if b.textBound+len(rec)+b.constText > maxBatchText {
		return fmt.Errorf("stream %s: the batch would hold more than 2 GiB of text in one column after %d rows (arrow's 32-bit string offsets); lower batch_rows", b.table.Name, b.rows)
	}
	b.textBound += len(rec) + b.constText
	b.keys[key] = struct{}{}
	b.digest.Rows++
	b.digest.Sum += keyHash(key)
	b.appendRow()
	return nil
}

// maxSlots bounds the interned member names of a Batcher.
const maxSlots = 4096

// maxChildSlots bounds the predicted members of each nested object.
const maxChildSlots = 256

// slot returns the slot of the raw top-level member name key, checking the name the first time.
func (b *Batcher) slot(key []byte) (*orderSlot, error) {
	if s := b.slots[string(key)]; s != nil {
		return s, nil
	}
	b.strict.LoneSurrogates = false
	name, err := b.strict.Key(key, &b.keyBuf)
	if err != nil {
		return nil, err
	}
	s := &orderSlot{key: string(key), lone: b.strict.LoneSurrogates, g: b.byKey[string(name)]}
	s.name = s.key
	if string(name) != s.key {
		s.name = string(name)
	}
	if b.slots == nil {
		b.slots = map[string]*orderSlot{}
	}
	if len(b.slots) < maxSlots {
		b.slots[s.key] = s
	}
	return s, nil
}

// walk walks the object at rec[vs] once, converting the columns whose path continues below n.
// depth is how many containers enclose the object's member values. It returns the end of the
// object.
func (b *Batcher) walk(rec []byte, vs int, n *node, depth int) (int, error) {
	member := 0
	return jsonscan.Members(rec, vs, func(key []byte, ks int) (int, error) {
		m := member
		member++
		var slot *childSlot
		switch {
		case m < len(n.order):
			slot = &n.order[m]
		case m < maxChildSlots:
			n.order = append(n.order, childSlot{})
			slot = &n.order[m]
		default:
			slot = &b.spare // past the bound: looked up every time
			slot.key = nil
		}
		if string(slot.key) != string(key) || slot.key == nil {
			lone := b.strict.LoneSurrogates
			b.strict.LoneSurrogates = false
			name, err := b.strict.Key(key, &b.keyBuf)
			if err != nil {
				return 0, err
			}
			slot.key = append(slot.key[:0], key...)
			if slot.key == nil {
				slot.key = []byte{} // an empty name is a valid prediction too
			}
			slot.ch, slot.lone = n.child(jsonscan.String(name)), b.strict.LoneSurrogates
			b.strict.LoneSurrogates = lone || slot.lone
		} else if slot.lone {
			b.strict.LoneSurrogates = true
		}
		ch := slot.ch
		var err error
		if ch == nil {
			return b.strict.Skip(rec, ks, depth)
		}
		for _, c := range ch.all {
			b.seen[c.idx] = false
		}
		var ke int
		switch {
		case len(ch.children) > 0 && rec[ks] == '{':
			ke, err = b.walk(rec, ks, ch, depth+1)
		case rec[ks] == '"':
			// A plain string is valid JSON as it stands; any other gets the strict check.
			if ke, b.plain, err = jsonscan.SkipString(rec, ks); err == nil && !b.plain {
				ke, err = b.strict.Skip(rec, ks, depth)
			}
		default:
			ke, err = b.strict.Skip(rec, ks, depth)
		}
		if err != nil {
			return 0, err
		}
		err = b.setLeaves(ch, rec[ks:ke])
		return ke, err
	})
}

// setLeaves converts v into every column read from n's whole value. b.plain says v is a plain
// string (SkipString); it holds for this value only.
func (b *Batcher) setLeaves(n *node, v []byte) error {
	var err error
	for _, c := range n.leaves {
		if err = b.set(c, v); err != nil {
			break
		}
	}
	b.plain = false
	return err
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

// set converts v into column c's slot and marks the column seen. A value that does not fit is
// kept as the slot's error, since a later duplicate of the member may still replace it; invalid
// JSON (a string's bad escape or UTF-8) is returned, as it fails the record wherever it is.
func (b *Batcher) set(c *column, v []byte) error {
	if err := b.convert(c, v); err != nil {
		if errors.Is(err, jsonscan.ErrSyntax) {
			return err
		}
		b.vals[c.idx].err = err
		b.bad = true
	}
	b.seen[c.idx] = true
	return nil
}

// convert parses raw JSON v for column c into b.vals[c.idx]; it appends nothing. v is valid
// JSON except that a string may be unchecked (every branch that reads a string unquotes it,
// which checks it). For Kind JSON, b.strict.LoneSurrogates says whether v needs repair.
func (b *Batcher) convert(c *column, v []byte) error {
	out := &b.vals[c.idx]
	*out = value{list: out.list[:0]} // every field, every time: nothing survives from before
	if jsonscan.IsNull(v) {
		out.null = true
		return nil
	}
	kind := jsonscan.Kind(v)
	switch c.Kind {
	case schemas.String:
		switch kind {
		case '"':
			s, err := b.unquote(c, v)
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
		if b.strict.LoneSurrogates {
			c.scratch = jsonscan.ReplaceLoneSurrogates(c.scratch[:0], v)
			out.b = c.scratch
		}
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
			var err error
			if s, err = b.unquote(c, v); err != nil {
				return b.fail(c, v, err)
			}
		}
		switch string(s) {
		case "true":
			out.i = 1
		case "false":
			out.i = 0
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
		d, rounded, perr := parseDecimal(jsonscan.String(s))
		if perr != nil {
			return b.fail(c, v, perr)
		}
		out.d, out.rounded = d, rounded
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
		s, err := b.unquote(c, v)
		if err != nil {
			return nil, b.fail(c, v, err)
		}
		return s, nil
	}
	return nil, b.fail(c, v, fmt.Errorf("%w: want a %s", ErrType, c.Kind))
}

// unquote returns the content of the JSON string v: as it stands if it is plain (b.plain), else
// checked and unescaped by jsonscan.Unquote.
func (b *Batcher) unquote(c *column, v []byte) ([]byte, error) {
	if b.plain {
		return v[1 : len(v)-1], nil
	}
	return jsonscan.Unquote(v, &c.scratch)
}

// buildExtra writes the unknown members into b.extra as one JSON object (nothing if none), the
// last of each repeated name only.
func (b *Batcher) buildExtra() {
	b.extra = b.extra[:0]
	if len(b.extras) > 16 {
		if b.last == nil {
			b.last = map[string]int{}
		}
		clear(b.last)
		for i, m := range b.extras {
			b.last[m.name] = i
		}
	}
	for i, m := range b.extras {
		if b.repeated(i) {
			continue
		}
		if len(b.extra) == 0 {
			b.extra = append(b.extra, '{')
		} else {
			b.extra = append(b.extra, ',')
		}
		b.extra = append(b.extra, '"')
		if m.lone {
			b.extra = jsonscan.ReplaceLoneSurrogates(b.extra, m.key)
			b.extra = append(b.extra, '"', ':')
			b.extra = jsonscan.ReplaceLoneSurrogates(b.extra, m.val)
			continue
		}
		b.extra = append(b.extra, m.key...)
		b.extra = append(b.extra, '"', ':')
		b.extra = append(b.extra, m.val...)
	}
	if len(b.extra) > 0 {
		b.extra = append(b.extra, '}')
	}
}

// repeated reports whether a later unknown member has the same name as extras[i].
func (b *Batcher) repeated(i int) bool {
	if len(b.extras) > 16 {
		return b.last[b.extras[i].name] != i
	}
	for _, m := range b.extras[i+1:] {
		if m.name == b.extras[i].name {
			return true
		}
	}
	return false
}

func (b *Batcher) appendRow() {
	for _, c := range b.decimals {
		if b.seen[c.idx] && b.vals[c.idx].rounded {
			b.rounded++
		}
	}
	b.buildExtra()
	for _, c := range b.cols {
		if !b.seen[c.idx] {
			b.builders[c.idx].appendNull()
			continue
		}
		b.builders[c.idx].appendValue(&b.vals[c.idx])
	}
	m := b.builders[b.metaIdx:]
	m[0].appendBytes(b.source)
	m[1].appendInt(b.meta.SyncedAt)
	m[2].appendBytes(b.runID)
	m[3].appendNull()
	if len(b.extra) > 0 {
		m[4].appendBytes(b.extra)
	} else {
		m[4].appendNull()
	}
	m[5].appendBytes(b.tenant)
	b.rows++
}

// Flush returns the pending rows as a batch (nil if none) and resets the builders for reuse.
// The caller owns the batch and must Release it.
func (b *Batcher) Flush() arrow.RecordBatch {
	if b.rows == 0 {
		return nil
	}
	// Each column's next batch starts on buffers sized like this one's, so it is not grown
	// (and copied) row by row.
	cols := make([]arrow.Array, len(b.builders))
	for i, cb := range b.builders {
		cols[i] = cb.finish()
	}
	rec := array.NewRecordBatch(b.schema, cols, int64(b.rows))
	for _, a := range cols {
		a.Release()
	}
	b.rows, b.textBound = 0, 0
	clear(b.keys)
	return rec
}
