package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/marketsync/marketsync/apisim"
	"github.com/marketsync/marketsync/internal/simcheck"
	"github.com/marketsync/marketsync/load"
	"github.com/marketsync/marketsync/schemas"
)

// syncReport runs syncer sync with --summary-json and returns its exit code, the parsed
// summary and stderr.
func syncReport(t *testing.T, args ...string) (int, runReport, string) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "summary.json")
	code, _, errOut := syncer(t, append([]string{"sync", "--progress", "never", "--summary-json", p}, args...)...)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("no summary written (exit %d): %v\n%s", code, err, errOut)
	}
	var rep runReport
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatalf("the summary is not JSON: %v\n%s", err, b)
	}
	return code, rep, errOut
}

func streamOf(t *testing.T, rep runReport, stream, partition string) streamReport {
	t.Helper()
	for _, s := range rep.Streams {
		if s.Stream == stream && s.Partition == partition {
			return s
		}
	}
	t.Fatalf("no stream %s/%s in the summary: %+v", stream, partition, rep.Streams)
	return streamReport{}
}

// A source that cannot be reached costs retries; the summary counts every attempt (the token
// requests a stream's requests wait on included) and every retry, network errors included.
func TestReport_UnreachableSourceCountsEveryAttemptAndRetry(t *testing.T) {
	setSecrets(t)
	sim := startSim(t, apisim.Config{Seed: 1, Scale: 10})
	for _, tc := range []struct {
		name   string
		listen func(t *testing.T) (addr string, accepted *atomic.Int64)
	}{
		{"closed port", func(t *testing.T) (string, *atomic.Int64) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			addr := ln.Addr().String()
			ln.Close() // nothing listens there now: every attempt is refused
			return addr, nil
		}},
		{"connection closed on accept", func(t *testing.T) (string, *atomic.Int64) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { ln.Close() })
			var n atomic.Int64
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					n.Add(1)
					c.Close()
				}
			}()
			return ln.Addr().String(), &n
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel() // each waits out the retry policy's backoff: the two at once
			dir := t.TempDir()
			addr, accepted := tc.listen(t)
			cfg := writeConfig(t, dir, sim, func(c string) string { return strings.ReplaceAll(c, sim.URL(), "http://"+addr) })
			start := time.Now()
			code, rep, errOut := syncReport(t, "--config", cfg, "--streams", "users,companies,charges")
			if code == exitOK || rep.Status != "failed" {
				t.Fatalf("exit %d, status %s: want a failed run\n%s", code, rep.Status, errOut)
			}
			var requests int64
			for _, s := range rep.Streams {
				requests += s.Requests
			}
			// One logical request per credential (the token request), sent 8 times (the default
			// policy); users and companies share one credential: the stream that waited on the
			// other's fetch gets its error instead of a second round of retries.
			users, companies, locations := streamOf(t, rep, "users", ""), streamOf(t, rep, "companies", ""), streamOf(t, rep, "locations", "")
			if locations.Status != "failed" || locations.Requests != 8 || locations.Retries != 7 || locations.Throttled != 0 {
				t.Errorf("locations: status %s, %d requests, %d retries, %d 429s: want failed, 8, 7, 0 (%s)", locations.Status, locations.Requests, locations.Retries, locations.Throttled, locations.Error)
			}
			if users.Status != "failed" || companies.Status != "failed" || users.Requests+companies.Requests != 8 || users.Retries+companies.Retries != 7 ||
				min(users.Requests, companies.Requests) != 0 {
				t.Errorf("users and companies: %d+%d requests, %d+%d retries: want 8 and 7 in all, sent by one of them (%s; %s)",
					users.Requests, companies.Requests, users.Retries, companies.Retries, users.Error, companies.Error)
			}
			if el := time.Since(start); el > 30*time.Second {
				t.Errorf("an unreachable source took %s to report", el)
			}
			if accepted != nil && accepted.Load() != requests {
				t.Errorf("the listener accepted %d connections, the summary counts %d requests", accepted.Load(), requests)
			}
		})
	}
}

