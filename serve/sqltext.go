package serve

import (
	"strconv"
	"strings"
)

// tokKind classifies a lexical token of a PostgreSQL/DuckDB statement.
type tokKind int

const (
	tokSpace  tokKind = iota // whitespace and comments
	tokWord                  // bare identifier or keyword
	tokQuoted                // "quoted identifier"
	tokString                // 'string', E'string', $tag$string$tag$
	tokNumber                // numeric literal
	tokParam                 // $1
	tokPunct                 // operators and punctuation, one token per run of operator characters
	tokSemi                  // ;
)

type token struct {
	kind tokKind
	text string // raw text as written
}

// word returns the token's identifier value lowered (bare words) or unquoted (quoted
// identifiers), and "" for any other token.
func (t token) word() string {
	switch t.kind {
	case tokWord:
		return strings.ToLower(t.text)
	case tokQuoted:
		return strings.ReplaceAll(t.text[1:len(t.text)-1], `""`, `"`)
	}
	return ""
}

func isIdentStart(c byte) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80
}

func isIdentPart(c byte) bool { return isIdentStart(c) || (c >= '0' && c <= '9') || c == '$' }

func isOpChar(c byte) bool { return strings.IndexByte("+-*/<>=~!@#%^&|`?:", c) >= 0 }

// lex splits SQL text into tokens. It never fails: an unterminated string or comment runs to
// the end of the text (DuckDB then reports the syntax error).
func lex(s string) []token {
	var out []token
	i := 0
	for i < len(s) {
		start := i
		c := s[i]
		kind := tokPunct
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f':
			for i < len(s) && strings.IndexByte(" \t\n\r\f", s[i]) >= 0 {
				i++
			}
			kind = tokSpace
		case c == '-' && i+1 < len(s) && s[i+1] == '-':
			for i < len(s) && s[i] != '\n' {
				i++
			}
			kind = tokSpace
		case c == '/' && i+1 < len(s) && s[i+1] == '*':
			depth := 0
			for i < len(s) {
				if strings.HasPrefix(s[i:], "/*") {
					depth++
					i += 2
				} else if strings.HasPrefix(s[i:], "*/") {
					depth--
					i += 2
					if depth == 0 {
						break
					}
				} else {
					i++
				}
			}
			kind = tokSpace
		case c == '\'':
			i = endQuote(s, i+1, '\'', false)
			kind = tokString
		case (c == 'E' || c == 'e') && i+1 < len(s) && s[i+1] == '\'':
			i = endQuote(s, i+2, '\'', true)
			kind = tokString
		case c == '"':
			i = endQuote(s, i+1, '"', false)
			kind = tokQuoted
		case c == '$' && i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '9':
			i++
			for i < len(s) && s[i] >= '0' && s[i] <= '9' {
				i++
			}
			kind = tokParam
		case c == '$':
			// dollar quote: $tag$ ... $tag$
			j := i + 1
			for j < len(s) && s[j] != '$' && isIdentPart(s[j]) {
				j++
			}
			if j < len(s) && s[j] == '$' {
				tag := s[i : j+1]
				if k := strings.Index(s[j+1:], tag); k >= 0 {
					i = j + 1 + k + len(tag)
				} else {
					i = len(s)
				}
				kind = tokString
			} else {
				i++
			}
		case isIdentStart(c):
			for i < len(s) && isIdentPart(s[i]) {
				i++
			}
			kind = tokWord
		case c >= '0' && c <= '9' || (c == '.' && i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '9'):
			for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.' || s[i] == '_' || s[i] == 'e' || s[i] == 'E' ||
				((s[i] == '+' || s[i] == '-') && (s[i-1] == 'e' || s[i-1] == 'E'))) {
				i++
			}
			kind = tokNumber
		case c == ';':
			i++
			kind = tokSemi
		case isOpChar(c):
			for i < len(s) && isOpChar(s[i]) && !strings.HasPrefix(s[i:], "--") && !strings.HasPrefix(s[i:], "/*") {
				i++
			}
		default:
			i++
		}
		out = append(out, token{kind: kind, text: s[start:i]})
	}
	return out
}

