package load

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/marketsync/marketsync/state"
)

// Cursor returns the committed cursor of a stream partition (found=false if none).
func (d *DuckDB) Cursor(ctx context.Context, stream, partition string) (c state.Cursor, found bool, err error) {
	var raw string
	err = d.conn.QueryRowContext(ctx, `SELECT CAST(cursor AS VARCHAR) FROM _sync_state WHERE stream = ? AND partition = ?`, stream, partition).Scan(&raw)
	if errors.Is(err, sql.ErrNoRows) {
		return state.Cursor{}, false, nil
	}
	if err != nil {
		return state.Cursor{}, false, fmt.Errorf("reading cursor of %s/%s: %w", stream, partition, err)
	}
	c, err = state.DecodeCursor(raw)
	return c, err == nil, err
}

// Cursors returns every committed cursor, keyed by stream + "\x00" + partition.
func (d *DuckDB) Cursors(ctx context.Context) (map[string]state.Cursor, error) {
	rows, err := d.conn.QueryContext(ctx, `SELECT stream, partition, CAST(cursor AS VARCHAR) FROM _sync_state`)
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
			return nil, fmt.Errorf("cursor of %s/%s: %w", stream, partition, err)
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
			rows_rounded, rows_stale) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			r.RunID, r.Stream, r.Partition, r.Started, r.Ended, r.Status, r.FullScan, r.Inserted, r.Updated, r.Deleted,
			r.Rejected, r.Pages, r.Requests, r.Retries, r.Throttled, r.Error, r.Rounded, r.Stale); err != nil {
			return fmt.Errorf("recording run of %s: %w", r.Stream, err)
		}
	}
	return nil
}
