package pipeline

import (
	"context"
	"sync"

	"github.com/apache/arrow-go/v18/arrow"
	"golang.org/x/sync/semaphore"
)

// inflight bounds the record bytes of a run's batches from the moment a page's records are
// added to a batch until the writer has committed (and released) that batch. Every stream of
// every tenant draws on it, so the Go heap held by batches does not grow with the number of
// streams, locations or tenants syncing at once.
//
// It cannot deadlock: a stream that cannot take a page's bytes first sends the rows it holds
// (so everything it held is on its way to the writer, which always makes progress) and only
// then waits; a page larger than the whole budget takes the whole budget.
type inflight struct {
	sem   *semaphore.Weighted
	size  int64
	mu    sync.Mutex
	batch map[arrow.RecordBatch]int64 // bytes each sent batch holds, returned when it is released
}

func newInflight(size int64) *inflight {
	return &inflight{sem: semaphore.NewWeighted(size), size: size, batch: map[arrow.RecordBatch]int64{}}
}

// take reserves n bytes without waiting; ok false: not now.
func (f *inflight) take(n int64) (int64, bool) {
	n = min(n, f.size)
	return n, f.sem.TryAcquire(n)
}

// wait reserves n bytes, waiting for the writer to release others.
func (f *inflight) wait(ctx context.Context, n int64) (int64, error) {
	n = min(n, f.size)
	return n, f.sem.Acquire(ctx, n)
}

// hand attaches n reserved bytes to a sent batch; they return when it is released.
func (f *inflight) hand(rec arrow.RecordBatch, n int64) {
	if n == 0 {
		return
	}
	if rec == nil {
		f.sem.Release(n)
		return
	}
	f.mu.Lock()
	f.batch[rec] += n
	f.mu.Unlock()
}

// released returns the bytes a batch held (the committer calls it as it releases the batch).
func (f *inflight) released(rec arrow.RecordBatch) {
	f.mu.Lock()
	n, ok := f.batch[rec]
	delete(f.batch, rec)
	f.mu.Unlock()
	if ok {
		f.sem.Release(n)
	}
}

// give returns n reserved bytes that no batch holds.
func (f *inflight) give(n int64) {
	if n > 0 {
		f.sem.Release(n)
	}
}
