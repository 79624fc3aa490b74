package apisim

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// This file holds the structural half of Config.Values == "varied": after a generator has
// written a record, vary rewrites it, deterministically per row, into another spelling of the
// same JSON, or adds members the documents do not name. The generators themselves pick the
// value forms (timestamps, money). Every rewrite keeps the record valid JSON; the oracle reads
// the result, so whatever is served is what the truth describes.

// jval is a parsed JSON value. Objects keep their member order; strings are decoded; numbers
// and literals keep their text.
type jval struct {
	kind byte // '{' object, '[' array, '"' string, '0' number, 't' true, 'f' false, 'n' null
	s    string
	keys []string
	kids []*jval
}

var errJSON = errors.New("malformed JSON")

// interned holds the member names the generators write, so parsing does not copy them.
var interned = map[string]string{}

func init() {
	for _, k := range strings.Fields(`uuid name enabled address street1 street2 city state zip country companySize
		customAttributes value creationDate industry salesAgent emailAddress website picture vendor reseller channelAdmin
		externalId phoneNumber defaultRole countryCode status thirtyDaysPurchaseLimitExempt
		thirtyDaysPurchaseLimitOverrideAmt dailyPurchaseLimitExempt dailyPurchaseLimitOverrideAmt importAppsEnabled
		onlyAdminsCanBuy email userName firstName lastName openId locale currency roles company lastModified invoiceId
		referenceNumber dueDate total orderIds -id -href user delegatedToInvoice includedInvoices invoiceLines links
		description quantity id createdOn creator companyId companyName role customer companyExists contact phone
		leadType partner recipient participantType referrer result convertedCompany notes ownerUser customerUser
		purchaseEffectiveDate ownerType createdByUser chargeId appId meterId entityType entityId amountCharged
		pricePerUnit units transactionType refunded meta eventId eventTime userId createdAt updatedAt _id
		isInstalled appVersionId versionId installedAt USD charge refund location RESELLER CHANNEL APPDIRECT
		type product productId rel orderId subscriptionId consumed successful asynchronous error code message manuallyResolved`) {
		interned[k] = k
	}
}

// parseJSON parses one JSON value (the whole of b, no surrounding space).
func parseJSON(b []byte) (*jval, error) {
	p := jparser{b: b}
	v, err := p.value(0)
	if err != nil {
		return nil, err
	}
	p.space()
	if p.i != len(b) {
		return nil, fmt.Errorf("%w: trailing bytes at %d", errJSON, p.i)
	}
	return v, nil
}

type jparser struct {
	b     []byte
	i     int
	arena []jval // nodes are cut from here: one allocation per 32 nodes
}

func (p *jparser) node(kind byte) *jval {
	if len(p.arena) == cap(p.arena) {
		p.arena = make([]jval, 0, 32)
	}
	p.arena = p.arena[:len(p.arena)+1]
	v := &p.arena[len(p.arena)-1]
	v.kind = kind
	return v
}

func (p *jparser) space() {
	for p.i < len(p.b) && (p.b[p.i] == ' ' || p.b[p.i] == '\t' || p.b[p.i] == '\n' || p.b[p.i] == '\r') {
		p.i++
	}
}

func (p *jparser) fail(what string) error { return fmt.Errorf("%w: %s at %d", errJSON, what, p.i) }

