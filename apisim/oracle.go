package apisim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// The whole-row oracle: what the source holds now, row by row and value by value, so a
// warehouse can be compared cell by cell and not only by ids and one version column.

// Row is one live source row as the oracle compares it.
type Row struct {
	Key    string          `json:"key"`    // primary key as text (companies/users: uuid; invoices: invoiceId decimal; leads/opportunities: id; events: uuid; charges: chargeId; locations: _id)
	Record json.RawMessage `json:"record"` // the exact bytes a list page serves for this row right now
	Values map[string]any  `json:"values"` // every scalar leaf of Record by dotted path of UNESCAPED keys ("uuid", "address.city", "meta.eventTime", "customer.company.name"); leaves inside arrays are not listed
}

// OracleStreams are the streams Rows serves.
var OracleStreams = []string{"companies", "users", "invoices", "leads", "opportunities", "events", "charges", "locations"}

// Canonical values in Row.Values:
//
//   - JSON null: nil; booleans: bool; strings: string (decoded).
//   - Timestamps (the members the documents define as dates, see TimestampPaths): int64 UTC
//     microseconds, taken from the generator's state, never parsed from the served text.
//   - Money (MoneyPaths) and every other number: string, the exact decimal text of the served
//     value (a money member served as a decimal string counts as that number), normalised by
//     NormalizeDecimal: no exponent, no leading zeros, no trailing fraction zeros, no trailing
//     '.', "-0" is "0".
//
// A member absent from Record is absent from Values; a member present is present (null: nil).

// TimestampPaths lists, per stream, the members the documents define as a date or time.
var TimestampPaths = map[string][]string{
	"companies":     {"creationDate"},
	"users":         {"lastModified"},
	"invoices":      {"creationDate", "dueDate"},
	"leads":         {"createdOn", "lastModified"},
	"opportunities": {"createdOn", "purchaseEffectiveDate"},
	"events":        {"creationDate"},
	"charges":       {"meta.eventTime", "createdAt", "updatedAt"},
	"locations":     {"installedAt"},
}

// MoneyPaths lists, per stream, the members that hold money.
var MoneyPaths = map[string][]string{
	"companies": {"thirtyDaysPurchaseLimitOverrideAmt", "dailyPurchaseLimitOverrideAmt"},
	"invoices":  {"total"},
	"charges":   {"amountCharged", "pricePerUnit"},
}

// rowRef names one live row: a table row, or a location.
type rowRef struct {
	key string
	num int64 // invoices: the id, which orders them
	t   *table
	i   int
	loc int // charges: the location's index; locations: the location's index
}

type oracleState struct {
	mu      sync.Mutex
	sorted  *sortedRefs          // the last stream whose rows were listed in key order
	digests map[string][2]uint64 // stream -> {mutation count, digest}
}

type sortedRefs struct {
	stream string
	mut    uint64
	refs   []rowRef
}

// eachRefLocked calls f for every live row of stream, in index order. The caller holds s.mu.
func (s *Server) eachRefLocked(stream string, f func(rowRef)) error {
	g := s.gen
	switch stream {
	case "companies", "users", "invoices", "leads", "opportunities", "events":
		t := s.tables[stream]
		for i := 0; i < t.count; i++ {
			if t.isDeleted(i) {
				continue
			}
			r := rowRef{t: t, i: i}
			if stream == "invoices" {
				r.num = int64(1000 + i)
				r.key = strconv.FormatInt(r.num, 10)
			} else {
				r.key = uuidOf(g.seed, stream, i)
			}
			f(r)
		}
	case "charges":
		for k, loc := range s.locations {
			if !loc.installed {
				continue
			}
			t := loc.charges
			for i := 0; i < t.count; i++ {
				if !t.isDeleted(i) {
					f(rowRef{key: hlID(g.seed, t.name, i), t: t, i: i, loc: k})
				}
			}
		}
	case "locations":
		for k, loc := range s.locations {
			f(rowRef{key: loc.id, i: k, loc: k})
		}
	default:
		return fmt.Errorf("apisim: no stream %q (streams: %s)", stream, strings.Join(OracleStreams, ", "))
	}
	return nil
}