// attribute splits the simulator's request log by the summary's stream partitions: a data
// request by its endpoint (charges and location tokens by their location), a token request to
// the next data request, whose stream waited on it. Exact for a run with --concurrency 1, where
// one stream partition at a time sends requests.
func attribute(log []apisim.Request) map[string][]apisim.Request {
	streamOf := map[string]string{"appdirect.companies": "companies", "appdirect.users": "users", "appdirect.invoices": "invoices",
		"appdirect.leads": "leads", "appdirect.opportunities": "opportunities", "appdirect.events": "events",
		"highlevel.installedLocations": "locations", "highlevel.charges": "charges", "highlevel.locationToken": "charges"}
	out := map[string][]apisim.Request{}
	var pending []apisim.Request
	for _, r := range log {
		s, ok := streamOf[r.Endpoint]
		if !ok { // appdirect.token, highlevel.token
			pending = append(pending, r)
			continue
		}
		if r.Location != "" {
			s += "/" + r.Location
		}
		out[s] = append(out[s], append(pending, r)...)
		pending = nil
	}
	if len(pending) > 0 {
		out["(tokens no data request followed)"] = pending
	}
	return out
}

// checkCountersAgainstLog holds every stream partition's requests, retries and 429s against
// the simulator's log of the same run. Retries: every answer a retry followed (a dropped
// connection, a 429 or a 5xx; the run succeeded, so none was a last attempt).
func checkCountersAgainstLog(t *testing.T, rep runReport, log []apisim.Request) {
	t.Helper()
	by := attribute(log)
	seen := map[string]bool{}
	for _, s := range rep.Streams {
		key := s.Stream
		if s.Partition != "" {
			key += "/" + s.Partition
		}
		seen[key] = true
		var requests, retries, throttled int64
		for _, r := range by[key] {
			requests++
			switch r.Status {
			case 0, 429, 500, 502, 503, 504:
				retries++
			}
			if r.Status == 429 {
				throttled++
			}
		}
		if s.Requests != requests || s.Retries != retries || s.Throttled != throttled {
			t.Errorf("%s: summary says %d requests, %d retries, %d 429s; the simulator saw %d, %d, %d", key, s.Requests, s.Retries, s.Throttled, requests, retries, throttled)
		}
	}
	for key, rs := range by {
		if !seen[key] {
			t.Errorf("the simulator answered %d requests for %s, which the summary does not list", len(rs), key)
		}
	}
}

// rowsByKey is a stream's source rows by key, as their served bytes.
func rowsByKey(t *testing.T, sim *apisim.Server, stream string) map[string]string {
	t.Helper()
	rows, err := sim.Rows(stream)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, r := range rows {
		out[r.Key] = string(r.Record)
	}
	return out
}

