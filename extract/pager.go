package extract

import (
	"bytes"
	"context"
	"fmt"
	"hash/maphash"
	"slices"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/marketsync/marketsync/internal/jsonscan"
)

// Page is one page of raw records. Records are sub-slices of Body; the receiver may keep them
// only until Emit returns.
type Page struct {
	Stream    string
	Partition string
	Number    int // position of the page in the listing, from 0, in emit order
	Records   [][]byte
	// Listed is how many rows the listing has counted so far, this page's included; Total how
	// many the server says it has (0: it does not say). For progress displays.
	Listed, Total int
}

// Emit receives pages in order. It is called from one goroutine at a time.
type Emit func(ctx context.Context, p Page) error

// Outcome says what one listing saw, so that the caller can decide what it proves. A lister
// that returns a nil error reached the listing's end under the pager rules: the server's total
// reached, or, with no total, an empty page (or 204); a short page is never taken for the end
// unless the total agrees. On an error the Outcome still counts what was emitted.
type Outcome struct {
	// Pages is the number of pages emitted (pages with at least one new record).
	Pages int
	// Complete: the listing reached its end, it was unfiltered (every row of the stream was in
	// scope: no since, no status) and nothing showed that it changed while paged (Drift false).
	// Filtered listings (incremental runs, status sweeps) are never Complete; for them a nil
	// error with Drift false says every row in scope was listed, as far as the pager can tell.
	Complete bool
	// Drift: the listing changed while it was paged, or its pages disagree with each other:
	// totals moved between pages, a key was listed twice, a page held other rows than its
	// position promised (rows shifted across a boundary: offset listings re-read the last row of
	// the previous page to see it), a page served a row count its total cannot explain, or the
	// distinct keys differ from the final total.
	Drift bool
	// Total is the server's final total for the listed scope, -1 when unknown: invoices (the
	// API gives none), charges answered as a bare array or without pagination.total, a page
	// object without totalElements, installed locations whose total counts other rows too (it
	// is then given only when the distinct keys listed equal it).
	Total int
	// Rows counts records received, duplicates included; each listing position counts once (the
	// overlap row an offset page repeats to detect shifts is not counted again).
	Rows int
	// Duplicates counts records whose key was already received in this listing. Keys are read
	// from each endpoint's id member (Rows - Duplicates = distinct keys: see Distinct).
	Duplicates int
	// Capped: the server served fewer rows per page than asked, and the pager adapted to the
	// size it served.
	Capped bool
	// Unchecked counts page boundaries the pager could not check for rows shifted across them
	// (pages of one row; page-number listings without totalElements; a boundary no page size
	// could overlap). With Unchecked 0 and Drift false, a total that agrees with the distinct
	// keys shows every row that stayed in the listing while it was paged was listed.
	Unchecked int
	// Why explains, for people, whatever limits what the listing proves ("total unknown: bare
	// array", "server capped pages at 100 rows (asked 250)", "totals moved while paging (500 →
	// 502)", ...); "" when nothing does. Notes are joined by "; ".
	Why string
	// ServerStart is the server's clock (its Date header) when it answered the listing's first
	// page; zero when unknown. A listing whose rows carry no cursor value (users, §7.3) moves
	// its cursor here: whatever changes after it is in the next window.
	ServerStart time.Time
	// Notice is what the user must be told whatever the run does with the listing (a server
	// that read a filter otherwise than sent); it goes to the stream's run record. "" if none.
	Notice string
}

// Distinct is the number of distinct keys the listing received.
func (o Outcome) Distinct() int { return o.Rows - o.Duplicates }

// TotalAgrees reports whether the server gave a final total and it equals the distinct keys
// received: the proof of completeness a caller may delete by (together with Complete).
func (o Outcome) TotalAgrees() bool { return o.Total >= 0 && o.Total == o.Distinct() }

// fetched is one page plus what its metadata said.
type fetched struct {
	page       Page
	totalRows  int       // -1 if the response gives none
	totalPages int       // -1 if unknown
	number     int       // echoed zero-based page index, -1 if not echoed
	shape      string    // why the total is unknown, for Outcome.Why ("bare array", ...)
	date       time.Time // the response's Date header, zero if none
}

