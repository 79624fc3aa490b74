// Package serve answers SQL over the PostgreSQL wire protocol from the warehouse that the same
// process keeps syncing: BI tools (Metabase, Grafana, Superset, DBeaver, psql) connect while the
// scheduled syncs commit, and each query reads one consistent DuckDB snapshot.
//
// Reader connections are read-only by construction: each statement is classified from its own
// tokens before DuckDB sees it and again by DuckDB's statement type after preparation (only
// queries run), runs inside a READ ONLY DuckDB transaction, and the database has external
// access disabled (no file reads or writes outside the Parquet output, no ATTACH, INSTALL or
// LOAD). A few functions with global side effects are refused by name. Every refusal is a
// PostgreSQL error with SQLSTATE 25006 (a write) or 42501 (anything else).
package serve

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultMaxConns bounds concurrent client connections (each holds a DuckDB connection).
const DefaultMaxConns = 64

// Config is the SQL server's configuration.
type Config struct {
	// Users maps user names to passwords (SCRAM-SHA-256 authentication). Required.
	Users map[string]string
	// TLS, when set, is offered to clients that ask for it (sslmode=require and up).
	TLS *tls.Config
	// RequireTLS refuses clients that do not use TLS.
	RequireTLS bool
	// MaxConns bounds concurrent connections (default DefaultMaxConns).
	MaxConns int
	Log      *slog.Logger
	Metrics  *Metrics // optional
}

// Server is the PostgreSQL wire protocol front of a Warehouse.
type Server struct {
	cfg   Config
	wh    *Warehouse
	users map[string]scramCreds

	mu       sync.Mutex
	sessions map[uint32]*session
	lns      []net.Listener
	closed   bool
	conns    sync.WaitGroup
	active   atomic.Int64
	nextPID  uint32
	ctx      context.Context
	cancel   context.CancelFunc
	startErr error
}

// NewServer returns a server over wh. It does not listen yet (see Serve).
func NewServer(wh *Warehouse, cfg Config) (*Server, error) {
	if len(cfg.Users) == 0 {
		return nil, errors.New("serve: no users configured (serve.users)")
	}
	if cfg.RequireTLS && cfg.TLS == nil {
		return nil, errors.New("serve: TLS is required but no certificate is configured")
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = DefaultMaxConns
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, wh: wh, users: map[string]scramCreds{}, sessions: map[uint32]*session{}}
	for u, p := range cfg.Users {
		c, err := newScramCreds(p)
		if err != nil {
			return nil, err
		}
		s.users[u] = c
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	var b [4]byte
	_, _ = rand.Read(b[:])
	s.nextPID = binary.BigEndian.Uint32(b[:])>>8 + 1000
	return s, nil
}

// Serve accepts connections on ln until Close; it returns nil after Close.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ln.Close()
		return nil
	}
	s.lns = append(s.lns, ln)
	s.mu.Unlock()
	var delay time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				time.Sleep(delay)
				continue
			}
			return fmt.Errorf("accepting connections: %w", err)
		}
		delay = 0
		if s.active.Load() >= int64(s.cfg.MaxConns) {
			go s.refuse(nc, "53300", fmt.Sprintf("too many connections (serve.max_connections is %d)", s.cfg.MaxConns))
			continue
		}
		s.conns.Add(1)
		s.active.Add(1)
		go func() {
			defer s.conns.Done()
			defer s.active.Add(-1)
			s.serveConn(nc)
		}()
	}
}

// Close stops accepting, cancels running queries, closes every client connection and waits
// for their goroutines. It is safe to call more than once.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.conns.Wait()
		return nil
	}
	s.closed = true
	var errs []error
	for _, ln := range s.lns {
		if err := ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	for _, ss := range s.sessions {
		ss.kill()
	}
	s.mu.Unlock()
	s.cancel()
	s.conns.Wait()
	return errors.Join(errs...)
}

func (s *Server) register(ss *session) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.nextPID++
	ss.pid = s.nextPID
	var b [4]byte
	_, _ = rand.Read(b[:])
	ss.secret = b[:]
	s.sessions[ss.pid] = ss
	return true
}

func (s *Server) unregister(ss *session) {
	s.mu.Lock()
	delete(s.sessions, ss.pid)
	s.mu.Unlock()
}

// cancelQuery handles a CancelRequest: it interrupts the session's running query when the
// secret matches (and silently does nothing otherwise, as PostgreSQL does).
func (s *Server) cancelQuery(pid uint32, secret []byte) {
	s.mu.Lock()
	ss := s.sessions[pid]
	s.mu.Unlock()
	if ss != nil && string(ss.secret) == string(secret) {
		ss.cancelRunning()
	}
}