// Each counter of a run is held against the simulator's request log and the warehouse: a first
// load under faults, a re-read with no change at the source (all unchanged, nothing updated),
// and a re-read after the source changed rows (updated is exactly the rows it changed). Each
// run's metrics file (parsed by Prometheus' text parser) and _sync_runs rows equal its summary.
func TestReport_CountersEqualTheSimulatorsRequestLogAndTheWarehouse(t *testing.T) {
	skipUnderRace(t) // three syncs under faults with retry backoff: ~20 s without -race
	t.Parallel()     // mostly waiting (rate budgets, backoff, kills): the long tests overlap
	setSecrets(t)
	ctx := t.Context()
	sim := startSim(t, apisim.Config{Seed: 3, Scale: 100, Profile: "fast", Faults: apisim.Faults{ServerError: 0.05, Throttle: 0.03, Reset: 0.05}})
	dir := t.TempDir()
	cfg := writeConfig(t, dir, sim, func(c string) string {
		return strings.ReplaceAll(c, "    base_url:", "    page_size: 25\n    base_url:")
	})
	wh := filepath.Join(dir, "w.duckdb")
	streams := []string{"companies", "users", "invoices", "leads", "opportunities", "events", "charges"}
	mark := 0
	sync := func(t *testing.T, args ...string) runReport {
		t.Helper()
		metrics := filepath.Join(dir, "marketsync.prom")
		code, rep, errOut := syncReport(t, append([]string{"--config", cfg, "--concurrency", "1", "--parquet-dir", "-", "--metrics-file", metrics}, args...)...)
		if code != exitOK || rep.Status != "succeeded" {
			t.Fatalf("exit %d, status %s\n%s", code, rep.Status, errOut)
		}
		checkMetricsFile(t, metrics, wh, rep)
		checkSyncRuns(t, wh, rep)
		log, dropped := sim.Requests()
		if dropped > 0 {
			t.Fatalf("the request log dropped %d requests", dropped)
		}
		checkCountersAgainstLog(t, rep, log[mark:])
		mark = len(log)
		db, err := load.OpenReadOnly(ctx, wh)
		if err != nil {
			t.Fatal(err)
		}
		if diffs, err := simcheck.CompareRows(ctx, db, sim, streams, simcheck.RowOptions{}); err != nil || diffs != "" {
			t.Fatalf("warehouse differs from the source (%v):\n%s", err, diffs)
		}
		db.Close()
		return rep
	}
	total := func(rep runReport, stream string) (s streamReport) {
		for _, r := range rep.Streams {
			if r.Stream == stream {
				s.Inserted += r.Inserted
				s.Updated += r.Updated
				s.Unchanged += r.Unchanged
				s.Deleted += r.Deleted
			}
		}
		return s
	}
	before := map[string]map[string]string{}
	for _, s := range append(streams, "locations") {
		before[s] = rowsByKey(t, sim, s)
	}

	rep := sync(t)
	var faults int64
	for _, s := range rep.Streams {
		faults += s.Retries
	}
	if faults == 0 {
		t.Fatal("no request was retried: the faults did not happen and the test proved little")
	}
	for _, s := range append(streams, "locations") {
		if got := total(rep, s); got.Inserted != int64(len(before[s])) || got.Updated+got.Unchanged+got.Deleted != 0 {
			t.Errorf("first load of %s: %+v; want %d inserted, nothing else", s, got, len(before[s]))
		}
	}

	rep = sync(t, "--full-refresh")
	for _, s := range append(streams, "locations") {
		if got := total(rep, s); got.Unchanged != int64(len(before[s])) || got.Inserted+got.Updated+got.Deleted != 0 {
			t.Errorf("re-read of unchanged %s: %d inserted, %d updated, %d unchanged, %d deleted; want %d unchanged, nothing else",
				s, got.Inserted, got.Updated, got.Unchanged, got.Deleted, len(before[s]))
		}
	}

	sim.Advance(3 * time.Hour)
	rep = sync(t, "--full-refresh")
	for _, s := range append(streams, "locations") {
		after := rowsByKey(t, sim, s)
		var inserted, updated, unchanged, deleted int64
		for k, v := range after {
			switch old, ok := before[s][k]; {
			case !ok:
				inserted++
			case old != v:
				updated++
			default:
				unchanged++
			}
		}
		for k := range before[s] {
			if _, ok := after[k]; !ok {
				deleted++
			}
		}
		got := total(rep, s)
		if got.Inserted != inserted || got.Updated != updated || got.Unchanged != unchanged || got.Deleted != deleted {
			t.Errorf("%s after the source changed: %d inserted, %d updated, %d unchanged, %d deleted; the source inserted %d, changed %d, kept %d, deleted %d",
				s, got.Inserted, got.Updated, got.Unchanged, got.Deleted, inserted, updated, unchanged, deleted)
		}
	}
}

