// Package lake writes the warehouse tables as Apache Iceberg tables, a second destination beside
// DuckDB for syncs that run on many machines: each table's commits go through an Iceberg catalog
// (SQL on SQLite or Postgres, or REST) with optimistic concurrency, so many writers can commit to
// the same table, and Trino, Spark, Snowflake, Athena or DuckDB read it.
//
// A Commit is one Iceberg snapshot: the batch upserted by primary key, the rows a complete scan did
// not see marked deleted (_deleted_at), and the stream's cursor in the snapshot's summary
// properties. The cursor is therefore never ahead of the data: both become visible in the same
// catalog commit, or neither does. A commit that loses a race with another writer is re-read and
// re-applied a bounded number of times.
package lake

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/catalog/rest"
	sqlcat "github.com/apache/iceberg-go/catalog/sql"
	_ "github.com/apache/iceberg-go/io/gocloud/s3" // s3:// and S3-compatible warehouses
	"github.com/apache/iceberg-go/table"
	_ "github.com/jackc/pgx/v5/stdlib" // Postgres SQL catalogs ("pgx" driver)
	_ "modernc.org/sqlite"             // SQLite SQL catalogs ("sqlite" driver, pure Go)

	"github.com/marketsync/marketsync/schemas"
	"github.com/marketsync/marketsync/state"
)

// Upsert modes: how a commit replaces the rows whose keys it carries.
const (
	// CopyOnWrite rewrites the data files of the touched partitions that hold a key of the batch.
	// Readers see plain data files, which every engine reads (Snowflake and Athena included).
	CopyOnWrite = "copy-on-write"
	// EqualityDeletes writes an equality-delete file on the primary key beside the new rows (an
	// Iceberg row delta): cheaper to write, but readers must apply the deletes (Trino, Spark,
	// Flink and DuckDB's iceberg extension do; Snowflake reads position deletes only).
	EqualityDeletes = "equality-deletes"
)

// Options say where the lake is.
type Options struct {
	// Catalog is "sql" or "rest".
	Catalog string
	// URI: for sql, a SQLite file (a path, or sqlite:PATH) or a Postgres DSN (postgres://...);
	// for rest, the catalog's http(s) URL.
	URI string
	// Warehouse is where data and metadata files go: a local folder, file:///..., or
	// s3://bucket/prefix (S3-compatible stores through s3.endpoint in Properties).
	Warehouse string
	// Namespace holds the tables (default "marketsync").
	Namespace string
	// Upsert is CopyOnWrite (default) or EqualityDeletes.
	Upsert string
	// MaxAttempts bounds how often a conflicting commit is re-read and re-applied (default 8).
	MaxAttempts int
	// Properties are passed to the catalog and its file IO as they are: s3.endpoint,
	// s3.access-key-id, s3.secret-access-key, s3.region, credential, token, ...
	Properties map[string]string
}

// DeleteScope asks a commit to soft-delete the rows a complete scan did not see: every live row
// of the commit's tenant (in the partition, if PartitionCol is set) whose _run_id is not RunID
// and whose key the commit's batches do not carry gets _deleted_at = At. It mirrors
// load.DeleteScope.
type DeleteScope struct {
	RunID          string
	PartitionCol   string
	PartitionValue string
	At             time.Time
}

// Commit is one snapshot of one table.
type Commit struct {
	Table *schemas.Table
	// Batches have the table's Arrow schema (Table.Schema()); a key in a later batch replaces
	// the same key in an earlier one. They are not released.
	Batches   []arrow.RecordBatch
	Cursor    *state.Cursor // committed in the snapshot's summary; nil keeps the stored one
	Stream    string
	Partition string
	// Tenant owns the commit's rows, cursor and deletions (schemas.DefaultTenant if empty): every
	// batch row must be of it, and its upsert, soft deletes and cursor touch its rows only.
	Tenant string
	// DeleteUnseen, if set, marks the rows the scan did not see deleted.
	DeleteUnseen *DeleteScope
}

// Result says what a commit did.
type Result struct {
	Upserted   int64 // rows written from the batches
	Deleted    int64 // rows newly marked _deleted_at
	Attempts   int   // 1 unless it conflicted with other writers
	SnapshotID int64 // the snapshot that carries the commit (0: nothing to commit)
}

