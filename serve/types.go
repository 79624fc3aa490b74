package serve

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"math"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	bindings "github.com/duckdb/duckdb-go-bindings"
)

// PostgreSQL type OIDs (pg_type.oid) that results are described with.
const (
	oidBool        = 16
	oidBytea       = 17
	oidInt8        = 20
	oidInt2        = 21
	oidInt4        = 23
	oidText        = 25
	oidJSON        = 114
	oidFloat4      = 700
	oidFloat8      = 701
	oidVarchar     = 1043
	oidDate        = 1082
	oidTime        = 1083
	oidTimestamp   = 1114
	oidTimestampTZ = 1184
	oidInterval    = 1186
	oidTimeTZ      = 1266
	oidNumeric     = 1700
	oidUUID        = 2950
)

// arrayOID maps an element type's OID to its array type's OID.
var arrayOID = map[uint32]uint32{
	oidBool: 1000, oidBytea: 1001, oidInt2: 1005, oidInt4: 1007, oidText: 1009, oidVarchar: 1015,
	oidInt8: 1016, oidFloat4: 1021, oidFloat8: 1022, oidDate: 1182, oidTime: 1183, oidTimestamp: 1115,
	oidTimestampTZ: 1185, oidInterval: 1187, oidNumeric: 1231, oidUUID: 2951, oidJSON: 199,
}

// typeSize is pg_type.typlen: the fixed size in bytes, or -1 for variable-length types.
var typeSize = map[uint32]int16{
	oidBool: 1, oidInt2: 2, oidInt4: 4, oidInt8: 8, oidFloat4: 4, oidFloat8: 8, oidDate: 4, oidTime: 8,
	oidTimestamp: 8, oidTimestampTZ: 8, oidInterval: 16, oidUUID: 16, oidTimeTZ: 12,
}

// duckType is what the server needs to know of a DuckDB logical type.
type duckType struct {
	id           bindings.Type
	alias        string // e.g. JSON
	width, scale uint8  // DECIMAL
	elem         *duckType
}

func describeType(lt bindings.LogicalType) duckType {
	if lt.Ptr == nil { // a parameter DuckDB could not type
		return duckType{id: bindings.TypeInvalid}
	}
	t := duckType{id: bindings.GetTypeId(lt), alias: bindings.LogicalTypeGetAlias(lt)}
	switch t.id {
	case bindings.TypeDecimal:
		t.width, t.scale = bindings.DecimalWidth(lt), bindings.DecimalScale(lt)
	case bindings.TypeList:
		c := bindings.ListTypeChildType(lt)
		e := describeType(c)
		bindings.DestroyLogicalType(&c)
		t.elem = &e
	case bindings.TypeArray:
		c := bindings.ArrayTypeChildType(lt)
		e := describeType(c)
		bindings.DestroyLogicalType(&c)
		t.elem = &e
	}
	return t
}

// oid returns the PostgreSQL type a DuckDB type is described as. Types without a PostgreSQL
// counterpart (structs, maps, unions, nested lists) are JSON; the rest that have no better
// match are text.
func (t duckType) oid() uint32 {
	if strings.EqualFold(t.alias, "json") {
		return oidJSON
	}
	switch t.id {
	case bindings.TypeBoolean:
		return oidBool
	case bindings.TypeTinyInt, bindings.TypeSmallInt, bindings.TypeUTinyInt:
		return oidInt2
	case bindings.TypeInteger, bindings.TypeUSmallInt:
		return oidInt4
	case bindings.TypeBigInt, bindings.TypeUInteger:
		return oidInt8
	case bindings.TypeUBigInt, bindings.TypeHugeInt, bindings.TypeUHugeInt, bindings.TypeDecimal, bindings.TypeBigNum:
		return oidNumeric
	case bindings.TypeFloat:
		return oidFloat4
	case bindings.TypeDouble:
		return oidFloat8
	case bindings.TypeVarchar, bindings.TypeEnum:
		return oidText
	case bindings.TypeBlob:
		return oidBytea
	case bindings.TypeDate:
		return oidDate
	case bindings.TypeTime, bindings.TypeTimeNS:
		return oidTime
	case bindings.TypeTimeTZ:
		return oidTimeTZ
	case bindings.TypeTimestamp, bindings.TypeTimestampS, bindings.TypeTimestampMS, bindings.TypeTimestampNS:
		return oidTimestamp
	case bindings.TypeTimestampTZ:
		return oidTimestampTZ
	case bindings.TypeInterval:
		return oidInterval
	case bindings.TypeUUID:
		return oidUUID
	case bindings.TypeList, bindings.TypeArray:
		if t.elem != nil {
			if a, ok := arrayOID[t.elem.oid()]; ok && t.elem.id != bindings.TypeList && t.elem.id != bindings.TypeArray {
				return a
			}
		}
		return oidJSON
	case bindings.TypeStruct, bindings.TypeMap, bindings.TypeUnion, bindings.TypeVariant:
		return oidJSON
	case bindings.TypeInvalid, bindings.TypeAny, bindings.TypeSQLNull:
		return 0
	}
	return oidText
}