// sortedRefsLocked returns the live rows of stream in key order: invoices by number, the others
// by key bytes (as the warehouse orders a BIGINT and a VARCHAR key).
func (s *Server) sortedRefsLocked(stream string) ([]rowRef, error) {
	s.oracle.mu.Lock()
	if c := s.oracle.sorted; c != nil && c.stream == stream && c.mut == s.mutations {
		s.oracle.mu.Unlock()
		return c.refs, nil
	}
	s.oracle.mu.Unlock()
	var refs []rowRef
	if err := s.eachRefLocked(stream, func(r rowRef) { refs = append(refs, r) }); err != nil {
		return nil, err
	}
	if stream == "invoices" {
		sort.Slice(refs, func(a, b int) bool { return refs[a].num < refs[b].num })
	} else {
		sort.Slice(refs, func(a, b int) bool { return refs[a].key < refs[b].key })
	}
	s.oracle.mu.Lock()
	s.oracle.sorted = &sortedRefs{stream: stream, mut: s.mutations, refs: refs}
	s.oracle.mu.Unlock()
	return refs, nil
}

func (s *Server) renderLocked(b []byte, stream string, r rowRef) []byte {
	g := s.gen
	switch stream {
	case "companies":
		return g.company(b, r.t, r.i)
	case "users":
		return g.user(b, r.t, r.i)
	case "invoices":
		return g.invoice(b, r.t, r.i)
	case "leads":
		return g.lead(b, r.t, r.i)
	case "opportunities":
		return g.opportunity(b, r.t, r.i)
	case "events":
		return g.event(b, r.t, r.i)
	case "charges":
		loc := s.locations[r.loc]
		return g.charge(b, loc.charges, r.i, loc.id, DemoHLAppID)
	case "locations":
		return g.location(b, s.locations[r.loc], r.loc)
	}
	panic("apisim: no stream " + stream)
}

// stamp is one timestamp member as the generator's state has it (null: the member is null).
type stamp struct {
	path string
	ms   int64
	null bool
}

func (s *Server) stampsLocked(stream string, r rowRef) []stamp {
	g, t, i := s.gen, r.t, r.i
	switch stream {
	case "companies":
		return []stamp{{path: "creationDate", ms: t.created(i)}}
	case "users":
		if g.userHidesTime(i) {
			return nil // served without lastModified: Values has none
		}
		return []stamp{{path: "lastModified", ms: t.modified(i)}}
	case "invoices":
		c, d := g.invoiceTimes(t, i)
		return []stamp{{path: "creationDate", ms: c}, {path: "dueDate", ms: d}}
	case "leads":
		c, m := g.leadTimes(t, i)
		return []stamp{{path: "createdOn", ms: c}, {path: "lastModified", ms: m}}
	case "opportunities":
		c, p, ok := g.oppTimes(t, i)
		return []stamp{{path: "createdOn", ms: c}, {path: "purchaseEffectiveDate", ms: p, null: !ok}}
	case "events":
		return []stamp{{path: "creationDate", ms: t.created(i)}}
	case "charges":
		t = s.locations[r.loc].charges
		return []stamp{{path: "meta.eventTime", ms: t.created(i)}, {path: "createdAt", ms: t.created(i)}, {path: "updatedAt", ms: t.modified(i)}}
	case "locations":
		if loc := s.locations[r.loc]; loc.installed {
			return []stamp{{path: "installedAt", ms: loc.installedAt}}
		}
	}
	return nil
}

// leaf is one member of Values.
type leaf struct {
	path string
	v    any
}

// rowLeavesLocked renders a row and reads its values; leaves are sorted by path.
func (s *Server) rowLeavesLocked(stream string, r rowRef) ([]byte, *jval, []leaf, error) {
	rec := s.renderLocked(nil, stream, r)
	root, err := parseJSON(rec)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("apisim: %s row %s: %w", stream, r.key, err)
	}
	ls, err := leavesOf(stream, root, s.stampsLocked(stream, r))
	if err != nil {
		return nil, nil, nil, fmt.Errorf("apisim: %s row %s: %w", stream, r.key, err)
	}
	return rec, root, ls, nil
}

