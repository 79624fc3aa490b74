package main

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/marketsync/marketsync/pipeline"
)

// logSink is where log lines go: straight to the terminal, or, while the live view is shown,
// through it, which prints them above the stream lines (never into one).
type logSink struct {
	mu   sync.Mutex
	w    io.Writer
	live *mpb.Progress
}

func (s *logSink) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.live != nil {
		n, err := s.live.Write(b)
		if !errors.As(err, new(mpb.ErrDone[*mpb.Progress])) {
			return n, err
		}
		s.live = nil // the view has ended: write directly
	}
	return s.w.Write(b)
}

// liveView is the terminal view of a run: one line per active stream partition (rows, rows/s,
// pages, an ETA where the server gives a total, time waiting on a budget), redrawn below the log
// lines; a partition's line goes when it is done.
type liveView struct {
	p     *mpb.Progress
	sink  *logSink
	mu    sync.Mutex // guards lines; never taken by a decorator (mpb calls them while it waits)
	lines map[string]*liveLine
}

type liveLine struct {
	bar           *mpb.Bar
	mu            sync.Mutex // guards what follows
	name          string
	started       time.Time
	rows, pages   int64
	listed, total int64
	waited        time.Duration
}

// newLiveView starts the view on w (a terminal of the given width) and routes sink's log lines
// through it.
func newLiveView(w io.Writer, width int, sink *logSink, forceTTY bool) *liveView {
	p := mpb.New(mpb.WithOutput(w), mpb.WithWidth(width), mpb.WithRefreshRate(150*time.Millisecond), mpb.WithAutoRefresh(),
		mpb.ContainerOptional(mpb.ForceTTY(), forceTTY))
	sink.mu.Lock()
	sink.live = p
	sink.mu.Unlock()
	return &liveView{p: p, sink: sink, lines: map[string]*liveLine{}}
}

func (v *liveView) event(e pipeline.Event) {
	key := tenantStream(e.Tenant, e.Stream)
	if e.Partition != "" {
		key += " " + e.Partition
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	l := v.lines[key]
	if e.Done {
		if l != nil {
			l.bar.Abort(true) // its line goes; the stream's result is in the log above
			delete(v.lines, key)
		}
		return
	}
	if l == nil {
		l = &liveLine{name: key, started: time.Now()}
		l.bar = v.p.New(0, mpb.NopStyle(), mpb.PrependDecorators(decor.Any(func(s decor.Statistics) string {
			l.mu.Lock()
			defer l.mu.Unlock()
			return fitWidth(l.text(time.Now()), s.AvailableWidth)
		})))
		v.lines[key] = l
	}
	l.mu.Lock()
	l.rows, l.pages, l.listed, l.total, l.waited = e.Rows, e.Pages, e.Listed, e.Total, e.Waited
	l.mu.Unlock()
}

// text is the line: name, rows, rows/s, pages, ETA (when the listing has a total) and the time
// spent waiting on the rate budget ("waited"); at most 79 columns for names of 20 and counts of
// 8 digits.
func (l *liveLine) text(now time.Time) string {
	el := now.Sub(l.started).Seconds()
	rate := float64(l.rows) / max(el, 0.001)
	s := fmt.Sprintf("%-20s %8d rows %6.0f/s %5d pages", fitWidth(l.name, 20), l.rows, rate, l.pages)
	if l.total > 0 && rate > 0 {
		left := max(l.total-l.listed, 0)
		s += fmt.Sprintf("  ETA %s", (time.Duration(float64(left) / rate * float64(time.Second))).Round(time.Second))
	}
	if l.waited >= 50*time.Millisecond {
		s += fmt.Sprintf("  waited %s", l.waited.Round(100*time.Millisecond))
	}
	return s
}

// stop removes every line and ends the view; log lines written later go straight to the
// terminal.
func (v *liveView) stop() {
	v.mu.Lock()
	keys := make([]string, 0, len(v.lines))
	for k := range v.lines {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v.lines[k].bar.Abort(true)
		delete(v.lines, k)
	}
	v.mu.Unlock()
	v.p.Wait()
	v.sink.mu.Lock()
	v.sink.live = nil
	v.sink.mu.Unlock()
}

// fitWidth cuts s to at most width columns (one per rune: the view prints no wide runes but
// in names, which it cuts with an ellipsis).
func fitWidth(s string, width int) string {
	if width <= 0 {
		return s
	}
	r := []rune(s)
	if len(r) <= width {
		return s
	}
	if width == 1 {
		return "…"
	}
	return strings.TrimRight(string(r[:width-1]), " ") + "…"
}