// ErrConflict is returned, wrapped, when a commit still conflicts with other writers' commits
// after Options.MaxAttempts attempts.
var ErrConflict = errors.New("commit kept conflicting with other writers")

// Summary property keys.
const (
	propCursorPrefix = "marketsync.cursor."
	propStream       = "marketsync.stream"
	propPartition    = "marketsync.partition"
	propTenant       = "marketsync.tenant"
	propTenantPrefix = "marketsync.tenant."
	propUpserted     = "marketsync.rows-upserted"
	propDeleted      = "marketsync.rows-deleted"
)

// CursorProperty is the snapshot summary key of a tenant's stream partition's cursor:
// marketsync.cursor.<stream>.<partition>, or marketsync.cursor.<stream> without a partition, for
// the default tenant (the names of builds before tenants in the lake, so an upgraded lake keeps
// its cursors); marketsync.tenant.<tenant>.cursor.<stream>[.<partition>] for another tenant (a
// tenant name has no dot, so the names cannot collide).
func CursorProperty(tenant, stream, partition string) string {
	p := cursorPrefix(tenant) + stream
	if partition != "" {
		p += "." + partition
	}
	return p
}

// cursorPrefix starts the cursor property names of tenant.
func cursorPrefix(tenant string) string {
	if tenant == "" || tenant == schemas.DefaultTenant {
		return propCursorPrefix
	}
	return propTenantPrefix + tenant + ".cursor."
}

// isCursorProperty reports whether a summary key is a cursor of any tenant.
func isCursorProperty(k string) bool {
	if strings.HasPrefix(k, propCursorPrefix) {
		return true
	}
	rest, ok := strings.CutPrefix(k, propTenantPrefix)
	if !ok {
		return false
	}
	_, after, ok := strings.Cut(rest, ".")
	return ok && strings.HasPrefix(after, "cursor.")
}

// tenantOf is c's tenant.
func (c *Commit) tenantOf() string {
	if c.Tenant == "" {
		return schemas.DefaultTenant
	}
	return c.Tenant
}

// Writer commits to the tables of one namespace. It is safe for concurrent use; commits to
// different tables or partitions may run in parallel.
type Writer struct {
	cat         catalog.Catalog
	ns          table.Identifier
	upsert      string
	maxAttempts int
	mem         memory.Allocator

	mu      sync.Mutex
	created map[string]bool

	conflicts atomic.Int64
	commits   atomic.Int64
	migrated  []string // tables migrateTenant committed, under mu
	// beforeCommit, if set (tests), runs after the data files are written and before the catalog
	// commit; an error aborts the attempt.
	beforeCommit func(c *Commit, attempt int) error
	// beforeMigrate, if set (tests), runs before the catalog commit of migrateTenant.
	beforeMigrate func(t *schemas.Table, attempt int) error
}

// Open connects to the catalog and creates the namespace if needed.
func Open(ctx context.Context, o Options) (*Writer, error) {
	if o.Namespace == "" {
		o.Namespace = "marketsync"
	}
	if o.Upsert == "" {
		o.Upsert = CopyOnWrite
	}
	if o.Upsert != CopyOnWrite && o.Upsert != EqualityDeletes {
		return nil, fmt.Errorf("lake: upsert mode %q: want %s or %s", o.Upsert, CopyOnWrite, EqualityDeletes)
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 8
	}
	cat, err := openCatalog(ctx, o)
	if err != nil {
		return nil, err
	}
	w := &Writer{cat: cat, ns: table.Identifier{o.Namespace}, upsert: o.Upsert, maxAttempts: o.MaxAttempts,
		mem: memory.DefaultAllocator, created: map[string]bool{}}
	if err := cat.CreateNamespace(ctx, w.ns, nil); err != nil && !errors.Is(err, catalog.ErrNamespaceAlreadyExists) {
		w.Close()
		return nil, fmt.Errorf("lake: creating namespace %s: %w", o.Namespace, err)
	}
	return w, nil
}