func (s *Server) rowLocked(stream string, r rowRef) (Row, error) {
	rec, _, ls, err := s.rowLeavesLocked(stream, r)
	if err != nil {
		return Row{}, err
	}
	vals := make(map[string]any, len(ls))
	for _, l := range ls {
		vals[l.path] = l.v
	}
	return Row{Key: r.key, Record: rec, Values: vals}, nil
}

// rowHashLocked is RowHash of the row, computed without building the Row.
func (s *Server) rowHashLocked(stream string, r rowRef) (uint64, error) {
	_, root, ls, err := s.rowLeavesLocked(stream, r)
	if err != nil {
		return 0, err
	}
	var buf [2048]byte
	return hashRow(r.key, ls, appendCanonical(buf[:0], root)), nil
}

// leavesOf reads every scalar leaf of a record (outside arrays) into canonical values,
// timestamps from the generator's state st.
func leavesOf(stream string, root *jval, st []stamp) ([]leaf, error) {
	if root.kind != '{' {
		return nil, fmt.Errorf("record is not an object")
	}
	money := MoneyPaths[stream]
	out := make([]leaf, 0, 32)
	var walk func(prefix string, v *jval) error
	walk = func(prefix string, v *jval) error {
		for k, kid := range v.kids {
			path := prefix + v.keys[k]
			switch kid.kind {
			case '{':
				if err := walk(path+".", kid); err != nil {
					return err
				}
			case '[':
			case '"':
				if slices.Contains(money, path) {
					d, err := NormalizeDecimal(kid.s)
					if err != nil {
						return fmt.Errorf("money member %s: %w", path, err)
					}
					out = append(out, leaf{path, d})
				} else {
					out = append(out, leaf{path, kid.s})
				}
			case '0':
				d, err := NormalizeDecimal(kid.s)
				if err != nil {
					return fmt.Errorf("member %s: %w", path, err)
				}
				out = append(out, leaf{path, d})
			case 't', 'f':
				out = append(out, leaf{path, kid.kind == 't'})
			case 'n':
				out = append(out, leaf{path, nil})
			}
		}
		return nil
	}
	if err := walk("", root); err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b leaf) int { return strings.Compare(a.path, b.path) })
	for k := 1; k < len(out); k++ {
		if out[k].path == out[k-1].path {
			return nil, fmt.Errorf("member %s twice", out[k].path)
		}
	}
	for _, p := range TimestampPaths[stream] {
		var want *stamp
		for k := range st {
			if st[k].path == p {
				want = &st[k]
			}
		}
		at, present := sort.Find(len(out), func(k int) int { return strings.Compare(p, out[k].path) })
		switch {
		case !present:
			if want != nil && !want.null {
				return nil, fmt.Errorf("timestamp %s is in the state but not in the record", p)
			}
		case want == nil:
			return nil, fmt.Errorf("timestamp %s is in the record but not in the state", p)
		case out[at].v == nil || want.null:
			if out[at].v != nil || !want.null {
				return nil, fmt.Errorf("timestamp %s: record %v, state null=%v", p, out[at].v, want.null)
			}
		default:
			out[at].v = want.ms * 1000
		}
	}
	return out, nil
}

// NormalizeDecimal rewrites decimal text (a JSON number, or a numeric string) as plain decimal
// text: no exponent, no sign on zero, no leading zeros, no trailing fraction zeros, no
// trailing '.'. "42.5100000000" -> "42.51", "1E3" -> "1000", "-0.0" -> "0".
func NormalizeDecimal(s string) (string, error) {
	bad := fmt.Errorf("%q is not a decimal number", s)
	i, neg := 0, false
	if i < len(s) && (s[i] == '-' || s[i] == '+') {
		neg, i = s[i] == '-', i+1
	}
	var digits []byte
	intStart := i
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	digits = append(digits, s[intStart:i]...)
	point := len(digits)
	if i < len(s) && s[i] == '.' {
		i++
		fs := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		digits = append(digits, s[fs:i]...)
	}
	if len(digits) == 0 {
		return "", bad
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		e, err := strconv.Atoi(s[i+1:])
		if err != nil || e > 400 || e < -400 {
			return "", bad
		}
		point += e
		i = len(s)
	}
	if i != len(s) {
		return "", bad
	}
	for point < 0 {
		digits = append([]byte{'0'}, digits...)
		point++
	}
	for point > len(digits) {
		digits = append(digits, '0')
	}
	ip := strings.TrimLeft(string(digits[:point]), "0")
	fp := strings.TrimRight(string(digits[point:]), "0")
	if ip == "" {
		ip = "0"
	}
	out := ip
	if fp != "" {
		out += "." + fp
	}
	if neg && out != "0" {
		out = "-" + out
	}
	return out, nil
}