func (p *jparser) value(depth int) (*jval, error) {
	if depth > 64 {
		return nil, p.fail("too deep")
	}
	p.space()
	if p.i >= len(p.b) {
		return nil, p.fail("unexpected end")
	}
	switch c := p.b[p.i]; {
	case c == '{':
		p.i++
		v := p.node('{')
		v.keys, v.kids = make([]string, 0, 8), make([]*jval, 0, 8)
		p.space()
		if p.i < len(p.b) && p.b[p.i] == '}' {
			p.i++
			return v, nil
		}
		for {
			p.space()
			if p.i >= len(p.b) || p.b[p.i] != '"' {
				return nil, p.fail("want a member name")
			}
			k, err := p.str()
			if err != nil {
				return nil, err
			}
			p.space()
			if p.i >= len(p.b) || p.b[p.i] != ':' {
				return nil, p.fail("want ':'")
			}
			p.i++
			kid, err := p.value(depth + 1)
			if err != nil {
				return nil, err
			}
			v.keys, v.kids = append(v.keys, k), append(v.kids, kid)
			p.space()
			if p.i < len(p.b) && p.b[p.i] == ',' {
				p.i++
				continue
			}
			if p.i < len(p.b) && p.b[p.i] == '}' {
				p.i++
				return v, nil
			}
			return nil, p.fail("want ',' or '}'")
		}
	case c == '[':
		p.i++
		v := p.node('[')
		p.space()
		if p.i < len(p.b) && p.b[p.i] == ']' {
			p.i++
			return v, nil
		}
		for {
			kid, err := p.value(depth + 1)
			if err != nil {
				return nil, err
			}
			v.kids = append(v.kids, kid)
			p.space()
			if p.i < len(p.b) && p.b[p.i] == ',' {
				p.i++
				continue
			}
			if p.i < len(p.b) && p.b[p.i] == ']' {
				p.i++
				return v, nil
			}
			return nil, p.fail("want ',' or ']'")
		}
	case c == '"':
		s, err := p.str()
		if err != nil {
			return nil, err
		}
		v := p.node('"')
		v.s = s
		return v, nil
	case c == 't' || c == 'f' || c == 'n':
		for _, lit := range []string{"true", "false", "null"} {
			if len(p.b)-p.i >= len(lit) && string(p.b[p.i:p.i+len(lit)]) == lit {
				p.i += len(lit)
				return p.node(lit[0]), nil
			}
		}
		return nil, p.fail("bad literal")
	case c == '-' || (c >= '0' && c <= '9'):
		start := p.i
		if p.b[p.i] == '-' {
			p.i++
		}
		digits := func() int {
			n := 0
			for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
				p.i++
				n++
			}
			return n
		}
		intStart := p.i
		if n := digits(); n == 0 || (n > 1 && p.b[intStart] == '0') {
			return nil, p.fail("bad number")
		}
		if p.i < len(p.b) && p.b[p.i] == '.' {
			p.i++
			if digits() == 0 {
				return nil, p.fail("bad fraction")
			}
		}
		if p.i < len(p.b) && (p.b[p.i] == 'e' || p.b[p.i] == 'E') {
			p.i++
			if p.i < len(p.b) && (p.b[p.i] == '+' || p.b[p.i] == '-') {
				p.i++
			}
			if digits() == 0 {
				return nil, p.fail("bad exponent")
			}
		}
		v := p.node('0')
		v.s = string(p.b[start:p.i])
		return v, nil
	}
	return nil, p.fail("unexpected byte")
}

// str decodes the JSON string at p.i (which is '"').
func (p *jparser) str() (string, error) {
	p.i++
	for k := p.i; k < len(p.b); k++ { // fast path: nothing to unescape
		if c := p.b[k]; c == '"' {
			s, ok := interned[string(p.b[p.i:k])] // member names repeat: no allocation for them
			if !ok {
				s = string(p.b[p.i:k])
			}
			p.i = k + 1
			return s, nil
		} else if c == '\\' || c < 0x20 {
			break
		}
	}
	var sb strings.Builder
	for {
		if p.i >= len(p.b) {
			return "", p.fail("unterminated string")
		}
		c := p.b[p.i]
		switch {
		case c == '"':
			p.i++
			return sb.String(), nil
		case c < 0x20:
			return "", p.fail("control character in string")
		case c != '\\':
			sb.WriteByte(c)
			p.i++
			continue
		}
		if p.i+1 >= len(p.b) {
			return "", p.fail("unterminated escape")
		}
		e := p.b[p.i+1]
		p.i += 2
		switch e {
		case '"', '\\', '/':
			sb.WriteByte(e)
		case 'b':
			sb.WriteByte('\b')
		case 'f':
			sb.WriteByte('\f')
		case 'n':
			sb.WriteByte('\n')
		case 'r':
			sb.WriteByte('\r')
		case 't':
			sb.WriteByte('\t')
		case 'u':
			r, ok := p.hex4()
			if !ok {
				return "", p.fail("bad \\u escape")
			}
			if utf16.IsSurrogate(r) {
				r2 := rune(-1)
				if p.i+1 < len(p.b) && p.b[p.i] == '\\' && p.b[p.i+1] == 'u' {
					save := p.i
					p.i += 2
					var ok2 bool
					if r2, ok2 = p.hex4(); !ok2 {
						return "", p.fail("bad \\u escape")
					}
					if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
						r = d
					} else {
						p.i, r = save, utf8.RuneError // a lone surrogate: U+FFFD, as decoders do
					}
				} else {
					r = utf8.RuneError
				}
			}
			sb.WriteRune(r)
		default:
			return "", p.fail("bad escape")
		}
	}
}