// openCatalog connects to o's catalog (for a REST catalog: its configuration and, with
// credentials, a token).
func openCatalog(ctx context.Context, o Options) (catalog.Catalog, error) {
	// A REST catalog's warehouse is whatever the catalog calls it (a name or a location, or
	// none); a SQL catalog's is where this writer puts the files.
	wh := o.Warehouse
	if o.Catalog != "rest" {
		var err error
		if wh, err = warehouseURL(o.Warehouse); err != nil {
			return nil, err
		}
	}
	props := iceberg.Properties{}
	for k, v := range o.Properties {
		props[k] = v
	}
	if wh != "" {
		props["warehouse"] = wh
	}
	var err error
	var cat catalog.Catalog
	switch o.Catalog {
	case "sql":
		cat, err = openSQL(o.URI, props)
	case "rest":
		// The credential and token go to the auth options only: additional properties are
		// merged into every table's configuration.
		cred, tok := props["credential"], props["token"]
		delete(props, "credential")
		delete(props, "token")
		opts := []rest.Option{rest.WithAdditionalProps(props)}
		if wh != "" {
			opts = append(opts, rest.WithWarehouseLocation(wh))
		}
		if cred != "" {
			opts = append(opts, rest.WithCredential(cred))
		}
		if tok != "" {
			opts = append(opts, rest.WithOAuthToken(tok))
		}
		cat, err = rest.NewCatalog(ctx, "marketsync", o.URI, opts...)
	default:
		return nil, fmt.Errorf("lake: catalog %q: want sql or rest", o.Catalog)
	}
	if err != nil {
		if o.Catalog == "rest" && (errors.Is(err, rest.ErrUnauthorized) || errors.Is(err, rest.ErrForbidden) || errors.Is(err, rest.ErrOAuthError)) {
			return nil, fmt.Errorf("lake: opening the rest catalog %s: authentication failed (check lake.credential or lake.token): %w", o.URI, err)
		}
		return nil, fmt.Errorf("lake: opening the %s catalog: %w", o.Catalog, err)
	}
	return cat, nil
}

// Probe connects to o's catalog without changing anything and says whether its namespace
// exists (syncer check).
func Probe(ctx context.Context, o Options) (namespaceExists bool, err error) {
	if o.Namespace == "" {
		o.Namespace = "marketsync"
	}
	cat, err := openCatalog(ctx, o)
	if err != nil {
		return false, err
	}
	if c, ok := cat.(interface{ Close() error }); ok {
		defer c.Close()
	}
	ok, err := cat.CheckNamespaceExists(ctx, table.Identifier{o.Namespace})
	if err != nil {
		return false, fmt.Errorf("lake: looking up namespace %s: %w", o.Namespace, err)
	}
	return ok, nil
}

// warehouseURL turns a local folder into a file:// URL; URLs pass as they are.
func warehouseURL(loc string) (string, error) {
	if loc == "" {
		return "", errors.New("lake: no warehouse location")
	}
	if strings.Contains(loc, "://") {
		return strings.TrimSuffix(loc, "/"), nil
	}
	abs, err := filepath.Abs(loc)
	if err != nil {
		return "", fmt.Errorf("lake: warehouse %q: %w", loc, err)
	}
	return (&url.URL{Scheme: "file", Path: filepath.ToSlash(abs)}).String(), nil
}

// openSQL opens a SQL catalog: SQLite (WAL, a busy timeout so processes on one machine can share
// it) or Postgres.
func openSQL(uri string, props iceberg.Properties) (catalog.Catalog, error) {
	driver, dialect, dsn := "sqlite", sqlcat.SQLite, strings.TrimPrefix(uri, "sqlite:")
	if strings.HasPrefix(uri, "postgres://") || strings.HasPrefix(uri, "postgresql://") {
		driver, dialect, dsn = "pgx", sqlcat.Postgres, uri
	} else {
		if dsn == "" {
			return nil, errors.New("no SQLite file")
		}
		// A new lake's catalog file is created, with its folder (like the DuckDB warehouse's).
		file, _, _ := strings.Cut(strings.TrimPrefix(dsn, "file:"), "?")
		if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
			return nil, fmt.Errorf("creating the folder of the SQLite catalog %s: %w", file, err)
		}
		sep := "?"
		if strings.Contains(dsn, "?") {
			sep = "&"
		}
		dsn += sep + "_pragma=busy_timeout(30000)&_pragma=journal_mode(WAL)"
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		return nil, err
	}
	cat, err := sqlcat.NewCatalog("marketsync", db, dialect, props)
	if err != nil {
		db.Close()
		return nil, err
	}
	return &ownedSQL{Catalog: cat, db: db}, nil
}

// ownedSQL closes the database handle the catalog was given.
type ownedSQL struct {
	*sqlcat.Catalog
	db *sql.DB
}

