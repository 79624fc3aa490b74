package control

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func echo(_ context.Context, req Request, out io.Writer) error {
	_, err := io.WriteString(out, req.Cmd+":"+req.SQL)
	return err
}

func info() Info { return Info{PID: 7, Kind: "sync"} }

// A socket left by a killed holder (nobody accepts on it) is replaced; a live one is not; a
// file that is not a socket is left alone with an error naming it.
func TestListen_ReplacesAStaleSocketOnly(t *testing.T) {
	dir := t.TempDir()
	wh := filepath.Join(dir, "w.duckdb")
	// A killed holder: the socket file stays, nobody listens.
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: wh + ".sock", Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	if err := Do(t.Context(), wh, Request{Cmd: "query"}, nil, io.Discard); !errors.Is(err, ErrNoHolder) || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("a stale socket: %v, want ErrNoHolder (connection refused)", err)
	}
	s, err := Listen(wh, info, echo, nil)
	if err != nil {
		t.Fatalf("replacing a stale socket: %v", err)
	}
	fi, err := os.Stat(wh + ".sock")
	if err != nil || fi.Mode().Perm() != 0o600 || fi.Mode()&os.ModeSocket == 0 {
		t.Fatalf("socket %v %v, want an owner-only socket", fi, err)
	}
	var got Info
	var out bytes.Buffer
	if err := Do(t.Context(), wh, Request{Cmd: "query", SQL: "SELECT 1"}, func(in Info) { got = in }, &out); err != nil || out.String() != "query:SELECT 1" || got.PID != 7 {
		t.Fatalf("Do: %v %q %+v", err, out.String(), got)
	}
	if _, err := Listen(wh, info, echo, nil); !errors.Is(err, ErrInUse) {
		t.Fatalf("a second holder on a live socket: %v, want ErrInUse", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(wh + ".sock"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("socket left after Close: %v", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("left in the directory: %v", entries)
	}
	if err := Do(t.Context(), wh, Request{Cmd: "query"}, nil, io.Discard); !errors.Is(err, ErrNoHolder) || !errors.Is(err, syscall.ENOENT) {
		t.Fatalf("no socket: %v, want ErrNoHolder (no such file)", err)
	}
	if err := os.WriteFile(wh+".sock", []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Listen(wh, info, echo, nil); err == nil || !strings.Contains(err.Error(), "is not a socket") {
		t.Fatalf("a regular file in the way: %v", err)
	}
}

// Cancelling the client's context ends the handler's context in the holder; handler errors
// reach the client, usage errors marked as such.
func TestDo_CancelReachesTheHandlerAndErrorsTheClient(t *testing.T) {
	wh := filepath.Join(t.TempDir(), "w.duckdb")
	ended := make(chan error, 1)
	s, err := Listen(wh, info, func(ctx context.Context, req Request, out io.Writer) error {
		switch req.Cmd {
		case "usage":
			return usageErr{}
		case "fail":
			io.WriteString(out, "partial")
			return errors.New("boom")
		}
		io.WriteString(out, "started")
		<-ctx.Done()
		ended <- ctx.Err()
		return ctx.Err()
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var ue *RemoteUsageError
	if err := Do(t.Context(), wh, Request{Cmd: "usage"}, nil, io.Discard); !errors.As(err, &ue) || ue.Msg != "bad flag" {
		t.Fatalf("usage: %v", err)
	}
	var out bytes.Buffer
	if err := Do(t.Context(), wh, Request{Cmd: "fail"}, nil, &out); err == nil || err.Error() != "boom" || out.String() != "partial" {
		t.Fatalf("fail: %v %q", err, out.String())
	}
	ctx, cancel := context.WithCancel(t.Context())
	w := &signalWriter{started: make(chan struct{})}
	done := make(chan error, 1)
	go func() { done <- Do(ctx, wh, Request{Cmd: "long"}, nil, w) }()
	<-w.started
	cancel()
	select {
	case err := <-ended:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("handler ended with %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the handler was not cancelled when the client went away")
	}
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("client: %v, want context.Canceled", err)
	}
}

type usageErr struct{}

func (usageErr) Error() string { return "bad flag" }
func (usageErr) IsUsage() bool { return true }

type signalWriter struct{ started chan struct{} }

func (w *signalWriter) Write(p []byte) (int, error) {
	select {
	case <-w.started:
	default:
		close(w.started)
	}
	return len(p), nil
}

// A holder that stops (a sync ending) removes its socket before anything else, so a reader
// arriving then finds none (and waits for the file) rather than a refused connection that
// reads as a killed holder; a read already in flight is answered, not cut off.
func TestClose_RemovesTheSocketFirstAndLetsReadsInFlightFinish(t *testing.T) {
	wh := filepath.Join(t.TempDir(), "w.duckdb")
	started := make(chan struct{})
	s, err := Listen(wh, info, func(ctx context.Context, req Request, out io.Writer) error {
		close(started)
		select {
		case <-time.After(500 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
		_, err := io.WriteString(out, "whole answer")
		return err
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	var out bytes.Buffer
	go func() { got <- Do(t.Context(), wh, Request{Cmd: "query"}, nil, &out) }()
	<-started
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	deadline := time.Now().Add(400 * time.Millisecond)
	for {
		if _, err := os.Stat(wh + ".sock"); errors.Is(err, os.ErrNotExist) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the socket is still there while Close waits for the read in flight")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := Do(t.Context(), wh, Request{Cmd: "query"}, nil, io.Discard); !errors.Is(err, ErrNoHolder) || errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("a reader arriving while the holder stops: %v, want ErrNoHolder for a missing socket", err)
	}
	if err := <-got; err != nil || out.String() != "whole answer" {
		t.Fatalf("the read in flight: %v %q, want the whole answer", err, out.String())
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
}
