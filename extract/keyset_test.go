package extract

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// hashesWithRepeats returns n hashes, about one in 50 a repeat of an earlier one (anywhere
// before it), and the number of distinct ones.
func hashesWithRepeats(n int, seed uint64) ([]uint64, int) {
	r := rand.New(rand.NewPCG(seed, 1))
	hs := make([]uint64, 0, n)
	seen := make(map[uint64]bool, n)
	for len(hs) < n {
		h := r.Uint64()
		if len(hs) > 0 && r.IntN(50) == 0 {
			h = hs[r.IntN(len(hs))]
		}
		hs = append(hs, h)
		seen[h] = true
	}
	return hs, len(seen)
}

func TestKeySet_CountsDistinctExactlyAcrossRuns(t *testing.T) {
	for _, c := range []struct {
		name   string
		n      int
		tmpdir string // "" the default; a missing folder: no file can be made
	}{
		{"one chunk", 900, ""},
		{"runs in a temporary file", 10_000, ""},
		{"no temporary file: runs in memory", 10_000, filepath.Join(t.TempDir(), "missing")},
		{"empty", 0, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.tmpdir != "" {
				t.Setenv("TMPDIR", c.tmpdir)
			}
			hs, want := hashesWithRepeats(c.n, uint64(c.n))
			s := keySet{chunk: 1000}
			for _, h := range hs {
				s.add(h)
			}
			if c.n > 1000 && c.tmpdir == "" && (len(s.runs) != c.n/1000 || len(s.mem) != 0) {
				t.Fatalf("%d runs in the file, %d in memory; want %d in the file", len(s.runs), len(s.mem), c.n/1000)
			}
			if c.tmpdir != "" && (s.file != nil || len(s.mem) != c.n/1000) {
				t.Fatalf("runs in memory %d, file %v: want %d in memory", len(s.mem), s.file, c.n/1000)
			}
			got, err := s.counts()
			if err != nil || got != want {
				t.Fatalf("distinct %d (%v), want %d", got, err, want)
			}
			if again, err := s.counts(); again != want || err != nil {
				t.Fatalf("second count %d (%v)", again, err)
			}
			if s.file != nil {
				t.Fatal("the temporary file is still open")
			}
		})
	}
}

// A run that cannot be read back is an error, not a made-up count.
func TestKeySet_UnreadableRunIsAnError(t *testing.T) {
	hs, _ := hashesWithRepeats(3000, 7)
	s := keySet{chunk: 1000}
	for _, h := range hs {
		s.add(h)
	}
	if s.file == nil {
		t.Skip("no temporary file on this machine")
	}
	if err := s.file.Truncate(8 * 1500); err != nil {
		t.Fatal(err)
	}
	if _, err := s.counts(); err == nil {
		t.Fatal("a truncated run counted without an error")
	}
}

// The listing's duplicate count and Complete come from the key set; an error counting makes the
// listing incomplete with the reason, never a count.
func TestListing_DuplicatesCountedAcrossSpilledRuns(t *testing.T) {
	emit := func(context.Context, Page) error { return nil }
	l := newListing("users", "", emit, "id")
	l.received.chunk = 100
	var recs [][]byte
	for i := range 1000 {
		recs = append(recs, fmt.Appendf(nil, `{"id":"u%d"}`, i))
	}
	for i := 0; i < 1000; i += 7 { // 143 received again, in later runs
		recs = append(recs, fmt.Appendf(nil, `{"id":"u%d"}`, i))
	}
	if err := l.deliver(context.Background(), recs, 0); err != nil {
		t.Fatal(err)
	}
	out := l.finish(true, false)
	if out.Rows != 1143 || out.Duplicates != 143 || out.Distinct() != 1000 || out.Complete {
		t.Fatalf("%+v", out)
	}
}