func (p *jparser) hex4() (rune, bool) {
	if p.i+4 > len(p.b) {
		return 0, false
	}
	n, err := strconv.ParseUint(string(p.b[p.i:p.i+4]), 16, 32)
	if err != nil {
		return 0, false
	}
	p.i += 4
	return rune(n), true
}

// String spellings: the same text written three ways.
const (
	strRaw   = iota // raw UTF-8, only what JSON requires escaped (as appendStr writes)
	strASCII        // every non-ASCII code point as \uXXXX, astral ones as surrogate pairs
	strHeavy        // also '/' as \/, some letters as \u00XX, upper-case hex
)

// appendJSONStr writes s as a JSON string in the given spelling; escapeFirst also writes the
// first character as a \u escape (used for member names: "\u0075uid").
func appendJSONStr(b []byte, s string, style int, escapeFirst bool) []byte {
	const lower, upper = "0123456789abcdef", "0123456789ABCDEF"
	hexd := lower
	if style == strHeavy {
		hexd = upper
	}
	u4 := func(b []byte, r rune) []byte {
		return append(b, '\\', 'u', hexd[r>>12&15], hexd[r>>8&15], hexd[r>>4&15], hexd[r&15])
	}
	b = append(b, '"')
	for k, r := range s {
		switch {
		case k == 0 && escapeFirst:
			if r >= 0x10000 {
				r1, r2 := utf16.EncodeRune(r)
				b = u4(u4(b, r1), r2)
			} else {
				b = u4(b, r)
			}
		case r == '"':
			b = append(b, '\\', '"')
		case r == '\\':
			b = append(b, '\\', '\\')
		case r == '\n':
			b = append(b, '\\', 'n')
		case r == '\r':
			b = append(b, '\\', 'r')
		case r == '\t':
			b = append(b, '\\', 't')
		case r < 0x20:
			b = u4(b, r)
		case r == '/' && style == strHeavy:
			b = append(b, '\\', '/')
		case (r == 'a' || r == 'e') && style == strHeavy:
			b = u4(b, r)
		case r < utf8.RuneSelf:
			b = append(b, byte(r))
		case r == utf8.RuneError && !strings.HasPrefix(s[k:], "\uFFFD"):
			b = append(b, `\ufffd`...)
		case style == strRaw:
			b = utf8.AppendRune(b, r)
		case r >= 0x10000:
			r1, r2 := utf16.EncodeRune(r)
			b = u4(u4(b, r1), r2)
		default:
			b = u4(b, r)
		}
	}
	return append(b, '"')
}

// variation says how one row is respelled.
type variation struct {
	style     int  // string spelling
	escKeys   bool // member names with their first character escaped
	dropNulls bool // top-level null members left out (every one the documents type "or null")
	extras    int  // 0: none, else how many unknown members to add
	order     int  // 0 as generated, 1 top level reversed, 2 top level rotated, 3 every object reversed
}

// variationOf is row i's respelling: each kind for a minority of rows, independently.
func (g *gen) variationOf(stream string, i int) variation {
	var v variation
	if !g.varied {
		return v
	}
	h := rnd(g.seed, stream, i, 77)
	switch p := h % 100; {
	case p < 10:
		v.style = strASCII
	case p < 15:
		v.style = strHeavy
	}
	v.escKeys = (h>>8)%100 < 8
	v.dropNulls = (h>>16)%100 < 15
	if (h>>24)%100 < 10 {
		v.extras = 1 + int(h>>32)%3
	}
	if (h>>40)%100 < 10 {
		v.order = 1 + int(h>>48)%3
	}
	return v
}

// extraMembers are members no document names; a client keeps them (in _extra) and must not
// confuse them with declared columns.
var extraMembers = []string{
	`"_links":{"self":{"href":"https://example.invalid/x"}}`,
	`"x-request-id":"req-7f3a9c"`,
	`"score":12.50`,
	`"tags":["a","b\u00e9"]`,
	`"archived":false`,
	`"deprecatedField":null`,
	`"ünïcode_kéy":"välue"`,
	`"nested":{"level":{"deep":true,"n":-0.0}}`,
	`"__v":0`,
	`"emptyObject":{}`,
}

