package jsonscan

import (
	"bytes"
	"encoding/binary"
	"math/bits"
	"unicode/utf8"
)

// MaxDepth is the deepest nesting Strict accepts, counting the document's root, as encoding/json
// does.
const MaxDepth = 10000

// Strict skips values like Skip but checks that each is valid JSON (RFC 8259) throughout: the
// grammar, number syntax, string escapes, control characters and UTF-8. Skip only matches
// brackets, which is enough to find a value's end but not to store its text where a strict
// parser reads it later (DuckDB's JSON type rejects the whole batch over one bad value).
//
// A Strict keeps its scratch between calls; the zero value is ready. It is not safe for
// concurrent use.
type Strict struct {
	// LoneSurrogates is set (never cleared by Strict) when a string or member name checked
	// escapes half of a UTF-16 surrogate pair (\ud800 alone). That is valid JSON grammar, and
	// decoders read it as U+FFFD, but it is not text: DuckDB's JSON parser rejects it. Clear it
	// before the values of interest; ReplaceLoneSurrogates repairs the text.
	LoneSurrogates bool
	stack          []byte
}

// Skip returns the offset just past the valid JSON value that starts at or after b[i], or an
// error wrapping ErrSyntax. depth is how many containers enclose the value (0 for a document's
// root), so the MaxDepth limit counts from the document's root.
func (s *Strict) Skip(b []byte, i, depth int) (int, error) {
	i = ws(b, i)
	if i >= len(b) {
		return 0, syntaxErr(b, i, "unexpected end of input")
	}
	switch b[i] {
	case '"':
		return s.str(b, i)
	case '{', '[':
		return s.container(b, i, depth)
	}
	return scalar(b, i)
}

// Key checks a raw member name as Members passes it (without quotes, still escaped) and
// returns its text: key itself when it has no escapes (no copy), else the unescaped name in
// *scratch (grown as needed). Escaped lone surrogates become U+FFFD and set LoneSurrogates.
func (s *Strict) Key(key []byte, scratch *[]byte) ([]byte, error) {
	for _, c := range key {
		if c == '\\' || c < 0x20 || c >= 0x80 {
			return s.slowKey(key, scratch)
		}
	}
	return key, nil
}

func (s *Strict) slowKey(key []byte, scratch *[]byte) ([]byte, error) {
	if bytes.IndexByte(key, '\\') < 0 {
		for _, c := range key {
			if c < 0x20 {
				return nil, syntaxErr(key, 0, "control character in a member name")
			}
		}
		if !utf8.Valid(key) {
			return nil, syntaxErr(key, 0, "member name is not valid UTF-8")
		}
		return key, nil
	}
	buf, lone, ok := unescape(key, (*scratch)[:0])
	if !ok || !utf8.Valid(buf) {
		return nil, syntaxErr(key, 0, "bad escape or invalid UTF-8 in a member name")
	}
	s.LoneSurrogates = s.LoneSurrogates || lone
	*scratch = buf
	return buf, nil
}

// scalar checks the literal or number at b[i] and returns the offset past it.
func scalar(b []byte, i int) (int, error) {
	switch c := b[i]; {
	case c == 't' || c == 'f' || c == 'n':
		for _, lit := range [...]string{"true", "false", "null"} {
			if len(b)-i >= len(lit) && string(b[i:i+len(lit)]) == lit {
				return i + len(lit), nil
			}
		}
		return 0, syntaxErr(b, i, "bad literal")
	case c == '-' || (c >= '0' && c <= '9'):
		return number(b, i)
	default:
		return 0, syntaxErr(b, i, "unexpected character "+quoteByte(c))
	}
}