// A listing of 2M records keeps about one chunk of key hashes on the heap, not 8 bytes per
// record (16 MB and more with the slice's growth, 80 MB at 10M rows).
func TestListing_KeyHashesStayOffTheHeap(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates")
	}
	emit := func(context.Context, Page) error { return nil }
	l := newListing("users", "", emit, "id")
	page := make([][]byte, 1000)
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	before := ms.HeapAlloc
	for p := range 2000 {
		for i := range page {
			page[i] = fmt.Appendf(page[i][:0], `{"id":"u%d-%d"}`, p, i)
		}
		if err := l.deliver(context.Background(), page, 0); err != nil {
			t.Fatal(err)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&ms)
	grown := int64(ms.HeapAlloc) - int64(before)
	if _, err := os.Stat(os.TempDir()); err == nil && grown > 8<<20 {
		t.Fatalf("the listing holds %d MB after 2M records", grown>>20)
	}
	if out := l.finish(true, false); out.Rows != 2_000_000 || out.Duplicates != 0 {
		t.Fatalf("%+v", out)
	}
	runtime.KeepAlive(l)
}

// A listing whose key hashes cannot be read back is not complete, and says why.
func TestListing_UnreadableKeysMakeItIncomplete(t *testing.T) {
	emit := func(context.Context, Page) error { return nil }
	l := newListing("users", "", emit, "id")
	l.received.chunk = 100
	var recs [][]byte
	for i := range 450 {
		recs = append(recs, fmt.Appendf(nil, `{"id":"u%d"}`, i))
	}
	if err := l.deliver(context.Background(), recs, 0); err != nil {
		t.Fatal(err)
	}
	if l.received.file == nil {
		t.Skip("no temporary file on this machine")
	}
	if err := l.received.file.Truncate(8 * 150); err != nil {
		t.Fatal(err)
	}
	out := l.finish(true, false)
	if out.Complete || !out.Drift || !strings.Contains(out.Why, "counting the keys received") || out.Duplicates != 0 {
		t.Fatalf("%+v", out)
	}
}

// The temporary file stops taking writes after two runs (as a full disk would): the runs
// written before stay in the file, the failed run and the next ones stay in memory, and the
// count over both (keys repeated across them) is exact. A listing of fewer records than a
// chunk makes no file.
func TestKeySet_WriteFailingMidwayKeepsTheCountExact(t *testing.T) {
	small := keySet{chunk: 1000}
	for i := range 999 {
		small.add(uint64(i))
	}
	if small.file != nil || len(small.mem) != 0 {
		t.Fatal("a listing of fewer records than a chunk made a temporary file")
	}
	hs, want := hashesWithRepeats(6000, 11)
	s := keySet{chunk: 1000}
	for _, h := range hs[:2000] {
		s.add(h)
	}
	if s.file == nil || len(s.runs) != 2 {
		t.Skipf("no temporary file on this machine (%d runs)", len(s.runs))
	}
	// The same file, read-only from now on: the next run's write fails (as on a full disk).
	ro, err := os.Open(fmt.Sprintf("/proc/self/fd/%d", s.file.Fd()))
	if err != nil {
		t.Skipf("cannot reopen the file read-only: %v", err)
	}
	s.file.Close()
	s.file = ro
	for _, h := range hs[2000:] {
		s.add(h)
	}
	if !s.noFile || len(s.runs) != 2 || len(s.mem) != 4 {
		t.Fatalf("runs in the file %d, in memory %d, noFile %v: want 2, 4, true", len(s.runs), len(s.mem), s.noFile)
	}
	if got, err := s.counts(); err != nil || got != want {
		t.Fatalf("distinct %d (%v), want %d", got, err, want)
	}
}

// Where an open file cannot be removed (Windows), the temporary file is removed when the count
// closes it, and the count is the same.
func TestKeySet_FileThatCannotBeRemovedWhileOpen(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	removeTemp = func(string) error { return fmt.Errorf("the file is open") }
	t.Cleanup(func() { removeTemp = os.Remove })
	hs, want := hashesWithRepeats(3500, 5)
	s := keySet{chunk: 1000}
	for _, h := range hs {
		s.add(h)
	}
	if s.file == nil || s.name == "" {
		t.Fatalf("file %v, name %q: want a file kept by its name", s.file, s.name)
	}
	name := s.name
	if _, err := os.Stat(name); err != nil {
		t.Fatal(err)
	}
	removeTemp = os.Remove
	if got, err := s.counts(); err != nil || got != want {
		t.Fatalf("distinct %d (%v), want %d", got, err, want)
	}
	if _, err := os.Stat(name); !os.IsNotExist(err) {
		t.Fatalf("the temporary file is still there after the count: %v", err)
	}
}