// elemOID is the element OID of an array OID (0 if oid is not an array).
func elemOID(oid uint32) uint32 {
	for e, a := range arrayOID {
		if a == oid {
			return e
		}
	}
	return 0
}

// binaryOK reports whether the server can send values of oid in binary format.
func binaryOK(oid uint32) bool {
	switch oid {
	case oidBool, oidBytea, oidInt2, oidInt4, oidInt8, oidText, oidVarchar, oidJSON, oidFloat4, oidFloat8,
		oidDate, oidTime, oidTimestamp, oidTimestampTZ, oidInterval, oidNumeric, oidUUID:
		return true
	}
	if e := elemOID(oid); e != 0 {
		return binaryOK(e)
	}
	return false
}

var pgEpoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

const pgEpochMicros = 946684800000000 // 2000-01-01 in Unix microseconds

// encoder appends the wire form of row i of a column to b.
type encoder func(b []byte, arr arrow.Array, i int) []byte

// newEncoder returns the encoder of a column described as oid, in text or binary format.
func newEncoder(oid uint32, binaryFmt bool) encoder {
	if binaryFmt && binaryOK(oid) {
		return func(b []byte, arr arrow.Array, i int) []byte { return appendBinary(b, arr, i, oid) }
	}
	return func(b []byte, arr arrow.Array, i int) []byte { return appendText(b, arr, i, oid, false) }
}

func unwrap(arr arrow.Array) arrow.Array {
	for {
		switch a := arr.(type) {
		case array.ExtensionArray:
			arr = a.Storage()
		case *array.Dictionary:
			return a
		default:
			return arr
		}
	}
}

// micros converts an Arrow timestamp or time value to microseconds.
func micros(v int64, unit arrow.TimeUnit) int64 {
	switch unit {
	case arrow.Second:
		return v * 1_000_000
	case arrow.Millisecond:
		return v * 1000
	case arrow.Nanosecond:
		return v / 1000
	}
	return v
}

const (
	infinityMicros    = math.MaxInt64
	negInfinityMicros = -math.MaxInt64
)

