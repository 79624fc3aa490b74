package main

import (
	"database/sql"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// A reader of another user cannot use the holder's socket (owner-only): it is told whose
// socket it is and what to do, not given the data.
func TestHolder_AnotherUsersReaderIsToldWhatToDo(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to run a reader as another user")
	}
	dir, err := os.MkdirTemp("/tmp", "holder-other-user-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	wh := filepath.Join(dir, "w.duckdb")
	db, err := sql.Open("duckdb", wh)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("CREATE TABLE t AS SELECT 1 AS a"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	bin := filepath.Join(dir, "syncer")
	b, err := os.ReadFile(binary(t))
	if err != nil {
		t.Fatal(err)
	}
	// The other user may open the file (so DuckDB reports the lock), not the socket.
	if err := errors.Join(os.WriteFile(bin, b, 0o755), os.Chmod(dir, 0o755), os.Chmod(wh, 0o644)); err != nil {
		t.Fatal(err)
	}
	h, err := startHolder(t.Context(), wh, "sync", slog.New(slog.DiscardHandler))
	if err != nil || h == nil || h.srv == nil {
		t.Fatalf("holder: %v %v", h, err)
	}
	defer h.close()
	// (syncer makes the warehouse owner-only; a shared one is what lets the reader get this far.)
	if err := os.Chmod(wh, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "query", "SELECT * FROM t", "--warehouse", wh)
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitFailed || !strings.Contains(string(out), "belongs to another user") ||
		!strings.Contains(string(out), "run the command as the user running the sync") {
		t.Fatalf("another user's read: %v\n%s", err, out)
	}
}