// checkMetricsFile parses the metrics file with Prometheus' own text parser and holds every
// sample against the JSON summary, and the last successes against the warehouse's _sync_runs.
func checkMetricsFile(t *testing.T, path, warehouse string, rep runReport) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(f)
	if err != nil {
		t.Fatalf("the metrics file does not parse: %v", err)
	}
	type key struct{ name, stream, partition, outcome string }
	got := map[key]float64{}
	for name, fam := range fams {
		if fam.GetType() != dto.MetricType_GAUGE {
			t.Errorf("%s is a %s, want a gauge", name, fam.GetType())
		}
		for _, m := range fam.GetMetric() {
			k := key{name: name}
			for _, l := range m.GetLabel() {
				switch l.GetName() {
				case "stream":
					k.stream = l.GetValue()
				case "partition":
					k.partition = l.GetValue()
				case "outcome", "status":
					k.outcome = l.GetValue()
				}
			}
			got[k] = m.GetGauge().GetValue()
		}
	}
	want := map[key]float64{{name: "marketsync_last_run_timestamp_seconds", outcome: rep.Status}: float64(rep.Ended.Unix()),
		{name: "marketsync_last_run_duration_seconds"}: rep.Seconds}
	for k, at := range lastSuccesses(t, warehouse) {
		want[key{name: "marketsync_last_success_timestamp_seconds", stream: k[0], partition: k[1]}] = float64(at) / 1e6
	}
	for _, s := range rep.Streams {
		k := func(name string) key { return key{name: name, stream: s.Stream, partition: s.Partition} }
		for outcome, n := range map[string]int64{"inserted": s.Inserted, "updated": s.Updated, "unchanged": s.Unchanged, "deleted": s.Deleted,
			"rejected": s.Rejected, "rounded": s.Rounded, "stale": s.Stale} {
			want[key{"marketsync_last_run_rows", s.Stream, s.Partition, outcome}] = float64(n)
		}
		want[k("marketsync_last_run_requests")] = float64(s.Requests)
		want[k("marketsync_last_run_retries")] = float64(s.Retries)
		want[k("marketsync_last_run_throttled")] = float64(s.Throttled)
		want[k("marketsync_last_run_budget_wait_seconds")] = s.WaitedSeconds
		want[k("marketsync_last_run_success")] = 0
		if s.Status == "succeeded" || s.Status == "skipped" {
			want[k("marketsync_last_run_success")] = 1
		}
		want[k("marketsync_last_run_stream_duration_seconds")] = s.Ended.Sub(s.Started).Seconds()
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("metrics file: %+v = %v (present %v), the summary says %v", k, g, ok, v)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("metrics file has %+v, which the summary does not", k)
		}
	}
}

