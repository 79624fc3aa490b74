package transform

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/marketsync/marketsync/schemas"
)

var (
	propRecords = flag.Int("property.records", 15000, "records per table in TestBatcher_SequencesMatchReference")
	propSeed    = flag.Uint64("property.seed", 1, "seed of TestBatcher_SequencesMatchReference")
)

// TestBatcher_SequencesMatchReference pushes long random sequences of records through ONE
// Batcher per table, flushing at random points, and compares every cell of every batch with the
// reference decoding (reference_test.go). Records mix members present, absent, null and
// repeated, every documented timestamp and money form, strings with every kind of escape,
// escaped member names, unknown members, shuffled member order, and invalid records, which must
// be rejected without disturbing the records after them.
//
// More: go test -tags duckdb_arrow -run SequencesMatch ./transform -property.records=1000000 -property.seed=7
func TestBatcher_SequencesMatchReference(t *testing.T) {
	skipUnderRace(t) // the batcher is single-threaded; the reference decoding is five times slower under -race
	for ti, table := range schemas.Tables {
		t.Run(table.Name, func(t *testing.T) {
			t.Parallel()
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			meta := Meta{RunID: "run-" + table.Name, SyncedAt: 1_700_000_000_000_000}
			b := NewBatcher(table, mem, meta)
			defer b.Release()
			c := newRefChecker(t, table, b, meta)
			g := newRecGen(table, *propSeed*1000+uint64(ti))
			n := *propRecords
			for i := 0; i < n; i++ {
				c.add(g.record())
				if g.r.IntN(400) == 0 {
					c.flush()
				}
			}
			c.flush()
			t.Logf("%s: %d rows compared cell by cell, %d records rejected, %d values rounded", table.Name, c.rows, c.invalid, c.rounded)
			if c.rows < int64(n)/2 || c.invalid == 0 {
				t.Fatalf("the generator is off balance: %d rows, %d rejected", c.rows, c.invalid)
			}
		})
	}
}

// genNode is the tree of declared paths the generator writes records from.
type genNode struct {
	key      string
	kinds    []schemas.Kind
	children []*genNode
	pk       bool
}

type recGen struct {
	r     *rand.Rand
	table *schemas.Table
	root  *genNode
	seq   int
	keys  []string // recent primary keys, to repeat some
}

func newRecGen(t *schemas.Table, seed uint64) *recGen {
	g := &recGen{r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), table: t, root: &genNode{}}
	for _, c := range t.Columns {
		n := g.root
		for _, k := range c.Path {
			var ch *genNode
			for _, x := range n.children {
				if x.key == k {
					ch = x
				}
			}
			if ch == nil {
				ch = &genNode{key: k}
				n.children = append(n.children, ch)
			}
			n = ch
		}
		n.kinds = append(n.kinds, c.Kind)
		n.pk = n.pk || c.Name == t.PrimaryKey
	}
	return g
}

func (g *recGen) p(percent float64) bool { return g.r.Float64()*100 < percent }

func (g *recGen) pick(s ...string) string { return s[g.r.IntN(len(s))] }

func (g *recGen) ws() string {
	if g.p(80) {
		return ""
	}
	return g.pick(" ", "\n", "\t ", "\r\n", "  ")
}

// name writes a member name, sometimes with escapes ("\u0075uid" is uuid).
func (g *recGen) name(k string) string {
	if !g.p(10) {
		return `"` + jsonEscapeMin(k) + `"`
	}
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range k {
		switch {
		case r < 0x80 && g.p(50):
			fmt.Fprintf(&b, g.pick(`\u%04x`, `\u%04X`), r)
		case r >= 0x10000 && g.p(50):
			r1, r2 := surrogates(r)
			fmt.Fprintf(&b, `\u%04x\u%04x`, r1, r2)
		default:
			b.WriteString(jsonEscapeMin(string(r)))
		}
	}
	b.WriteByte('"')
	return b.String()
}

func surrogates(r rune) (rune, rune) {
	r -= 0x10000
	return 0xd800 + (r>>10)&0x3ff, 0xdc00 + r&0x3ff
}