func (o *ownedSQL) Close() error { return errors.Join(o.Catalog.Close(), o.db.Close()) }

// Close releases the catalog connection.
func (w *Writer) Close() error {
	if c, ok := w.cat.(interface{ Close() error }); ok {
		return c.Close()
	}
	return nil
}

// Conflicts counts the commit attempts that lost a race with another writer and were retried.
func (w *Writer) Conflicts() int64 { return w.conflicts.Load() }

// Migrated names the tables this writer gave the tenant column (migrateTenant), in order.
func (w *Writer) Migrated() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.migrated)
}

// Commits counts the snapshots Commit created.
func (w *Writer) Commits() int64 { return w.commits.Load() }

// Catalog returns the catalog, for readers (tests, maintenance).
func (w *Writer) Catalog() catalog.Catalog { return w.cat }

// Identifier returns the catalog identifier of a table.
func (w *Writer) Identifier(t *schemas.Table) table.Identifier {
	return append(append(table.Identifier{}, w.ns...), t.Name)
}

// Table loads the current version of t's Iceberg table, creating it first if needed.
func (w *Writer) Table(ctx context.Context, t *schemas.Table) (*table.Table, error) {
	id := w.Identifier(t)
	tbl, err := w.cat.LoadTable(ctx, id)
	if errors.Is(err, catalog.ErrNoSuchTable) {
		tbl, err = w.create(ctx, t)
	}
	if err != nil {
		return nil, fmt.Errorf("lake: loading table %s: %w", t.Name, err)
	}
	w.mu.Lock()
	checked := w.created[t.Name]
	w.mu.Unlock()
	if !checked {
		old, err := isPreTenant(t, tbl.Schema())
		if err != nil {
			return nil, err
		}
		if old {
			if tbl, err = w.migrateTenant(ctx, t); err != nil {
				return nil, err
			}
		}
		if err := sameColumns(t, tbl.Schema()); err != nil {
			return nil, err
		}
		w.mu.Lock()
		w.created[t.Name] = true
		w.mu.Unlock()
	}
	return tbl, nil
}

func (w *Writer) create(ctx context.Context, t *schemas.Table) (*table.Table, error) {
	sc, spec, err := icebergSchema(t)
	if err != nil {
		return nil, err
	}
	mode := "copy-on-write"
	if w.upsert == EqualityDeletes {
		mode = "merge-on-read"
	}
	props := iceberg.Properties{
		table.PropertyFormatVersion: "2",
		table.ParquetCompressionKey: "zstd",
		table.CommitNumRetriesKey:   "0", // Commit re-reads and re-applies itself
		"write.delete.mode":         mode,
		"write.update.mode":         mode,
		"write.merge.mode":          mode,
		"marketsync.primary-key":    t.PrimaryKey,
		"marketsync.source":         t.Source,
	}
	tbl, err := w.cat.CreateTable(ctx, w.Identifier(t), sc, catalog.WithPartitionSpec(&spec), catalog.WithProperties(props))
	if errors.Is(err, catalog.ErrTableAlreadyExists) { // another writer created it first
		return w.cat.LoadTable(ctx, w.Identifier(t))
	}
	return tbl, err
}

// Commit applies c as one snapshot. A commit that conflicts with another writer's is re-read and
// re-applied, up to MaxAttempts times; then it fails with ErrConflict. On any error nothing of c
// is visible (data files written by a failed attempt stay unreferenced until orphan cleanup).
func (w *Writer) Commit(ctx context.Context, c Commit) (Result, error) {
	if c.Table == nil {
		return Result{}, errors.New("lake: commit without a table")
	}
	if strings.ContainsAny(c.Tenant, ". ") {
		return Result{}, fmt.Errorf("lake: tenant %q: a tenant name has no dot or space (it is part of the cursor property names)", c.Tenant)
	}
	rec, err := mergeBatches(ctx, w.mem, c.Table, c.Batches)
	if err != nil {
		return Result{}, err
	}
	if rec != nil {
		defer rec.Release()
	}
	var last error
	for attempt := 1; attempt <= w.maxAttempts; attempt++ {
		res, err := w.commitOnce(ctx, &c, rec, attempt)
		if err == nil {
			res.Attempts = attempt
			if res.SnapshotID != 0 {
				w.commits.Add(1)
			}
			return res, nil
		}
		if !isConflict(err) {
			return Result{}, fmt.Errorf("lake: committing %s (stream %s, partition %q): %w", c.Table.Name, c.Stream, c.Partition, err)
		}
		last = err
		if attempt == w.maxAttempts {
			break
		}
		w.conflicts.Add(1)
		// Jittered exponential backoff: writers that collided spread out.
		wait := time.Duration(min(25<<attempt, 2000)) * time.Millisecond
		wait = wait/2 + rand.N(wait/2+1)
		select {
		case <-ctx.Done():
			return Result{}, fmt.Errorf("lake: committing %s: %w", c.Table.Name, context.Cause(ctx))
		case <-time.After(wait):
		}
	}
	return Result{}, fmt.Errorf("lake: committing %s (stream %s, partition %q): %w after %d attempts (last: %v); nothing of this commit is visible, run the stream again",
		c.Table.Name, c.Stream, c.Partition, ErrConflict, w.maxAttempts, last)
}