// CanonicalJSON is raw decoded with UseNumber and re-marshalled: members sorted by name, no
// insignificant space, numbers as served, strings re-escaped by encoding/json (HTML not escaped).
func CanonicalJSON(raw []byte) ([]byte, error) {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	e := json.NewEncoder(&buf)
	e.SetEscapeHTML(false)
	if err := e.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// RowHash is one row's share of a content digest: FNV-1a 64 over the key, then every
// (path, value) of Values sorted by path, then CanonicalJSON(Record); each part followed by a 0
// byte, values tagged by type: "n" null, "btrue"/"bfalse", "s"+text, "t"+decimal microseconds
// (float64 and json.Number integers, as a JSON decoder returns them, count as timestamps).
func RowHash(r Row) uint64 {
	ls := make([]leaf, 0, len(r.Values))
	for p, v := range r.Values {
		ls = append(ls, leaf{p, v})
	}
	sort.Slice(ls, func(a, b int) bool { return ls[a].path < ls[b].path })
	c, err := CanonicalJSON(r.Record)
	if err != nil {
		c = r.Record
	}
	return hashRow(r.Key, ls, c)
}

const fnvOffset, fnvPrime = 14695981039346656037, 1099511628211

func fnvAdd(h uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		h = (h ^ uint64(s[i])) * fnvPrime
	}
	return h
}

func fnvEnd(h uint64) uint64 { return h * fnvPrime } // a 0 byte: h ^ 0 == h

func hashRow(key string, sorted []leaf, canonical []byte) uint64 {
	h := fnvEnd(fnvAdd(fnvOffset, key))
	for _, l := range sorted {
		h = fnvEnd(fnvAdd(h, l.path))
		switch v := l.v.(type) {
		case nil:
			h = fnvAdd(h, "n")
		case bool:
			h = fnvAdd(fnvAdd(h, "b"), strconv.FormatBool(v))
		case string:
			h = fnvAdd(fnvAdd(h, "s"), v)
		case int64:
			h = fnvAdd(fnvAdd(h, "t"), strconv.FormatInt(v, 10))
		case int:
			h = fnvAdd(fnvAdd(h, "t"), strconv.Itoa(v))
		case float64:
			if v == math.Trunc(v) && math.Abs(v) < 1<<62 {
				h = fnvAdd(fnvAdd(h, "t"), strconv.FormatInt(int64(v), 10))
			} else {
				h = fnvAdd(fnvAdd(h, "f"), strconv.FormatFloat(v, 'g', -1, 64))
			}
		case json.Number:
			h = fnvAdd(fnvAdd(h, "t"), v.String())
		default:
			h = fnvAdd(fnvAdd(h, "?"), fmt.Sprint(v))
		}
		h = fnvEnd(h)
	}
	return fnvEnd(fnvAdd(h, string(canonical)))
}

// ContentDigest sums RowHash over rows: order-independent, so any listing of the same rows with
// the same values gives the same digest.
func ContentDigest(rows []Row) uint64 {
	var d uint64
	for _, r := range rows {
		d += RowHash(r)
	}
	return d
}

