package serve

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
)

// Transaction states, as ReadyForQuery reports them.
const (
	txIdle     = 'I'
	txInBlock  = 'T'
	txFailed   = 'E'
	flushBytes = 64 << 10 // flush DataRows to the socket every 64 KiB: results stream
)

// session is one client connection.
type session struct {
	srv      *Server
	nc       net.Conn
	be       *pgproto3.Backend
	db       *readerConn
	user     string
	database string
	pid      uint32
	secret   []byte
	params   map[string]string // session settings, for SHOW

	stmts   map[string]*pstmt
	portals map[string]*portal

	tx       byte // txIdle, txInBlock or txFailed
	implicit bool // a DuckDB transaction is open for the current Query or Sync-delimited batch
	skipSync bool // an error in the extended protocol: ignore messages until Sync
	unsent   int  // bytes sent since the last flush

	mu      sync.Mutex
	running context.CancelFunc
	dead    atomic.Bool
}

// pgError is an error to send to the client with its SQLSTATE.
type pgError struct {
	code, msg, hint string
}

func (e *pgError) Error() string { return e.msg }

func errorf(code, format string, args ...any) *pgError {
	return &pgError{code: code, msg: fmt.Sprintf(format, args...)}
}

func (s *Server) refuse(nc net.Conn, code, msg string) {
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(5 * time.Second))
	be := pgproto3.NewBackend(nc, nc)
	if _, err := be.ReceiveStartupMessage(); err != nil {
		return
	}
	be.Send(&pgproto3.ErrorResponse{Severity: "FATAL", SeverityUnlocalized: "FATAL", Code: code, Message: msg})
	_ = be.Flush()
}

func (s *Server) serveConn(nc net.Conn) {
	defer nc.Close()
	m := s.cfg.Metrics
	ss := &session{srv: s, nc: nc, tx: txIdle, stmts: map[string]*pstmt{}, portals: map[string]*portal{}}
	_ = nc.SetDeadline(time.Now().Add(30 * time.Second)) // startup and authentication
	if err := ss.startup(); err != nil {
		if !errors.Is(err, io.EOF) && !errors.Is(err, errCancelRequest) {
			s.cfg.Log.Info("client connection refused", "remote", nc.RemoteAddr().String(), "error", err)
			if m != nil {
				m.authFailures.Inc()
			}
		}
		return
	}
	_ = nc.SetDeadline(time.Time{})
	if !s.register(ss) {
		return
	}
	defer s.unregister(ss)
	db, err := s.wh.connect()
	if err != nil {
		ss.sendError(errorf("53000", "opening a warehouse connection: %v", err), "FATAL")
		_ = ss.be.Flush()
		return
	}
	ss.db = db
	defer db.close()
	if m != nil {
		m.connections.Inc()
		m.connectionsTotal.Inc()
		defer m.connections.Dec()
	}
	s.cfg.Log.Debug("client connected", "remote", nc.RemoteAddr().String(), "user", ss.user, "pid", ss.pid)
	ss.sendStartupParams()
	if err := ss.loop(); err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
		s.cfg.Log.Debug("client connection ended", "pid", ss.pid, "error", err)
	}
	ss.endTx(false)
	for _, p := range ss.portals {
		p.close()
	}
	for _, p := range ss.stmts {
		p.close()
	}
}

var errCancelRequest = errors.New("cancel request")

func (ss *session) startup() error {
	ss.be = pgproto3.NewBackend(ss.nc, ss.nc)
	ss.be.SetMaxBodyLen(64 << 20)
	tlsDone := false
	for {
		msg, err := ss.be.ReceiveStartupMessage()
		if err != nil {
			return err
		}
		switch m := msg.(type) {
		case *pgproto3.SSLRequest:
			if ss.srv.cfg.TLS == nil || tlsDone {
				if _, err := ss.nc.Write([]byte{'N'}); err != nil {
					return err
				}
				continue
			}
			if _, err := ss.nc.Write([]byte{'S'}); err != nil {
				return err
			}
			tc := tls.Server(ss.nc, ss.srv.cfg.TLS)
			if err := tc.Handshake(); err != nil {
				return fmt.Errorf("TLS handshake: %w", err)
			}
			ss.nc, tlsDone = tc, true
			ss.be = pgproto3.NewBackend(ss.nc, ss.nc)
			ss.be.SetMaxBodyLen(64 << 20)
		case *pgproto3.GSSEncRequest:
			if _, err := ss.nc.Write([]byte{'N'}); err != nil {
				return err
			}
		case *pgproto3.CancelRequest:
			ss.srv.cancelQuery(m.ProcessID, m.SecretKey)
			return errCancelRequest
		case *pgproto3.StartupMessage:
			if ss.srv.cfg.RequireTLS && !tlsDone {
				ss.fatal("28000", "this server accepts only TLS connections (use sslmode=require)")
				return errors.New("client without TLS")
			}
			ss.user = m.Parameters["user"]
			ss.database = m.Parameters["database"]
			if ss.database == "" {
				ss.database = ss.user
			}
			ss.params = defaultParams(ss.user)
			if v := m.Parameters["application_name"]; v != "" {
				ss.params["application_name"] = v
			}
			return ss.authenticate()
		default:
			return fmt.Errorf("unexpected startup message %T", msg)
		}
	}
}

