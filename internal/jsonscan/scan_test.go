package jsonscan

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math/bits"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// strictValid reports whether Strict accepts b as one whole JSON document.
func strictValid(b []byte) (ok, lone bool) {
	var s Strict
	e, err := s.Skip(b, 0, 0)
	if err != nil {
		return false, s.LoneSurrogates
	}
	return ws(b, e) == len(b), s.LoneSurrogates
}

var strictCases = []string{
	`{}`, `[]`, `""`, `0`, `-0`, `1.5e3`, `-2E-2`, `1e+2`, `true`, `false`, `null`,
	`{"a":1,"b":[1,2,{"c":null}],"d":"\u00e9\ud83d\ude00\n\"\\\/"}`, ` { "a" : [ 1 , 2 ] } `,
	`"é東京😀"`, `"\ud800"`, `"\udc00"`, `{"\ud800":1}`, `"\u0000"`, "\"\x7f\"",
	// invalid
	`{"x":[}`, `[1,]`, `{"a":1,}`, `{"a" 1}`, `{1:2}`, `[01]`, `01`, `1.`, `.5`, `+1`, `1e`, `1e+`, `--1`, `-`,
	`"\x"`, `"\u12"`, `"\u12g4"`, "\"a\tb\"", "\"\x01\"", "\"\xff\"", "\"\xed\xa0\x80\"", "\"\xc3\"", `"abc`, `tru`, `nul`, `nulll`,
	`{"a":1}}`, `[`, `{`, `{"a"`, `{"a":`, `[1 2]`, `{"a":1 "b":2}`, `[,1]`, `{,}`, `NaN`, `Infinity`, `'a'`, ``, ` `,
	"\xef\xbb\xbf{}", `{"a":[1,{"b":[2,{"c":[3,]}]}]}`,
}

func TestStrict_AgreesWithEncodingJSON(t *testing.T) {
	for _, c := range strictCases {
		want := json.Valid([]byte(c)) && utf8.ValidString(c)
		if got, _ := strictValid([]byte(c)); got != want {
			t.Errorf("%q: Strict accepts %v, encoding/json (and UTF-8) %v", c, got, want)
		}
	}
	// Skip, which only matches brackets, lets the invalid ones through that Strict must catch.
	if _, err := Skip([]byte(`{"x":[1,]}`), 0); err != nil {
		t.Fatal("Skip is expected to be lax (this test documents why Strict exists)")
	}
}

func TestStrict_MaxDepthAsEncodingJSON(t *testing.T) {
	for _, depth := range []int{MaxDepth - 1, MaxDepth, MaxDepth + 1} {
		doc := []byte(strings.Repeat("[", depth) + strings.Repeat("]", depth))
		got, _ := strictValid(doc)
		if want := json.Valid(doc); got != want {
			t.Errorf("depth %d: Strict %v, encoding/json %v", depth, got, want)
		}
		// The same nesting inside a record's member counts the record too.
		var s Strict
		rec := []byte(`{"a":` + string(doc) + `}`)
		_, err := Members(rec, 0, func(_ []byte, vs int) (int, error) { return s.Skip(rec, vs, 1) })
		if want := json.Valid(rec); (err == nil) != want {
			t.Errorf("depth %d in a member: Strict %v, encoding/json %v", depth+1, err == nil, want)
		}
	}
}

func TestStrict_ReportsLoneSurrogates(t *testing.T) {
	for c, want := range map[string]bool{
		`"\ud83d\ude00"`: false, `"\ud800"`: true, `"\udc00"`: true, `"\ud83d\u0041"`: true, `"\ud83d"`: true,
		`"\\ud800"`: false, `["a",{"\ud800":1}]`: true, `"\uD83D\uDE00"`: false, `"\ud83d\ud83d\ude00"`: true,
	} {
		ok, lone := strictValid([]byte(c))
		if !ok || lone != want {
			t.Errorf("%s: valid %v, lone %v, want lone %v", c, ok, lone, want)
		}
	}
}