// maxPages guards against an API that never stops paging.
const maxPages = 2_000_000

// listing is the bookkeeping every paginator shares: it emits pages in order, counts rows and
// keys and collects the notes that end up in Outcome.Why.
type listing struct {
	stream, partition string
	keys              []string // id members tried in order
	emit              Emit
	out               Outcome
	received          keySet // the key hash of every counted record
	noKey             int
	notes             []string
	prevPage          uint64 // content hash of the previous page
	prevFirst         uint64 // key hash of the previous page's first record
	prevLen           int    // records on the previous page
	hasPrev           bool
	bound             int // totalBound listings: the server's upper bound, -1 if none
	scratch           []byte
}

func newListing(stream, partition string, emit Emit, keys ...string) *listing {
	return &listing{stream: stream, partition: partition, keys: keys, emit: emit, out: Outcome{Total: -1}, bound: -1}
}

// note adds a reason to Why (once).
func (l *listing) note(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	if !slices.Contains(l.notes, s) {
		l.notes = append(l.notes, s)
	}
}

func (l *listing) drift(format string, args ...any) {
	l.out.Drift = true
	l.note(format, args...)
}

// keyOf returns a record's key (a string member unquoted, anything else as served), or nil.
func (l *listing) keyOf(rec []byte) []byte {
	for _, k := range l.keys {
		v := jsonscan.Get(rec, k)
		if len(v) == 0 || jsonscan.IsNull(v) {
			continue
		}
		if v[0] == '"' {
			u, err := jsonscan.Unquote(v, &l.scratch)
			if err != nil {
				return v
			}
			return u
		}
		return v
	}
	return nil
}

// hashSeed seeds every hash a listing compares (keys, records, pages): they are compared within
// one process only. maphash runs ~13x faster than FNV-1a on a 700-byte record (7.8 GB/s against
// 0.58), and the extractor hashes every record's bytes twice.
var hashSeed = maphash.MakeSeed()

func hashKey(k []byte) uint64 { return maphash.Bytes(hashSeed, k) }

// keyHash is a record's key hash; a record without a key (ok false) hashes by its bytes.
func (l *listing) keyHash(rec []byte) (h uint64, ok bool) {
	k := l.keyOf(rec)
	if k == nil {
		return hashKey(rec) ^ 0x9E3779B97F4A7C15, false
	}
	return hashKey(k), true
}

// repeated reports whether recs are the previous page again, or begin with the row the
// previous page began with (the server ignores the page or offset parameter: a correct server's
// pages each begin further along); it then returns an error for the caller to end with.
func (l *listing) repeated(recs [][]byte, at string) error {
	if len(recs) == 0 {
		return nil
	}
	var h maphash.Hash
	h.SetSeed(hashSeed)
	for _, r := range recs {
		_, _ = h.Write(r)
		_ = h.WriteByte(0)
	}
	sum := h.Sum64()
	firstKey, _ := l.keyHash(recs[0])
	// After a one-row page, a page beginning with that row is an overlap (a server starting a
	// page one row early), not a repeat, unless it is the very same page.
	if l.hasPrev && (sum == l.prevPage || (firstKey == l.prevFirst && l.prevLen > 1)) {
		l.drift("a page repeated the previous one")
		return fmt.Errorf("%w: stream %s: %s repeats the previous page (the server ignores the paging parameter)", ErrPagination, l.stream, at)
	}
	l.prevPage, l.prevFirst, l.prevLen, l.hasPrev = sum, firstKey, len(recs), true
	return nil
}

// deliver emits recs as the next page and counts them, except the first uncounted records:
// newer versions of rows already counted, emitted so the newest version lands.
func (l *listing) deliver(ctx context.Context, recs [][]byte, uncounted int) error {
	if len(recs) == 0 {
		return nil
	}
	for _, r := range recs[min(uncounted, len(recs)):] {
		h, ok := l.keyHash(r)
		if !ok {
			l.noKey++
		}
		l.received.add(h)
		l.out.Rows++
	}
	if err := l.emit(ctx, Page{Stream: l.stream, Partition: l.partition, Number: l.out.Pages, Records: recs, Listed: l.out.Rows, Total: max(l.out.Total, 0)}); err != nil {
		return err
	}
	l.out.Pages++
	return nil
}

