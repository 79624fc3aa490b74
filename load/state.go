package load

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/marketsync/marketsync/schemas"
	"github.com/marketsync/marketsync/state"
)

// Cursor returns the committed cursor of a stream partition of the default tenant (found=false
// if none).
func (d *DuckDB) Cursor(ctx context.Context, stream, partition string) (c state.Cursor, found bool, err error) {
	return d.TenantCursor(ctx, schemas.DefaultTenant, stream, partition)
}

// TenantCursor returns the committed cursor of a tenant's stream partition (found=false if none).
func (d *DuckDB) TenantCursor(ctx context.Context, tenant, stream, partition string) (c state.Cursor, found bool, err error) {
	var raw string
	err = d.conn.QueryRowContext(ctx, `SELECT CAST(cursor AS VARCHAR) FROM _sync_state WHERE tenant = ? AND stream = ? AND partition = ?`,
		tenantOr(tenant), stream, partition).Scan(&raw)
	if errors.Is(err, sql.ErrNoRows) {
		return state.Cursor{}, false, nil
	}
	if err != nil {
		return state.Cursor{}, false, fmt.Errorf("reading cursor of %s/%s: %w", stream, partition, err)
	}
	c, err = state.DecodeCursor(raw)
	return c, err == nil, err
}

// Cursors returns every committed cursor of the default tenant, keyed by stream + "\x00" +
// partition.
func (d *DuckDB) Cursors(ctx context.Context) (map[string]state.Cursor, error) {
	return d.TenantCursors(ctx, schemas.DefaultTenant)
}

// TenantCursors returns every committed cursor of a tenant, keyed by stream + "\x00" + partition.
func (d *DuckDB) TenantCursors(ctx context.Context, tenant string) (map[string]state.Cursor, error) {
	rows, err := d.conn.QueryContext(ctx, `SELECT stream, partition, CAST(cursor AS VARCHAR) FROM _sync_state WHERE tenant = ?`, tenantOr(tenant))
	if err != nil {
		return nil, fmt.Errorf("reading cursors: %w", err)
	}
	defer rows.Close()
	out := map[string]state.Cursor{}
	for rows.Next() {
		var stream, partition, raw string
		if err := rows.Scan(&stream, &partition, &raw); err != nil {
			return nil, fmt.Errorf("reading cursors: %w", err)
		}
		c, err := state.DecodeCursor(raw)
		if err != nil {
			return nil, fmt.Errorf("cursor of %s/%s (tenant %s): %w", stream, partition, tenantOr(tenant), err)
		}
		out[stream+"\x00"+partition] = c
	}
	return out, rows.Err()
}

