// Package jsonscan walks JSON bytes without decoding them: it finds object members and array
// elements as sub-slices of the input, so pages are split and fields read with no allocation.
// Skip checks structure (brackets, strings, literals) but leaves number syntax and string
// contents to the caller; Strict checks a value completely, for text that is stored as JSON.
package jsonscan

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// ErrSyntax is wrapped by every error this package returns.
var ErrSyntax = errors.New("invalid JSON")

func syntaxErr(b []byte, i int, what string) error {
	return fmt.Errorf("%w: %s at offset %d", ErrSyntax, what, i)
}

func ws(b []byte, i int) int {
	// One comparison for the usual case, a token right here (APIs send minified JSON).
	for i < len(b) && b[i] <= ' ' {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// skipString returns the offset just past the string starting at b[i] == '"'. Plain bytes pass
// 8 at a time (quote8); long strings jump from quote to quote with the vectorized
// bytes.IndexByte.
func skipString(b []byte, i int) (int, error) {
	j := i + 1
	for end := min(len(b), j+64); j+8 <= end; {
		m := quote8(binary.LittleEndian.Uint64(b[j:]))
		if m == 0 {
			j += 8
			continue
		}
		j += bits.TrailingZeros64(m) >> 3
		if b[j] == '"' {
			return j + 1, nil
		}
		j += 2 // a backslash and the byte it escapes
	}
	for j < len(b) && j < i+72 {
		switch b[j] {
		case '"':
			return j + 1, nil
		case '\\':
			j++
		}
		j++
	}
	for j < len(b) {
		k := bytes.IndexByte(b[j:], '"')
		if k < 0 {
			break
		}
		j += k
		// The quote is escaped if an odd number of backslashes precede it.
		n := 0
		for p := j - 1; p > i && b[p] == '\\'; p-- {
			n++
		}
		if n%2 == 0 {
			return j + 1, nil
		}
		j++
	}
	return 0, syntaxErr(b, i, "unterminated string")
}

// SkipString returns the offset just past the string that starts at b[i] == '"', and whether
// the string is plain: printable ASCII without escapes, so it is valid JSON and its content is
// b[i+1:end-1] (what Unquote would return). Plain strings are found in one pass, 8 bytes at a
// time; any other string is skipped as Skip does (its content unchecked).
func SkipString(b []byte, i int) (end int, plain bool, err error) {
	j := i + 1
	for ; j+8 <= len(b); j += 8 {
		if m := special8(binary.LittleEndian.Uint64(b[j:])); m != 0 {
			j += bits.TrailingZeros64(m) >> 3
			if b[j] == '"' {
				return j + 1, true, nil
			}
			end, err := skipString(b, i)
			return end, false, err
		}
	}
	for ; j < len(b); j++ {
		if c := b[j]; c == '"' {
			return j + 1, true, nil
		} else if c < 0x20 || c >= 0x80 || c == '\\' {
			break
		}
	}
	end, err = skipString(b, i)
	return end, false, err
}

// quote8 marks, in the high bit of each byte, the quotes and backslashes among the 8 bytes of x
// (little-endian). Borrows can only mark bytes above a marked one, so the lowest mark is exact.
func quote8(x uint64) uint64 {
	q := x ^ (ones * '"')
	bs := x ^ (ones * '\\')
	return (((q - ones) &^ q) | ((bs - ones) &^ bs)) & highs
}

// structural marks the bytes a container skip must look at.
var structural = [256]bool{'"': true, '{': true, '[': true, '}': true, ']': true}

// Skip returns the offset just past the value that starts at or after b[i].
func Skip(b []byte, i int) (int, error) {
	i = ws(b, i)
	if i >= len(b) {
		return 0, syntaxErr(b, i, "unexpected end of input")
	}
	switch c := b[i]; c {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			if !structural[b[j]] {
				continue
			}
			switch b[j] {
			case '"':
				// skipString's 8-bytes-at-a-time loop, inlined: a record is mostly short
				// strings, so the call was a good part of the split's time.
				k := j + 1
				for k+8 <= len(b) {
					m := quote8(binary.LittleEndian.Uint64(b[k:]))
					if m == 0 {
						k += 8
						continue
					}
					k += bits.TrailingZeros64(m) >> 3
					if b[k] == '"' {
						break
					}
					k += 2 // a backslash and the byte it escapes
				}
				if k < len(b) && b[k] == '"' {
					j = k
					continue
				}
				e, err := skipString(b, j) // near the end of b, or after an escape at its edge
				if err != nil {
					return 0, err
				}
				j = e - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1, nil
				}
			}
		}
		return 0, syntaxErr(b, i, "unterminated object or array")
	case 't', 'f', 'n':
		for _, lit := range []string{"true", "false", "null"} {
			if len(b)-i >= len(lit) && string(b[i:i+len(lit)]) == lit {
				return i + len(lit), nil
			}
		}
		return 0, syntaxErr(b, i, "bad literal")
	default:
		if c == '-' || (c >= '0' && c <= '9') {
			j := i + 1
			for j < len(b) {
				switch d := b[j]; {
				case d >= '0' && d <= '9', d == '.', d == 'e', d == 'E', d == '+', d == '-':
					j++
					continue
				}
				break
			}
			return j, nil
		}
		return 0, syntaxErr(b, i, fmt.Sprintf("unexpected character %q", c))
	}
}