// finish computes duplicates, checks the total against the distinct keys and decides Complete.
func (l *listing) finish(ended, filtered bool) Outcome {
	distinct, err := l.received.counts()
	if err != nil {
		// Duplicates are unknown: the listing is not taken as complete (nothing is soft-deleted
		// on its account), and the reason is in Why.
		l.drift("%v", err)
		distinct = l.out.Rows
	}
	dups := l.out.Rows - distinct
	l.out.Duplicates = dups
	if dups > 0 {
		l.drift("%d records listed again under a key already received", dups)
	}
	if l.noKey > 0 {
		l.note("%d records without an id member (%s)", l.noKey, strings.Join(l.keys, ", "))
	}
	if ended && l.out.Total >= 0 && l.out.Total != l.out.Distinct() {
		l.drift("listed %d distinct keys, the total says %d", l.out.Distinct(), l.out.Total)
	}
	if filtered {
		l.note("filtered listing: rows outside the filter are not in scope")
	}
	l.out.Complete = ended && !filtered && !l.out.Drift
	l.out.Why = strings.Join(l.notes, "; ")
	return l.out
}

// window is one page-number request: page p of size z covers positions [p*z, p*z+z).
type window struct{ p, z int }

func (w window) start() int { return w.p * w.z }

// windowAfter picks the next page-number request once positions [0, next) were read: a size z
// at most eff (the size the server serves; at least half of it) whose page p*z starts just
// before next, so that the page begins with rows already read (the overlap) and shows whether
// rows shifted across the boundary. It maximises the new rows per request; if every size divides
// next (no page can overlap), the page starting at next is taken.
func windowAfter(next, eff int) (window, bool) {
	best, bestNew := window{}, 0
	for z := eff; z >= max(2, (eff+1)/2); z-- {
		p := (next - 1) / z
		if n := p*z + z - next; n > bestNew {
			best, bestNew = window{p, z}, n
		}
	}
	if bestNew > 0 {
		return best, true
	}
	return window{next / eff, eff}, false
}

// fetchBatch runs n fetches concurrently and returns their results in order.
func fetchBatch(ctx context.Context, n int, fetch func(ctx context.Context, j int) (fetched, error)) ([]fetched, error) {
	out := make([]fetched, n)
	if n == 1 {
		f, err := fetch(ctx, 0)
		out[0] = f
		return out, err
	}
	g, gctx := errgroup.WithContext(ctx)
	for j := range n {
		g.Go(func() error {
			f, err := fetch(gctx, j)
			out[j] = f
			return err
		})
	}
	return out, g.Wait()
}

// recent remembers the keys and contents of the last rows read, by position.
type recent struct {
	from int      // position of keys[0]
	keys []uint64 // key hashes
	recs []uint64 // content hashes
}

func (r *recent) add(pos int, key, rec uint64, keep int) {
	switch end := r.from + len(r.keys); {
	case len(r.keys) > 0 && pos >= r.from && pos < end: // read again: the newer version
		r.keys[pos-r.from], r.recs[pos-r.from] = key, rec
		return
	case len(r.keys) == 0 || pos != end: // not contiguous: start over
		r.from, r.keys, r.recs = pos, r.keys[:0], r.recs[:0]
	}
	r.keys, r.recs = append(r.keys, key), append(r.recs, rec)
	if d := len(r.keys) - keep; d > 0 {
		r.keys, r.recs = append(r.keys[:0], r.keys[d:]...), append(r.recs[:0], r.recs[d:]...)
		r.from += d
	}
}

func (r *recent) at(pos int) (key, rec uint64, ok bool) {
	if i := pos - r.from; i >= 0 && i < len(r.keys) {
		return r.keys[i], r.recs[i], true
	}
	return 0, 0, false
}

func contentHash(b []byte) uint64 { return hashKey(b) }

