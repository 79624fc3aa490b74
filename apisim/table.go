package apisim

import (
	"sort"
)

// table models one stream's rows without holding them: rows [0, base) are computed from their
// index; inserted rows get the next indices; only changes (updates, deletes, inserts) are kept
// in memory, so memory grows with the number of changes, never with scale.
//
// Two orderings exist. Creation-ordered tables (companies, invoices, leads, opportunities) list
// rows by index, which is also creation order. Modification-ordered tables (users, charges) list
// unchanged base rows by index, then every inserted or updated row by its modification time
// (the "tail"), which is how an API sorted by last-modified behaves.
type table struct {
	name          string
	base          int
	count         int
	created0      int64   // creation ms of row 0
	step          int64   // ms between base rows
	insertedAt    []int64 // creation ms of rows base, base+1, ...
	version       map[int]int
	modAt         map[int]int64
	deletedAt     map[int]int64
	deleted       []int // sorted indices
	byModified    bool
	excluded      []int // byModified: sorted base indices that left the head (updated or deleted)
	tail          []tailEntry
	tailPos       map[int]int // index -> position in tail (rebuilt lazily)
	mutableWindow int64       // creation-ordered: updates touch rows younger than this (ms), 0 = any
	appendOnly    bool        // a log (events): rows are inserted and deleted, never updated
}

type tailEntry struct {
	idx int
	mod int64
}

func newTable(name string, base int, created0, span int64, byModified bool) *table {
	step := int64(1)
	if base > 0 {
		step = span / int64(base)
		if step < 1 {
			step = 1
		}
	}
	return &table{
		name: name, base: base, count: base, created0: created0, step: step,
		version: map[int]int{}, modAt: map[int]int64{}, deletedAt: map[int]int64{},
		byModified: byModified,
	}
}

// created returns the creation time (epoch ms) of row i; it grows with i.
func (t *table) created(i int) int64 {
	if i < t.base {
		return t.created0 + int64(i)*t.step
	}
	return t.insertedAt[i-t.base]
}

// modified returns the last modification time (epoch ms) of row i.
func (t *table) modified(i int) int64 {
	if m, ok := t.modAt[i]; ok {
		return m
	}
	return t.created(i)
}

func (t *table) isDeleted(i int) bool { _, ok := t.deletedAt[i]; return ok }

func insertSorted(s []int, v int) []int {
	k := sort.SearchInts(s, v)
	if k < len(s) && s[k] == v {
		return s
	}
	s = append(s, 0)
	copy(s[k+1:], s[k:])
	s[k] = v
	return s
}

// countIn returns how many elements of sorted s lie in [lo, hi).
func countIn(s []int, lo, hi int) int {
	return sort.SearchInts(s, hi) - sort.SearchInts(s, lo)
}

func (t *table) insert(now int64) int {
	i := t.count
	t.count++
	t.insertedAt = append(t.insertedAt, now)
	if t.byModified {
		t.tail = append(t.tail, tailEntry{i, now})
	}
	return i
}

// insertLate inserts a row that appears now but whose creation and modification time is at,
// earlier than now (a back-dated arrival). Only modification-ordered tables can hold one: they
// order the new row by at, inside their tail, not at its end.
func (t *table) insertLate(at int64) int {
	if !t.byModified {
		panic("apisim: a late arrival in a creation-ordered table")
	}
	i := t.count
	t.count++
	t.insertedAt = append(t.insertedAt, at)
	k := sort.Search(len(t.tail), func(k int) bool { return t.tail[k].mod > at })
	t.tail = append(t.tail, tailEntry{})
	copy(t.tail[k+1:], t.tail[k:])
	t.tail[k] = tailEntry{i, at}
	return i
}

func (t *table) update(i int, now int64) {
	if t.appendOnly {
		return
	}
	t.version[i]++
	t.modAt[i] = now
	if !t.byModified {
		return
	}
	t.removeFromTail(i)
	if i < t.base {
		t.excluded = insertSorted(t.excluded, i)
	}
	t.tail = append(t.tail, tailEntry{i, now}) // now >= every tail entry: stays sorted
}

func (t *table) remove(i int, now int64) {
	t.deletedAt[i] = now
	t.deleted = insertSorted(t.deleted, i)
	if t.byModified {
		t.removeFromTail(i)
		if i < t.base {
			t.excluded = insertSorted(t.excluded, i)
		}
	}
}

