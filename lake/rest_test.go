package lake

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/iceberg-go/table"

	"github.com/marketsync/marketsync/internal/fakes3"
	"github.com/marketsync/marketsync/internal/restcatalog"
	"github.com/marketsync/marketsync/schemas"
	"github.com/marketsync/marketsync/state"
)

const (
	restClientID = "lake-client"
	restSecret   = "s3cr3t-do-not-print" // a test value; it must appear in no error
	restWH       = "analytics"
)

// restLake starts a REST catalog that accepts the client credential restClientID:restSecret
// and the warehouse name restWH.
func restLake(t testing.TB) *restcatalog.Server {
	return restcatalog.Start(t, restcatalog.Options{Dir: t.TempDir(), Warehouse: restWH, Credential: restClientID + ":" + restSecret})
}

func restOptions(s *restcatalog.Server, mode string) Options {
	return Options{Catalog: "rest", URI: s.URL, Warehouse: restWH, Upsert: mode,
		Properties: map[string]string{"credential": restClientID + ":" + restSecret}}
}

func openREST(t testing.TB, o Options) *Writer {
	t.Helper()
	w, err := Open(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

// Inserts, updates and cursors committed through the REST catalog (OAuth2 client credentials)
// are there when the tables are read from the catalog's own store, not through REST: the rows
// by iceberg-go's scan, whole, and each partition's cursor.
func TestRESTCatalogRoundTrip(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			ctx := context.Background()
			s := restLake(t)
			w := openREST(t, restOptions(s, mode))
			charges, invoices := mustTable(t, "charges"), mustTable(t, "invoices")
			var v0, v1 [][]byte
			for i := range 40 {
				v0 = append(v0, chargeRec(i, fmt.Sprintf("loc-%d", i%2), 0))
				if i%3 == 0 {
					v1 = append(v1, chargeRec(i, fmt.Sprintf("loc-%d", i%2), 1))
				}
			}
			b0, b1 := batch(t, charges, "r1", v0...), batch(t, charges, "r2", v1...)
			defer b0.Release()
			defer b1.Release()
			for i, b := range []arrow.RecordBatch{b0, b1} {
				if _, err := w.Commit(ctx, Commit{Table: charges, Batches: []arrow.RecordBatch{b}, Stream: "charges", Partition: "loc-0",
					Cursor: &state.Cursor{Value: int64(i + 1)}}); err != nil {
					t.Fatal(err)
				}
			}
			inv := batch(t, invoices, "r1", invoiceRec(1, "PAID"), invoiceRec(2, "DUE"), invoiceRec(30, "DUE"))
			defer inv.Release()
			if _, err := w.Commit(ctx, Commit{Table: invoices, Batches: []arrow.RecordBatch{inv}, Stream: "invoices", Cursor: &state.Cursor{Value: 7}}); err != nil {
				t.Fatal(err)
			}
			back := s.Backend()
			equalRows(t, "charges from the catalog's store", scanCatalog(t, back, w.Identifier(charges), charges), rowsOf(t, charges, nil, b0, b1))
			equalRows(t, "invoices from the catalog's store", scanCatalog(t, back, w.Identifier(invoices), invoices), rowsOf(t, invoices, nil, inv))
			tbl, err := back.LoadTable(ctx, w.Identifier(charges))
			if err != nil {
				t.Fatal(err)
			}
			if c, ok, err := CursorAt(tbl, schemas.DefaultTenant, "charges", "loc-0"); err != nil || !ok || c.Value != 2 {
				t.Fatalf("charges cursor in the catalog's store: %+v %v %v", c, ok, err)
			}
			if !strings.HasPrefix(tbl.Location(), s.Location) {
				t.Fatalf("table location %s, want under the catalog's %s", tbl.Location(), s.Location)
			}
			other := openREST(t, restOptions(s, mode))
			if c, ok, err := other.Cursor(ctx, invoices, schemas.DefaultTenant, "invoices", ""); err != nil || !ok || c.Value != 7 {
				t.Fatalf("invoices cursor read by another REST client: %+v %v %v", c, ok, err)
			}
			if s.Commits() != 3 || s.Tokens() < 2 || s.Unauthorized() != 0 {
				t.Fatalf("server saw %d commits, %d tokens issued, %d requests refused; want 3, at least one token per client, none refused", s.Commits(), s.Tokens(), s.Unauthorized())
			}
		})
	}
}