// Rows returns every live row of a stream ("companies", "users", "invoices", "leads",
// "opportunities", "charges", "locations"), in key order (invoices by number, the others by the
// key's bytes). charges: all installed locations' charges; locations: every location the
// installedLocations endpoint lists for the demo company/app (installed or not). O(rows): for
// tests.
func (s *Server) Rows(stream string) ([]Row, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	refs, err := s.sortedRefsLocked(stream)
	if err != nil {
		return nil, err
	}
	out := make([]Row, 0, len(refs))
	for _, r := range refs {
		row, err := s.rowLocked(stream, r)
		if err != nil {
			return nil, err
		}
		out = append(out, row)
	}
	return out, nil
}

// Keys returns the keys of every live row of a stream, in Rows' order, without rendering the
// rows (cheap enough to call around every listing in a test).
func (s *Server) Keys(stream string) ([]string, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	refs, err := s.sortedRefsLocked(stream)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(refs))
	for k, r := range refs {
		out[k] = r.key
	}
	return out, nil
}

// contentDigestLocked is the stream's ContentDigest, computed row by row in flat memory and
// remembered until the next change.
func (s *Server) contentDigestLocked(stream string) (uint64, error) {
	s.oracle.mu.Lock()
	if d, ok := s.oracle.digests[stream]; ok && d[0] == s.mutations {
		s.oracle.mu.Unlock()
		return d[1], nil
	}
	s.oracle.mu.Unlock()
	var sum uint64
	var ferr error
	err := s.eachRefLocked(stream, func(r rowRef) {
		if ferr != nil {
			return
		}
		h, err := s.rowHashLocked(stream, r)
		if err != nil {
			ferr = err
			return
		}
		sum += h
	})
	if err = firstErr(err, ferr); err != nil {
		return 0, err
	}
	s.oracle.mu.Lock()
	if s.oracle.digests == nil {
		s.oracle.digests = map[string][2]uint64{}
	}
	s.oracle.digests[stream] = [2]uint64{s.mutations, sum}
	s.oracle.mu.Unlock()
	return sum, nil
}

// handleRows serves GET /_sim/rows?stream=NAME[&offset=N][&limit=N]:
// {"stream": NAME, "digest": "<16 hex>", "total": N, "offset": N, "rows": [Row...]}; the digest
// covers the whole stream, rows are the [offset, offset+limit) slice of the key order (no
// limit: all). In values, timestamps are JSON integers (microseconds), every other number a
// string.
func (s *Server) handleRows(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	stream := q.Get("stream")
	offset, err := qint(q, "offset", 0, 0, math.MaxInt)
	limit, err2 := qint(q, "limit", math.MaxInt, 1, math.MaxInt)
	if err = firstErr(err, err2); err == nil && !slices.Contains(OracleStreams, stream) {
		err = fmt.Errorf("parameter 'stream' must be one of %s, got %q", strings.Join(OracleStreams, ", "), stream)
	}
	if err != nil {
		writeJSON(w, 400, map[string]any{"status": 400, "code": "BAD_REQUEST", "message": err.Error()})
		return
	}
	s.mu.RLock()
	refs, err := s.sortedRefsLocked(stream)
	var digest uint64
	if err == nil {
		digest, err = s.contentDigestLocked(stream)
	}
	var b []byte
	if err == nil {
		b = fmt.Appendf(b, `{"stream":%q,"digest":"%016x","total":%d,"offset":%d,"rows":[`, stream, digest, len(refs), offset)
		end := len(refs)
		if limit < end-offset {
			end = offset + limit
		}
		for k := offset; k < end && err == nil; k++ {
			var row Row
			if row, err = s.rowLocked(stream, refs[k]); err != nil {
				break
			}
			vals, _ := json.Marshal(row.Values)
			if k > offset {
				b = append(b, ',')
			}
			kb, _ := json.Marshal(row.Key)
			b = append(append(append(b, `{"key":`...), kb...), `,"record":`...)
			b = append(append(append(b, row.Record...), `,"values":`...), vals...)
			b = append(b, '}')
		}
		b = append(b, "]}"...)
	}
	s.mu.RUnlock()
	if err != nil {
		writeJSON(w, 500, map[string]any{"status": 500, "code": "INTERNAL_SERVER_ERROR", "message": err.Error()})
		return
	}
	writeBody(w, 200, b)
}
