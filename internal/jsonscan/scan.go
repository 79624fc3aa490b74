// Package jsonscan walks JSON bytes without decoding them: it finds object members and array
// elements as sub-slices of the input, so pages are split and fields read with no allocation.
// It checks structure (brackets, strings, literals) but leaves number syntax to the caller.
package jsonscan

import (
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"
	"unsafe"
)

// ErrSyntax is wrapped by every error this package returns.
var ErrSyntax = errors.New("invalid JSON")

func syntaxErr(b []byte, i int, what string) error {
	return fmt.Errorf("%w: %s at offset %d", ErrSyntax, what, i)
}

func ws(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// skipString returns the offset just past the string starting at b[i] == '"'.
func skipString(b []byte, i int) (int, error) {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '"':
			return j + 1, nil
		case '\\':
			j++
		}
	}
	return 0, syntaxErr(b, i, "unterminated string")
}

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
			switch b[j] {
			case '"':
				e, err := skipString(b, j)
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

// Object calls fn for each member of the object in b, with the raw key (without quotes, still
// escaped) and the raw value. It stops at the first error fn returns.
func Object(b []byte, fn func(key, val []byte) error) error {
	i := ws(b, 0)
	if i >= len(b) || b[i] != '{' {
		return syntaxErr(b, i, "want an object")
	}
	i = ws(b, i+1)
	if i < len(b) && b[i] == '}' {
		return nil
	}
	for {
		i = ws(b, i)
		if i >= len(b) || b[i] != '"' {
			return syntaxErr(b, i, "want a member name")
		}
		ke, err := skipString(b, i)
		if err != nil {
			return err
		}
		key := b[i+1 : ke-1]
		i = ws(b, ke)
		if i >= len(b) || b[i] != ':' {
			return syntaxErr(b, i, "want ':'")
		}
		vs := ws(b, i+1)
		ve, err := Skip(b, vs)
		if err != nil {
			return err
		}
		if err := fn(key, b[vs:ve]); err != nil {
			return err
		}
		i = ws(b, ve)
		if i >= len(b) {
			return syntaxErr(b, i, "unterminated object")
		}
		if b[i] == '}' {
			return nil
		}
		if b[i] != ',' {
			return syntaxErr(b, i, "want ',' or '}'")
		}
		i++
	}
}

// Array calls fn for each element of the array in b.
func Array(b []byte, fn func(val []byte) error) error {
	i := ws(b, 0)
	if i >= len(b) || b[i] != '[' {
		return syntaxErr(b, i, "want an array")
	}
	i = ws(b, i+1)
	if i < len(b) && b[i] == ']' {
		return nil
	}
	for {
		vs := ws(b, i)
		ve, err := Skip(b, vs)
		if err != nil {
			return err
		}
		if err := fn(b[vs:ve]); err != nil {
			return err
		}
		i = ws(b, ve)
		if i >= len(b) {
			return syntaxErr(b, i, "unterminated array")
		}
		if b[i] == ']' {
			return nil
		}
		if b[i] != ',' {
			return syntaxErr(b, i, "want ',' or ']'")
		}
		i++
	}
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
			if string(key) == k {
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
	esc := false
	for _, c := range in {
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
	// Escapes are rare in API data: let encoding/json apply JSON's exact rules (surrogate pairs).
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return nil, fmt.Errorf("%w: bad string escape", ErrSyntax)
	}
	if scratch == nil {
		return []byte(s), nil
	}
	*scratch = append((*scratch)[:0], s...)
	return *scratch, nil
}

// unsafeString views b as a string without copying; the caller must not keep it past b.
func unsafeString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// String is unsafeString for callers that parse numbers in place.
func String(b []byte) string { return unsafeString(b) }