// jsonEscapeMin escapes only what JSON requires.
func jsonEscapeMin(s string) string {
	if !strings.ContainsFunc(s, func(r rune) bool { return r == '"' || r == '\\' || r < 0x20 }) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r < 0x20:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// str writes a JSON string literal mixing plain text, every escape, raw UTF-8, surrogate pairs
// and, rarely, a lone surrogate (valid JSON, read as U+FFFD) or an invalid piece.
func (g *recGen) str() string {
	var b strings.Builder
	b.WriteByte('"')
	for n := g.r.IntN(6); n > 0; n-- {
		switch g.r.IntN(16) {
		case 0:
			b.WriteString(`\n`)
		case 1:
			b.WriteString(`\"`)
		case 2:
			b.WriteString(`\\`)
		case 3:
			b.WriteString(`\u00e9`)
		case 4:
			b.WriteString(`\ud83d\ude00`)
		case 5:
			b.WriteString(g.pick("é", "東京", "😀", "Müller & Söhne", "<a href=x>"))
		case 6:
			b.WriteString(g.pick(`\t`, `\/`, `\b\f\r`, `\u0000`, `\u2028`, `\uFFFD`))
		case 7:
			switch {
			case g.p(20):
				b.WriteString(g.pick(`\ud800`, `\udc00x`, `\ud83d\u0041`, `\ud83d`))
			case g.p(2):
				b.WriteString(g.pick("\x01", `\x`, "\xff", `\u12`, "\xed\xa0\x80"))
			default:
				b.WriteString("plain")
			}
		default:
			b.WriteString(g.pick("a", "Acme", "lead@example.org", "42", "x y", "RESELLER", "true"))
		}
	}
	b.WriteByte('"')
	return b.String()
}

func (g *recGen) number() string {
	switch g.r.IntN(8) {
	case 0:
		return strconv.Itoa(g.r.IntN(100))
	case 1:
		return strconv.FormatInt(g.r.Int64()-g.r.Int64(), 10)
	case 2:
		return strconv.FormatFloat(g.r.Float64()*1000, 'f', -1, 64)
	case 3:
		return g.pick("1.5e3", "-2E-2", "1e+2", "0.30000000000000004", "-0", "0.0", "123456789012345678901234567890")
	case 4:
		return strconv.FormatFloat(g.r.NormFloat64(), 'g', -1, 64)
	default:
		return strconv.Itoa(g.r.IntN(1_000_000))
	}
}

// badNumber is text where a JSON number would go that is not one.
func (g *recGen) badNumber() string {
	return g.pick("01", "1.", ".5", "+1", "1e", "--1", "1.2.3", "0x10", "NaN", "Infinity", "1_000")
}

// json writes a random JSON value, sometimes (rarely) with an invalid part inside.
func (g *recGen) json(depth int) string {
	if g.p(0.3) {
		return g.pick(`{"x":[}`, `[1,]`, `{"a" 1}`, `{"a":1,}`, `[01]`, `{"a":1.}`, `tru`, `{"a":"\x"}`, `[`, `{"a":nul}`, `{1:2}`, `["a"]]`)
	}
	k := g.r.IntN(8)
	if depth > 2 {
		k = 4 + g.r.IntN(4)
	}
	switch k {
	case 0, 1:
		var parts []string
		for n := g.r.IntN(4); n > 0; n-- {
			key := g.pick("a", "b", "-id", "-href", "name", "é", "a\"b", "")
			if g.p(10) {
				key = "a" // repeated
			}
			parts = append(parts, g.ws()+g.name(key)+g.ws()+":"+g.ws()+g.json(depth+1))
		}
		return "{" + strings.Join(parts, ",") + g.ws() + "}"
	case 2, 3:
		var parts []string
		for n := g.r.IntN(4); n > 0; n-- {
			parts = append(parts, g.ws()+g.json(depth+1)+g.ws())
		}
		return "[" + strings.Join(parts, ",") + "]"
	case 4:
		return g.str()
	case 5:
		if g.p(1) {
			return g.badNumber()
		}
		return g.number()
	case 6:
		return g.pick("true", "false")
	default:
		return "null"
	}
}

func (g *recGen) digits(n int) string {
	var b strings.Builder
	b.WriteByte(byte('1' + g.r.IntN(9)))
	for i := 1; i < n; i++ {
		b.WriteByte(byte('0' + g.r.IntN(10)))
	}
	return b.String()
}

func (g *recGen) quoted(s string) string {
	if g.p(40) {
		return `"` + s + `"`
	}
	return s
}

// timestamp writes every documented form: epoch ms and 10-digit seconds as numbers or numeric
// strings, ISO-8601 with Z, ±hh:mm and ±hhmm offsets, fractions, bare and basic dates; and,
// rarely, forms that must be rejected.
func (g *recGen) timestamp() string {
	two := func(n int) string { return fmt.Sprintf("%02d", n) }
	bad := g.p(1)
	date := func(sep string) string {
		y, m, d := 1971+g.r.IntN(80), 1+g.r.IntN(12), 1+g.r.IntN(28)
		if g.p(10) {
			d = 29 + g.r.IntN(3) // the month may not have it
		}
		if bad {
			m, d = g.r.IntN(14), g.r.IntN(33)
		}
		return fmt.Sprintf("%04d%s%s%s%s", y, sep, two(m), sep, two(d))
	}
	if bad && g.p(50) {
		// short or implausible numbers (never epochs), and other non-timestamps
		return g.pick(g.quoted(strconv.Itoa(g.r.IntN(100_000_000))), `"-1"`, "-1534531428", "1e12", "15345314280000",
			`"0153453142"`, `"1534531428."`, `"+1534531428"`, `"00000000"`, "12345678", "20230229",
			"true", "{}", "[]", `""`, `"yesterday"`, `"2015-08-16T14:47"`, `"2015-08-16T14:47:50+24:00"`,
			`"2015-08-16T14:47:50+0560"`, `"2015-08-16T14:47:50+05"`, `"2015-08-16t14:47:50z"`, `"2015-08-16T14:47:50Z "`,
			`"2015-08-16T24:00:00Z"`, `"2015-08-16T14:60:00Z"`, `"2015-08-16T14:47:60Z"`, `"2015-08-16T14:47:50.Z"`, `"2015-08/16"`)
	}
	switch g.r.IntN(10) {
	case 0, 1:
		return g.quoted(strconv.FormatInt(1_000_000_000_000+g.r.Int64N(1_000_000_000_000), 10)) // 13-digit ms
	case 2:
		return g.quoted(strconv.FormatInt(1_000_000_000+g.r.Int64N(1_000_000_000), 10)) // 10-digit s
	case 3:
		s := g.digits(9 + g.r.IntN(5))
		if g.p(20) {
			s += "." + g.digits(1 + g.r.IntN(10))[1:] + "7"
		}
		return g.quoted(s)
	case 4:
		return g.quoted(g.pick("0", "20250326", "19991231", "20240229", "19000101"))
	case 9:
		return `"` + date("-") + `"`
	default:
		s := date("-")
		if g.p(5) {
			s = date("/")
		}
		hh, mm, ss := g.r.IntN(24), g.r.IntN(60), g.r.IntN(60)
		s += g.pick("T", "T", " ") + two(hh) + ":" + two(mm) + ":" + two(ss)
		if g.p(40) {
			s += "." + g.digits(1 + g.r.IntN(10))[1:] + strconv.Itoa(g.r.IntN(10))
		}
		return `"` + s + g.pick("Z", "-06:00", "+0000", "+0530", "-0600", "+05:30", "", "-00:00", "+14:00", "-1159") + `"`
	}
}

// decimal writes money as JSON numbers and decimal strings (10 fraction digits), floats a
// JavaScript backend sends, exponents, halfway cases, and, rarely, forms that must be rejected.
func (g *recGen) decimal() string {
	if g.p(1) {
		return g.pick(`"USD350.00"`, `"$0.00"`, "1e30", `"123456789012345678901234567890"`, `""`, `"."`, `"1e"`, "true", "{}",
			`"1e1000000000"`, `"9999999999999999999999999999.99999999995"`, `" 1"`, `"1,5"`, `"0x10"`, `"1e-"`, `"--1"`)
	}
	switch g.r.IntN(9) {
	case 0, 1:
		return g.quoted(fmt.Sprintf("%d.%010d", g.r.IntN(1_000_000), g.r.Int64N(10_000_000_000)))
	case 2:
		return g.quoted(strconv.FormatFloat(g.r.Float64()*1000, 'f', -1, 64))
	case 3:
		return g.quoted(g.pick("0.30000000000000004", "0.1", "10.63", "-0.5", "1.5e3", "1e-7", "2.5E-11", "0.0000000000", "42.5100000000", "-0", "5.", ".5", "+5"))
	case 4:
		return g.quoted(g.pick("0.00000000005", "0.00000000015", "2.00000000025", "-0.00000000005", "-2.00000000035", "0.000000000050000001",
			"9999999999999999999999999999.99999999994", "1e-1000000000", "0e999999999999", "99999999.999999999995", "-99999999.99999999995"))
	case 5:
		return g.quoted(g.digits(1+g.r.IntN(27)) + "." + g.digits(1 + g.r.IntN(16))[1:] + "1")
	case 6:
		return g.quoted(g.digits(1+g.r.IntN(12)) + g.pick("e", "E") + g.pick("", "+", "-") + strconv.Itoa(g.r.IntN(16)))
	case 7:
		return g.quoted(strconv.FormatInt(g.r.Int64N(1e12)-5e11, 10))
	default:
		return g.quoted(strconv.Itoa(g.r.IntN(10000)))
	}
}

func (g *recGen) valueOfKind(k schemas.Kind) string {
	if g.p(5) {
		return "null"
	}
	switch k {
	case schemas.String:
		switch {
		case g.p(1):
			return g.pick("{}", `["a"]`, g.badNumber())
		case g.p(75):
			return g.str()
		case g.p(50):
			return g.number()
		}
		return g.pick("true", "false")
	case schemas.Bool:
		if g.p(99) {
			return g.pick("true", "false", `"true"`, `"false"`, "true", "false", `"tru\u0065"`)
		}
		return g.pick("1", "0", `"yes"`, `"True"`, "null", "[]")
	case schemas.Int64:
		if g.p(99) {
			return g.quoted(strconv.FormatInt(g.r.Int64N(1<<40)-(1<<39), 10))
		}
		return g.pick("1.5", "1e3", `"x"`, "9223372036854775807", "-9223372036854775808", "9223372036854775808", `"+12"`, `"007"`, g.badNumber())
	case schemas.Float64:
		return g.number()
	case schemas.Timestamp:
		return g.timestamp()
	case schemas.Decimal:
		return g.decimal()
	case schemas.JSON:
		return g.json(1)
	case schemas.StringList:
		if g.p(1) {
			return g.pick(`"a"`, `[{"a":1}]`, `[["a"]]`, "{}", `[1,]`)
		}
		var parts []string
		for n := g.r.IntN(4); n > 0; n-- {
			switch {
			case g.p(70):
				parts = append(parts, g.str())
			case g.p(50):
				parts = append(parts, "null")
			case g.p(50):
				parts = append(parts, g.number())
			default:
				parts = append(parts, g.pick("true", "false"))
			}
		}
		return "[" + g.ws() + strings.Join(parts, ","+g.ws()) + "]"
	}
	panic("kind")
}

// value writes the value of one declared member: an object over its children (some present,
// some repeated, some unknown) or a value of one of its leaf kinds.
func (g *recGen) value(n *genNode) string {
	if len(n.children) > 0 && g.p(85) {
		var parts []string
		for _, ch := range n.children {
			if g.p(25) {
				continue
			}
			parts = append(parts, g.name(ch.key)+":"+g.ws()+g.value(ch))
			if g.p(4) {
				parts = append(parts, g.name(ch.key)+":"+g.value(ch))
			}
		}
		for k := g.r.IntN(3); k > 0; k-- {
			parts = append(parts, g.name(g.pick("zip", "phone", "role", "x"))+":"+g.json(3))
		}
		g.r.Shuffle(len(parts), func(i, j int) { parts[i], parts[j] = parts[j], parts[i] })
		return "{" + g.ws() + strings.Join(parts, ","+g.ws()) + g.ws() + "}"
	}
	if len(n.kinds) == 0 {
		return g.json(2)
	}
	return g.valueOfKind(n.kinds[g.r.IntN(len(n.kinds))])
}

func (g *recGen) pkValue(n *genNode) string {
	switch {
	case len(g.keys) > 0 && g.p(2):
		return g.keys[g.r.IntN(len(g.keys))] // a repeat: ErrDuplicateKey if still pending
	case g.p(0.5):
		return g.pick("null", "{}")
	}
	g.seq++
	var v string
	if n.kinds[0] == schemas.Int64 {
		v = g.quoted(strconv.Itoa(g.seq))
	} else if g.p(5) {
		v = strconv.Itoa(g.seq) // a number in a string column keeps its text
	} else {
		v = `"` + g.pick("id-", `\u0069d-`, "é-", `q\"-`, "😀") + strconv.Itoa(g.seq) + `"`
	}
	if len(g.keys) < 64 {
		g.keys = append(g.keys, v)
	} else {
		g.keys[g.r.IntN(64)] = v
	}
	return v
}

// record writes one record.
func (g *recGen) record() []byte {
	var parts []string
	for _, n := range g.root.children {
		switch {
		case n.pk:
			if g.p(0.5) {
				continue // missing primary key
			}
			parts = append(parts, g.name(n.key)+":"+g.ws()+g.pkValue(n))
		case g.p(45):
			continue
		default:
			parts = append(parts, g.name(n.key)+":"+g.ws()+g.value(n))
			if g.p(3) {
				parts = append(parts, g.name(n.key)+":"+g.value(n)) // repeated: last wins
			}
		}
	}
	for k := g.r.IntN(4) - 1; k > 0; k-- {
		parts = append(parts, g.name(g.pick("brandNew", "x", "x", "é", "a\"b", "uuid2", "😀", "", "\u2028"))+":"+g.ws()+g.json(2))
	}
	if g.p(50) {
		g.r.Shuffle(len(parts), func(i, j int) { parts[i], parts[j] = parts[j], parts[i] })
	}
	rec := g.ws() + "{" + g.ws() + strings.Join(parts, g.ws()+","+g.ws()) + g.ws() + "}" + g.ws()
	if g.p(1) {
		switch g.r.IntN(5) {
		case 0:
			rec += g.pick("x", "{}", ",", "]", "null")
		case 1:
			rec = rec[:g.r.IntN(len(rec))]
		case 2:
			rec = strings.Replace(rec, ":", " ", 1)
		case 3:
			rec = strings.Replace(rec, "}", ",}", 1)
		default:
			rec = strings.Replace(rec, `"`, "\"\xc3", 1)
		}
	}
	return []byte(rec)
}