// Members walks the object that starts at or after b[i]. For each member it calls fn with the
// raw key (without quotes, still escaped) and the offset where the value starts; fn returns the
// offset just past the value (usually from Skip, or from walking into it), so a caller that
// descends into a value never scans it twice. Members returns the offset past the object.
func Members(b []byte, i int, fn func(key []byte, vs int) (int, error)) (int, error) {
	i = ws(b, i)
	if i >= len(b) || b[i] != '{' {
		return 0, syntaxErr(b, i, "want an object")
	}
	i = ws(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i + 1, nil
	}
	for {
		i = ws(b, i)
		if i >= len(b) || b[i] != '"' {
			return 0, syntaxErr(b, i, "want a member name")
		}
		ke, err := skipString(b, i)
		if err != nil {
			return 0, err
		}
		key := b[i+1 : ke-1]
		i = ws(b, ke)
		if i >= len(b) || b[i] != ':' {
			return 0, syntaxErr(b, i, "want ':'")
		}
		vs := ws(b, i+1)
		if vs >= len(b) {
			return 0, syntaxErr(b, vs, "want a value")
		}
		ve, err := fn(key, vs)
		if err != nil {
			return 0, err
		}
		i = ws(b, ve)
		if i >= len(b) {
			return 0, syntaxErr(b, i, "unterminated object")
		}
		if b[i] == '}' {
			return i + 1, nil
		}
		if b[i] != ',' {
			return 0, syntaxErr(b, i, "want ',' or '}'")
		}
		i++
	}
}

// Elements walks the array that starts at or after b[i], like Members.
func Elements(b []byte, i int, fn func(vs int) (int, error)) (int, error) {
	i = ws(b, i)
	if i >= len(b) || b[i] != '[' {
		return 0, syntaxErr(b, i, "want an array")
	}
	i = ws(b, i+1)
	if i < len(b) && b[i] == ']' {
		return i + 1, nil
	}
	for {
		vs := ws(b, i)
		if vs >= len(b) {
			return 0, syntaxErr(b, vs, "want a value")
		}
		ve, err := fn(vs)
		if err != nil {
			return 0, err
		}
		i = ws(b, ve)
		if i >= len(b) {
			return 0, syntaxErr(b, i, "unterminated array")
		}
		if b[i] == ']' {
			return i + 1, nil
		}
		if b[i] != ',' {
			return 0, syntaxErr(b, i, "want ',' or ']'")
		}
		i++
	}
}

// Object calls fn for each member of the object in b with the raw key and the raw value.
func Object(b []byte, fn func(key, val []byte) error) error {
	_, err := Members(b, 0, func(key []byte, vs int) (int, error) {
		ve, err := Skip(b, vs)
		if err != nil {
			return 0, err
		}
		return ve, fn(key, b[vs:ve])
	})
	return err
}

// Array calls fn for each element of the array in b.
func Array(b []byte, fn func(val []byte) error) error {
	_, err := Elements(b, 0, func(vs int) (int, error) {
		ve, err := Skip(b, vs)
		if err != nil {
			return 0, err
		}
		return ve, fn(b[vs:ve])
	})
	return err
}

var errFound = errors.New("found")

