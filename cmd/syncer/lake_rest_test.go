package main

import (
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/marketsync/marketsync/apisim"
	"github.com/marketsync/marketsync/internal/restcatalog"
)

const lakeRESTSecret = "rest-secret-never-printed"

// lakeRESTConfigs are lakeShardConfigs with the lake behind a REST catalog (OAuth2 client
// credentials from the environment, a warehouse name).
func lakeRESTConfigs(t *testing.T, dir string, s *apisim.Server, cat *restcatalog.Server, shards int) []string {
	t.Helper()
	setenv(t, "LAKE_CLIENT_ID", "marketsync")
	setenv(t, "LAKE_CLIENT_SECRET", lakeRESTSecret)
	return lakeShardConfigs(t, dir, s, shards, func(c string) string {
		c, _, _ = strings.Cut(c, "lake:\n")
		return c + "lake:\n  catalog: rest\n  uri: " + cat.URL + "\n  warehouse: analytics\n  credential: ${LAKE_CLIENT_ID}:${LAKE_CLIENT_SECRET}\n"
	})
}

// Three syncer sync --shard I/3 processes commit concurrently through a REST catalog, twice
// (the source changing in between): the catalog's store, read by iceberg-go's scan (not
// through REST), equals the source row by row; no cursor is ahead of its rows; every snapshot
// and every retried conflict the processes report is a commit the server accepted or answered
// 409; and the catalog secret is in no output.
func TestLakeShards_RESTCatalogConcurrentShardsEqualTheSource(t *testing.T) {
	skipUnderRace(t)
	t.Parallel() // mostly waiting (rate budgets, backoff, kills): the long tests overlap
	bin := binary(t)
	s := startSim(t, apisim.Config{Seed: 37, Scale: 300, Locations: 4, Profile: "realistic", Speed: 40})
	setSecrets(t)
	dir := t.TempDir()
	cat := restcatalog.Start(t, restcatalog.Options{Dir: t.TempDir(), Warehouse: "analytics", Credential: "marketsync:" + lakeRESTSecret})
	const shards = 3
	cfgs := lakeRESTConfigs(t, dir, s, cat, shards)
	var snapshots, conflicts int64
	for round := range 2 {
		if round > 0 {
			s.Advance(2 * time.Hour)
		}
		var wg sync.WaitGroup
		outs := make([]string, shards)
		errs := make([]error, shards)
		for i := range shards {
			wg.Add(1)
			go func() {
				defer wg.Done()
				out, err := exec.Command(bin, "sync", "--config", cfgs[i], "--shard", fmt.Sprintf("%d/%d", i, shards),
					"--progress", "never", "--log-level", "info").CombinedOutput()
				outs[i], errs[i] = string(out), err
			}()
		}
		wg.Wait()
		for i := range shards {
			if errs[i] != nil {
				t.Fatalf("round %d shard %d: %v\n%s", round, i, errs[i], outs[i])
			}
			if strings.Contains(outs[i], lakeRESTSecret) {
				t.Fatalf("shard %d printed the REST catalog's secret", i)
			}
			m := lakeCommitsLine.FindStringSubmatch(outs[i])
			if m == nil {
				t.Fatalf("shard %d: no 'lake commits' line:\n%s", i, outs[i])
			}
			n, _ := strconv.ParseInt(m[1], 10, 64)
			c, _ := strconv.ParseInt(m[2], 10, 64)
			snapshots, conflicts = snapshots+n, conflicts+c
		}
		assertCatalogCursorsNotAhead(t, cat.Backend())
		assertTablesEqual(t, catalogTables(t, cat.Backend()), s, round > 0, fmt.Sprintf("round %d through the REST catalog", round))
	}
	t.Logf("shards committed %d snapshots with %d conflicts retried; the server accepted %d commits and answered %d with 409",
		snapshots, conflicts, cat.Commits(), cat.Conflicts())
	if snapshots == 0 || cat.Commits() != snapshots || cat.Conflicts() != conflicts {
		t.Fatalf("processes report %d snapshots and %d conflicts; the server %d commits and %d 409s", snapshots, conflicts, cat.Commits(), cat.Conflicts())
	}
	// syncer check names the catalog and masks its credential.
	code, out, errOut := syncer(t, "check", "--config", cfgs[0])
	if strings.Contains(out+errOut, lakeRESTSecret) || !strings.Contains(out, "lake: catalog rest "+cat.URL) || !strings.Contains(out, "credential ****** (set)") {
		t.Fatalf("check: exit %d\n%s%s", code, out, errOut)
	}
	if !strings.Contains(out, "ok   lake catalog (namespace marketsync exists)") {
		t.Fatalf("check did not probe the catalog:\n%s", out)
	}
}
