package pipeline

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/marketsync/marketsync/apisim"
)

// Every Arrow buffer a run allocates is released by the end of the run, after a full, an
// incremental and a cancelled run: a batch held after its commit would keep its memory until the
// collector found it, and with a C allocator never free it.
func TestRun_ReleasesEveryArrowBuffer(t *testing.T) {
	sim := startSim(t, apisim.Config{Seed: 3, Scale: 400, Profile: "fast"}) // every stream spans pages (900: 29 s under -race)
	cfg := testConfig(sim, 50, t.TempDir())
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	cfg.Allocator = mem
	if _, err := Run(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	if n := mem.CurrentAlloc(); n != 0 {
		t.Fatalf("first run: %d bytes of Arrow buffers not released", n)
	}
	assertTruth(t, cfg, sim)
	sim.Advance(2 * time.Hour)
	if _, err := Run(context.Background(), cfg); err != nil { // incremental
		t.Fatal(err)
	}
	if n := mem.CurrentAlloc(); n != 0 {
		t.Fatalf("incremental run: %d bytes of Arrow buffers not released", n)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cfg.FullRefresh = true
	go func() { time.Sleep(20 * time.Millisecond); cancel() }()
	_, _ = Run(ctx, cfg) // cancelled mid-run
	if n := mem.CurrentAlloc(); n != 0 {
		t.Fatalf("cancelled run: %d bytes of Arrow buffers not released", n)
	}
}

// peakAllocator counts the bytes of live Arrow buffers and their peak.
type peakAllocator struct {
	memory.Allocator
	mu         sync.Mutex
	live, peak int
}

func (a *peakAllocator) Allocate(n int) []byte {
	a.add(n)
	return a.Allocator.Allocate(n)
}

func (a *peakAllocator) Reallocate(n int, b []byte) []byte {
	a.add(n - len(b))
	return a.Allocator.Reallocate(n, b)
}

func (a *peakAllocator) Free(b []byte) {
	a.add(-len(b))
	a.Allocator.Free(b)
}

func (a *peakAllocator) add(n int) {
	a.mu.Lock()
	a.live += n
	a.peak = max(a.peak, a.live)
	a.mu.Unlock()
}

// The run's in-flight budget bounds the Arrow memory of every stream's batches together: with
// four streams syncing at once and batches large enough to hold a whole stream, the budget
// keeps the peak a fraction of the unbounded run's, and a budget smaller than one page (each
// page then waits for the previous batch's commit) still loads every row exactly.
func TestRun_InFlightBudgetBoundsBatchMemory(t *testing.T) {
	skipUnderRace(t) // a page per transaction with the 1-byte budget: .ci/run runs it without -race
	t.Parallel()     // the long tests overlap their waits when run without -race
	// Scale 2000: at 1000 the unbounded run's peak varied 2.5-6.0 MB with the streams' timing, too
	// close to the bounded one's 0.9 MB for the one-third bound.
	sim := startSim(t, apisim.Config{Seed: 4, Scale: 2000, Profile: "fast"})
	streams := []string{"users", "invoices", "leads", "opportunities"}
	peak := func(budget int64) int {
		cfg := testConfig(sim, 50, t.TempDir())
		cfg.Streams, cfg.BatchRows, cfg.InFlightBytes = streams, 1_000_000, budget
		mem := &peakAllocator{Allocator: memory.NewCheckedAllocator(memory.NewGoAllocator())}
		cfg.Allocator = mem
		if _, err := Run(context.Background(), cfg); err != nil {
			t.Fatal(err)
		}
		assertRows(t, cfg, sim, streams, false)
		if mem.live != 0 {
			t.Fatalf("budget %d: %d bytes of Arrow buffers not released", budget, mem.live)
		}
		return mem.peak
	}
	unbounded := peak(1 << 40)
	bounded := peak(128 << 10)
	tiny := peak(1)
	t.Logf("peak Arrow bytes: unbounded %d, 128 KiB budget %d, 1-byte budget %d", unbounded, bounded, tiny)
	if bounded > unbounded/3 {
		t.Errorf("a 128 KiB budget peaked at %d bytes of Arrow buffers, the unbounded run at %d", bounded, unbounded)
	}
}
