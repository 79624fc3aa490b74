package main

import (
	"runtime/debug"
	"testing"
)

// syncer sync paces the Go collector with a soft limit above the batches in flight and GOGC 50,
// unless the user's GOMEMLIMIT or GOGC says otherwise.
func TestLimitGoHeap(t *testing.T) {
	limit, gogc := debug.SetMemoryLimit(-1), debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetMemoryLimit(limit); debug.SetGCPercent(gogc) })

	t.Setenv("GOMEMLIMIT", "")
	t.Setenv("GOGC", "")
	limitGoHeap()
	if got := debug.SetMemoryLimit(-1); got != 192<<20 {
		t.Errorf("soft limit %d, want 192 MiB", got)
	}
	if got := debug.SetGCPercent(100); got != 50 {
		t.Errorf("GOGC %d, want 50", got)
	}

	debug.SetMemoryLimit(1 << 40)
	t.Setenv("GOMEMLIMIT", "1TiB") // the runtime read it at start; syncer must not override it
	t.Setenv("GOGC", "100")
	limitGoHeap()
	if got := debug.SetMemoryLimit(-1); got != 1<<40 {
		t.Errorf("GOMEMLIMIT set: soft limit changed to %d", got)
	}
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("GOGC set: changed to %d", got)
	}
}