// lastSuccesses reads, per stream and partition, when its last succeeded run ended (Unix
// microseconds), from _sync_runs.
func lastSuccesses(t *testing.T, warehouse string) map[[2]string]int64 {
	t.Helper()
	db, err := load.OpenReadOnly(t.Context(), warehouse)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.QueryContext(t.Context(), `SELECT stream, partition, epoch_us(max(ended_at)) FROM _sync_runs WHERE status = 'succeeded' GROUP BY ALL`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[[2]string]int64{}
	for rows.Next() {
		var s, p string
		var at int64
		if err := rows.Scan(&s, &p, &at); err != nil {
			t.Fatal(err)
		}
		out[[2]string{s, p}] = at
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// The metrics file is replaced each run, so a failed run still carries every stream's last
// success (from the warehouse's history) next to this run's failure: after a run that
// succeeded and one where leads failed, leads' last success is the first run's end, the
// others' the second's, each equal to _sync_runs; leads' last_run_success is 0 and the run's
// timestamp is labelled failed.
func TestReport_MetricsFileKeepsEveryStreamsLastSuccess(t *testing.T) {
	setSecrets(t)
	sim := startSim(t, apisim.Config{Seed: 4, Scale: 30, Profile: "fast"})
	dir := t.TempDir()
	cfg := writeConfig(t, dir, sim, nil)
	wh, metrics := filepath.Join(dir, "w.duckdb"), filepath.Join(dir, "marketsync.prom")
	args := []string{"--config", cfg, "--streams", "users,leads,charges", "--parquet-dir", "-", "--metrics-file", metrics}
	code, first, errOut := syncReport(t, args...)
	if code != exitOK || first.Status != "succeeded" {
		t.Fatalf("first run: exit %d, status %s\n%s", code, first.Status, errOut)
	}
	checkMetricsFile(t, metrics, wh, first)

	t.Setenv("TEST_LEAD_PASSWORD", "wrong") // leads' token is refused: leads fails, the others succeed
	code, second, errOut := syncReport(t, args...)
	if code != exitFailed || second.Status != "failed" || streamOf(t, second, "leads", "").Status != "failed" {
		t.Fatalf("second run: exit %d, status %s: want leads failed\n%s", code, second.Status, errOut)
	}
	checkMetricsFile(t, metrics, wh, second)
	last := lastSuccesses(t, wh)
	leads := streamOf(t, first, "leads", "")
	if at := last[[2]string{"leads", ""}]; at != leads.Ended.UnixMicro() {
		t.Errorf("leads' last success is %s in _sync_runs, want the first run's end %s", time.UnixMicro(at).UTC(), leads.Ended)
	}
	if users := streamOf(t, second, "users", ""); last[[2]string{"users", ""}] != users.Ended.UnixMicro() {
		t.Errorf("users' last success is %s in _sync_runs, want the second run's end %s", time.UnixMicro(last[[2]string{"users", ""}]).UTC(), users.Ended)
	}
	if len(last) != len(second.Streams) { // users, leads, locations and three charges locations
		t.Errorf("%d stream partitions with a last success, the run had %d: %v", len(last), len(second.Streams), last)
	}

	// A run that cannot open its warehouse keeps the previous file's last successes.
	code, third, errOut := syncReport(t, append(args, "--warehouse", filepath.Join(cfg, "w.duckdb"))...) // under a file: cannot be created
	if code == exitOK || third.Status != "failed" || len(third.Streams) != 0 {
		t.Fatalf("a run without its warehouse: exit %d, status %s, %d streams\n%s", code, third.Status, len(third.Streams), errOut)
	}
	checkMetricsFile(t, metrics, wh, third)
}

// checkSyncRuns holds the summary against the run's rows in the warehouse's _sync_runs.
func checkSyncRuns(t *testing.T, warehouse string, rep runReport) {
	t.Helper()
	db, err := load.OpenReadOnly(t.Context(), warehouse)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.QueryContext(t.Context(), `SELECT tenant, stream, partition, status, rows_inserted, rows_updated, rows_unchanged, rows_deleted,
		rows_rejected, pages, requests, retries, throttled, epoch_us(started_at), epoch_us(ended_at) FROM _sync_runs WHERE run_id = ?`, rep.RunID)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	stored := map[string]streamReport{}
	for rows.Next() {
		var s streamReport
		var started, ended int64
		if err := rows.Scan(&s.Tenant, &s.Stream, &s.Partition, &s.Status, &s.Inserted, &s.Updated, &s.Unchanged, &s.Deleted, &s.Rejected,
			&s.Pages, &s.Requests, &s.Retries, &s.Throttled, &started, &ended); err != nil {
			t.Fatal(err)
		}
		s.Started, s.Ended = time.UnixMicro(started).UTC(), time.UnixMicro(ended).UTC()
		stored[s.Stream+"/"+s.Partition] = s
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(stored) != len(rep.Streams) {
		t.Errorf("_sync_runs has %d rows for run %s, the summary %d streams", len(stored), rep.RunID, len(rep.Streams))
	}
	for _, s := range rep.Streams {
		w := s
		w.FullScan, w.Bytes, w.WaitedSeconds, w.Stale, w.Rounded, w.Note, w.Error = false, 0, 0, 0, 0, "", ""
		w.Started, w.Ended = w.Started.Truncate(time.Microsecond), w.Ended.Truncate(time.Microsecond)
		if g := stored[s.Stream+"/"+s.Partition]; g != w {
			t.Errorf("_sync_runs of %s/%s: %+v\nthe summary: %+v", s.Stream, s.Partition, g, w)
		}
	}
}

// A cancelled first load reports what it committed, where its cursor is and what it sent: per
// stream, inserted equals the rows in the warehouse, the cursor named is the stored one, and
// requests, retries and 429s equal the simulator's log.
func TestReport_CancelledRunReportsWhatItCommitted(t *testing.T) {
	setSecrets(t)
	sim := startSim(t, apisim.Config{Seed: 5, Scale: 1500, Profile: "realistic", Speed: 4})
	dir := t.TempDir()
	cfg := writeConfig(t, dir, sim, func(c string) string {
		return strings.ReplaceAll(c, "    base_url:", "    page_size: 25\n    base_url:")
	})
	wh := filepath.Join(dir, "w.duckdb")
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go func() { // cancel once the first stream has had a few pages
		for ctx.Err() == nil {
			log, _ := sim.Requests()
			pages := 0
			for _, r := range log {
				if r.Status == 200 && strings.HasPrefix(r.Endpoint, "appdirect.") && r.Endpoint != "appdirect.token" {
					pages++
				}
			}
			if pages >= 6 {
				cancel()
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	p := filepath.Join(dir, "summary.json")
	var out, errb bytes.Buffer
	code := run(ctx, []string{"sync", "--config", cfg, "--concurrency", "1", "--parquet-dir", "-", "--progress", "never", "--summary-json", p}, &out, &errb)
	if code == exitOK {
		t.Fatalf("a cancelled run exited 0:\n%s", errb.String())
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("no summary after cancelling: %v\n%s", err, errb.String())
	}
	var rep runReport
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Status != "cancelled" {
		t.Fatalf("status %s, want cancelled", rep.Status)
	}
	time.Sleep(200 * time.Millisecond) // requests the server was still answering are logged when answered
	log, _ := sim.Requests()
	checkCountersAgainstLog(t, rep, log)
	checkSyncRuns(t, wh, rep)
	checkWarehouse(t, wh)

	db, err := load.OpenReadOnly(t.Context(), wh)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var committed, cancelled int
	for _, s := range rep.Streams {
		tb, err := schemas.Lookup(s.Stream)
		if err != nil {
			t.Fatal(err)
		}
		q, qargs := "SELECT count(*) FROM "+load.Quote(tb.Name), []any{}
		if tb.Partition != "" {
			q += " WHERE " + load.Quote(tb.Partition) + " = ?"
			qargs = append(qargs, s.Partition)
		}
		var n int64
		if err := db.QueryRowContext(t.Context(), q, qargs...).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if s.Inserted != n || s.Updated+s.Unchanged+s.Deleted != 0 {
			t.Errorf("%s/%s: the summary says %d inserted (%d updated, %d unchanged, %d deleted), the warehouse holds %d rows", s.Stream, s.Partition,
				s.Inserted, s.Updated, s.Unchanged, s.Deleted, n)
		}
		committed += int(n)
		if s.Status != "cancelled" {
			continue
		}
		cancelled++
		var cur sql.NullInt64
		err = db.QueryRowContext(t.Context(), `SELECT CAST(json_extract(cursor, '$.value_us') AS BIGINT) FROM _sync_state WHERE stream = ? AND partition = ?`,
			s.Stream, s.Partition).Scan(&cur)
		switch {
		case errors.Is(err, sql.ErrNoRows) || (err == nil && (!cur.Valid || cur.Int64 == 0)):
			if !strings.Contains(s.Error, "the cursor did not move") && !strings.Contains(s.Error, "without a position") {
				t.Errorf("%s: no cursor stored, but the summary says %q", s.Stream, s.Error)
			}
		case err != nil:
			t.Fatal(err)
		default:
			at := time.UnixMicro(cur.Int64).UTC().Format(time.RFC3339)
			if !strings.Contains(s.Error, "the cursor moved to "+at) {
				t.Errorf("%s: the stored cursor is %s, the summary says %q", s.Stream, at, s.Error)
			}
		}
	}
	if committed == 0 || cancelled == 0 {
		t.Fatalf("%d rows committed, %d streams cancelled: the cancel came too early or too late to test anything", committed, cancelled)
	}
}