// pagesByNumber pages a page-number endpoint (P1 zero-based page, P2 one-based number) whose
// page object may carry totalElements. Page 0 (of the size asked) reveals the total and the
// size the server really serves, which may be below the size asked (the server caps, and may
// not say so in page.size or totalPages). Every later page is asked with a size no larger than
// that, chosen so that the page starts a few rows before the first unread row (windowAfter):
// those rows must be the ones already read there, or rows shifted across the boundary while
// paging (Drift; re-read rows are then listed again and counted as duplicates). Pages are
// fetched conc ahead and emitted in order, each checked: the echoed page number, the row count
// its position and its total allow, the total against the previous page's, repeats. The listing
// ends when the latest total is reached, or on an empty page; totalPages is never trusted. With
// no totalElements, pages of the size asked are read one by one until an empty page.
func pagesByNumber(ctx context.Context, conc, ask int, fetch func(ctx context.Context, p, size int) (fetched, error), l *listing) (bool, error) {
	first, err := fetch(ctx, 0, ask)
	if err != nil {
		return false, err
	}
	l.out.ServerStart = first.date
	if first.totalRows < 0 {
		l.note("total unknown: the page object has no totalElements")
		return pagesUntilEmpty(ctx, func(ctx context.Context, k int) (fetched, error) { return fetch(ctx, k, ask) }, first, l)
	}
	if first.number >= 0 && first.number != 0 {
		l.drift("page 0 answered as page %d", first.number)
		return false, fmt.Errorf("%w: stream %s: page 0 was answered as page %d (the server does not serve the page asked)", ErrPagination, l.stream, first.number)
	}
	n0, total := len(first.page.Records), first.totalRows
	l.out.Total = total
	eff := max(ask, 1)
	if n0 < total { // page 0 is not the last: it shows the page size served
		if n0 == 0 {
			l.drift("page 0 is empty but totalElements is %d", total)
			return true, nil
		}
		if n0 < ask {
			l.out.Capped = true
			l.note("server capped pages at %d rows (asked %d)", n0, ask)
		}
		eff = n0
	}
	if need := max(1, (total+eff-1)/eff); first.totalPages > need {
		l.note("server's totalPages %d ignored: %d rows at %d per page need %d", first.totalPages, total, eff, need)
	}
	var seen recent
	next, last := 0, total // rows read in listing order; the latest page's total
	// take processes window w's page; it returns false when the listing ends.
	take := func(ctx context.Context, w window, f fetched) (bool, error) {
		if f.number >= 0 && f.number != w.p {
			l.drift("page %d answered as page %d", w.p, f.number)
			return false, fmt.Errorf("%w: stream %s: page %d was answered as page %d (the server does not serve the page asked)", ErrPagination, l.stream, w.p, f.number)
		}
		recs := f.page.Records
		t := f.totalRows
		switch {
		case t < 0:
			l.drift("page %d has no totalElements", w.p)
			t = last
		case t != last:
			l.drift("totals moved while paging (%d → %d)", last, t)
		}
		last = t
		a := w.start()
		if want := min(w.z, max(0, t-a)); len(recs) != want && !(w.p == 0 && len(recs) == eff) {
			l.drift("page %d of %d served %d rows where its position and total %d allow %d", w.p, w.z, len(recs), t, want)
		}
		if err := l.repeated(recs, fmt.Sprintf("page %d", w.p)); err != nil {
			return false, err
		}
		// The overlap: rows [a, next) were read; this page must repeat them.
		over := min(len(recs), max(0, next-a))
		var changed [][]byte
		shifted := false
		for i := 0; i < over; i++ {
			k, c, ok := seen.at(a + i)
			if h, _ := l.keyHash(recs[i]); !ok || k != h {
				shifted = true
				break
			}
			if c != contentHash(recs[i]) {
				changed = append(changed, recs[i])
			}
		}
		emitRecs, uncounted := recs[over:], 0
		if shifted {
			l.drift("rows shifted while paging: page %d of %d did not begin with the rows read before position %d", w.p, w.z, next)
			emitRecs = recs
		} else if len(changed) > 0 {
			// Rows changed since they were read: emit their newer versions too, uncounted.
			emitRecs, uncounted = append(changed, recs[over:]...), len(changed)
		}
		if err := l.deliver(ctx, emitRecs, uncounted); err != nil {
			return false, err
		}
		for i, r := range recs {
			h, _ := l.keyHash(r)
			seen.add(a+i, h, contentHash(r), eff)
		}
		l.out.Total = t
		next = a + len(recs)
		return len(recs) > 0 && next < t, nil
	}
	more, err := take(ctx, window{0, ask}, first)
	if err != nil || !more {
		return err == nil, err
	}
	for iter := 0; iter < maxPages; {
		var plans []window
		for o := next; len(plans) < max(1, conc) && o < last; {
			w, _ := windowAfter(o, eff)
			plans = append(plans, w)
			o = w.start() + w.z
		}
		if len(plans) == 0 {
			return true, nil
		}
		batch, err := fetchBatch(ctx, len(plans), func(ctx context.Context, j int) (fetched, error) {
			return fetch(ctx, plans[j].p, plans[j].z)
		})
		if err != nil {
			return false, err
		}
		for j, f := range batch {
			w, overlaps := windowAfter(next, eff)
			if w != plans[j] {
				break // planned on rows the server did not serve: plan again from here
			}
			if !overlaps {
				l.out.Unchecked++
				l.note("page boundaries no page size could overlap: a shift across them cannot be seen")
			}
			iter++
			more, err := take(ctx, plans[j], f)
			if err != nil || !more {
				return err == nil, err
			}
		}
	}
	return false, fmt.Errorf("%w: stream %s: more than %d pages", ErrPagination, l.stream, maxPages)
}

