package main

import (
	"os"
	"path/filepath"
	"testing"
)

// --memprofile writes a heap profile (gzip-compressed protobuf, what go tool pprof reads).
func TestSync_MemProfileWritesAHeapProfile(t *testing.T) {
	dir := t.TempDir()
	prof := filepath.Join(dir, "heap.pprof")
	code, out, errOut := syncer(t, "sync", "--warehouse", filepath.Join(dir, "w.duckdb"), "--parquet-dir", "-", "--sim-scale", "200",
		"--streams", "users", "--progress", "never", "--memprofile", prof)
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	b, err := os.ReadFile(prof)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 100 || b[0] != 0x1f || b[1] != 0x8b {
		t.Fatalf("not a pprof profile: %d bytes, begins %x", len(b), b[:min(len(b), 4)])
	}
}