// endQuote returns the index just past the closing quote q, starting inside the literal at i.
// A doubled quote is an escaped quote; with backslash, \x escapes any character.
func endQuote(s string, i int, q byte, backslash bool) int {
	for i < len(s) {
		switch {
		case backslash && s[i] == '\\':
			i += 2
		case s[i] == q:
			if i+1 < len(s) && s[i+1] == q {
				i += 2
				continue
			}
			return i + 1
		default:
			i++
		}
	}
	return len(s)
}

// statement is one statement of a query string, as tokens.
type statement struct {
	toks []token
}

// splitStatements splits a query string at top-level semicolons, dropping empty statements.
func splitStatements(s string) []statement {
	var out []statement
	var cur []token
	flush := func() {
		for _, t := range cur {
			if t.kind != tokSpace {
				out = append(out, statement{toks: cur})
				break
			}
		}
		cur = nil
	}
	for _, t := range lex(s) {
		if t.kind == tokSemi {
			flush()
			continue
		}
		cur = append(cur, t)
	}
	flush()
	return out
}

// words returns the statement's significant tokens (no whitespace or comments).
func (st statement) words() []token {
	out := make([]token, 0, len(st.toks))
	for _, t := range st.toks {
		if t.kind != tokSpace {
			out = append(out, t)
		}
	}
	return out
}

// keyword returns the n-th significant token lowered as a word ("" past the end or if not a word).
func (st statement) keyword(n int) string {
	w := st.words()
	if n >= len(w) {
		return ""
	}
	if w[n].kind == tokWord {
		return strings.ToLower(w[n].text)
	}
	return ""
}

func (st statement) String() string {
	var b strings.Builder
	for _, t := range st.toks {
		b.WriteString(t.text)
	}
	return strings.TrimSpace(b.String())
}

// maxParam returns the highest $n placeholder used.
func (st statement) maxParam() int {
	n := 0
	for _, t := range st.toks {
		if t.kind == tokParam {
			v := 0
			for _, c := range t.text[1:] {
				v = v*10 + int(c-'0')
			}
			n = max(n, v)
		}
	}
	return n
}

// calls returns the lowered names of every function called in the statement: an identifier
// (bare or quoted, possibly qualified or after a '.' in method-call syntax) followed by '('.
func (st statement) calls() []string {
	w := st.words()
	var out []string
	for i := 0; i+1 < len(w); i++ {
		if name := w[i].word(); name != "" && w[i+1].kind == tokPunct && w[i+1].text == "(" {
			out = append(out, strings.ToLower(name))
		}
	}
	return out
}

// castOIDs maps type names in casts to PostgreSQL OIDs.
var castOIDs = map[string]uint32{
	"bigint": oidInt8, "int8": oidInt8, "long": oidInt8, "integer": oidInt4, "int": oidInt4, "int4": oidInt4,
	"smallint": oidInt2, "int2": oidInt2, "double": oidFloat8, "float8": oidFloat8, "float": oidFloat8, "real": oidFloat4,
	"float4": oidFloat4, "boolean": oidBool, "bool": oidBool, "timestamptz": oidTimestampTZ, "timestamp": oidTimestamp,
	"date": oidDate, "varchar": oidVarchar, "text": oidText, "string": oidText, "decimal": oidNumeric, "numeric": oidNumeric,
	"uuid": oidUUID, "json": oidJSON, "blob": oidBytea, "bytea": oidBytea, "interval": oidInterval, "time": oidTime,
}

// paramCasts returns, per parameter number, the OID of the type it is cast to ($1::BIGINT).
func (st statement) paramCasts() map[int]uint32 {
	w := st.words()
	out := map[int]uint32{}
	for i := 0; i+2 < len(w); i++ {
		if w[i].kind != tokParam || w[i+1].text != "::" {
			continue
		}
		name := w[i+2].word()
		if name == "pg_catalog" && i+4 < len(w) {
			name = w[i+4].word()
		}
		if oid, ok := castOIDs[name]; ok {
			n, _ := strconv.Atoi(w[i].text[1:])
			out[n] = oid
		}
	}
	return out
}
