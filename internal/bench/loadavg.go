package bench

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// loadSampler reads the 1-minute load average every few seconds: the machine is shared, and a
// figure taken while others ran is worth less; the report says how loaded it was.
type loadSampler struct {
	mu      sync.Mutex
	samples []float64
	done    chan struct{}
	wg      sync.WaitGroup
}

type loadRange struct{ min, max, mean float64 }

func (l loadRange) String() string {
	if l.max == 0 && l.min == 0 {
		return "unknown"
	}
	return fmt.Sprintf("%.1f to %.1f (mean %.1f)", l.min, l.max, l.mean)
}

func loadAvg() (float64, bool) {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0, false
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0, false
	}
	v, err := strconv.ParseFloat(f[0], 64)
	return v, err == nil
}

func startLoadSampler() *loadSampler {
	l := &loadSampler{done: make(chan struct{})}
	l.sample()
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-l.done:
				return
			case <-t.C:
				l.sample()
			}
		}
	}()
	return l
}

func (l *loadSampler) sample() {
	if v, ok := loadAvg(); ok {
		l.mu.Lock()
		l.samples = append(l.samples, v)
		l.mu.Unlock()
	}
}

// mark returns a position to measure a step's load from.
func (l *loadSampler) mark() int {
	l.sample()
	l.mu.Lock()
	defer l.mu.Unlock()
	return max(0, len(l.samples)-1)
}

// since returns the range of the samples taken from mark on (one taken now included).
func (l *loadSampler) since(mark int) loadRange {
	l.sample()
	l.mu.Lock()
	defer l.mu.Unlock()
	return summarize(l.samples[min(mark, len(l.samples)):])
}

func (l *loadSampler) stop() loadRange {
	close(l.done)
	l.wg.Wait()
	return l.since(0)
}

func summarize(s []float64) loadRange {
	if len(s) == 0 {
		return loadRange{}
	}
	r := loadRange{min: s[0], max: s[0]}
	for _, v := range s {
		r.min, r.max = min(r.min, v), max(r.max, v)
		r.mean += v
	}
	r.mean /= float64(len(s))
	return r
}