// appendText appends row i's PostgreSQL text form. inArray quotes strings as array elements.
func appendText(b []byte, arr arrow.Array, i int, oid uint32, inArray bool) []byte {
	arr = unwrap(arr)
	switch a := arr.(type) {
	case *array.Boolean:
		if a.Value(i) {
			return append(b, 't')
		}
		return append(b, 'f')
	case *array.Int8:
		return strconv.AppendInt(b, int64(a.Value(i)), 10)
	case *array.Int16:
		return strconv.AppendInt(b, int64(a.Value(i)), 10)
	case *array.Int32:
		return strconv.AppendInt(b, int64(a.Value(i)), 10)
	case *array.Int64:
		return strconv.AppendInt(b, a.Value(i), 10)
	case *array.Uint8:
		return strconv.AppendUint(b, uint64(a.Value(i)), 10)
	case *array.Uint16:
		return strconv.AppendUint(b, uint64(a.Value(i)), 10)
	case *array.Uint32:
		return strconv.AppendUint(b, uint64(a.Value(i)), 10)
	case *array.Uint64:
		return strconv.AppendUint(b, a.Value(i), 10)
	case *array.Float32:
		return appendFloat(b, float64(a.Value(i)), 32)
	case *array.Float64:
		return appendFloat(b, a.Value(i), 64)
	case *array.Decimal128:
		return append(b, decimalString(a.Value(i).BigInt(), a.DataType().(*arrow.Decimal128Type).Scale)...)
	case *array.Decimal64:
		return append(b, decimalString(big.NewInt(int64(a.Value(i))), a.DataType().(*arrow.Decimal64Type).Scale)...)
	case *array.Decimal32:
		return append(b, decimalString(big.NewInt(int64(a.Value(i))), a.DataType().(*arrow.Decimal32Type).Scale)...)
	case *array.String:
		return appendStr(b, a.Value(i), inArray)
	case *array.LargeString:
		return appendStr(b, a.Value(i), inArray)
	case *array.StringView:
		return appendStr(b, a.Value(i), inArray)
	case *array.Binary:
		return appendBytea(b, a.Value(i), inArray)
	case *array.LargeBinary:
		return appendBytea(b, a.Value(i), inArray)
	case *array.BinaryView:
		return appendBytea(b, a.Value(i), inArray)
	case *array.FixedSizeBinary:
		if oid == oidUUID && a.DataType().(*arrow.FixedSizeBinaryType).ByteWidth == 16 {
			return appendUUID(b, a.Value(i))
		}
		return appendBytea(b, a.Value(i), inArray)
	case *array.Date32:
		return append(b, time.Unix(int64(a.Value(i))*86400, 0).UTC().Format("2006-01-02")...)
	case *array.Date64:
		return append(b, time.UnixMilli(int64(a.Value(i))).UTC().Format("2006-01-02")...)
	case *array.Time64:
		return appendTimeOfDay(b, micros(int64(a.Value(i)), a.DataType().(*arrow.Time64Type).Unit))
	case *array.Time32:
		return appendTimeOfDay(b, micros(int64(a.Value(i)), a.DataType().(*arrow.Time32Type).Unit))
	case *array.Timestamp:
		us := micros(int64(a.Value(i)), a.DataType().(*arrow.TimestampType).Unit)
		return appendTimestamp(b, us, oid == oidTimestampTZ, inArray)
	case *array.MonthDayNanoInterval:
		v := a.Value(i)
		return appendInterval(b, v.Months, v.Days, v.Nanoseconds/1000, inArray)
	case *array.Dictionary:
		return appendText(b, a.Dictionary(), a.GetValueIndex(i), oid, inArray)
	case *array.List, *array.LargeList, *array.FixedSizeList, *array.ListView:
		if oid == oidJSON {
			return appendJSON(b, arr, i)
		}
		return appendArrayText(b, arr.(array.ListLike), i, elemOID(oid))
	case *array.Struct, *array.Map, *array.DenseUnion, *array.SparseUnion:
		return appendJSON(b, arr, i)
	}
	return append(b, arr.ValueStr(i)...)
}

func appendFloat(b []byte, f float64, bits int) []byte {
	switch {
	case math.IsNaN(f):
		return append(b, "NaN"...)
	case math.IsInf(f, 1):
		return append(b, "Infinity"...)
	case math.IsInf(f, -1):
		return append(b, "-Infinity"...)
	}
	return strconv.AppendFloat(b, f, 'g', -1, bits)
}

func decimalString(unscaled *big.Int, scale int32) string {
	s := unscaled.String()
	if scale <= 0 {
		return s
	}
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	for len(s) <= int(scale) {
		s = "0" + s
	}
	s = s[:len(s)-int(scale)] + "." + s[len(s)-int(scale):]
	if neg {
		s = "-" + s
	}
	return s
}

func appendStr(b []byte, s string, inArray bool) []byte {
	if !inArray {
		return append(b, s...)
	}
	if s != "" && !strings.EqualFold(s, "null") && !strings.ContainsAny(s, "{},\"\\ \t\n\r\f\v") {
		return append(b, s...)
	}
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			b = append(b, '\\')
		}
		b = append(b, s[i])
	}
	return append(b, '"')
}

