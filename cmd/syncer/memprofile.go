package main

import (
	"bytes"
	"os"
	"runtime/metrics"
	"runtime/pprof"
	"sync"
	"time"
)

// heapPeakProfiler keeps the heap profile taken when the Go heap's live bytes were largest
// (sampled twice a second; a new profile when it grew by 5 %): the profile at the end of a run
// shows what is left, not what made the peak.
type heapPeakProfiler struct {
	stop chan struct{}
	wg   sync.WaitGroup
	mu   sync.Mutex
	best []byte
	peak uint64
}

func startHeapPeakProfiler() *heapPeakProfiler {
	p := &heapPeakProfiler{stop: make(chan struct{})}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
		for {
			metrics.Read(sample)
			if live := sample[0].Value.Uint64(); live > p.peak+p.peak/20 {
				var b bytes.Buffer
				if pprof.Lookup("heap").WriteTo(&b, 0) == nil {
					p.mu.Lock()
					p.best, p.peak = b.Bytes(), live
					p.mu.Unlock()
				}
			}
			select {
			case <-p.stop:
				return
			case <-t.C:
			}
		}
	}()
	return p
}

// writeTo stops sampling and writes the kept profile to path.
func (p *heapPeakProfiler) writeTo(path string) error {
	close(p.stop)
	p.wg.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.best == nil {
		var b bytes.Buffer
		if err := pprof.Lookup("heap").WriteTo(&b, 0); err != nil {
			return err
		}
		p.best = b.Bytes()
	}
	return os.WriteFile(path, p.best, 0o600)
}