// pagesUntilEmpty reads a page-number listing without a total one page at a time until a page
// is empty.
func pagesUntilEmpty(ctx context.Context, fetch func(ctx context.Context, k int) (fetched, error), first fetched, l *listing) (bool, error) {
	f := first
	for k := 0; k < maxPages; k++ {
		if k > 0 {
			var err error
			if f, err = fetch(ctx, k); err != nil {
				return false, err
			}
		}
		if f.number >= 0 && f.number != k {
			l.drift("page %d answered as page %d", k, f.number)
			return false, fmt.Errorf("%w: stream %s: page %d was answered as page %d (the server does not serve the page asked)", ErrPagination, l.stream, k, f.number)
		}
		recs := f.page.Records
		if len(recs) == 0 {
			return true, nil
		}
		if k > 0 {
			l.out.Unchecked++
		}
		if err := l.repeated(recs, fmt.Sprintf("page %d", k)); err != nil {
			return false, err
		}
		if err := l.deliver(ctx, recs, 0); err != nil {
			return false, err
		}
	}
	return false, fmt.Errorf("%w: stream %s: more than %d pages", ErrPagination, l.stream, maxPages)
}

// totalKind says what an offset endpoint's total counts.
type totalKind int

const (
	totalExact totalKind = iota // the rows of the listing (charges' pagination.total); may be absent
	totalBound                  // at least the rows of the listing (installedLocations: every location of the company)
	totalNone                   // nothing (invoices)
)