func (ss *session) fatal(code, msg string) {
	ss.be.Send(&pgproto3.ErrorResponse{Severity: "FATAL", SeverityUnlocalized: "FATAL", Code: code, Message: msg})
	_ = ss.be.Flush()
}

func (ss *session) authenticate() error {
	creds, known := ss.srv.users[ss.user]
	if !known {
		creds = ss.srv.users[firstKey(ss.srv.users)] // same work and messages for unknown users
	}
	x := &scramExchange{creds: creds, known: known}
	ss.be.Send(&pgproto3.AuthenticationSASL{AuthMechanisms: []string{"SCRAM-SHA-256"}})
	if err := ss.be.Flush(); err != nil {
		return err
	}
	if err := ss.be.SetAuthType(pgproto3.AuthTypeSASL); err != nil {
		return err
	}
	msg, err := ss.be.Receive()
	if err != nil {
		return err
	}
	init, ok := msg.(*pgproto3.SASLInitialResponse)
	if !ok || init.AuthMechanism != "SCRAM-SHA-256" {
		ss.fatal("28000", "this server accepts SCRAM-SHA-256 password authentication only")
		return errors.New("client did not start SCRAM-SHA-256")
	}
	sf, err := x.first(init.Data)
	if err != nil {
		ss.fatal("28000", err.Error())
		return err
	}
	ss.be.Send(&pgproto3.AuthenticationSASLContinue{Data: []byte(sf)})
	if err := ss.be.Flush(); err != nil {
		return err
	}
	if err := ss.be.SetAuthType(pgproto3.AuthTypeSASLContinue); err != nil {
		return err
	}
	msg, err = ss.be.Receive()
	if err != nil {
		return err
	}
	resp, ok := msg.(*pgproto3.SASLResponse)
	if !ok {
		return errors.New("unexpected message during SCRAM")
	}
	final, err := x.final(resp.Data)
	if err != nil {
		ss.fatal("28P01", fmt.Sprintf("password authentication failed for user %q", ss.user))
		return fmt.Errorf("user %q: %w", ss.user, err)
	}
	ss.be.Send(&pgproto3.AuthenticationSASLFinal{Data: []byte(final)})
	ss.be.Send(&pgproto3.AuthenticationOk{})
	return ss.be.Flush()
}

func firstKey(m map[string]scramCreds) string {
	for k := range m {
		return k
	}
	return ""
}

func (ss *session) sendStartupParams() {
	for _, k := range []string{"server_version", "server_encoding", "client_encoding", "DateStyle", "TimeZone",
		"integer_datetimes", "IntervalStyle", "standard_conforming_strings", "is_superuser", "session_authorization",
		"application_name", "default_transaction_read_only", "in_hot_standby"} {
		ss.be.Send(&pgproto3.ParameterStatus{Name: k, Value: ss.params[strings.ToLower(k)]})
	}
	ss.be.Send(&pgproto3.BackendKeyData{ProcessID: ss.pid, SecretKey: ss.secret})
	ss.be.Send(&pgproto3.ReadyForQuery{TxStatus: ss.tx})
	_ = ss.be.Flush()
}

func (ss *session) kill() {
	ss.mu.Lock()
	ss.dead.Store(true)
	if ss.running != nil {
		ss.running()
	}
	ss.mu.Unlock()
	ss.nc.Close()
}

func (ss *session) cancelRunning() {
	ss.mu.Lock()
	if ss.running != nil {
		ss.running()
	}
	ss.mu.Unlock()
}

// queryContext returns the context of one statement's execution, cancelled by a
// CancelRequest, server shutdown or statement_timeout.
func (ss *session) queryContext() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ss.srv.ctx)
	if d := parseTimeout(ss.params["statement_timeout"]); d > 0 {
		var c2 context.CancelFunc
		ctx, c2 = context.WithTimeout(ctx, d)
		prev := cancel
		cancel = func() { c2(); prev() }
	}
	ss.mu.Lock()
	ss.running = cancel
	ss.mu.Unlock()
	return ctx, func() {
		ss.mu.Lock()
		ss.running = nil
		ss.mu.Unlock()
		cancel()
	}
}