// isConflict reports whether err is a lost optimistic-concurrency race: the table moved between
// this writer's read and its commit, or a SQLite catalog was busy with another writer's commit.
// Catalogs report the first as table.ErrCommitFailed (REST 409, the SQL catalog's
// compare-and-swap) or as a failed branch requirement. Either way nothing was committed.
func isConflict(err error) bool {
	if errors.Is(err, table.ErrCommitFailed) || errors.Is(err, table.ErrCommitDiverged) {
		return true
	}
	msg := strings.ToLower(err.Error())
	if strings.Contains(msg, "requirement failed") && (strings.Contains(msg, "has changed") || strings.Contains(msg, "created concurrently")) {
		return true
	}
	// SQLite refuses a write transaction that would wait on another writer's lock in WAL mode
	// (SQLITE_BUSY, without waiting for the busy timeout): that transaction changed nothing.
	return strings.Contains(msg, "database is locked") || strings.Contains(msg, "sqlite_busy")
}

func (w *Writer) commitOnce(ctx context.Context, c *Commit, rec arrow.RecordBatch, attempt int) (Result, error) {
	t := c.Table
	tbl, err := w.Table(ctx, t)
	if err != nil {
		return Result{}, err
	}
	target, err := writeSchema(tbl)
	if err != nil {
		return Result{}, err
	}
	var res Result
	var rows []arrow.RecordBatch
	defer func() {
		for _, r := range rows {
			r.Release()
		}
	}()
	if rec != nil {
		if err := oneTenant(rec, c.tenantOf()); err != nil {
			return Result{}, fmt.Errorf("lake: %s: %w", t.Name, err)
		}
		r, err := conform(ctx, rec, target)
		if err != nil {
			return Result{}, err
		}
		rows = append(rows, r)
		res.Upserted = rec.NumRows()
	}
	if ds := c.DeleteUnseen; ds != nil && tbl.CurrentSnapshot() != nil {
		gone, err := w.unseen(ctx, tbl, t, c.tenantOf(), ds, rec, target)
		if err != nil {
			return Result{}, err
		}
		for _, g := range gone {
			res.Deleted += g.NumRows()
		}
		rows = append(rows, gone...)
	}
	if res.Upserted+res.Deleted == 0 && c.Cursor == nil {
		return res, nil
	}
	props := iceberg.Properties{
		propStream:    c.Stream,
		propPartition: c.Partition,
		propTenant:    c.tenantOf(),
		propUpserted:  fmt.Sprint(res.Upserted),
		propDeleted:   fmt.Sprint(res.Deleted),
	}
	if c.Cursor != nil {
		props[CursorProperty(c.tenantOf(), c.Stream, c.Partition)] = c.Cursor.Encode()
	}
	rdr, err := array.NewRecordReader(target, rows)
	if err != nil {
		return Result{}, err
	}
	defer rdr.Release()
	tx := tbl.NewTransaction()
	switch {
	case res.Upserted+res.Deleted == 0:
		// Cursor only: an empty snapshot carries it.
		err = tx.AddFiles(ctx, nil, props, false)
	case tbl.CurrentSnapshot() == nil:
		// An empty table has no row to replace.
		err = tx.Append(ctx, rdr, props)
	case w.upsert == EqualityDeletes && !partitionMoves(t):
		// Equality deletes are scoped to their partition: a row that moved partition would
		// keep its old copy, so such tables (users) are upserted by copy-on-write.
		err = w.rowDelta(ctx, tx, tbl, t, target, rows, props)
	default:
		err = w.copyOnWrite(ctx, tx, tbl, t, c.tenantOf(), target, rows, props)
	}
	if err != nil {
		return Result{}, fmt.Errorf("writing %s: %w", t.Name, err)
	}
	if w.beforeCommit != nil {
		if err := w.beforeCommit(c, attempt); err != nil {
			return Result{}, err
		}
	}
	committed, err := tx.Commit(ctx)
	if err != nil {
		return Result{}, err
	}
	if s := committed.CurrentSnapshot(); s != nil {
		res.SnapshotID = s.SnapshotID
	}
	return res, nil
}