func appendBytea(b []byte, v []byte, inArray bool) []byte {
	if inArray {
		b = append(b, `"\\x`...)
	} else {
		b = append(b, `\x`...)
	}
	b = hex.AppendEncode(b, v)
	if inArray {
		b = append(b, '"')
	}
	return b
}

func appendUUID(b []byte, v []byte) []byte {
	h := hex.EncodeToString(v)
	return append(b, h[0:8]+"-"+h[8:12]+"-"+h[12:16]+"-"+h[16:20]+"-"+h[20:]...)
}

func appendTimeOfDay(b []byte, us int64) []byte {
	t := time.Unix(0, 0).UTC().Add(time.Duration(us) * time.Microsecond)
	if us >= 86400*1_000_000 {
		return append(b, "24:00:00"...)
	}
	return append(b, t.Format("15:04:05.999999")...)
}

func appendTimestamp(b []byte, us int64, tz, inArray bool) []byte {
	switch us {
	case infinityMicros:
		return append(b, "infinity"...)
	case negInfinityMicros:
		return append(b, "-infinity"...)
	}
	t := time.UnixMicro(us).UTC()
	if inArray {
		b = append(b, '"')
	}
	b = t.AppendFormat(b, "2006-01-02 15:04:05.999999")
	if tz {
		b = append(b, "+00"...)
	}
	if inArray {
		b = append(b, '"')
	}
	return b
}

// appendInterval writes PostgreSQL's default (postgres) interval style: 1 year 2 mons 3 days 04:05:06.
func appendInterval(b []byte, months, days int32, us int64, inArray bool) []byte {
	var parts []string
	if y := months / 12; y != 0 {
		parts = append(parts, plural(int64(y), "year", "years"))
	}
	if m := months % 12; m != 0 {
		parts = append(parts, plural(int64(m), "mon", "mons"))
	}
	if days != 0 {
		parts = append(parts, plural(int64(days), "day", "days"))
	}
	if us != 0 || len(parts) == 0 {
		sign := ""
		if us < 0 {
			sign, us = "-", -us
		}
		h, rem := us/3_600_000_000, us%3_600_000_000
		m, rem := rem/60_000_000, rem%60_000_000
		s, frac := rem/1_000_000, rem%1_000_000
		c := sign + pad2(h) + ":" + pad2(m) + ":" + pad2(s)
		if frac != 0 {
			c += strings.TrimRight("."+strconv.FormatInt(1_000_000+frac, 10)[1:], "0")
		}
		parts = append(parts, c)
	}
	s := strings.Join(parts, " ")
	if inArray {
		s = `"` + s + `"`
	}
	return append(b, s...)
}

func plural(n int64, one, many string) string {
	if n == 1 || n == -1 {
		return strconv.FormatInt(n, 10) + " " + one
	}
	return strconv.FormatInt(n, 10) + " " + many
}

func pad2(n int64) string {
	if n < 10 {
		return "0" + strconv.FormatInt(n, 10)
	}
	return strconv.FormatInt(n, 10)
}

// appendArrayText writes a one-dimensional PostgreSQL array literal: {1,2,NULL,"a b"}.
func appendArrayText(b []byte, l array.ListLike, i int, elem uint32) []byte {
	start, end := l.ValueOffsets(i)
	vals := l.ListValues()
	b = append(b, '{')
	for j := start; j < end; j++ {
		if j > start {
			b = append(b, ',')
		}
		if vals.IsNull(int(j)) {
			b = append(b, "NULL"...)
			continue
		}
		b = appendText(b, vals, int(j), elem, true)
	}
	return append(b, '}')
}

// appendJSON writes a nested value (struct, map, union, nested list) as JSON text.
func appendJSON(b []byte, arr arrow.Array, i int) []byte {
	v := jsonValue(arr, i)
	out, err := json.Marshal(v)
	if err != nil {
		return append(b, arr.ValueStr(i)...)
	}
	return append(b, out...)
}