// vary rewrites the record b[start:] as row i's variation says.
func (g *gen) vary(b []byte, start int, stream string, i int) []byte {
	v := g.variationOf(stream, i)
	if v == (variation{}) {
		return b
	}
	root, err := parseJSON(b[start:])
	if err != nil || root.kind != '{' {
		panic(fmt.Sprintf("apisim: generator wrote bad JSON for %s row %d: %v", stream, i, err))
	}
	if v.dropNulls {
		keys, kids := root.keys[:0:0], root.kids[:0:0]
		for k, kid := range root.kids {
			if kid.kind != 'n' {
				keys, kids = append(keys, root.keys[k]), append(kids, kid)
			}
		}
		root.keys, root.kids = keys, kids
	}
	h := rnd(g.seed, stream, i, 78)
	for k := 0; k < v.extras; k++ {
		m, _ := parseJSON([]byte("{" + extraMembers[(h>>(8*k))%uint64(len(extraMembers))] + "}"))
		if has(root.keys, m.keys[0]) {
			continue
		}
		at := int(h>>(8*k+4)) % (len(root.keys) + 1) // anywhere, also first or last
		root.keys = append(root.keys[:at], append([]string{m.keys[0]}, root.keys[at:]...)...)
		root.kids = append(root.kids[:at], append([]*jval{m.kids[0]}, root.kids[at:]...)...)
	}
	switch v.order {
	case 1:
		reverseMembers(root, false)
	case 2:
		r := 1 + int(h>>40)%max(1, len(root.keys)-1)
		root.keys = append(root.keys[r:], root.keys[:r]...)
		root.kids = append(root.kids[r:], root.kids[:r]...)
	case 3:
		reverseMembers(root, true)
	}
	return appendJVal(b[:start], root, v.style, v.escKeys)
}

func has(s []string, k string) bool {
	for _, x := range s {
		if x == k {
			return true
		}
	}
	return false
}

func reverseMembers(v *jval, deep bool) {
	if v.kind == '{' {
		for a, z := 0, len(v.keys)-1; a < z; a, z = a+1, z-1 {
			v.keys[a], v.keys[z] = v.keys[z], v.keys[a]
			v.kids[a], v.kids[z] = v.kids[z], v.kids[a]
		}
	}
	if deep {
		for _, k := range v.kids {
			reverseMembers(k, true)
		}
	}
}

func appendJVal(b []byte, v *jval, style int, escKeys bool) []byte {
	switch v.kind {
	case '{':
		b = append(b, '{')
		for k, kid := range v.kids {
			if k > 0 {
				b = append(b, ',')
			}
			b = appendJSONStr(b, v.keys[k], style, escKeys)
			b = append(b, ':')
			b = appendJVal(b, kid, style, escKeys)
		}
		return append(b, '}')
	case '[':
		b = append(b, '[')
		for k, kid := range v.kids {
			if k > 0 {
				b = append(b, ',')
			}
			b = appendJVal(b, kid, style, escKeys)
		}
		return append(b, ']')
	case '"':
		return appendJSONStr(b, v.s, style, false)
	case 't':
		return append(b, "true"...)
	case 'f':
		return append(b, "false"...)
	case 'n':
		return append(b, "null"...)
	}
	return append(b, v.s...)
}

// appendCanonical writes v as CanonicalJSON does (encoding/json with UseNumber, sorted member
// names, HTML not escaped) without a round trip through maps.
func appendCanonical(b []byte, v *jval) []byte {
	switch v.kind {
	case '{':
		var small [48]int
		idx := small[:0]
		for k := range v.keys {
			idx = append(idx, k)
		}
		sort.SliceStable(idx, func(a, c int) bool { return v.keys[idx[a]] < v.keys[idx[c]] })
		b = append(b, '{')
		n := 0
		for x, k := range idx {
			if x+1 < len(idx) && v.keys[idx[x+1]] == v.keys[k] {
				continue // a repeated member name: the last one wins, as in a decoded map
			}
			if n > 0 {
				b = append(b, ',')
			}
			n++
			b = appendGoJSONStr(b, v.keys[k])
			b = append(b, ':')
			b = appendCanonical(b, v.kids[k])
		}
		return append(b, '}')
	case '[':
		b = append(b, '[')
		for k, kid := range v.kids {
			if k > 0 {
				b = append(b, ',')
			}
			b = appendCanonical(b, kid)
		}
		return append(b, ']')
	case '"':
		return appendGoJSONStr(b, v.s)
	}
	return appendJVal(b, v, strRaw, false)
}

// appendGoJSONStr escapes s as encoding/json does with SetEscapeHTML(false).
func appendGoJSONStr(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c >= 0x20 && c != '"' && c != '\\':
				b = append(b, c)
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\b':
				b = append(b, '\\', 'b')
			case c == '\f':
				b = append(b, '\\', 'f')
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xF])
		default:
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