// copyOnWrite stages the rows (all of tenant) as new data files replacing the existing files
// that hold one of their (tenant, primary key) keys, rewritten without those rows. Only files of
// the tenant's partitions the rows fall in are looked at, and of those only the key columns are
// read to find the files to rewrite: a batch of new keys rewrites nothing, an update rewrites
// the files of the rows it replaces, and another tenant's row with the same id is kept.
func (w *Writer) copyOnWrite(ctx context.Context, tx *table.Transaction, tbl *table.Table, t *schemas.Table, tenant string, target *arrow.Schema, rows []arrow.RecordBatch, props iceberg.Properties) error {
	keys := map[string]bool{}
	for _, r := range rows {
		tn, pk := keyColumns(r, t)
		for i := 0; i < pk.Len(); i++ {
			keys[rowKey(tn, pk, i)] = true
		}
	}
	var parts iceberg.BooleanExpression = iceberg.AlwaysTrue{}
	if !partitionMoves(t) {
		var err error
		if parts, err = partitionsOf(t, rows); err != nil {
			return err
		}
	}
	parts = iceberg.NewAnd(iceberg.EqualTo(iceberg.Reference(schemas.ColTenant), tenant), parts)
	keyScan := tbl.Scan(table.WithRowFilter(parts), table.WithSelectedFields(schemas.ColTenant, t.PrimaryKey))
	tasks, err := keyScan.PlanFiles(ctx)
	if err != nil {
		return fmt.Errorf("planning the files of %s to rewrite: %w", t.Name, err)
	}
	byFile := map[string][]table.FileScanTask{}
	var order []string
	for _, task := range tasks {
		p := task.File.FilePath()
		if _, ok := byFile[p]; !ok {
			order = append(order, p)
		}
		byFile[p] = append(byFile[p], task)
	}
	var old []iceberg.DataFile
	var kept []arrow.RecordBatch
	defer func() {
		for _, k := range kept {
			k.Release()
		}
	}()
	fullScan := tbl.Scan()
	for _, p := range order {
		group := byFile[p]
		hit, err := anyKey(ctx, keyScan, t, group, keys)
		if err != nil {
			return fmt.Errorf("reading the keys of %s: %w", p, err)
		}
		if !hit {
			continue
		}
		old = append(old, group[0].File)
		// Every row of the file is read to be kept or replaced: the tasks lose the residual of
		// the key scan's filter, which ReadTasks would apply (a file holding rows outside the
		// filter, e.g. another tenant's, would otherwise be rewritten without them).
		whole := slices.Clone(group)
		for i := range whole {
			whole[i].Residual = nil
		}
		_, itr, err := fullScan.ReadTasks(ctx, whole)
		if err != nil {
			return fmt.Errorf("reading %s to rewrite it: %w", p, err)
		}
		for b, err := range itr {
			if err != nil {
				return fmt.Errorf("reading %s to rewrite it: %w", p, err)
			}
			r, err := conform(ctx, b, target)
			b.Release()
			if err != nil {
				return err
			}
			tn, pk := keyColumns(r, t)
			var idx []int64
			for i := 0; i < pk.Len(); i++ {
				if !keys[rowKey(tn, pk, i)] {
					idx = append(idx, int64(i))
				}
			}
			switch {
			case len(idx) == 0:
				r.Release()
			case len(idx) == pk.Len():
				kept = append(kept, r)
			default:
				if r, err = take(ctx, w.mem, r, idx); err != nil {
					return err
				}
				kept = append(kept, r)
			}
		}
	}
	var added []iceberg.DataFile
	for df, err := range table.WriteRecords(ctx, tbl, target, retained(append(slices.Clone(rows), kept...))) {
		if err != nil {
			return err
		}
		added = append(added, df)
	}
	if len(old) == 0 {
		return tx.AddDataFiles(ctx, added, props)
	}
	return tx.ReplaceDataFilesWithDataFiles(ctx, old, added, props)
}

