// Package control is the warehouse holder's local control socket. DuckDB lets one process open
// a warehouse file; the process that holds it (syncer sync, syncer serve) listens on a
// Unix-domain socket next to the file (<warehouse>.sock), and read commands that find the file
// locked ask it to run their read on its own connection and stream back the output.
//
// The socket is owner-only (mode 0600, and on Linux the peer's uid is checked), removed on
// exit; a socket left by a killed process (nobody accepts on it) is replaced by the next
// holder. One request per connection; the client closing the connection cancels the request.
package control

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// maxSocketPath is the longest path a Unix socket can be bound to on every supported system
// (sun_path is 104 bytes on macOS, 108 on Linux, counting the terminating NUL).
const maxSocketPath = 103

// SocketPath is the control socket of the warehouse at warehouse: the absolute path (its
// directory's symbolic links resolved, so every spelling of the path finds the same socket)
// + ".sock".
func SocketPath(warehouse string) (string, error) {
	abs, err := filepath.Abs(warehouse)
	if err != nil {
		return "", fmt.Errorf("resolving warehouse path: %w", err)
	}
	if dir, err := filepath.EvalSymlinks(filepath.Dir(abs)); err == nil {
		abs = filepath.Join(dir, filepath.Base(abs))
	}
	return abs + ".sock", nil
}

// Request is what a read command asks the holder to run.
type Request struct {
	Cmd    string `json:"cmd"`              // "query", "status", "runs" or "export"
	SQL    string `json:"sql,omitempty"`    // query: the statement (checked read-only by the holder)
	Format string `json:"format,omitempty"` // query, status: the output format
	Dir    string `json:"dir,omitempty"`    // export: the absolute target directory
	Stream string `json:"stream,omitempty"` // runs: only this stream's runs ("" all)
	Last   int    `json:"last,omitempty"`   // runs: how many runs
}

// Info describes the holder: which process, what it is doing.
type Info struct {
	PID  int    `json:"pid"`
	Kind string `json:"kind"` // "sync" or "serve"
	// Since is when the holder took the warehouse.
	Since time.Time `json:"since"`
	// SyncRunning says a sync is writing now (always for Kind "sync"); SyncStarted is since when
	// and Streams which streams it syncs.
	SyncRunning bool      `json:"sync_running"`
	SyncStarted time.Time `json:"sync_started,omitzero"`
	Streams     []string  `json:"streams,omitempty"`
}

// Handler runs one request, writing the command's output to out. An error ends the request;
// what was written stays written (the client sees it, then the error).
type Handler func(ctx context.Context, req Request, out io.Writer) error

// Frame types of the holder's answer: info first, then output, then ok or an error.
const (
	frameInfo   = 'i'
	frameOutput = 'o'
	frameOK     = 'k'
	frameError  = 'e'
)

// remoteError is an error the holder reported; Usage marks a mistake in the request (a query
// that is not valid, a write), which the command reports as a usage error.
type remoteError struct {
	Msg   string `json:"msg"`
	Usage bool   `json:"usage,omitempty"`
}

// UsageError marks handler errors that are the caller's mistake (exit code 2 on the client).
type UsageError interface{ IsUsage() bool }

// Server is a listening control socket.
type Server struct {
	path    string
	ln      *net.UnixListener
	info    func() Info
	handler Handler
	log     *slog.Logger
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// ErrInUse means another live process answers on the socket.
var ErrInUse = errors.New("another process answers on the control socket")

// Listen binds the control socket of the warehouse at warehouse (the caller holds the
// warehouse's DuckDB lock, so a socket already there is a killed holder's: it is replaced). The
// socket is created owner-only in a private directory and renamed into place, so it is never
// reachable with wider permissions.
func Listen(warehouse string, info func() Info, h Handler, log *slog.Logger) (*Server, error) {
	path, err := SocketPath(warehouse)
	if err != nil {
		return nil, err
	}
	if len(path) > maxSocketPath {
		return nil, fmt.Errorf("control socket path %s is %d bytes, longer than Unix sockets allow (%d): use a shorter warehouse path", path, len(path), maxSocketPath)
	}
	if err := removeStale(path); err != nil {
		return nil, err
	}
	tmpDir, err := os.MkdirTemp(filepath.Dir(path), ".syncer-sock-")
	if err != nil {
		return nil, fmt.Errorf("creating the control socket: %w", err)
	}
	defer os.RemoveAll(tmpDir)
	tmp := filepath.Join(tmpDir, "s")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("creating the control socket: %w", err)
	}
	ln.SetUnlinkOnClose(false) // it is renamed: Close removes the final path itself
	if err := os.Chmod(tmp, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("restricting the control socket: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		ln.Close()
		return nil, fmt.Errorf("creating the control socket %s: %w", path, err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{path: path, ln: ln, info: info, handler: h, log: log, ctx: ctx, cancel: cancel}
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

// removeStale removes a socket no process accepts on. A live one is ErrInUse; a file that is
// not a socket is left alone (an error).
func removeStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("checking the control socket %s: %w", path, err)
	}
	if fi.Mode()&fs.ModeSocket == 0 {
		return fmt.Errorf("%s exists and is not a socket: move it away so syncer can create its control socket there", path)
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		c.Close()
		return fmt.Errorf("%w %s", ErrInUse, path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing the stale control socket %s: %w", path, err)
	}
	return nil
}

// Path is the socket's path.
func (s *Server) Path() string { return s.path }

// Close removes the socket, stops accepting, lets the requests in flight finish (cancelling
// those still running after closeGrace) and waits for them.
func (s *Server) Close() error {
	// The socket goes first: a reader that comes now finds none and waits for the file to be
	// released (instead of a refused connection, which reads as a killed holder). Reads in
	// flight get closeGrace to finish before they are cancelled.
	var err error
	if rerr := os.Remove(s.path); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
		err = rerr
	}
	err = errors.Join(err, s.ln.Close())
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(closeGrace):
		s.cancel()
		<-done
	}
	s.cancel()
	return err
}

// closeGrace is how long Close lets reads in flight finish.
const closeGrace = 5 * time.Second

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.AcceptUnix()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				s.log.Warn("control socket: accept failed", "error", err)
			}
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer c.Close()
			s.serve(c)
		}()
	}
}

