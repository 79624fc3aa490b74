package main

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/marketsync/marketsync/apisim"
	"github.com/marketsync/marketsync/internal/simcheck"
	"github.com/marketsync/marketsync/load"
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
			dir := t.TempDir()
			addr, accepted := tc.listen(t)
			cfg := writeConfig(t, dir, sim, func(c string) string { return strings.ReplaceAll(c, sim.URL(), "http://"+addr) })
			code, rep, errOut := syncReport(t, "--config", cfg, "--streams", "users,charges")
			if code == exitOK || rep.Status != "failed" {
				t.Fatalf("exit %d, status %s: want a failed run\n%s", code, rep.Status, errOut)
			}
			var requests int64
			for _, s := range rep.Streams {
				requests += s.Requests
			}
			// One logical request each (the token request), sent 8 times (the default policy).
			for _, s := range []streamReport{streamOf(t, rep, "users", ""), streamOf(t, rep, "locations", "")} {
				if s.Status != "failed" || s.Requests != 8 || s.Retries != 7 || s.Throttled != 0 {
					t.Errorf("%s: status %s, %d requests, %d retries, %d 429s: want failed, 8, 7, 0 (%s)", s.Stream, s.Status, s.Requests, s.Retries, s.Throttled, s.Error)
				}
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
// and a re-read after the source changed rows (updated is exactly the rows it changed).
func TestReport_CountersEqualTheSimulatorsRequestLogAndTheWarehouse(t *testing.T) {
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
		code, rep, errOut := syncReport(t, append([]string{"--config", cfg, "--concurrency", "1", "--parquet-dir", "-"}, args...)...)
		if code != exitOK || rep.Status != "succeeded" {
			t.Fatalf("exit %d, status %s\n%s", code, rep.Status, errOut)
		}
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