func (ss *session) loop() error {
	for {
		msg, err := ss.be.Receive()
		if err != nil {
			return err
		}
		if ss.skipSync {
			switch msg.(type) {
			case *pgproto3.Sync:
				ss.skipSync = false
			case *pgproto3.Terminate:
				return nil
			default:
				continue
			}
		}
		switch m := msg.(type) {
		case *pgproto3.Query:
			ss.simpleQuery(m.String)
		case *pgproto3.Parse:
			ss.extended(ss.parse(m))
		case *pgproto3.Bind:
			ss.extended(ss.bind(m))
		case *pgproto3.Describe:
			ss.extended(ss.describe(m))
		case *pgproto3.Execute:
			ss.extended(ss.execute(m))
		case *pgproto3.Close:
			ss.extended(ss.closeObject(m))
		case *pgproto3.Sync:
			ss.endImplicit()
			ss.be.Send(&pgproto3.ReadyForQuery{TxStatus: ss.tx})
			if err := ss.flush(); err != nil {
				return err
			}
		case *pgproto3.Flush:
			if err := ss.flush(); err != nil {
				return err
			}
		case *pgproto3.Terminate:
			return nil
		default:
			ss.sendError(errorf("08P01", "unsupported message %T", msg), "")
			if err := ss.flush(); err != nil {
				return err
			}
		}
		if ss.dead.Load() {
			return net.ErrClosed
		}
	}
}

func (ss *session) flush() error {
	ss.unsent = 0
	return ss.be.Flush()
}

// send queues a message, flushing when enough bytes are pending.
func (ss *session) send(msg pgproto3.BackendMessage, size int) error {
	ss.be.Send(msg)
	ss.unsent += size
	if ss.unsent >= flushBytes {
		return ss.flush()
	}
	return nil
}

// extended reports an extended-protocol step's error, after which messages are ignored
// until Sync (PostgreSQL's rule).
func (ss *session) extended(err error) {
	if err == nil {
		return
	}
	ss.fail(err)
	ss.skipSync = true
}

// fail sends err and marks an explicit transaction failed.
func (ss *session) fail(err error) {
	ss.sendError(err, "")
	if ss.tx == txInBlock {
		ss.tx = txFailed
	}
	ss.srv.cfg.Metrics.query(0, err)
}

func (ss *session) sendError(err error, severity string) {
	if severity == "" {
		severity = "ERROR"
	}
	pe := toPGError(err)
	ss.be.Send(&pgproto3.ErrorResponse{Severity: severity, SeverityUnlocalized: severity, Code: pe.code, Message: pe.msg, Hint: pe.hint})
}

// beginImplicit opens the DuckDB READ ONLY transaction statements run in, unless one is open.
func (ss *session) ensureTx() error {
	if ss.implicit || ss.tx != txIdle {
		return nil
	}
	if err := ss.db.exec("BEGIN TRANSACTION READ ONLY"); err != nil {
		return err
	}
	ss.implicit = true
	return nil
}

// endImplicit ends the implicit transaction of a Query message or Sync-delimited batch.
func (ss *session) endImplicit() {
	if !ss.implicit {
		return
	}
	for name, p := range ss.portals {
		p.close()
		delete(ss.portals, name)
	}
	_ = ss.db.exec("ROLLBACK") // read-only: nothing to commit
	ss.implicit = false
}

// endTx ends an explicit transaction block.
func (ss *session) endTx(commit bool) {
	for name, p := range ss.portals {
		p.close()
		delete(ss.portals, name)
	}
	if ss.tx != txIdle || ss.implicit {
		_ = ss.db.exec("ROLLBACK")
	}
	ss.tx = txIdle
	ss.implicit = false
}

func (ss *session) simpleQuery(q string) {
	stmts := splitStatements(q)
	if len(stmts) == 0 {
		ss.be.Send(&pgproto3.EmptyQueryResponse{})
	}
	for _, st := range stmts {
		if err := ss.runSimple(st); err != nil {
			ss.fail(err)
			break
		}
	}
	ss.endImplicit()
	ss.be.Send(&pgproto3.ReadyForQuery{TxStatus: ss.tx})
	_ = ss.flush()
}

func (ss *session) runSimple(st statement) error {
	start := time.Now()
	ps, err := ss.plan(st)
	if err != nil {
		return err
	}
	defer ps.close()
	if ss.tx == txFailed && ps.act != actCommit && ps.act != actRollback {
		return errorf("25P02", "current transaction is aborted, commands ignored until end of transaction block")
	}
	p := &portal{ps: ps}
	if err := ss.runPortal(p, 0, true); err != nil {
		p.close()
		return err
	}
	p.close()
	ss.srv.cfg.Metrics.query(time.Since(start), nil)
	return nil
}
