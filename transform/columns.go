package transform

import (
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/marketsync/marketsync/schemas"
)

// colBuilder accumulates one column of a batch straight into allocator memory: an append is a
// store and a bounds check, without arrow's per-value interface call, type switch and capacity
// bookkeeping (which took a fifth of the transform's time). Strings and JSON text, 64-bit
// integers, floats, timestamps and booleans are built here; decimals and string lists, rare,
// use arrow's own builder (fb).
//
// The buffers of a finished batch belong to it; the next batch starts on new buffers sized
// like the last one's, so they are not grown (and copied) row by row.
type colBuilder struct {
	kind schemas.Kind
	dt   arrow.DataType
	mem  memory.Allocator
	fb   array.Builder // decimals and string lists

	valid, vals, data *memory.Buffer
	// Views of the buffers' whole capacity: the validity bitmap, then per kind the values
	// (i64: Int64 and Timestamp; f64; bits: Bool), or a string's offsets and bytes.
	validB []byte
	i64    []int64
	f64    []float64
	bits   []byte
	offs   []int32
	dataB  []byte

	n, nulls, dataLen int
	cap               int // values every buffer has room for
}

func newColBuilder(mem memory.Allocator, c schemas.Column, dt arrow.DataType) *colBuilder {
	cb := &colBuilder{kind: c.Kind, dt: dt, mem: mem}
	switch c.Kind {
	case schemas.Decimal, schemas.StringList:
		cb.fb = array.NewBuilder(mem, dt)
	default:
		cb.start(0, 0)
	}
	return cb
}

// start begins a batch on new buffers with room for rows values and dataBytes string bytes.
func (c *colBuilder) start(rows, dataBytes int) {
	c.n, c.nulls, c.dataLen = 0, 0, 0
	c.valid = memory.NewResizableBuffer(c.mem)
	c.vals = memory.NewResizableBuffer(c.mem)
	if c.isString() {
		c.data = memory.NewResizableBuffer(c.mem)
		c.data.Reserve(max(dataBytes, 64))
		c.dataB = c.data.Buf()
	}
	c.grow(max(rows, 64))
	if c.isString() {
		c.offs[0] = 0
	}
}

func (c *colBuilder) isString() bool { return c.kind == schemas.String || c.kind == schemas.JSON }

// grow makes room for at least rows values in all.
func (c *colBuilder) grow(rows int) {
	c.cap = rows
	c.valid.Reserve((rows + 7) / 8)
	c.validB = c.valid.Buf()
	switch c.kind {
	case schemas.String, schemas.JSON:
		c.vals.Reserve((rows + 1) * 4)
		c.offs = unsafe.Slice((*int32)(unsafe.Pointer(unsafe.SliceData(c.vals.Buf()))), c.vals.Cap()/4)
	case schemas.Float64:
		c.vals.Reserve(rows * 8)
		c.f64 = unsafe.Slice((*float64)(unsafe.Pointer(unsafe.SliceData(c.vals.Buf()))), c.vals.Cap()/8)
	case schemas.Bool:
		c.vals.Reserve((rows + 7) / 8)
		c.bits = c.vals.Buf()
	default: // Int64, Timestamp
		c.vals.Reserve(rows * 8)
		c.i64 = unsafe.Slice((*int64)(unsafe.Pointer(unsafe.SliceData(c.vals.Buf()))), c.vals.Cap()/8)
	}
}

// next makes room for one more value and sets its validity bit.
func (c *colBuilder) next(valid bool) {
	if c.n >= c.cap {
		c.grow(2 * c.cap)
	}
	if valid {
		c.validB[c.n>>3] |= 1 << (c.n & 7)
	} else {
		c.validB[c.n>>3] &^= 1 << (c.n & 7)
		c.nulls++
	}
}

func (c *colBuilder) appendNull() {
	if c.fb != nil {
		c.fb.AppendNull()
		return
	}
	c.next(false)
	switch c.kind {
	case schemas.String, schemas.JSON:
		c.offs[c.n+1] = int32(c.dataLen)
	case schemas.Float64:
		c.f64[c.n] = 0
	case schemas.Bool:
		c.bits[c.n>>3] &^= 1 << (c.n & 7)
	default:
		c.i64[c.n] = 0
	}
	c.n++
}

func (c *colBuilder) appendBytes(v []byte) {
	c.next(true)
	if c.dataLen+len(v) > len(c.dataB) {
		c.data.Reserve(max(2*len(c.dataB), c.dataLen+len(v)))
		c.dataB = c.data.Buf()
	}
	c.dataLen += copy(c.dataB[c.dataLen:], v)
	c.offs[c.n+1] = int32(c.dataLen)
	c.n++
}

func (c *colBuilder) appendInt(v int64) {
	c.next(true)
	c.i64[c.n] = v
	c.n++
}

// appendValue appends a converted value of the column's kind.
func (c *colBuilder) appendValue(v *value) {
	if v.null {
		c.appendNull()
		return
	}
	switch c.kind {
	case schemas.String, schemas.JSON:
		c.appendBytes(v.b)
	case schemas.Int64, schemas.Timestamp:
		c.appendInt(v.i)
	case schemas.Float64:
		c.next(true)
		c.f64[c.n] = v.f
		c.n++
	case schemas.Bool:
		c.next(true)
		if v.i == 1 {
			c.bits[c.n>>3] |= 1 << (c.n & 7)
		} else {
			c.bits[c.n>>3] &^= 1 << (c.n & 7)
		}
		c.n++
	case schemas.Decimal:
		c.fb.(*array.Decimal128Builder).Append(v.d)
	case schemas.StringList:
		lb := c.fb.(*array.ListBuilder)
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

// finish returns the column's array of the batch and starts the next batch, sized like this one.
func (c *colBuilder) finish() arrow.Array {
	if c.fb != nil {
		rows := c.fb.Len()
		a := c.fb.NewArray()
		c.fb.Reserve(rows)
		return a
	}
	rows := c.n
	c.valid.ResizeNoShrink((rows + 7) / 8)
	bufs := []*memory.Buffer{c.valid, c.vals}
	switch c.kind {
	case schemas.String, schemas.JSON:
		c.vals.ResizeNoShrink((rows + 1) * 4)
		c.data.ResizeNoShrink(c.dataLen)
		bufs = append(bufs, c.data)
	case schemas.Bool:
		c.vals.ResizeNoShrink((rows + 7) / 8)
	default:
		c.vals.ResizeNoShrink(rows * 8)
	}
	if c.nulls == 0 {
		bufs[0] = nil
	}
	d := array.NewData(c.dt, rows, bufs, nil, c.nulls, 0)
	a := array.MakeFromData(d)
	d.Release()
	dataLen := c.dataLen
	c.release()
	c.start(rows, dataLen)
	return a
}

func (c *colBuilder) release() {
	if c.fb != nil {
		c.fb.Release()
		return
	}
	for _, b := range []*memory.Buffer{c.valid, c.vals, c.data} {
		if b != nil {
			b.Release()
		}
	}
	c.valid, c.vals, c.data = nil, nil, nil
	c.validB, c.i64, c.f64, c.bits, c.offs, c.dataB = nil, nil, nil, nil, nil, nil
}