// pagesByOffset pages an offset endpoint (start/count, skip/limit). Offsets advance by the rows
// received, never by the rows asked. Each page after the first starts one row early and must
// begin with the row that ended the previous page: a different row means rows shifted across
// the boundary while paging (Drift), a changed version of the same row is emitted again. A page
// shorter than asked ends the listing only if the total agrees; otherwise the server caps (its
// size is adopted and later pages are planned by it) or, with no total, the next page decides:
// the listing ends on an empty page (or 204, or a page holding only the overlap row). Once a
// full page was seen, conc pages are fetched ahead and emitted in order; pages planned on a
// size the server did not serve are dropped and fetched again.
func pagesByOffset(ctx context.Context, conc, ask int, kind totalKind, fetch func(ctx context.Context, start, limit int) (fetched, error), l *listing) (bool, error) {
	next := 0           // rows received in listing order: the position of the first unread row
	step := max(1, ask) // rows a page is expected to serve
	trusted := false    // step was seen served: pages can be planned ahead
	probing := false    // the last page was short and no total says it was the last
	total, totalLost := -1, false
	var lastKey, lastRec []byte // the row at position next-1
	startOf := func(pos int) int {
		if pos > 0 && step >= 2 {
			return pos - 1
		}
		return pos
	}
	for iter := 0; iter < maxPages; {
		m := 1
		if trusted && !probing {
			m = max(1, conc)
		}
		var plans []int
		for o, j := next, 0; j < m; j++ {
			if j > 0 && total >= 0 && o >= total {
				break
			}
			s := startOf(o)
			plans = append(plans, s)
			o = s + step
		}
		batch := make([]fetched, len(plans))
		if len(plans) == 1 {
			f, err := fetch(ctx, plans[0], ask)
			if err != nil {
				return false, err
			}
			batch[0] = f
		} else {
			g, gctx := errgroup.WithContext(ctx)
			for j, s := range plans {
				g.Go(func() error {
					f, err := fetch(gctx, s, ask)
					batch[j] = f
					return err
				})
			}
			if err := g.Wait(); err != nil {
				return false, err
			}
		}
		for j, f := range batch {
			start := plans[j]
			if start != startOf(next) {
				break // planned on a size the server did not serve: plan again from here
			}
			iter++
			recs := f.page.Records
			r := len(recs)
			// The total, as far as every page gives one.
			if kind != totalNone {
				switch t := f.totalRows; {
				case t < 0:
					if !totalLost {
						why := f.shape
						if why == "" {
							why = "no total"
						}
						l.note("total unknown: %s", why)
					}
					totalLost, total = true, -1
				case totalLost:
				case total >= 0 && t != total:
					l.drift("totals moved while paging (%d → %d)", total, t)
					total = t
				default:
					total = t
				}
				if kind == totalExact {
					l.out.Total = total
				} else {
					l.bound = total
				}
			}
			if err := l.repeated(recs, fmt.Sprintf("the page at offset %d", start)); err != nil {
				return false, err
			}
			emitRecs, uncounted := recs, 0
			if start < next { // the overlap row: position next-1
				switch {
				case r == 0:
					l.drift("rows shifted while paging: the row at offset %d vanished", start)
				case bytes.Equal(l.keyOf(recs[0]), lastKey):
					if bytes.Equal(recs[0], lastRec) {
						emitRecs = recs[1:]
					} else {
						uncounted = 1 // changed since it was read: emit the newer version
					}
				default:
					l.drift("rows shifted while paging: offset %d held another row than the one the previous page ended with", start)
				}
			}
			if err := l.deliver(ctx, emitRecs, uncounted); err != nil {
				return false, err
			}
			if r > 0 {
				lastRec = append(lastRec[:0], recs[r-1]...)
				lastKey = append(lastKey[:0], l.keyOf(recs[r-1])...)
			}
			prev := next
			next = start + r
			progress := next - prev
			if probing && progress > 0 {
				l.out.Capped = true // the short page before this one was not the last
				l.note("server capped pages at %d rows (asked %d)", step, ask)
			}
			probing = false
			switch {
			case progress <= 0: // empty, 204, or only the overlap row: the end
				if kind == totalExact && total >= 0 && prev < total {
					l.drift("listing ended after %d rows, the total says %d", prev, total)
				}
				return true, nil
			case total >= 0 && next >= total:
				return true, nil
			}
			switch {
			case r >= ask || (l.out.Capped && r >= step):
				step, trusted = r, true
			case kind == totalExact && total >= 0:
				// Short, but the total says more rows follow: the server caps.
				if !l.out.Capped || r < step {
					l.note("server capped pages at %d rows (asked %d)", r, ask)
				}
				l.out.Capped = true
				step, trusted = r, true
			default:
				// Short and no total agrees: the end, or a cap; the next page tells.
				step, trusted, probing = r, false, true
			}
			if step < 2 {
				l.out.Unchecked++
				l.note("pages of one row: shifts across page boundaries cannot be seen")
			}
		}
	}
	return false, fmt.Errorf("%w: stream %s: more than %d pages", ErrPagination, l.stream, maxPages)
}
