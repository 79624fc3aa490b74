package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestServe_DemoServesQueriesAndStopsOnSIGTERM runs `syncer serve` as a process: it syncs from
// the embedded simulator, answers `syncer query`-style reads through its serve.addr file while
// it owns the warehouse, and on SIGTERM exits 0 and removes the address file.
func TestServe_DemoServesQueriesAndStopsOnSIGTERM(t *testing.T) {
	bin := binary(t)
	dir := t.TempDir()
	wh := filepath.Join(dir, "data", "warehouse.duckdb")
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bin, "serve", "--warehouse", wh, "--parquet-dir", filepath.Join(dir, "data", "parquet"),
		"--listen", "127.0.0.1:0", "--http", "off", "--every", "1s", "--sim-scale", "200", "--log-format", "json")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	addrFile := filepath.Join(dir, "data", serveAddrFile)
	for {
		if _, err := os.Stat(addrFile); err == nil {
			break
		}
		select {
		case err := <-exited:
			t.Fatalf("serve exited: %v\n%s", err, stderr.String())
		case <-ctx.Done():
			t.Fatalf("no %s: %s", serveAddrFile, stderr.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	db, err := openServeDB(ctx, wh)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// Wait for the first sync to commit, then read through the server as query and status do.
	for {
		var n int64
		if err := db.QueryRowContext(ctx, "SELECT count(*) FROM _sync_runs").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no sync committed: %s", stderr.String())
		case <-time.After(100 * time.Millisecond):
		}
	}
	var out bytes.Buffer
	if err := printQuery(ctx, db, `SELECT * FROM "lead_funnel"`, "csv", &out); err != nil || !strings.Contains(out.String(), "CONVERTED") {
		t.Fatalf("lead_funnel through serve: %v\n%s", err, out.String())
	}
	out.Reset()
	if err := printQuery(ctx, db, statusSQL, "table", &out); err != nil || !strings.Contains(out.String(), "succeeded") {
		t.Fatalf("status through serve: %v\n%s", err, out.String())
	}
	if _, err := db.ExecContext(ctx, "DELETE FROM invoices"); err == nil || !strings.Contains(err.Error(), "25006") {
		t.Fatalf("a write through serve: %v", err)
	}
	// syncer runs reads the history through the server; syncer reset refuses while it runs.
	if code, out, errOut := syncer(t, "runs", "--warehouse", wh, "--format", "csv"); code != exitOK || !strings.Contains(out, ",companies,") {
		t.Fatalf("runs through serve: exit %d\n%s\n%s", code, out, errOut)
	}
	if code, _, errOut := syncer(t, "reset", "--warehouse", wh, "--streams", "users", "--yes"); code != exitFailed ||
		!strings.Contains(errOut, "a running syncer serve holds") {
		t.Fatalf("reset while serve runs: exit %d: %s", code, errOut)
	}
	db.Close()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, stderr.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("serve did not stop after SIGTERM:\n%s", stderr.String())
	}
	if _, err := os.Stat(addrFile); !os.IsNotExist(err) {
		t.Fatalf("%s left behind: %v", serveAddrFile, err)
	}
	if !strings.Contains(stdout.String(), "postgres://") {
		t.Errorf("stdout: %s", stdout.String())
	}
}