func jsonValue(arr arrow.Array, i int) any {
	arr = unwrap(arr)
	if arr.IsNull(i) {
		return nil
	}
	switch a := arr.(type) {
	case *array.Struct:
		m := map[string]any{}
		st := a.DataType().(*arrow.StructType)
		for f := 0; f < a.NumField(); f++ {
			m[st.Field(f).Name] = jsonValue(a.Field(f), i)
		}
		return m
	case *array.Map:
		start, end := a.ValueOffsets(i)
		keys, items := a.Keys(), a.Items()
		m := map[string]any{}
		for j := start; j < end; j++ {
			m[string(appendText(nil, keys, int(j), oidText, false))] = jsonValue(items, int(j))
		}
		return m
	case array.ListLike:
		start, end := a.ValueOffsets(i)
		out := make([]any, 0, end-start)
		for j := start; j < end; j++ {
			out = append(out, jsonValue(a.ListValues(), int(j)))
		}
		return out
	case *array.Boolean:
		return a.Value(i)
	case *array.Int8, *array.Int16, *array.Int32, *array.Int64, *array.Uint8, *array.Uint16, *array.Uint32, *array.Uint64,
		*array.Decimal128, *array.Decimal64, *array.Decimal32:
		return json.Number(appendText(nil, a, i, oidNumeric, false))
	case *array.Float32, *array.Float64:
		s := string(appendText(nil, a, i, oidFloat8, false))
		if _, err := strconv.ParseFloat(s, 64); err != nil || strings.ContainsAny(s, "IN") {
			return s
		}
		return json.Number(s)
	case *array.Timestamp:
		tz := a.DataType().(*arrow.TimestampType).TimeZone != ""
		o := uint32(oidTimestamp)
		if tz {
			o = oidTimestampTZ
		}
		return string(appendText(nil, a, i, o, false))
	}
	return string(appendText(nil, arr, i, oidText, false))
}

// appendBinary appends row i's PostgreSQL binary form.
func appendBinary(b []byte, arr arrow.Array, i int, oid uint32) []byte {
	arr = unwrap(arr)
	if d, ok := arr.(*array.Dictionary); ok {
		return appendBinary(b, d.Dictionary(), d.GetValueIndex(i), oid)
	}
	switch oid {
	case oidBool:
		if arr.(*array.Boolean).Value(i) {
			return append(b, 1)
		}
		return append(b, 0)
	case oidInt2:
		return binary.BigEndian.AppendUint16(b, uint16(intValue(arr, i)))
	case oidInt4:
		return binary.BigEndian.AppendUint32(b, uint32(intValue(arr, i)))
	case oidInt8:
		return binary.BigEndian.AppendUint64(b, uint64(intValue(arr, i)))
	case oidFloat4:
		return binary.BigEndian.AppendUint32(b, math.Float32bits(arr.(*array.Float32).Value(i)))
	case oidFloat8:
		return binary.BigEndian.AppendUint64(b, math.Float64bits(arr.(*array.Float64).Value(i)))
	case oidDate:
		days := int64(arr.(*array.Date32).Value(i)) - 10957
		return binary.BigEndian.AppendUint32(b, uint32(int32(days)))
	case oidTime:
		switch a := arr.(type) {
		case *array.Time64:
			return binary.BigEndian.AppendUint64(b, uint64(micros(int64(a.Value(i)), a.DataType().(*arrow.Time64Type).Unit)))
		}
	case oidTimestamp, oidTimestampTZ:
		a := arr.(*array.Timestamp)
		us := micros(int64(a.Value(i)), a.DataType().(*arrow.TimestampType).Unit)
		switch us {
		case infinityMicros:
		case negInfinityMicros:
			us = math.MinInt64
		default:
			us -= pgEpochMicros
		}
		return binary.BigEndian.AppendUint64(b, uint64(us))
	case oidInterval:
		v := arr.(*array.MonthDayNanoInterval).Value(i)
		b = binary.BigEndian.AppendUint64(b, uint64(v.Nanoseconds/1000))
		b = binary.BigEndian.AppendUint32(b, uint32(v.Days))
		return binary.BigEndian.AppendUint32(b, uint32(v.Months))
	case oidUUID:
		switch a := arr.(type) {
		case *array.FixedSizeBinary:
			return append(b, a.Value(i)...)
		default:
			u, err := hex.DecodeString(strings.ReplaceAll(string(appendText(nil, arr, i, oidText, false)), "-", ""))
			if err == nil && len(u) == 16 {
				return append(b, u...)
			}
		}
	case oidNumeric:
		return appendNumeric(b, string(appendText(nil, arr, i, oidNumeric, false)))
	}
	if e := elemOID(oid); e != 0 {
		if l, ok := arr.(array.ListLike); ok {
			return appendArrayBinary(b, l, i, e)
		}
	}
	// text, varchar, json and bytea: the binary form is the raw bytes
	switch a := arr.(type) {
	case *array.Binary:
		return append(b, a.Value(i)...)
	case *array.LargeBinary:
		return append(b, a.Value(i)...)
	case *array.BinaryView:
		return append(b, a.Value(i)...)
	}
	return appendText(b, arr, i, oid, false)
}