func TestReplaceLoneSurrogates_DecodesTheSame(t *testing.T) {
	for in, want := range map[string]string{
		`"\ud800"`:                `"\ufffd"`,
		`"a\udc00b"`:              `"a\ufffdb"`,
		`"\ud83d\ude00"`:          `"\ud83d\ude00"`,
		`"\ud83d\u0041"`:          `"\ufffd\u0041"`,
		`"\\ud800"`:               `"\\ud800"`,
		`"\\\ud800"`:              `"\\\ufffd"`,
		`{"\ud800":["\ud83d",1]}`: `{"\ufffd":["\ufffd",1]}`,
		`"\ud83d\ud83d\ude00"`:    `"\ufffd\ud83d\ude00"`,
		`"plain é"`:               `"plain é"`,
		`"\n\"\u00e9"`:            `"\n\"\u00e9"`,
		`"trailing backslash \\"`: `"trailing backslash \\"`,
	} {
		got := string(ReplaceLoneSurrogates(nil, []byte(in)))
		if got != want {
			t.Errorf("%s -> %s, want %s", in, got, want)
		}
		a, err1 := decode([]byte(in))
		b, err2 := decode([]byte(got))
		if err1 != nil || err2 != nil || !reflect.DeepEqual(a, b) {
			t.Errorf("%s and %s decode differently", in, got)
		}
		if _, lone := strictValid([]byte(got)); lone {
			t.Errorf("%s still has a lone surrogate", got)
		}
	}
}

// decode decodes with numbers kept as text (1E700 is valid JSON, and no float64).
func decode(b []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	err := d.Decode(&v)
	return v, err
}

