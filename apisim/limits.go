package apisim

import (
	"math"
	"sync"
	"time"
)

// leakyBucket is AppDirect's documented limiter: each request adds one drop; the bucket leaks
// at a fixed rate; a request that would overflow it is refused.
type leakyBucket struct {
	mu       sync.Mutex
	capacity float64
	leak     float64 // drops per second
	level    float64
	last     time.Time
}

// take admits a request or returns how long until one drop has leaked.
func (b *leakyBucket) take(now time.Time) (ok bool, wait time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.last.IsZero() {
		b.level = math.Max(0, b.level-now.Sub(b.last).Seconds()*b.leak)
	}
	b.last = now
	if b.level+1 > b.capacity {
		return false, time.Duration((b.level + 1 - b.capacity) / b.leak * float64(time.Second))
	}
	b.level++
	return true, 0
}

// fixedWindow is HighLevel's documented limiter: Max requests per interval plus a daily budget,
// per app per location or company, announced in X-RateLimit-* headers.
type fixedWindow struct {
	mu          sync.Mutex
	max, daily  int
	interval    time.Duration
	day         time.Duration
	winStart    time.Time
	winCount    int
	dayStart    time.Time
	dayCount    int
	remaining   int
	dailyRemain int
}

func (w *fixedWindow) take(now time.Time) (ok bool, wait time.Duration, remaining, dailyRemaining int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.winStart.IsZero() || now.Sub(w.winStart) >= w.interval {
		w.winStart, w.winCount = now, 0
	}
	if w.dayStart.IsZero() || now.Sub(w.dayStart) >= w.day {
		w.dayStart, w.dayCount = now, 0
	}
	if w.dayCount >= w.daily {
		return false, w.day - now.Sub(w.dayStart), max(0, w.max-w.winCount), 0
	}
	if w.winCount >= w.max {
		return false, w.interval - now.Sub(w.winStart), 0, w.daily - w.dayCount
	}
	w.winCount++
	w.dayCount++
	return true, 0, w.max - w.winCount, w.daily - w.dayCount
}