// Get returns the raw value at the path of object keys, or nil if any key is absent (or a
// value on the way is not an object).
func Get(b []byte, path ...string) []byte {
	cur := b
	for _, k := range path {
		i := ws(cur, 0)
		if i >= len(cur) || cur[i] != '{' {
			return nil
		}
		var found []byte
		err := Object(cur, func(key, val []byte) error {
			if keyEquals(key, k) {
				found = val
				return errFound
			}
			return nil
		})
		if err != errFound {
			return nil
		}
		cur = found
	}
	return cur
}

// keyEquals reports whether the raw member name key (still escaped) names k.
func keyEquals(key []byte, k string) bool {
	if bytes.IndexByte(key, '\\') < 0 {
		return string(key) == k
	}
	name, _, ok := unescape(key, nil)
	return ok && string(name) == k
}

// Kind reports the JSON type of a raw value: '"', '{', '[', 't', 'f', 'n' or '0' for numbers.
func Kind(v []byte) byte {
	if len(v) == 0 {
		return 0
	}
	switch c := v[0]; c {
	case '"', '{', '[', 't', 'f', 'n':
		return c
	default:
		return '0'
	}
}

// IsNull reports whether v is absent or the literal null.
func IsNull(v []byte) bool { return len(v) == 0 || (len(v) == 4 && string(v) == "null") }

// Unquote returns the content of a raw JSON string. Without escapes it returns a sub-slice of
// the input (no copy); with escapes it decodes into *scratch (grown as needed; nil: a new
// buffer) and returns that.
func Unquote(v []byte, scratch *[]byte) ([]byte, error) {
	if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
		return nil, fmt.Errorf("%w: want a string", ErrSyntax)
	}
	in := v[1 : len(v)-1]
	// Plain ASCII without escapes (most API strings) is its own content: checked 8 bytes at a
	// time, with no separate UTF-8 pass.
	k := 0
	for ; k+8 <= len(in) && special8(binary.LittleEndian.Uint64(in[k:])) == 0; k += 8 {
	}
	for ; k < len(in) && in[k] >= 0x20 && in[k] < 0x80 && in[k] != '\\'; k++ {
	}
	if k == len(in) {
		return in, nil
	}
	esc := false
	for _, c := range in[k:] {
		if c == '\\' || c < 0x20 {
			esc = true
			break
		}
	}
	if !esc {
		if !utf8.Valid(in) {
			return nil, fmt.Errorf("%w: string is not valid UTF-8", ErrSyntax)
		}
		return in, nil
	}
	var buf []byte
	if scratch != nil {
		buf = (*scratch)[:0]
	}
	buf, _, ok := unescape(in, buf)
	if !ok || !utf8.Valid(buf) {
		return nil, fmt.Errorf("%w: bad string escape or invalid UTF-8", ErrSyntax)
	}
	if scratch != nil {
		*scratch = buf
	}
	return buf, nil
}

// unescape decodes JSON string content (without quotes) into out. An escaped lone surrogate
// becomes U+FFFD, as encoding/json decodes it, and is reported.
func unescape(in, out []byte) (_ []byte, lone, ok bool) {
	for i := 0; i < len(in); i++ {
		c := in[i]
		if c < 0x20 {
			return nil, lone, false
		}
		if c != '\\' {
			out = append(out, c)
			continue
		}
		i++
		if i >= len(in) {
			return nil, lone, false
		}
		switch in[i] {
		case '"', '\\', '/':
			out = append(out, in[i])
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, ok := hex4(in, i+1)
			if !ok {
				return nil, lone, false
			}
			i += 4
			if utf16.IsSurrogate(r) {
				r2, ok := rune(-1), false
				if i+6 < len(in) && in[i+1] == '\\' && in[i+2] == 'u' {
					r2, ok = hex4(in, i+3)
				}
				if d := utf16.DecodeRune(r, r2); ok && d != utf8.RuneError {
					r = d
					i += 6
				} else {
					r, lone = utf8.RuneError, true
				}
			}
			out = utf8.AppendRune(out, r)
		default:
			return nil, lone, false
		}
	}
	return out, lone, true
}

func hex4(in []byte, i int) (rune, bool) {
	if i+4 > len(in) {
		return 0, false
	}
	var r rune
	for _, c := range in[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}

// unsafeString views b as a string without copying; the caller must not keep it past b.
func unsafeString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// String is unsafeString for callers that parse numbers in place.
func String(b []byte) string { return unsafeString(b) }
