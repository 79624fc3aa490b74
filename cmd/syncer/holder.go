package main

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/duckdb/duckdb-go/v2"

	"github.com/marketsync/marketsync/internal/control"
	"github.com/marketsync/marketsync/load"
	"github.com/marketsync/marketsync/schemas"
	"github.com/marketsync/marketsync/serve"
)

// holder answers the read commands of other processes (status, runs, query, export) while this
// process holds the warehouse: on the control socket beside the file, each request runs on a
// fresh connection of this process's DuckDB instance, in a READ ONLY transaction (the last
// committed snapshot), and its output is rendered by the same code as a local read.
type holder struct {
	srv   *control.Server
	owner *load.DuckDB
	db    *sql.DB // owner's: each request takes a connection of its own
	// restricted: DuckDB may write files only under allowedDir (syncer serve; "" for none),
	// so an export elsewhere is staged there and moved.
	restricted bool
	allowedDir string
	// syncState, when set (syncer serve), says whether a scheduled sync runs and since when.
	syncState func() (running bool, started time.Time)

	mu   sync.Mutex
	info control.Info
}

// startHolder opens the warehouse at path in this process (duckdb-go's instance cache gives the
// sync's own load.Open, and serve's, the same database), applies opts and listens on its
// control socket. When another process holds the file it returns (nil, nil): the sync then
// reports the lock as it always did. A socket that cannot be created is logged; the process
// works on without it.
func startHolder(ctx context.Context, path, kind string, log *slog.Logger, opts ...func(*holder)) (*holder, error) {
	if path == ":memory:" || path == "" {
		return nil, nil // nobody else can open it
	}
	// load.Open as the sync's own open: the state tables exist before the first read, and the
	// instance has the settings exports rely on.
	// A reader (status, query, export, a duckdb shell) may hold the file for a moment: wait a
	// little for it rather than fail a scheduled run for a read that was just ending.
	owner, err := load.Open(ctx, path)
	for deadline, said := time.Now().Add(lockWait), false; errors.Is(err, load.ErrLocked) && time.Now().Before(deadline); {
		if !said {
			log.Info("the warehouse is held by another process; waiting for it", "up_to_seconds", lockWait.Seconds(), "holder", err.Error())
			said = true
		}
		select {
		case <-ctx.Done():
			return nil, nil
		case <-time.After(200 * time.Millisecond):
		}
		owner, err = load.Open(ctx, path)
	}
	if errors.Is(err, load.ErrLocked) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	h := &holder{owner: owner, db: owner.DB(), info: control.Info{PID: os.Getpid(), Kind: kind, Since: now}}
	for _, o := range opts {
		o(h) // before the first request can arrive
	}
	h.srv, err = control.Listen(path, h.snapshotInfo, h.handle, log)
	if err != nil {
		log.Warn("reads from other processes are not answered during this run: no control socket", "error", err)
	}
	return h, nil
}

// lockWait is how long a sync or serve waits for another process to release the warehouse.
const lockWait = 10 * time.Second

// syncing records that a sync of streams started now (at nil: ended).
func (h *holder) syncing(streams []string) {
	if h == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.info.SyncRunning = streams != nil
	h.info.SyncStarted, h.info.Streams = time.Time{}, nil
	if streams != nil {
		h.info.SyncStarted, h.info.Streams = time.Now().UTC(), streams
	}
}

func (h *holder) snapshotInfo() control.Info {
	h.mu.Lock()
	in := h.info
	h.mu.Unlock()
	if h.syncState != nil {
		in.SyncRunning, in.SyncStarted = h.syncState()
		if !in.SyncRunning {
			in.SyncStarted = time.Time{}
		}
	}
	return in
}

// close stops answering (cancelling reads in flight), removes the socket and releases this
// process's handle on the warehouse.
func (h *holder) close() {
	if h == nil {
		return
	}
	if h.srv != nil {
		_ = h.srv.Close()
	}
	_ = h.owner.Close()
}