func TestStrict_Key(t *testing.T) {
	var s Strict
	var scratch []byte
	for raw, want := range map[string]string{`uuid`: "uuid", `\u0075uid`: "uuid", `a\"b`: `a"b`, `é`: "é", `\ud83d\ude00`: "😀", ``: ""} {
		got, err := s.Key([]byte(raw), &scratch)
		if err != nil || string(got) != want {
			t.Errorf("Key(%s) = %q, %v; want %q", raw, got, err, want)
		}
	}
	for _, raw := range []string{`\x`, `\u12`, "a\tb", "\xff", `\`} {
		if _, err := s.Key([]byte(raw), &scratch); err == nil {
			t.Errorf("Key(%q) accepted", raw)
		}
	}
	s.LoneSurrogates = false
	if got, err := s.Key([]byte(`\ud800`), &scratch); err != nil || string(got) != "\uFFFD" || !s.LoneSurrogates {
		t.Errorf("lone surrogate key: %q, %v, flag %v", got, err, s.LoneSurrogates)
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = s.Key([]byte("customer"), &scratch) }); n != 0 {
		t.Errorf("a plain key allocates %v times", n)
	}
}

func TestGet_ComparesUnescapedKeys(t *testing.T) {
	rec := []byte(`{"\u0069d":"a","c\u0075stomer":{"company":{"n\u0061me":"Acme"}}}`)
	if got := string(Get(rec, "id")); got != `"a"` {
		t.Errorf("id: %s", got)
	}
	if got := string(Get(rec, "customer", "company", "name")); got != `"Acme"` {
		t.Errorf("customer.company.name: %s", got)
	}
}

// FuzzStrict: Strict accepts exactly what encoding/json does (and is UTF-8); what it flags as a
// lone surrogate, ReplaceLoneSurrogates repairs into text that decodes the same.
func FuzzStrict(f *testing.F) {
	for _, c := range strictCases {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ok, lone := strictValid(b)
		if want := json.Valid(b) && utf8.Valid(b); ok != want {
			t.Fatalf("%q: Strict %v, encoding/json %v", b, ok, want)
		}
		if !ok {
			return
		}
		fixed := ReplaceLoneSurrogates(nil, b)
		ok2, lone2 := strictValid(fixed)
		if !ok2 || lone2 || (!lone && string(fixed) != string(b)) {
			t.Fatalf("%q repaired to %q (valid %v, lone %v)", b, fixed, ok2, lone2)
		}
		x, err1 := decode(b)
		y, err2 := decode(fixed)
		if err1 != nil || err2 != nil || !reflect.DeepEqual(x, y) {
			t.Fatalf("%q and its repair %q decode differently", b, fixed)
		}
	})
}

// The JSON columns of a lead record (customer, creator, recipient, referrer): the text Strict
// checks per record. go test -bench . ./internal/jsonscan compares the ways to check it.
var benchValues = [][]byte{
	[]byte(`{"company":{"city":"Springfield","country":"US","name":"Acme 7 Prospect","zip":"90210"},"contact":{"email":"lead123@example.org","firstName":"Ada","lastName":"Lovelace","phone":"+14455555555"}}`),
	[]byte(`{"companyId":"c0000042-aaaa-bbbb-cccc-dddddddddddd","companyName":"Reseller 42 Inc","id":"u0000042-aaaa-bbbb-cccc-dddddddddddd","role":"RESELLER"}`),
	[]byte(`{"participantType":"CHANNEL","partner":"APPDIRECT"}`),
	[]byte(`[{"name":"tier","value":"gold"},{"name":"score","value":42.5,"flags":[true,false,null]}]`),
}

func benchBytes(b *testing.B) {
	n := 0
	for _, v := range benchValues {
		n += len(v)
	}
	b.SetBytes(int64(n))
	b.ReportAllocs()
}

func BenchmarkSkip(b *testing.B) {
	benchBytes(b)
	for i := 0; i < b.N; i++ {
		for _, v := range benchValues {
			if _, err := Skip(v, 0); err != nil {
				b.Fatal(err)
			}
		}
	}
}

func BenchmarkStrictSkip(b *testing.B) {
	benchBytes(b)
	var s Strict
	for i := 0; i < b.N; i++ {
		for _, v := range benchValues {
			if _, err := s.Skip(v, 0, 1); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// Skip then encoding/json.Valid: the other way to get a checked value.
func BenchmarkSkipThenJSONValid(b *testing.B) {
	benchBytes(b)
	for i := 0; i < b.N; i++ {
		for _, v := range benchValues {
			e, err := Skip(v, 0)
			if err != nil || !json.Valid(v[:e]) || !utf8.Valid(v[:e]) {
				b.Fatal("invalid")
			}
		}
	}
}

// special8's lowest mark is the first byte a string check must look at, for every byte value in
// every position, whatever the bytes around it.
func TestSpecial8_LowestMarkIsTheFirstSpecialByte(t *testing.T) {
	special := func(c byte) bool { return c == '"' || c == '\\' || c < 0x20 || c >= 0x80 }
	fill := []byte{'a', ' ', '~', 0x7f, 0x00, 0x1f, 0x20, '"', '\\', 0x80, 0xa0, 0xff, '!', '#', '[', ']'}
	var w [8]byte
	for pos := 0; pos < 8; pos++ {
		for c := 0; c < 256; c++ {
			for _, f := range fill {
				for k := range w {
					w[k] = fill[(k*7+int(f))%len(fill)]
					if k < pos {
						w[k] = 'a' + byte(k) // plain below pos
					}
				}
				w[pos] = byte(c)
				first := 8
				for k, x := range w {
					if special(x) {
						first = k
						break
					}
				}
				m := special8(binary.LittleEndian.Uint64(w[:]))
				got := 8
				if m != 0 {
					got = bits.TrailingZeros64(m) >> 3
				}
				if got != first {
					t.Fatalf("%q: lowest mark at %d, first special byte at %d", w, got, first)
				}
			}
		}
	}
}

// skipString (8 bytes at a time, then byte by byte, then quote to quote) ends every string
// where a byte-by-byte walk does, at every length and position of quotes and backslashes.
func TestSkipString_AgreesWithByteByByte(t *testing.T) {
	ref := func(b []byte, i int) int {
		for j := i + 1; j < len(b); j++ {
			switch b[j] {
			case '"':
				return j + 1
			case '\\':
				j++
			}
		}
		return -1
	}
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []byte(`ab"\\\\x é`)
	for n := 0; n < 20000; n++ {
		size := 1 + rng.IntN(200)
		b := make([]byte, size)
		b[0] = '"'
		for k := 1; k < size; k++ {
			if rng.IntN(8) == 0 {
				b[k] = alphabet[rng.IntN(len(alphabet))]
			} else {
				b[k] = 'a' + byte(rng.IntN(26))
			}
		}
		want := ref(b, 0)
		got, err := skipString(b, 0)
		if want < 0 {
			if err == nil {
				t.Fatalf("%q: ended at %d, want unterminated", b, got)
			}
			continue
		}
		if err != nil || got != want {
			t.Fatalf("%q: got %d, %v; want %d", b, got, err, want)
		}
	}
}

func BenchmarkUnquote(b *testing.B) {
	vals := [][]byte{[]byte(`"lead123@example.org"`), []byte(`"c0000042-aaaa-bbbb-cccc-dddddddddddd"`), []byte(`"RESELLER"`),
		[]byte(`"Acme 7 Prospect, a reseller of cloud software in Springfield"`), []byte(`"Zoë Müller"`)}
	n := 0
	for _, v := range vals {
		n += len(v)
	}
	b.SetBytes(int64(n))
	var scratch []byte
	for i := 0; i < b.N; i++ {
		for _, v := range vals {
			if _, err := Unquote(v, &scratch); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// SkipString finds a string's end like Skip, and calls it plain only when its content is
// printable ASCII without escapes (Unquote's content as it stands), at every length around the
// 8-byte steps.
func TestSkipString_PlainOnlyWithoutEscapesControlOrNonASCII(t *testing.T) {
	for n := 0; n < 20; n++ {
		for _, c := range []struct {
			special string
			plain   bool
		}{{"", true}, {`\"`, false}, {`\\`, false}, {`\n`, false}, {"\t", false}, {"é", false}, {"\x7f", true}} {
			for at := 0; at <= n; at++ {
				body := strings.Repeat("a", at) + c.special + strings.Repeat("b", n-at)
				in := []byte(`"` + body + `",1`)
				end, plain, err := SkipString(in, 0)
				want, werr := Skip(in, 0)
				if err != nil || werr != nil || end != want {
					t.Fatalf("%q: end %d, %v; Skip says %d, %v", in, end, err, want, werr)
				}
				if plain != c.plain {
					t.Fatalf("%q: plain %v, want %v", in, plain, c.plain)
				}
				if plain {
					u, err := Unquote(in[:end], nil)
					if err != nil || string(u) != string(in[1:end-1]) {
						t.Fatalf("%q: a plain string's content %q is not Unquote's %q (%v)", in, in[1:end-1], u, err)
					}
				}
			}
		}
	}
	for _, in := range []string{`"abc`, `"abcdefghijklmnop`, `"abcdefgh\"`} {
		if _, _, err := SkipString([]byte(in), 0); err == nil {
			t.Errorf("%q: want an unterminated-string error", in)
		}
	}
}

// Skip of an object or array (strings scanned 8 bytes at a time inside the container loop)
// ends where a byte-by-byte bracket matcher does, for strings of every length and escapes at
// every position, including at the end of the input.
func TestSkip_ContainerAgreesWithByteByByte(t *testing.T) {
	ref := func(b []byte) int {
		depth, in := 0, false
		for j := 0; j < len(b); j++ {
			switch c := b[j]; {
			case in && c == '\\':
				j++
			case c == '"':
				in = !in
			case in:
			case c == '{' || c == '[':
				depth++
			case c == '}' || c == ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return -1
	}
	rng := rand.New(rand.NewPCG(3, 4))
	alphabet := []byte(`ab"\\\\{}[]:,é`)
	for n := 0; n < 30000; n++ {
		size := 1 + rng.IntN(120)
		b := make([]byte, size)
		b[0] = "{["[rng.IntN(2)]
		for k := 1; k < size; k++ {
			if rng.IntN(5) == 0 {
				b[k] = alphabet[rng.IntN(len(alphabet))]
			} else {
				b[k] = 'a' + byte(rng.IntN(26))
			}
		}
		want := ref(b)
		got, err := Skip(b, 0)
		if want < 0 {
			if err == nil {
				t.Fatalf("%q: ended at %d, want unterminated", b, got)
			}
			continue
		}
		if err != nil || got != want {
			t.Fatalf("%q: got %d, %v; want %d", b, got, err, want)
		}
	}
}