// RecordRuns appends the per-stream outcomes of a run to _sync_runs.
func (d *DuckDB) RecordRuns(ctx context.Context, runs []state.StreamRun) error {
	for _, r := range runs {
		if _, err := d.conn.ExecContext(ctx, `INSERT INTO _sync_runs (run_id, stream, partition, started_at, ended_at, status,
			full_scan, rows_inserted, rows_updated, rows_deleted, rows_rejected, pages, requests, retries, throttled, error,
			rows_rounded, rows_stale, note, rows_unchanged, resumes_at, bytes, budget_wait_seconds, tenant)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			r.RunID, r.Stream, r.Partition, r.Started, r.Ended, r.Status, r.FullScan, r.Inserted, r.Updated, r.Deleted,
			r.Rejected, r.Pages, r.Requests, r.Retries, r.Throttled, r.Error, r.Rounded, r.Stale, r.Note, r.Unchanged, resumesAt(r),
			r.Bytes, r.Waited.Round(time.Microsecond).Seconds(), tenantOr(r.Tenant)); err != nil {
			return fmt.Errorf("recording run of %s: %w", r.Stream, err)
		}
	}
	return nil
}

// LastSuccesses returns, per stream partition, when its last succeeded run ended, from
// _sync_runs (the whole history, not only the runs of this process).
func (d *DuckDB) LastSuccesses(ctx context.Context) ([]state.LastSuccess, error) {
	rows, err := d.conn.QueryContext(ctx, `SELECT tenant, stream, partition, max(ended_at) FROM _sync_runs
		WHERE status = 'succeeded' AND ended_at IS NOT NULL GROUP BY ALL ORDER BY ALL`)
	if err != nil {
		return nil, fmt.Errorf("reading the last successes from _sync_runs: %w", err)
	}
	defer rows.Close()
	out := []state.LastSuccess{} // non-nil: the history was read
	for rows.Next() {
		var l state.LastSuccess
		if err := rows.Scan(&l.Tenant, &l.Stream, &l.Partition, &l.At); err != nil {
			return nil, fmt.Errorf("reading the last successes from _sync_runs: %w", err)
		}
		l.At = l.At.UTC()
		out = append(out, l)
	}
	return out, rows.Err()
}

func resumesAt(r state.StreamRun) any {
	if r.ResumesAt.IsZero() {
		return nil
	}
	return r.ResumesAt
}

// ScanFacts is what the warehouse knows about one scan of a table (partition), for the caller
// that decides whether the scan proves which rows are gone.
type ScanFacts struct {
	Seen       int64  // distinct rows the scan wrote (rows stamped with its run id)
	Candidates int64  // live rows it did not write and did not quarantine: what deletions would mark
	KeyDigest  string // order-independent digest of the seen keys: "count:xor-of-hashes"
}

// ScanFacts counts the rows scan runID wrote and the live rows it did not see, of one tenant.
// Call it on the writer's connection after the scan's batches committed.
func (d *DuckDB) ScanFacts(ctx context.Context, t *schemas.Table, tenant, stream, runID, scanID, partitionCol, partitionValue string) (ScanFacts, error) {
	where, args := fmt.Sprintf(" AND %s = ?", Quote(schemas.ColTenant)), []any{tenantOr(tenant)}
	if partitionCol != "" {
		where += fmt.Sprintf(" AND %s = ?", Quote(partitionCol))
		args = append(args, partitionValue)
	}
	pk, run := Quote(t.PrimaryKey), Quote(schemas.ColRunID)
	q := fmt.Sprintf(`SELECT
		count(*) FILTER (WHERE %[2]s = ?),
		count(*) FILTER (WHERE %[2]s <> ? AND %[3]s IS NULL AND CAST(%[1]s AS VARCHAR) NOT IN
			(SELECT record_id FROM _rejected WHERE stream = ? AND run_id = ? AND tenant = ? AND record_id IS NOT NULL)),
		coalesce(bit_xor(hash(CAST(%[1]s AS VARCHAR))) FILTER (WHERE %[2]s = ?), 0)
		FROM %[4]s WHERE true%[5]s`, pk, run, Quote(schemas.ColDeletedAt), Quote(t.Name), where)
	var f ScanFacts
	var xor uint64
	all := append([]any{scanID, scanID, stream, runID, tenantOr(tenant), scanID}, args...)
	if err := d.conn.QueryRowContext(ctx, q, all...).Scan(&f.Seen, &f.Candidates, &xor); err != nil {
		return f, fmt.Errorf("counting what the scan of %s saw: %w", t.Name, err)
	}
	f.KeyDigest = fmt.Sprintf("%d:%016x", f.Seen, xor)
	return f, nil
}

// ErrSourceMismatch means the warehouse holds a source's data from another account or server.
var ErrSourceMismatch = errors.New("the warehouse holds data of another source")

// sourceBacked reports whether any row or cursor of the tenant's source's streams is in the
// warehouse.
func (d *DuckDB) sourceBacked(ctx context.Context, tenant, source string) (bool, error) {
	for _, stream := range StreamsOf(source) {
		var n int64
		q := fmt.Sprintf(`SELECT (SELECT count(*) FROM (SELECT 1 FROM %s WHERE %s = ? LIMIT 1)) + (SELECT count(*) FROM _sync_state WHERE tenant = ? AND stream = ?)`,
			Quote(stream), Quote(schemas.ColTenant))
		if err := d.conn.QueryRowContext(ctx, q, tenant, tenant, stream).Scan(&n); err != nil {
			return false, fmt.Errorf("reading what the %s source holds in %s: %w", source, d.path, err)
		}
		if n > 0 {
			return true, nil
		}
	}
	return false, nil
}

// otherTenantHolding returns another tenant whose claim of source has the same identity (case
// aside: an URL's scheme and host are) and is backed by rows or cursors, or "".
func (d *DuckDB) otherTenantHolding(ctx context.Context, tenant, source, identity string) (string, error) {
	rows, err := d.conn.QueryContext(ctx, `SELECT tenant FROM _sources WHERE source = ? AND tenant <> ? AND lower(identity) = lower(?) ORDER BY tenant`,
		source, tenant, identity)
	if err != nil {
		return "", fmt.Errorf("reading the %s claims of %s: %w", source, d.path, err)
	}
	var others []string
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			rows.Close()
			return "", fmt.Errorf("reading the %s claims of %s: %w", source, d.path, err)
		}
		others = append(others, t)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return "", err
	}
	for _, t := range others {
		backed, err := d.sourceBacked(ctx, t, source)
		if err != nil {
			return "", err
		}
		if backed {
			return t, nil
		}
	}
	return "", nil
}

// ClaimSources records which account or server each source's data comes from (source ->
// identity), or, if the warehouse already holds a source's data from another one, refuses,
// naming every mismatched source at once: a full scan would mix the two or soft-delete
// whatever the other lists. Nothing is recorded when it refuses (a claim no row or cursor backs is released, though).
func (d *DuckDB) ClaimSources(ctx context.Context, identities map[string]string) error {
	return d.ClaimTenantSources(ctx, schemas.DefaultTenant, identities)
}

// ClaimTenantSources is ClaimSources for one tenant: each tenant holds its own claims (two
// tenants may read two accounts of one source), and a mismatch names the tenant.
func (d *DuckDB) ClaimTenantSources(ctx context.Context, tenant string, identities map[string]string) error {
	tenant = tenantOr(tenant)
	sources := make([]string, 0, len(identities))
	for s := range identities {
		sources = append(sources, s)
	}
	slices.Sort(sources)
	var held, streams []string
	for _, source := range sources {
		var have string
		err := d.conn.QueryRowContext(ctx, `SELECT identity FROM _sources WHERE tenant = ? AND source = ?`, tenant, source).Scan(&have)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return fmt.Errorf("reading the %s source of %s: %w", source, d.path, err)
		case have != identities[source]:
			// A claim no row and no cursor backs (a first run that reached nothing, e.g. a
			// mistyped base_url) protects nothing: the corrected source takes it over.
			backed, err := d.sourceBacked(ctx, tenant, source)
			if err != nil {
				return err
			}
			if !backed {
				if _, err := d.conn.ExecContext(ctx, `DELETE FROM _sources WHERE tenant = ? AND source = ?`, tenant, source); err != nil {
					return fmt.Errorf("releasing the unused %s claim of %s: %w", source, d.path, err)
				}
				continue
			}
			what := source
			if tenant != schemas.DefaultTenant {
				what = "tenant " + tenant + "'s " + source
			}
			held = append(held, fmt.Sprintf("%s data from %s (this run reads %s)", what, have, identities[source]))
			streams = append(streams, StreamsOf(source)...)
		}
	}
	if len(held) == 0 {
		// The same account under two tenant names (a tenant renamed, or a warehouse of one
		// tenant moved to a tenants: list under a new name) would hold every row twice.
		for _, source := range sources {
			other, err := d.otherTenantHolding(ctx, tenant, source, identities[source])
			if err != nil {
				return err
			}
			if other != "" {
				return fmt.Errorf("%w: warehouse %s holds %s data from %s as tenant %q; tenant %q reads the same account, so every row "+
					"would be held twice. A tenant's name is part of every key: if you renamed the tenant, give it its old name %q again "+
					"(a config without tenants: is the tenant %q); otherwise sync it into another warehouse",
					ErrSourceMismatch, d.path, source, identities[source], other, tenant, other, schemas.DefaultTenant)
			}
		}
	}
	if len(held) > 0 {
		return &FixByReset{Err: ErrSourceMismatch, Path: d.path, Streams: streams,
			format: fmt.Sprintf("%s: warehouse %s holds %s. Either sync into another warehouse (--warehouse, or warehouse: in the config), "+
				"or, to replace the old data, run `%%s` (it deletes those streams' rows, cursors and Parquet files) and sync again",
				ErrSourceMismatch, d.path, strings.Join(held, "; "))}
	}
	for _, source := range sources {
		if _, err := d.conn.ExecContext(ctx, `INSERT INTO _sources (tenant, source, identity, first_seen, last_seen) VALUES (?, ?, ?, now(), now())
			ON CONFLICT (tenant, source) DO UPDATE SET last_seen = now()`, tenant, source, identities[source]); err != nil {
			return fmt.Errorf("recording the %s source of %s: %w", source, d.path, err)
		}
	}
	return nil
}
