package extract

import (
	"bufio"
	"container/heap"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
)

// keySetChunk is how many key hashes a listing holds in memory (4 MiB). A listing of 10M rows
// held 80 MiB in one slice, plus the copies each growth made, and pushed the sync's live heap
// past the Go soft limit (BENCHMARKS.md, issue 16).
const keySetChunk = 1 << 19

// keySet gathers the key hash of every record a listing received, to count at its end the keys
// received more than once, exactly (64-bit hashes). A full chunk is sorted and written to a
// temporary file as one run; the count merges the runs. Where no temporary file can be made (a
// read-only file system), the runs stay in memory: the count is the same.
type keySet struct {
	chunk  int // keySetChunk; smaller in tests
	cur    []uint64
	mem    [][]uint64 // sorted runs kept in memory
	file   *os.File   // sorted runs written one after another
	name   string     // the file's name, if it could not be removed while open
	runs   []int64    // length of each run in the file, in hashes
	noFile bool       // no file could be made or written: runs stay in memory
	n      int
	done   bool
	dist   int
	err    error
}

func (s *keySet) add(h uint64) {
	if s.chunk == 0 {
		s.chunk = keySetChunk
	}
	s.cur = append(s.cur, h)
	s.n++
	if len(s.cur) >= s.chunk {
		s.spill()
	}
}

// spill sorts the chunk and moves it out of the heap (to the file, or the in-memory runs).
func (s *keySet) spill() {
	slices.Sort(s.cur)
	if s.file == nil && !s.noFile {
		f, err := os.CreateTemp("", "marketsync-keys-*")
		if err != nil {
			s.noFile = true
		} else {
			s.file = f
			if removeTemp(f.Name()) != nil {
				s.name = f.Name() // removed at the end instead (a system that keeps open files)
			}
		}
	}
	if s.file != nil && !s.noFile {
		w := bufio.NewWriterSize(s.file, 64<<10)
		var b [8]byte
		var err error
		for _, h := range s.cur {
			binary.LittleEndian.PutUint64(b[:], h)
			if _, err = w.Write(b[:]); err != nil {
				break
			}
		}
		if err == nil {
			err = w.Flush()
		}
		if err == nil {
			s.runs = append(s.runs, int64(len(s.cur)))
			s.cur = s.cur[:0]
			return
		}
		// The disk is full or failing: this run and the next stay in memory; the runs written
		// before stay readable (the partial write lies after them).
		s.noFile = true
	}
	s.mem = append(s.mem, s.cur)
	s.cur = make([]uint64, 0, s.chunk)
}

// counts returns the number of distinct hashes (computed once; the set is released after).
func (s *keySet) counts() (distinct int, err error) {
	if s.done {
		return s.dist, s.err
	}
	s.done = true
	slices.Sort(s.cur)
	srcs := make([]hashRun, 0, len(s.mem)+len(s.runs)+1)
	srcs = append(srcs, &memRun{s.cur})
	for _, r := range s.mem {
		srcs = append(srcs, &memRun{r})
	}
	var off int64
	for _, n := range s.runs {
		srcs = append(srcs, &fileRun{r: bufio.NewReaderSize(io.NewSectionReader(s.file, off*8, n*8), 32<<10), left: n})
		off += n
	}
	s.dist, s.err = distinctMerged(srcs)
	if s.err != nil {
		s.err = fmt.Errorf("counting the keys received (%d, spilled to a temporary file): %w", s.n, s.err)
	}
	s.cur, s.mem = nil, nil
	s.closeFile()
	return s.dist, s.err
}

// removeTemp removes the temporary file (a variable: tests make it fail as Windows does for a
// file still open).
var removeTemp = os.Remove

func (s *keySet) closeFile() {
	if s.file != nil {
		_ = s.file.Close()
		if s.name != "" {
			_ = os.Remove(s.name)
		}
		s.file, s.name, s.runs = nil, "", nil
	}
}

// A hashRun yields sorted hashes.
type hashRun interface {
	next() (uint64, bool, error)
}

type memRun struct{ hs []uint64 }

func (m *memRun) next() (uint64, bool, error) {
	if len(m.hs) == 0 {
		return 0, false, nil
	}
	h := m.hs[0]
	m.hs = m.hs[1:]
	return h, true, nil
}

type fileRun struct {
	r    *bufio.Reader
	left int64
	b    [8]byte
}

func (f *fileRun) next() (uint64, bool, error) {
	if f.left == 0 {
		return 0, false, nil
	}
	if _, err := io.ReadFull(f.r, f.b[:]); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return 0, false, err
	}
	f.left--
	return binary.LittleEndian.Uint64(f.b[:]), true, nil
}

// distinctMerged counts the distinct values over sorted runs (a k-way merge).
func distinctMerged(runs []hashRun) (int, error) {
	h := &runHeap{}
	for _, r := range runs {
		v, ok, err := r.next()
		if err != nil {
			return 0, err
		}
		if ok {
			h.items = append(h.items, runHead{v, r})
		}
	}
	heap.Init(h)
	n, first := 0, true
	var last uint64
	for h.Len() > 0 {
		top := &h.items[0]
		if first || top.v != last {
			n++
			last, first = top.v, false
		}
		v, ok, err := top.run.next()
		if err != nil {
			return 0, err
		}
		if ok {
			top.v = v
			heap.Fix(h, 0)
		} else {
			heap.Pop(h)
		}
	}
	return n, nil
}

type runHead struct {
	v   uint64
	run hashRun
}

type runHeap struct{ items []runHead }

func (h *runHeap) Len() int           { return len(h.items) }
func (h *runHeap) Less(i, j int) bool { return h.items[i].v < h.items[j].v }
func (h *runHeap) Swap(i, j int)      { h.items[i], h.items[j] = h.items[j], h.items[i] }
func (h *runHeap) Push(x any)         { h.items = append(h.items, x.(runHead)) }
func (h *runHeap) Pop() any {
	x := h.items[len(h.items)-1]
	h.items = h.items[:len(h.items)-1]
	return x
}