// anyKey reports whether the file read by tasks holds one of keys (reading its key columns only).
func anyKey(ctx context.Context, scan *table.Scan, t *schemas.Table, tasks []table.FileScanTask, keys map[string]bool) (bool, error) {
	_, itr, err := scan.ReadTasks(ctx, tasks)
	if err != nil {
		return false, err
	}
	hit := false
	for b, err := range itr {
		if err != nil {
			return false, err
		}
		if !hit {
			tn, pk := keyColumns(b, t)
			for i := 0; i < pk.Len() && !hit; i++ {
				hit = keys[rowKey(tn, pk, i)]
			}
		}
		b.Release()
	}
	return hit, nil
}

// rowDelta stages the rows as new data files plus an equality-delete file on (tenant, primary
// key) (with the partition source column, so each delete file lands in its partition): a
// tenant's delete never matches another tenant's row with the same id. Deletes apply
// to rows of older sequence numbers only, so the new rows survive their own deletes.
func (w *Writer) rowDelta(ctx context.Context, tx *table.Transaction, tbl *table.Table, t *schemas.Table, target *arrow.Schema, rows []arrow.RecordBatch, props iceberg.Properties) error {
	var data []iceberg.DataFile
	for df, err := range table.WriteRecords(ctx, tbl, target, retained(rows)) {
		if err != nil {
			return err
		}
		data = append(data, df)
	}
	pk, ok := tbl.Schema().FindFieldByName(t.PrimaryKey)
	if !ok {
		return fmt.Errorf("table %s has no column %s", t.Name, t.PrimaryKey)
	}
	tn, ok := tbl.Schema().FindFieldByName(schemas.ColTenant)
	if !ok {
		return fmt.Errorf("table %s has no column %s", t.Name, schemas.ColTenant)
	}
	cols := []string{schemas.ColTenant, t.PrimaryKey}
	if src := partitionSource(t); src != t.PrimaryKey {
		cols = append(cols, src)
	}
	var keys []arrow.RecordBatch
	for _, r := range rows {
		k, err := project(r, cols)
		if err != nil {
			return err
		}
		keys = append(keys, k)
	}
	defer func() {
		for _, k := range keys {
			k.Release()
		}
	}()
	dels, err := tx.WriteEqualityDeletes(ctx, []int{tn.ID, pk.ID}, retained(keys))
	if err != nil {
		return err
	}
	return tx.NewRowDelta(props).AddRows(data...).AddDeletes(dels...).Commit(ctx)
}

// Cursor returns a tenant's stream partition's cursor as of the table's current snapshot: from
// the newest snapshot, in the current snapshot's ancestry, that carries it. ok is false if none
// does (never committed, or its snapshots were expired: the next run then scans in full).
func (w *Writer) Cursor(ctx context.Context, t *schemas.Table, tenant, stream, partition string) (cur state.Cursor, ok bool, err error) {
	tbl, err := w.cat.LoadTable(ctx, w.Identifier(t))
	if errors.Is(err, catalog.ErrNoSuchTable) {
		return state.Cursor{}, false, nil
	}
	if err != nil {
		return state.Cursor{}, false, fmt.Errorf("lake: loading table %s: %w", t.Name, err)
	}
	return CursorAt(tbl, tenant, stream, partition)
}

// CursorAt reads the cursor from tbl's current snapshot ancestry (see Writer.Cursor).
func CursorAt(tbl *table.Table, tenant, stream, partition string) (state.Cursor, bool, error) {
	key := CursorProperty(tenant, stream, partition)
	for s := tbl.CurrentSnapshot(); s != nil; {
		if s.Summary != nil {
			if v, ok := s.Summary.Properties[key]; ok {
				c, err := state.DecodeCursor(v)
				return c, err == nil, err
			}
		}
		if s.ParentSnapshotID == nil {
			break
		}
		s = tbl.SnapshotByID(*s.ParentSnapshotID)
	}
	return state.Cursor{}, false, nil
}
