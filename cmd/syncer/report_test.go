package main

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/marketsync/marketsync/apisim"
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