func intValue(arr arrow.Array, i int) int64 {
	switch a := arr.(type) {
	case *array.Int8:
		return int64(a.Value(i))
	case *array.Int16:
		return int64(a.Value(i))
	case *array.Int32:
		return int64(a.Value(i))
	case *array.Int64:
		return a.Value(i)
	case *array.Uint8:
		return int64(a.Value(i))
	case *array.Uint16:
		return int64(a.Value(i))
	case *array.Uint32:
		return int64(a.Value(i))
	case *array.Uint64:
		return int64(a.Value(i))
	}
	return 0
}

// appendNumeric encodes a decimal string ("-12.345", "NaN") in PostgreSQL's binary numeric
// form: ndigits, weight, sign, dscale, then base-10000 digits.
func appendNumeric(b []byte, s string) []byte {
	if s == "NaN" {
		return append(b, 0, 0, 0, 0, 0xC0, 0, 0, 0)
	}
	sign := uint16(0)
	if strings.HasPrefix(s, "-") {
		sign, s = 0x4000, s[1:]
	}
	intPart, frac, _ := strings.Cut(s, ".")
	dscale := len(frac)
	// pad the integer part on the left and the fraction on the right to groups of 4 digits
	for len(intPart)%4 != 0 {
		intPart = "0" + intPart
	}
	for len(frac)%4 != 0 {
		frac += "0"
	}
	all := intPart + frac
	digits := make([]uint16, 0, len(all)/4)
	for k := 0; k < len(all); k += 4 {
		n, _ := strconv.Atoi(all[k : k+4])
		digits = append(digits, uint16(n))
	}
	weight := len(intPart)/4 - 1
	for len(digits) > 0 && digits[0] == 0 {
		digits = digits[1:]
		weight--
	}
	for len(digits) > 0 && digits[len(digits)-1] == 0 {
		digits = digits[:len(digits)-1]
	}
	if len(digits) == 0 {
		weight, sign = 0, 0
	}
	b = binary.BigEndian.AppendUint16(b, uint16(len(digits)))
	b = binary.BigEndian.AppendUint16(b, uint16(int16(weight)))
	b = binary.BigEndian.AppendUint16(b, sign)
	b = binary.BigEndian.AppendUint16(b, uint16(dscale))
	for _, d := range digits {
		b = binary.BigEndian.AppendUint16(b, d)
	}
	return b
}

func appendArrayBinary(b []byte, l array.ListLike, i int, elem uint32) []byte {
	start, end := l.ValueOffsets(i)
	vals := l.ListValues()
	hasNull := uint32(0)
	for j := start; j < end; j++ {
		if vals.IsNull(int(j)) {
			hasNull = 1
		}
	}
	if end == start {
		b = binary.BigEndian.AppendUint32(b, 0)
		b = binary.BigEndian.AppendUint32(b, 0)
		return binary.BigEndian.AppendUint32(b, elem)
	}
	b = binary.BigEndian.AppendUint32(b, 1)
	b = binary.BigEndian.AppendUint32(b, hasNull)
	b = binary.BigEndian.AppendUint32(b, elem)
	b = binary.BigEndian.AppendUint32(b, uint32(end-start))
	b = binary.BigEndian.AppendUint32(b, 1)
	for j := start; j < end; j++ {
		if vals.IsNull(int(j)) {
			b = binary.BigEndian.AppendUint32(b, math.MaxUint32)
			continue
		}
		at := len(b)
		b = append(b, 0, 0, 0, 0)
		b = appendBinary(b, vals, int(j), elem)
		binary.BigEndian.PutUint32(b[at:], uint32(len(b)-at-4))
	}
	return b
}