// A static bearer token works too; a wrong secret, a wrong token or an unknown warehouse is
// refused at Open with the server's reason, and no error carries the secret.
func TestRESTCatalogAuthAndWarehouse(t *testing.T) {
	ctx := context.Background()
	s := restcatalog.Start(t, restcatalog.Options{Dir: t.TempDir(), Warehouse: restWH, Token: "tok-" + restSecret})
	w := openREST(t, Options{Catalog: "rest", URI: s.URL, Warehouse: restWH, Properties: map[string]string{"token": "tok-" + restSecret}})
	charges := mustTable(t, "charges")
	b := batch(t, charges, "r1", chargeRec(1, "loc-0", 0))
	defer b.Release()
	if _, err := w.Commit(ctx, Commit{Table: charges, Batches: []arrow.RecordBatch{b}, Stream: "charges", Partition: "loc-0"}); err != nil {
		t.Fatal(err)
	}
	equalRows(t, "charges", scanCatalog(t, s.Backend(), w.Identifier(charges), charges), rowsOf(t, charges, nil, b))

	withCred := restLake(t)
	for name, tc := range map[string]struct {
		o    Options
		want string
	}{
		"wrong secret": {Options{Catalog: "rest", URI: withCred.URL, Warehouse: restWH,
			Properties: map[string]string{"credential": restClientID + ":not-" + restSecret}}, "invalid_client: unknown client or wrong secret"},
		"wrong token": {Options{Catalog: "rest", URI: s.URL, Warehouse: restWH,
			Properties: map[string]string{"token": "not-" + restSecret}}, "no valid bearer token"},
		"no credential": {Options{Catalog: "rest", URI: withCred.URL, Warehouse: restWH}, "no valid bearer token"},
		"unknown warehouse": {Options{Catalog: "rest", URI: withCred.URL, Warehouse: "other",
			Properties: map[string]string{"credential": restClientID + ":" + restSecret}}, `unknown warehouse "other"`},
	} {
		_, err := Open(ctx, tc.o)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "rest catalog") ||
			(name != "unknown warehouse" && !strings.Contains(err.Error(), "authentication failed (check lake.credential or lake.token)")) {
			t.Errorf("%s: %v, want an error about the rest catalog with %q", name, err, tc.want)
		} else if strings.Contains(err.Error(), restSecret) {
			t.Errorf("%s: the error carries the secret: %v", name, err)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
}

// Two clients read the same table version; the second commit's requirement (the branch is
// still at the snapshot it read) fails on the server, which answers 409 CommitFailedException:
// the client sees table.ErrCommitFailed, which Commit retries (isConflict).
func TestRESTCatalogRequirementConflictIs409(t *testing.T) {
	ctx := context.Background()
	s := restLake(t)
	a, b := openREST(t, restOptions(s, CopyOnWrite)), openREST(t, restOptions(s, CopyOnWrite))
	charges := mustTable(t, "charges")
	first := batch(t, charges, "r1", chargeRec(1, "loc-0", 0))
	defer first.Release()
	if _, err := a.Commit(ctx, Commit{Table: charges, Batches: []arrow.RecordBatch{first}, Stream: "charges", Partition: "loc-0"}); err != nil {
		t.Fatal(err)
	}
	ta, err := a.Table(ctx, charges)
	if err != nil {
		t.Fatal(err)
	}
	tb, err := b.Table(ctx, charges)
	if err != nil {
		t.Fatal(err)
	}
	txA, txB := ta.NewTransaction(), tb.NewTransaction()
	if err := txA.AddFiles(ctx, nil, map[string]string{"who": "a"}, false); err != nil {
		t.Fatal(err)
	}
	if err := txB.AddFiles(ctx, nil, map[string]string{"who": "b"}, false); err != nil {
		t.Fatal(err)
	}
	if _, err := txA.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	before := s.Conflicts()
	_, err = txB.Commit(ctx)
	if !errors.Is(err, table.ErrCommitFailed) || !isConflict(err) || !strings.Contains(err.Error(), "CommitFailedException") {
		t.Fatalf("second commit on a stale table: %v, want a 409 CommitFailedException (table.ErrCommitFailed)", err)
	}
	if s.Conflicts() != before+1 {
		t.Fatalf("server answered %d conflicts, want 1", s.Conflicts()-before)
	}
	tbl, err := s.Backend().LoadTable(ctx, a.Identifier(charges))
	if err != nil {
		t.Fatal(err)
	}
	if who := tbl.CurrentSnapshot().Summary.Properties["who"]; who != "a" {
		t.Fatalf("current snapshot by %q, want a's (b's was refused)", who)
	}
}

// TestConcurrentWriters through the REST catalog: every conflict a writer retried is a 409 the
// server answered, every commit is one accepted by the server, and the table read from the
// catalog's store holds every row once with its latest values and every cursor.
func TestRESTCatalogConcurrentWriters(t *testing.T) {
	skipUnderRace(t)
	t.Parallel() // the long tests overlap their waits when run without -race
	for _, tc := range concurrentCases {
		t.Run(concurrentName(tc.mode, tc.same), func(t *testing.T) {
			s := restLake(t)
			open := func() *Writer { return openREST(t, restOptions(s, tc.mode)) }
			conflicts := concurrentWriters(t, tc.same, open, s.Backend(), open())
			writers, commits := concurrentSize()
			if s.Conflicts() != conflicts || s.Commits() != int64(writers*commits) {
				t.Fatalf("server: %d commits, %d answered 409; writers: %d commits, %d conflicts retried",
					s.Commits(), s.Conflicts(), writers*commits, conflicts)
			}
			t.Logf("server answered %d commits 409", s.Conflicts())
		})
	}
}

// A REST catalog whose tables live on S3-compatible storage: the server writes the metadata
// files there, the client the data files and manifests, with the S3 settings of the lake
// section; the rows read from the catalog's store equal the commits, and remove-orphans over
// the bucket listing removes a failed commit's objects only.
func TestRESTCatalogOnS3(t *testing.T) {
	skipUnderRace(t)
	t.Parallel() // the long tests overlap their waits when run without -race
	ctx := context.Background()
	s3 := fakes3.Start(t, "lake")
	props := map[string]string{"s3.endpoint": s3.URL, "s3.region": "us-east-1", "s3.access-key-id": "test-key", "s3.secret-access-key": "test-secret"}
	s := restcatalog.Start(t, restcatalog.Options{Dir: t.TempDir(), Location: "s3://lake/rest", Properties: props, Warehouse: restWH,
		Credential: restClientID + ":" + restSecret})
	o := restOptions(s, CopyOnWrite)
	for k, v := range props {
		o.Properties[k] = v
	}
	w := openREST(t, o)
	want := smallCommits(t, w)
	charges := mustTable(t, "charges")
	equalRows(t, "charges from the catalog's store on S3", scanCatalog(t, s.Backend(), w.Identifier(charges), charges), want)
	keys := func() map[string]bool {
		ks, err := s3.Keys("lake", "rest/")
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]bool{}
		for _, k := range ks {
			out[k] = true
		}
		return out
	}
	live := keys()
	var meta, data int
	for k := range live {
		switch {
		case strings.HasSuffix(k, ".metadata.json"):
			meta++
		case strings.HasSuffix(k, ".parquet"):
			data++
		}
	}
	if meta < 12 || data == 0 {
		t.Fatalf("S3 holds %d metadata and %d data files, want the server's and the client's there", meta, data)
	}
	failedCommit(t, w, 1)
	orphans := added(live, keys())
	res, err := w.RemoveOrphans(ctx, charges, 0, false)
	if err != nil || res.Removed != len(orphans) || len(orphans) == 0 || !maps.Equal(keys(), live) {
		t.Fatalf("remove-orphans: %+v %v; want the failed commit's %d objects removed, the rest kept", res, err, len(orphans))
	}
	equalRows(t, "charges after remove-orphans", scanCatalog(t, s.Backend(), w.Identifier(charges), charges), want)
}
