// Package state holds the types of sync state: a versioned cursor per stream and partition, and
// the history of runs. The rows live in the warehouse itself (tables _sync_state and _sync_runs)
// so that a cursor is always committed in the same transaction as the data it covers.
package state

import (
	"encoding/json"
	"fmt"
	"time"
)

// CursorVersion is the version written by this build; older versions are migrated on read.
const CursorVersion = 1

// Cursor is where a stream's next incremental run starts. Decoding tolerates unknown fields so
// an older build can read a newer cursor.
type Cursor struct {
	V int `json:"v"`
	// Value is the highest cursor-column value committed (microseconds since the epoch, UTC);
	// zero means "never synced": the next run is a full scan.
	Value int64 `json:"value_us,omitempty"`
	// LastFullScan is when a complete full scan of the stream last committed (wall clock).
	LastFullScan time.Time `json:"last_full_scan,omitzero"`
	// KeyDigest is the key-set digest of the last complete full scan: a later full scan that
	// lists exactly the same keys proves it saw everything, even without a server total.
	KeyDigest string `json:"key_digest,omitempty"`
	// Loaded marks a first load that completed after being resumed: its rows are in, but no
	// single scan verified them, so the next run is a full scan.
	Loaded bool `json:"loaded,omitempty"`
	// Rescan asks for a full scan next run: rows left a swept status, so their new versions
	// are unknown (they carry _stale_since until then).
	Rescan bool `json:"rescan,omitempty"`
}

// Time returns Value as a time (zero time when unset).
func (c Cursor) Time() time.Time {
	if c.Value == 0 {
		return time.Time{}
	}
	return time.UnixMicro(c.Value).UTC()
}

// Encode returns the cursor's JSON.
func (c Cursor) Encode() string {
	c.V = CursorVersion
	b, _ := json.Marshal(c) // a struct of plain fields cannot fail to marshal
	return string(b)
}

// DecodeCursor parses a stored cursor.
func DecodeCursor(s string) (Cursor, error) {
	var c Cursor
	if err := json.Unmarshal([]byte(s), &c); err != nil {
		return Cursor{}, fmt.Errorf("decoding cursor %q: %w", s, err)
	}
	if c.V > CursorVersion {
		return Cursor{}, fmt.Errorf("cursor version %d is newer than this build understands (%d): upgrade syncer", c.V, CursorVersion)
	}
	return c, nil
}

// StreamRun is one stream's (and partition's) outcome in a run: a row of _sync_runs.
type StreamRun struct {
	RunID     string
	Tenant    string // the config's tenant ("default" without a tenants list)
	Stream    string
	Partition string
	Started   time.Time
	Ended     time.Time
	Status    string // succeeded | failed | cancelled | deferred (a daily budget ran low) | skipped
	FullScan  bool
	Inserted  int64
	Updated   int64 // rows whose content changed
	Unchanged int64 // rows listed again with the same content (not rewritten)
	Deleted   int64
	Rejected  int64
	Rounded   int64 // money values rounded half-even to DECIMAL(38,10)'s 10 fraction digits
	Stale     int64 // live rows newly marked _stale_since: their newer version was quarantined
	Pages     int64
	Requests  int64
	Retries   int64
	Throttled int64         // 429 answers
	Bytes     int64         // response bytes read
	Waited    time.Duration // time spent waiting on rate budgets (stored in seconds, to the microsecond)
	// Note says which guarantee this run could not give, e.g. why a full scan marked no
	// deletions ("total unknown: bare array").
	Note  string
	Error string
	// ResumesAt, for a deferred run, is when the budget that stopped it is back (at the latest).
	ResumesAt time.Time
}

// LastSuccess is when a stream partition's last succeeded run ended (_sync_runs).
type LastSuccess struct {
	Tenant, Stream, Partition string
	At                        time.Time
}

// DDL creates the state tables.
const DDL = `
CREATE TABLE IF NOT EXISTS _sync_state (
	stream VARCHAR NOT NULL,
	partition VARCHAR NOT NULL,
	cursor JSON NOT NULL,
	updated_at TIMESTAMPTZ NOT NULL,
	tenant VARCHAR NOT NULL,
	PRIMARY KEY (tenant, stream, partition)
);
CREATE TABLE IF NOT EXISTS _sync_runs (
	run_id VARCHAR NOT NULL,
	stream VARCHAR NOT NULL,
	partition VARCHAR NOT NULL,
	started_at TIMESTAMPTZ,
	ended_at TIMESTAMPTZ,
	status VARCHAR,
	full_scan BOOLEAN,
	rows_inserted BIGINT,
	rows_updated BIGINT,
	rows_deleted BIGINT,
	rows_rejected BIGINT,
	pages BIGINT,
	requests BIGINT,
	retries BIGINT,
	throttled BIGINT,
	error VARCHAR,
	tenant VARCHAR
);
ALTER TABLE _sync_runs ADD COLUMN IF NOT EXISTS rows_rounded BIGINT;
ALTER TABLE _sync_runs ADD COLUMN IF NOT EXISTS rows_stale BIGINT;
ALTER TABLE _sync_runs ADD COLUMN IF NOT EXISTS note VARCHAR;
ALTER TABLE _sync_runs ADD COLUMN IF NOT EXISTS rows_unchanged BIGINT;
ALTER TABLE _sync_runs ADD COLUMN IF NOT EXISTS resumes_at TIMESTAMPTZ;
ALTER TABLE _sync_runs ADD COLUMN IF NOT EXISTS bytes BIGINT;
ALTER TABLE _sync_runs ADD COLUMN IF NOT EXISTS budget_wait_seconds DOUBLE;
CREATE TABLE IF NOT EXISTS _sources (
	source VARCHAR NOT NULL,
	identity VARCHAR NOT NULL,
	first_seen TIMESTAMPTZ NOT NULL,
	last_seen TIMESTAMPTZ NOT NULL,
	tenant VARCHAR NOT NULL,
	PRIMARY KEY (tenant, source)
);
CREATE TABLE IF NOT EXISTS _rejected (
	stream VARCHAR NOT NULL,
	record_id VARCHAR,
	field VARCHAR,
	value VARCHAR,
	error VARCHAR,
	record VARCHAR,
	run_id VARCHAR,
	rejected_at TIMESTAMPTZ,
	tenant VARCHAR
);`