// decodeBinaryParam turns a binary-format parameter of type oid into the text DuckDB casts
// from (or a blob). Unknown binary types are refused.
func decodeBinaryParam(oid uint32, v []byte) (param, bool) {
	txt := func(s string) (param, bool) { return param{bytes: []byte(s)}, true }
	switch oid {
	case oidBool:
		if len(v) == 1 {
			return txt(strconv.FormatBool(v[0] != 0))
		}
	case oidInt2:
		if len(v) == 2 {
			return txt(strconv.FormatInt(int64(int16(binary.BigEndian.Uint16(v))), 10))
		}
	case oidInt4:
		if len(v) == 4 {
			return txt(strconv.FormatInt(int64(int32(binary.BigEndian.Uint32(v))), 10))
		}
	case oidInt8:
		if len(v) == 8 {
			return txt(strconv.FormatInt(int64(binary.BigEndian.Uint64(v)), 10))
		}
	case oidFloat4:
		if len(v) == 4 {
			return txt(strconv.FormatFloat(float64(math.Float32frombits(binary.BigEndian.Uint32(v))), 'g', -1, 32))
		}
	case oidFloat8:
		if len(v) == 8 {
			return txt(strconv.FormatFloat(math.Float64frombits(binary.BigEndian.Uint64(v)), 'g', -1, 64))
		}
	case oidText, oidVarchar, oidJSON, 0:
		return param{bytes: v}, true
	case oidBytea:
		return param{blob: true, bytes: v}, true
	case oidDate:
		if len(v) == 4 {
			d := pgEpoch.AddDate(0, 0, int(int32(binary.BigEndian.Uint32(v))))
			return txt(d.Format("2006-01-02"))
		}
	case oidTimestamp, oidTimestampTZ:
		if len(v) == 8 {
			us := int64(binary.BigEndian.Uint64(v))
			t := time.UnixMicro(us + pgEpochMicros).UTC().Format("2006-01-02 15:04:05.999999")
			if oid == oidTimestampTZ {
				t += "+00"
			}
			return txt(t)
		}
	case oidUUID:
		if len(v) == 16 {
			return txt(string(appendUUID(nil, v)))
		}
	case oidNumeric:
		if s, ok := numericFromBinary(v); ok {
			return txt(s)
		}
	}
	return param{}, false
}

func numericFromBinary(v []byte) (string, bool) {
	if len(v) < 8 {
		return "", false
	}
	n := int(binary.BigEndian.Uint16(v))
	weight := int(int16(binary.BigEndian.Uint16(v[2:])))
	sign := binary.BigEndian.Uint16(v[4:])
	dscale := int(binary.BigEndian.Uint16(v[6:]))
	if sign == 0xC000 {
		return "NaN", true
	}
	if len(v) != 8+2*n {
		return "", false
	}
	var sb strings.Builder
	if sign == 0x4000 {
		sb.WriteByte('-')
	}
	digit := func(k int) int {
		if k < 0 || k >= n {
			return 0
		}
		return int(binary.BigEndian.Uint16(v[8+2*k:]))
	}
	if weight < 0 {
		sb.WriteByte('0')
	}
	for k := 0; k <= weight; k++ {
		s := strconv.Itoa(digit(k))
		if k > 0 {
			s = strings.Repeat("0", 4-len(s)) + s
		}
		sb.WriteString(s)
	}
	if dscale > 0 {
		var frac strings.Builder
		for k := weight + 1; frac.Len() < dscale; k++ {
			s := strconv.Itoa(digit(k))
			frac.WriteString(strings.Repeat("0", 4-len(s)) + s)
		}
		sb.WriteByte('.')
		sb.WriteString(frac.String()[:dscale])
	}
	return sb.String(), true
}