func (s *Server) serve(c *net.UnixConn) {
	w := bufio.NewWriter(c)
	fail := func(err error) {
		re := remoteError{Msg: err.Error()}
		var ue UsageError
		re.Usage = errors.As(err, &ue) && ue.IsUsage()
		b, _ := json.Marshal(re)
		_ = writeFrame(w, frameError, b)
		_ = w.Flush()
	}
	if err := checkPeer(c); err != nil {
		fail(err)
		return
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(io.LimitReader(c, 1<<20)).ReadBytes('\n')
	if err != nil {
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	var req Request
	if err := json.Unmarshal(line, &req); err != nil {
		fail(fmt.Errorf("control socket: a malformed request: %v", err))
		return
	}
	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	// The client sends nothing more: its closing the connection (Ctrl-C) cancels the request.
	go func() {
		_, _ = io.Copy(io.Discard, c)
		cancel()
	}()
	info, _ := json.Marshal(s.info())
	if err := writeFrame(w, frameInfo, info); err != nil {
		return
	}
	s.log.Debug("control socket: request", "cmd", req.Cmd)
	start := time.Now()
	out := &frameWriter{w: w}
	err = s.handler(ctx, req, out)
	s.log.Debug("control socket: request ended", "cmd", req.Cmd, "seconds", time.Since(start).Seconds(), "error", err)
	if err != nil {
		if out.err != nil || ctx.Err() != nil {
			return // the client is gone
		}
		fail(err)
		return
	}
	_ = writeFrame(w, frameOK, nil)
	_ = w.Flush()
}

// frameWriter sends what the handler writes as output frames; each Write is sent at once (the
// renderer buffers and flushes in blocks).
type frameWriter struct {
	w   *bufio.Writer
	err error
}

func (f *frameWriter) Write(p []byte) (int, error) {
	if f.err != nil {
		return 0, f.err
	}
	total := len(p)
	for len(p) > 0 {
		n := min(len(p), 1<<20)
		if f.err = writeFrame(f.w, frameOutput, p[:n]); f.err != nil {
			return 0, f.err
		}
		p = p[n:]
	}
	if f.err = f.w.Flush(); f.err != nil {
		return 0, f.err
	}
	return total, nil
}

func writeFrame(w io.Writer, typ byte, payload []byte) error {
	var h [5]byte
	h[0] = typ
	binary.BigEndian.PutUint32(h[1:], uint32(len(payload)))
	if _, err := w.Write(h[:]); err != nil {
		return err
	}
	_, err := w.Write(payload)
	return err
}

func readFrame(r io.Reader) (byte, []byte, error) {
	var h [5]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(h[1:])
	if n > 1<<24 {
		return 0, nil, fmt.Errorf("control socket: a frame of %d bytes", n)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return 0, nil, err
	}
	return h[0], b, nil
}

// Client errors: no socket (or nobody answers on it), or a socket of another user.
var (
	ErrNoHolder  = errors.New("no process answers on the warehouse's control socket")
	ErrForbidden = errors.New("the warehouse's control socket belongs to another user")
)

// RemoteUsageError is a request the holder refused as the caller's mistake.
type RemoteUsageError struct{ Msg string }

func (e *RemoteUsageError) Error() string { return e.Msg }

// Do sends req to the holder of the warehouse at warehouse and copies its output to out. It
// returns the holder's Info as soon as it arrives (through onInfo, before any output). Cancelling
// ctx closes the connection, which stops the request in the holder.
func Do(ctx context.Context, warehouse string, req Request, onInfo func(Info), out io.Writer) error {
	path, err := SocketPath(warehouse)
	if err != nil {
		return err
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		switch {
		case errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM):
			return fmt.Errorf("%w (%s)", ErrForbidden, path)
		case ctx.Err() != nil:
			return ctx.Err()
		}
		var errno syscall.Errno
		if errors.As(err, &errno) {
			return fmt.Errorf("%w (%s): %w", ErrNoHolder, path, errno)
		}
		return fmt.Errorf("%w (%s): %v", ErrNoHolder, path, err)
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	b, _ := json.Marshal(req)
	if _, err := c.Write(append(b, '\n')); err != nil {
		return ctxOr(ctx, fmt.Errorf("sending the request to the holder: %w", err))
	}
	r := bufio.NewReaderSize(c, 64<<10)
	for {
		typ, payload, err := readFrame(r)
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				err = errors.New("the holder closed the connection before finishing (it exited?)")
			}
			return ctxOr(ctx, fmt.Errorf("reading the holder's answer: %w", err))
		}
		switch typ {
		case frameInfo:
			var in Info
			if err := json.Unmarshal(payload, &in); err == nil && onInfo != nil {
				onInfo(in)
			}
		case frameOutput:
			if _, err := out.Write(payload); err != nil {
				return err
			}
		case frameOK:
			return nil
		case frameError:
			var re remoteError
			if err := json.Unmarshal(payload, &re); err != nil {
				return fmt.Errorf("the holder sent a malformed error: %v", err)
			}
			if re.Usage {
				return &RemoteUsageError{Msg: re.Msg}
			}
			return errors.New(re.Msg)
		default:
			return fmt.Errorf("the holder sent an unknown frame %q", typ)
		}
	}
}

func ctxOr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}
