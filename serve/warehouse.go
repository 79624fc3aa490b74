package serve

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	bindings "github.com/duckdb/duckdb-go-bindings"
	"github.com/duckdb/duckdb-go/v2"

	"github.com/marketsync/marketsync/load"
	"github.com/marketsync/marketsync/queries"
	"github.com/marketsync/marketsync/schemas"
)

// Warehouse is the DuckDB database the serve process owns: one DuckDB instance, shared by the
// scheduled syncs (pipeline.Run opens the same path, which duckdb-go's instance cache resolves
// to this instance) and by the reader connections of SQL clients.
type Warehouse struct {
	// Path is the absolute path of the DuckDB file; pass it to pipeline.Config.Warehouse.
	Path string
	// ParquetDir is the absolute Parquet output directory (the only one DuckDB may write to).
	ParquetDir string
	owner      *load.DuckDB
	db         bindings.Database
	compat     string // catalog holding the PostgreSQL compatibility objects
}

// compatCatalog holds the pg_catalog compatibility objects: each reader connection's own
// temporary catalog. (A shared attached in-memory catalog made the syncs' CHECKPOINT fail with
// "other write transactions active" while readers queried its views.)
const compatCatalog = "temp"

// OpenWarehouse opens (creating if needed) the warehouse at path for serving: it takes the
// file lock, creates every table and shipped view so clients see them before the first sync,
// installs the PostgreSQL compatibility objects, and then disables DuckDB's external access
// for the whole database except parquetDir ("" for none), where the syncs write Parquet.
// Another process holding the file is reported as load.ErrLocked.
func OpenWarehouse(ctx context.Context, path, parquetDir string) (*Warehouse, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("resolving warehouse path: %w", err)
	}
	w := &Warehouse{Path: abs, compat: compatCatalog}
	if parquetDir != "" {
		if w.ParquetDir, err = filepath.Abs(parquetDir); err != nil {
			return nil, fmt.Errorf("resolving parquet directory: %w", err)
		}
		if err := os.MkdirAll(w.ParquetDir, 0o700); err != nil {
			return nil, fmt.Errorf("creating parquet directory: %w", err)
		}
	}
	if w.owner, err = load.Open(ctx, abs); err != nil {
		return nil, err
	}
	if err := w.setup(ctx); err != nil {
		w.Close()
		return nil, err
	}
	return w, nil
}

func (w *Warehouse) setup(ctx context.Context) error {
	if err := w.owner.Migrate(ctx, schemas.Tables); err != nil {
		return err
	}
	if err := queries.Install(ctx, w.owner.Conn()); err != nil {
		return err
	}
	var cfg bindings.Config
	if bindings.CreateConfig(&cfg) == bindings.StateError {
		return errors.New("creating a DuckDB config")
	}
	defer bindings.DestroyConfig(&cfg)
	// The same options duckdb-go opens with: the instance cache hands back the open instance.
	if bindings.SetConfig(cfg, "duckdb_api", "go") == bindings.StateError {
		return errors.New("configuring DuckDB")
	}
	var msg string
	if bindings.GetOrCreateFromCache(duckdb.GetInstanceCache(), w.Path, &w.db, cfg, &msg) == bindings.StateError {
		return fmt.Errorf("opening the warehouse for readers: %s", msg)
	}
	conn := w.owner.Conn()
	var stmts []string
	dirs := "[]"
	if w.ParquetDir != "" {
		dirs = "['" + strings.ReplaceAll(w.ParquetDir, "'", "''") + "/']"
	}
	stmts = append(stmts,
		"SET allowed_directories = "+dirs,
		"SET enable_external_access = false",
		"SET autoinstall_known_extensions = false",
		"SET allow_community_extensions = false",
	)
	for _, q := range stmts {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("preparing the warehouse for serving (%s): %w", firstLine(q), err)
		}
	}
	return nil
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " …"
	}
	return s
}

// connect opens a reader connection. The caller closes it.
func (w *Warehouse) connect() (*readerConn, error) {
	r, err := connectReader(w.db)
	if err != nil {
		return nil, err
	}
	for _, q := range compatSQL(w.compat) {
		if err := r.exec(q); err != nil {
			r.close()
			return nil, fmt.Errorf("creating the pg_catalog compatibility objects (%s): %w", firstLine(q), err)
		}
	}
	return r, nil
}

// Close releases the readers' handle and the owner connection (and with them the file lock,
// once every pipeline run has ended).
func (w *Warehouse) Close() error {
	if w.db.Ptr != nil {
		bindings.Close(&w.db)
	}
	if w.owner != nil {
		return w.owner.Close()
	}
	return nil
}