func (t *table) removeFromTail(i int) {
	for k := range t.tail {
		if t.tail[k].idx == i {
			t.tail = append(t.tail[:k], t.tail[k+1:]...)
			return
		}
	}
}

// live returns the number of rows that exist now.
func (t *table) live() int { return t.count - len(t.deleted) }

// firstCreatedAtOrAfter returns the smallest index i in [0, n) with created(i) >= ms.
func (t *table) firstCreatedAtOrAfter(ms int64, n int) int {
	return sort.Search(n, func(i int) bool { return t.created(i) >= ms })
}

// view is a filtered, ordered listing of a table: what one list request pages through.
type view struct {
	t       *table
	lo, hi  int // head: index range
	skipSet []int
	head    int // live rows in the head
	tail    []tailEntry
}

// window returns the rows whose sort time lies in [from, to) (to <= 0: no upper bound). For
// creation-ordered tables the sort time is the creation time, else the modification time.
func (t *table) window(from, to int64) view {
	v := view{t: t}
	if t.byModified {
		v.lo = t.firstCreatedAtOrAfter(from, t.base)
		v.hi = t.base
		if to > 0 {
			v.hi = t.firstCreatedAtOrAfter(to, t.base)
		}
		if v.hi < v.lo {
			v.hi = v.lo
		}
		v.skipSet = t.excluded
		a := sort.Search(len(t.tail), func(k int) bool { return t.tail[k].mod >= from })
		b := len(t.tail)
		if to > 0 {
			b = sort.Search(len(t.tail), func(k int) bool { return t.tail[k].mod >= to })
		}
		if b < a {
			b = a
		}
		v.tail = t.tail[a:b]
	} else {
		v.lo = t.firstCreatedAtOrAfter(from, t.count)
		v.hi = t.count
		if to > 0 {
			v.hi = t.firstCreatedAtOrAfter(to, t.count)
		}
		if v.hi < v.lo {
			v.hi = v.lo
		}
		v.skipSet = t.deleted
	}
	v.head = (v.hi - v.lo) - countIn(v.skipSet, v.lo, v.hi)
	return v
}

func (v view) len() int { return v.head + len(v.tail) }

// listing is what one list request pages through: its length and the rows at positions
// [off, off+n), in ascending order. A view is one; a status-filtered view is another.
type listing interface {
	len() int
	rows(off, n int) []int
}

// indexList is a listing of explicit row indices (a filtered view).
type indexList []int

func (l indexList) len() int { return len(l) }

func (l indexList) rows(off, n int) []int {
	if off >= len(l) || n <= 0 {
		return nil
	}
	return append([]int(nil), l[off:min(len(l), off+n)]...)
}

// filter returns the rows of v that keep accepts, in listing order.
func (v view) filter(keep func(i int) bool) indexList {
	var out indexList
	for _, i := range v.rows(0, v.len()) {
		if keep(i) {
			out = append(out, i)
		}
	}
	return out
}

// rows returns the indices at positions [off, off+n) of the view (ascending order).
func (v view) rows(off, n int) []int {
	total := v.len()
	if off >= total || n <= 0 {
		return nil
	}
	if off+n > total {
		n = total - off
	}
	out := make([]int, 0, n)
	if off < v.head {
		i := v.selectHead(off)
		for len(out) < n && i < v.hi {
			k := sort.SearchInts(v.skipSet, i)
			if k < len(v.skipSet) && v.skipSet[k] == i {
				i++
				continue
			}
			out = append(out, i)
			i++
		}
	}
	for p := max(off, v.head); len(out) < n; p++ {
		out = append(out, v.tail[p-v.head].idx)
	}
	return out
}

// selectHead returns the index of the k-th (0-based) row of the head.
func (v view) selectHead(k int) int {
	cand := v.lo + k
	for {
		skipped := countIn(v.skipSet, v.lo, cand+1)
		next := v.lo + k + skipped
		if next == cand {
			// cand itself may be skipped: move to the next unskipped index
			for {
				j := sort.SearchInts(v.skipSet, cand)
				if j < len(v.skipSet) && v.skipSet[j] == cand {
					cand++
					continue
				}
				return cand
			}
		}
		cand = next
	}
}