func quoteByte(c byte) string {
	if c >= 0x20 && c < 0x7f {
		return "'" + string(rune(c)) + "'"
	}
	return "byte 0x" + string("0123456789abcdef"[c>>4]) + string("0123456789abcdef"[c&15])
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// number checks -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? at b[i].
func number(b []byte, i int) (int, error) {
	j := i
	if b[j] == '-' {
		j++
	}
	switch {
	case j < len(b) && b[j] == '0':
		j++
	case j < len(b) && b[j] >= '1' && b[j] <= '9':
		for j++; j < len(b) && isDigit(b[j]); j++ {
		}
	default:
		return 0, syntaxErr(b, j, "want a digit")
	}
	if j < len(b) && b[j] == '.' {
		j++
		if j >= len(b) || !isDigit(b[j]) {
			return 0, syntaxErr(b, j, "want a digit after the decimal point")
		}
		for j++; j < len(b) && isDigit(b[j]); j++ {
		}
	}
	if j < len(b) && (b[j] == 'e' || b[j] == 'E') {
		j++
		if j < len(b) && (b[j] == '+' || b[j] == '-') {
			j++
		}
		if j >= len(b) || !isDigit(b[j]) {
			return 0, syntaxErr(b, j, "want a digit in the exponent")
		}
		for j++; j < len(b) && isDigit(b[j]); j++ {
		}
	}
	return j, nil
}

const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// special8 marks, in the high bit of each byte, the bytes of the 8 in x (little-endian) that a
// string check must look at: '"', '\\', control characters and non-ASCII. Borrows can only mark
// bytes above a marked one, so the lowest mark is exact.
func special8(x uint64) uint64 {
	q := x ^ (ones * '"')
	bs := x ^ (ones * '\\')
	return ((x - ones*0x20) | x | ((q - ones) & ^q) | ((bs - ones) & ^bs)) & highs
}

// str checks the string at b[i] == '"' and returns the offset past its closing quote. Plain
// bytes pass 8 at a time.
func (s *Strict) str(b []byte, i int) (int, error) {
	j := i + 1
	for {
		if j+8 <= len(b) {
			m := special8(binary.LittleEndian.Uint64(b[j:]))
			if m == 0 {
				j += 8
				continue
			}
			j += bits.TrailingZeros64(m) >> 3
		} else if j >= len(b) {
			return 0, syntaxErr(b, i, "unterminated string")
		}
		switch c := b[j]; {
		case c == '"':
			return j + 1, nil
		case c == '\\':
			e, err := s.escape(b, j)
			if err != nil {
				return 0, err
			}
			j = e
		case c < 0x20:
			return 0, syntaxErr(b, j, "control character in a string")
		case c < 0x80:
			j++
		default:
			r, n := utf8.DecodeRune(b[j:])
			if r == utf8.RuneError && n == 1 {
				return 0, syntaxErr(b, j, "invalid UTF-8 in a string")
			}
			j += n
		}
	}
}

// escape checks the escape at b[j] == '\\' and returns the offset past it (past both halves of
// an escaped surrogate pair).
func (s *Strict) escape(b []byte, j int) (int, error) {
	if j+1 >= len(b) {
		return 0, syntaxErr(b, j, "unterminated escape")
	}
	switch b[j+1] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		return j + 2, nil
	case 'u':
	default:
		return 0, syntaxErr(b, j, "bad escape")
	}
	r, ok := hex4(b, j+2)
	if !ok {
		return 0, syntaxErr(b, j, "bad \\u escape")
	}
	j += 6
	if r < 0xd800 || r > 0xdfff {
		return j, nil
	}
	if r < 0xdc00 && j+6 <= len(b) && b[j] == '\\' && b[j+1] == 'u' {
		if r2, ok := hex4(b, j+2); ok && r2 >= 0xdc00 && r2 <= 0xdfff {
			return j + 6, nil
		}
	}
	s.LoneSurrogates = true
	return j, nil
}

// container checks the object or array at b[i] without recursion: the stack holds the
// closing bracket of each open container.
func (s *Strict) container(b []byte, i, depth int) (int, error) {
	stack := s.stack[:0]
	defer func() { s.stack = stack[:0] }()
	var err error
	after := false // a value just ended at i; else a value starts at or after i
	for {
		if !after {
			i = ws(b, i)
			if i >= len(b) {
				return 0, syntaxErr(b, i, "unexpected end of input")
			}
			switch c := b[i]; c {
			case '{', '[':
				if depth+len(stack)+1 > MaxDepth {
					return 0, syntaxErr(b, i, "exceeded max depth")
				}
				closer := byte(']')
				if c == '{' {
					closer = '}'
				}
				stack = append(stack, closer)
				i = ws(b, i+1)
				if i < len(b) && b[i] == closer {
					stack = stack[:len(stack)-1]
					i++
					after = true
				} else if c == '{' {
					if i, err = s.memberName(b, i); err != nil {
						return 0, err
					}
				}
				continue
			case '"':
				i, err = s.str(b, i)
			default:
				i, err = scalar(b, i)
			}
			if err != nil {
				return 0, err
			}
			after = true
			continue
		}
		if len(stack) == 0 {
			return i, nil
		}
		i = ws(b, i)
		if i >= len(b) {
			return 0, syntaxErr(b, i, "unterminated object or array")
		}
		top := stack[len(stack)-1]
		switch b[i] {
		case ',':
			i++
			if top == '}' {
				if i, err = s.memberName(b, ws(b, i)); err != nil {
					return 0, err
				}
			}
			after = false
		case top:
			stack = stack[:len(stack)-1]
			i++
		default:
			if top == '}' {
				return 0, syntaxErr(b, i, "want ',' or '}'")
			}
			return 0, syntaxErr(b, i, "want ',' or ']'")
		}
	}
}

// memberName checks `"name" :` at b[i] and returns the offset past the colon.
func (s *Strict) memberName(b []byte, i int) (int, error) {
	if i >= len(b) || b[i] != '"' {
		return 0, syntaxErr(b, i, "want a member name")
	}
	e, err := s.str(b, i)
	if err != nil {
		return 0, err
	}
	e = ws(b, e)
	if e >= len(b) || b[e] != ':' {
		return 0, syntaxErr(b, e, "want ':'")
	}
	return e + 1, nil
}

// ReplaceLoneSurrogates appends the valid JSON v to dst with every escaped lone surrogate
// replaced by \ufffd, which is what decoders read it as, so a strict parser accepts the text and
// reads the same value.
func ReplaceLoneSurrogates(dst, v []byte) []byte {
	for {
		k := bytes.IndexByte(v, '\\')
		if k < 0 || k+1 >= len(v) {
			return append(dst, v...)
		}
		dst = append(dst, v[:k]...)
		v = v[k:]
		if v[1] != 'u' {
			dst = append(dst, v[:2]...) // also an escaped backslash, which must not start a \u
			v = v[2:]
			continue
		}
		r, ok := hex4(v, 2)
		if !ok || r < 0xd800 || r > 0xdfff {
			dst = append(dst, v[:2]...)
			v = v[2:]
			continue
		}
		if r < 0xdc00 && len(v) >= 12 && v[6] == '\\' && v[7] == 'u' {
			if r2, ok := hex4(v, 8); ok && r2 >= 0xdc00 && r2 <= 0xdfff {
				dst = append(dst, v[:12]...)
				v = v[12:]
				continue
			}
		}
		dst = append(dst, `\ufffd`...)
		v = v[6:]
	}
}