// IsUsage marks usage errors for the control socket (the client exits 2 as if it ran locally).
func (e *usageError) IsUsage() bool { return true }

func (h *holder) handle(ctx context.Context, req control.Request, out io.Writer) error {
	if req.Cmd == "export" {
		// Before the snapshot begins: an export that waited for the sync's own Parquet writes
		// must not then write an older snapshot over them.
		unlock, err := load.LockParquet(ctx)
		if err != nil {
			return err
		}
		defer unlock()
	}
	conn, err := h.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	// A fresh connection's transaction sees the last commit, never a batch in flight; READ ONLY
	// makes DuckDB refuse any write that got past the statement checks.
	if _, err := conn.ExecContext(ctx, "BEGIN TRANSACTION READ ONLY"); err != nil {
		return err
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK") //nolint:errcheck // a read-only transaction: nothing to keep
	switch req.Cmd {
	case "query":
		if err := checkRead(ctx, conn, req.SQL); err != nil {
			return err
		}
		return printQuery(ctx, conn, req.SQL, req.Format, out)
	case "status":
		return printStatus(ctx, conn, req.Format, out)
	case "runs":
		return printRuns(ctx, conn, req.Stream, req.Last, req.Format, out)
	case "export":
		return h.export(ctx, conn, req.Dir)
	}
	return fmt.Errorf("control socket: unknown request %q (a newer syncer than this holder?)", req.Cmd)
}

// checkRead lets through one read statement only: serve's classifier, then DuckDB's own
// statement type (the READ ONLY transaction is the third gate).
func checkRead(ctx context.Context, conn *sql.Conn, q string) error {
	if err := serve.CheckReadOnly(q); err != nil {
		return usagef("%v", err)
	}
	return conn.Raw(func(dc any) error {
		st, err := dc.(driver.ConnPrepareContext).PrepareContext(ctx, q)
		if err != nil {
			return queryError(err)
		}
		defer st.Close()
		ds, ok := st.(*duckdb.Stmt)
		if !ok {
			return nil
		}
		typ, err := ds.StatementType()
		if err != nil {
			return err
		}
		if typ != duckdb.STATEMENT_TYPE_SELECT && typ != duckdb.STATEMENT_TYPE_EXPLAIN {
			return usagef("%v: DuckDB classifies this statement as a write or a command", serve.ErrNotReadOnly)
		}
		return nil
	})
}

// export writes every table to dir from the transaction's snapshot. DuckDB of a serve process
// may write only under its Parquet directory: the export is staged there and moved into dir.
func (h *holder) export(ctx context.Context, conn *sql.Conn, dir string) error {
	if !filepath.IsAbs(dir) {
		return usagef("export through the holder needs an absolute directory, got %q", dir)
	}
	if h.restricted && h.allowedDir == "" {
		return fmt.Errorf("syncer serve (pid %d) holds the warehouse without a Parquet directory (--parquet-dir -), so its DuckDB may write no files: stop it to export, or run it with a Parquet directory", os.Getpid())
	}
	if !h.restricted || within(dir, h.allowedDir) {
		_, err := load.ExportSnapshot(ctx, conn, dir, schemas.Tables)
		return err
	}
	staging, err := os.MkdirTemp(h.allowedDir, ".export-")
	if err != nil {
		return fmt.Errorf("staging the export in %s: %w", h.allowedDir, err)
	}
	defer os.RemoveAll(staging)
	if _, err := load.ExportSnapshot(ctx, conn, staging, schemas.Tables); err != nil {
		return err
	}
	return installExport(staging, dir)
}

func within(dir, parent string) bool {
	rel, err := filepath.Rel(parent, dir)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// installExport moves a full export from staging into dir with a full export's guarantees:
// each file is put beside its final name and renamed over it, and partitions the export does
// not have are removed.
func installExport(staging, dir string) error {
	for _, t := range schemas.Tables {
		src, dst := filepath.Join(staging, t.Name), filepath.Join(dir, t.Name)
		parts, err := os.ReadDir(src)
		if err != nil {
			return err
		}
		keep := map[string]bool{}
		for _, p := range parts {
			keep[p.Name()] = true
			if err := os.MkdirAll(filepath.Join(dst, p.Name()), 0o700); err != nil {
				return err
			}
			tmp := filepath.Join(dst, p.Name(), ".data.parquet.tmp")
			if err := moveFile(filepath.Join(src, p.Name(), "data.parquet"), tmp); err != nil {
				return err
			}
			if err := os.Rename(tmp, filepath.Join(dst, p.Name(), "data.parquet")); err != nil {
				return err
			}
		}
		old, _ := os.ReadDir(dst)
		for _, e := range old {
			if e.IsDir() && !keep[e.Name()] {
				if err := os.RemoveAll(filepath.Join(dst, e.Name())); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// moveFile renames src to dst, copying when they are on different file systems.
func moveFile(src, dst string) error {
	if err := os.Rename(src, dst); err == nil {
		return nil
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// viaHolder runs req in the process that holds the warehouse at path (lockErr is what opening
// it said), copying its output to stdout. With note, it says on stderr what the holder is doing
// (a sync running, since when, which streams): stdout stays what a local read prints.
func viaHolder(ctx context.Context, path string, lockErr error, req control.Request, note bool, stdout, stderr io.Writer) error {
	err := control.Do(ctx, path, req, func(in control.Info) {
		if note {
			fmt.Fprintln(stderr, holderNote(in))
		}
	}, stdout)
	var ue *control.RemoteUsageError
	sock, _ := control.SocketPath(path)
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ue):
		return usagef("%s", ue.Msg)
	case errors.Is(err, control.ErrForbidden):
		return fmt.Errorf("%w; its control socket %s belongs to another user, so this read cannot be answered by it: "+
			"run the command as the user running the sync (or serve), or wait for it to finish", lockErr, sock)
	case errors.Is(err, control.ErrNoHolder) && errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("%w%w; it answers no reads: the control socket %s was left by a syncer that was killed, and the "+
			"process holding the file now is not a syncer sync or serve (a duckdb shell, a BI tool?). Close it, or wait for it", errHolderGone, lockErr, sock)
	case errors.Is(err, control.ErrNoHolder):
		return fmt.Errorf("%w%w; it answers no reads (no control socket at %s): it is a syncer older than this one, or "+
			"not syncer (a duckdb shell, a BI tool?). Wait for it to finish, or stop it and run it with this version, which "+
			"answers status, runs, query and export while it syncs", errHolderGone, lockErr, sock)
	}
	return err
}

// errHolderGone marks a locked warehouse without a control socket: a holder that is exiting
// (readWarehouse asks again for a moment), or one that answers no reads. It prints as nothing.
var errHolderGone = errors.New("")

// holderNote is the line status and runs print on stderr when the holder answered.
func holderNote(in control.Info) string {
	var b strings.Builder
	switch in.Kind {
	case "serve":
		fmt.Fprintf(&b, "note: syncer serve (pid %d) holds the warehouse since %s and answered this read", in.PID, in.Since.Format(time.RFC3339))
		if in.SyncRunning {
			fmt.Fprintf(&b, "; its scheduled sync has been running since %s: this shows what it has committed so far", in.SyncStarted.Format(time.RFC3339))
		} else {
			b.WriteString("; no sync is running now")
		}
	default:
		fmt.Fprintf(&b, "note: a sync (pid %d) has been running since %s", in.PID, in.SyncStarted.Format(time.RFC3339))
		if len(in.Streams) > 0 {
			fmt.Fprintf(&b, " (streams: %s)", strings.Join(in.Streams, ", "))
		}
		b.WriteString(" and answered this read: this shows what it has committed so far")
	}
	return b.String()
}
