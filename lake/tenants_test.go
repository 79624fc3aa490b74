package lake

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/table"

	"github.com/marketsync/marketsync/schemas"
	"github.com/marketsync/marketsync/state"
	"github.com/marketsync/marketsync/transform"
)

// tenantBatch converts records with the production Batcher, as tenant's rows.
func tenantBatch(t testing.TB, tb *schemas.Table, tenant, runID string, recs ...[]byte) arrow.RecordBatch {
	t.Helper()
	b := transform.NewBatcher(tb, memory.NewGoAllocator(), transform.Meta{RunID: runID, SyncedAt: epoch.UnixMicro(), Tenant: tenant})
	defer b.Release()
	for _, r := range recs {
		if err := b.Add(r); err != nil {
			t.Fatalf("%s: %v", r, err)
		}
	}
	return b.Flush()
}

// Two tenants whose rows have the same ids share the lake's tables: every upsert, soft delete
// and cursor of one leaves the other's rows and cursors as they were, read back whole by
// iceberg-go's scan and by DuckDB reading the files (applying the equality deletes itself).
func TestTenants_SameIDsStayApart(t *testing.T) {
	skipUnderRace(t) // about 25 s under -race on the loaded 2-core machine; .ci/run runs it without
	t.Parallel()     // the long tests overlap their waits when run without -race
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			ctx := context.Background()
			w := newLakeDir(t).open(t, mode)
			charges, invoices, users := mustTable(t, "charges"), mustTable(t, "invoices"), mustTable(t, "users")
			commit := func(c Commit) Result {
				t.Helper()
				res, err := w.Commit(ctx, c)
				if err != nil {
					t.Fatal(err)
				}
				return res
			}
			release := func(bs ...arrow.RecordBatch) {
				t.Cleanup(func() {
					for _, b := range bs {
						b.Release()
					}
				})
			}
			var acme0, globex0, acme1 [][]byte
			for i := range 20 {
				acme0 = append(acme0, chargeRec(i, "loc-a", 0))
				globex0 = append(globex0, chargeRec(i, "loc-a", 5)) // the same chargeIds, other values
				if i%4 == 0 {
					acme1 = append(acme1, chargeRec(i, "loc-a", 1))
				}
			}
			ca0 := tenantBatch(t, charges, schemas.DefaultTenant, "r1", acme0...)
			cg0 := tenantBatch(t, charges, "globex", "r1", globex0...)
			ia0 := tenantBatch(t, invoices, schemas.DefaultTenant, "r1", invoiceRec(1, "DUE"), invoiceRec(2, "DUE"), invoiceRec(30, "DUE"))
			ig0 := tenantBatch(t, invoices, "globex", "r1", invoiceRec(1, "PAID"), invoiceRec(2, "VOID"), invoiceRec(30, "PAID"))
			user := func(id, modified string) []byte {
				return fmt.Appendf(nil, `{"uuid":%q,"email":"%s@example.com","roles":["USER"],"company":{"uuid":"c1"},"lastModified":%q}`, id, id, modified)
			}
			ua0 := tenantBatch(t, users, schemas.DefaultTenant, "r1", user("u1", "2023-12-31T23:00:00Z"), user("u2", "2023-06-01T00:00:00Z"))
			ug0 := tenantBatch(t, users, "globex", "r1", user("u1", "2023-11-30T23:00:00Z"), user("u2", "2023-05-01T00:00:00Z"))
			release(ca0, cg0, ia0, ig0, ua0, ug0)
			commit(Commit{Table: charges, Batches: []arrow.RecordBatch{ca0}, Stream: "charges", Partition: "loc-a", Cursor: &state.Cursor{Value: 100}})
			commit(Commit{Table: charges, Tenant: "globex", Batches: []arrow.RecordBatch{cg0}, Stream: "charges", Partition: "loc-a", Cursor: &state.Cursor{Value: 200}})
			commit(Commit{Table: invoices, Batches: []arrow.RecordBatch{ia0}, Stream: "invoices"})
			commit(Commit{Table: invoices, Tenant: "globex", Batches: []arrow.RecordBatch{ig0}, Stream: "invoices", Cursor: &state.Cursor{Value: 7}})
			commit(Commit{Table: users, Batches: []arrow.RecordBatch{ua0}, Stream: "users"})
			commit(Commit{Table: users, Tenant: "globex", Batches: []arrow.RecordBatch{ug0}, Stream: "users"})

			// The default tenant updates some of its rows (a user moves partition): globex's
			// rows with the same ids keep their values.
			ca1 := tenantBatch(t, charges, schemas.DefaultTenant, "r2", acme1...)
			ia1 := tenantBatch(t, invoices, schemas.DefaultTenant, "r2", invoiceRec(2, "PAID"))
			ua1 := tenantBatch(t, users, schemas.DefaultTenant, "r2", user("u1", "2024-01-02T00:00:00Z"))
			release(ca1, ia1, ua1)
			commit(Commit{Table: charges, Batches: []arrow.RecordBatch{ca1}, Stream: "charges", Partition: "loc-a", Cursor: &state.Cursor{Value: 101}})
			commit(Commit{Table: invoices, Batches: []arrow.RecordBatch{ia1}, Stream: "invoices"})
			commit(Commit{Table: users, Batches: []arrow.RecordBatch{ua1}, Stream: "users"})

			// Globex's full scan of loc-a sees rows 0..9 only: its rows 10..19 are marked
			// deleted; the default tenant's rows 10..19, unseen by that scan, stay live.
			seen := tenantBatch(t, charges, "globex", "r3", globex0[:10]...)
			release(seen)
			at := epoch.Add(48 * time.Hour)
			res := commit(Commit{Table: charges, Tenant: "globex", Batches: []arrow.RecordBatch{seen}, Stream: "charges", Partition: "loc-a",
				Cursor: &state.Cursor{Value: 201}, DeleteUnseen: &DeleteScope{RunID: "r3", PartitionCol: "location_id", PartitionValue: "loc-a", At: at}})
			if res.Deleted != 10 {
				t.Errorf("globex's full scan deleted %d rows, want 10", res.Deleted)
			}
			// And a full scan of the default tenant's invoices that sees all three.
			ia2 := tenantBatch(t, invoices, schemas.DefaultTenant, "r4", invoiceRec(1, "DUE"), invoiceRec(2, "PAID"), invoiceRec(30, "DUE"))
			release(ia2)
			if res := commit(Commit{Table: invoices, Batches: []arrow.RecordBatch{ia2}, Stream: "invoices", DeleteUnseen: &DeleteScope{RunID: "r4", At: at}}); res.Deleted != 0 {
				t.Errorf("the default tenant's full scan that saw every row of it deleted %d (globex's?)", res.Deleted)
			}

			wantCharges := rowsOf(t, charges, nil, ca0, cg0, ca1, seen)
			for i := 10; i < 20; i++ {
				wantCharges[fmt.Sprintf("globex/ch-%06d", i)]["_deleted_at"] = fmt.Sprint(at.UnixMicro())
			}
			wantInvoices := rowsOf(t, invoices, nil, ia0, ig0, ia1, ia2)
			wantUsers := rowsOf(t, users, nil, ua0, ug0, ua1)
			if len(wantCharges) != 40 || len(wantInvoices) != 6 || len(wantUsers) != 4 {
				t.Fatalf("the expectation has %d charges, %d invoices, %d users", len(wantCharges), len(wantInvoices), len(wantUsers))
			}
			for _, tc := range []struct {
				tb   *schemas.Table
				want map[string]row
			}{{charges, wantCharges}, {invoices, wantInvoices}, {users, wantUsers}} {
				equalRows(t, "scan "+tc.tb.Name, scanRows(t, w, tc.tb), tc.want)
				got, _ := duckRows(t, w, tc.tb)
				equalRows(t, "DuckDB "+tc.tb.Name, got, tc.want)
				assertTenantScoped(t, currentTable(t, w, tc.tb), tc.tb)
			}

			// Each tenant's cursor is its own; the default tenant's has the name builds before
			// tenants gave it.
			for _, c := range []struct {
				tenant string
				want   int64
			}{{schemas.DefaultTenant, 101}, {"globex", 201}} {
				got, ok, err := w.Cursor(ctx, charges, c.tenant, "charges", "loc-a")
				if err != nil || !ok || got.Value != c.want {
					t.Errorf("%s's cursor: %+v %v %v, want %d", c.tenant, got, ok, err, c.want)
				}
				all, err := w.Cursors(ctx, charges, c.tenant)
				if err != nil || len(all) != 1 || all["loc-a"].Value != c.want {
					t.Errorf("%s's cursors: %v %v", c.tenant, all, err)
				}
			}
			if all, _ := w.Cursors(ctx, invoices, schemas.DefaultTenant); len(all) != 0 {
				t.Errorf("the default tenant has invoices cursors %v, but only globex committed one", all)
			}
			props := currentTable(t, w, charges).CurrentSnapshot().Summary.Properties
			if props["marketsync.tenant.globex.cursor.charges.loc-a"] == "" || props[propTenant] != "globex" {
				t.Errorf("globex's last snapshot carries %v", props)
			}
			if _, ok, _ := CursorAt(currentTable(t, w, charges), schemas.DefaultTenant, "charges", "loc-a"); !ok {
				t.Error("no default-tenant cursor marketsync.cursor.charges.loc-a")
			}

			// ReadRows (the copy into a fresh DuckDB file) reads one tenant's rows.
			n := 0
			err := w.ReadRows(ctx, charges, "globex", "loc-a", func(b arrow.RecordBatch) error {
				for _, r := range rowsOf(t, charges, nil, b) {
					if r[schemas.ColTenant] != "globex" {
						return fmt.Errorf("ReadRows(globex) returned a row of %s", r[schemas.ColTenant])
					}
					n++
				}
				return nil
			})
			if err != nil || n != 20 {
				t.Errorf("ReadRows(globex): %d rows, %v", n, err)
			}

			// Maintenance keeps both tenants' rows and cursors: a compaction of the tenant
			// partitions, then an expiry of every snapshot but the current one (which first
			// carries every tenant's cursor forward).
			if _, err := w.Compact(ctx, charges, 64<<20); err != nil {
				t.Fatal(err)
			}
			if _, err := w.ExpireSnapshots(ctx, charges, 0, 1); err != nil {
				t.Fatal(err)
			}
			equalRows(t, "scan of charges after maintenance", scanRows(t, w, charges), wantCharges)
			for tenant, want := range map[string]int64{schemas.DefaultTenant: 101, "globex": 201} {
				if got, ok, err := w.Cursor(ctx, charges, tenant, "charges", "loc-a"); err != nil || !ok || got.Value != want {
					t.Errorf("%s's cursor after maintenance: %+v %v %v, want %d", tenant, got, ok, err, want)
				}
			}

			// A commit carrying another tenant's row is refused.
			if _, err := w.Commit(ctx, Commit{Table: charges, Tenant: "globex", Batches: []arrow.RecordBatch{ca1}, Stream: "charges", Partition: "loc-a"}); err == nil ||
				!strings.Contains(err.Error(), "tenant") {
				t.Errorf("a globex commit of default rows: %v", err)
			}
		})
	}
}

// assertTenantScoped checks the files of tbl: each data file holds one tenant's rows (the
// tenant partition), and every equality delete is on (tenant, primary key).
func assertTenantScoped(t *testing.T, tbl *table.Table, tb *schemas.Table) {
	t.Helper()
	tn, _ := tbl.Schema().FindFieldByName(schemas.ColTenant)
	pk, _ := tbl.Schema().FindFieldByName(tb.PrimaryKey)
	tasks, err := tbl.Scan().PlanFiles(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range tasks {
		if !strings.Contains(task.File.FilePath(), "/tenant=") {
			t.Errorf("%s: data file %s is not in a tenant partition", tb.Name, task.File.FilePath())
		}
		for _, d := range task.EqualityDeleteFiles {
			if ids := d.EqualityFieldIDs(); !slices.Equal(ids, []int{tn.ID, pk.ID}) {
				t.Errorf("%s: equality delete %s on fields %v, want (tenant, %s) = %v", tb.Name, d.FilePath(), ids, tb.PrimaryKey, []int{tn.ID, pk.ID})
			}
		}
	}
}

// preTenantTable creates tb's table the way builds before tenants in the lake did (no tenant
// column, the primary key alone the identifier, no tenant partition), with that code's schema
// and spec, and writes rows to it the way that code did: an append, then (in EqualityDeletes
// mode) a row delta with an equality delete on the primary key, else a second append; each
// with a cursor under its pre-tenant name. In CopyOnWrite mode second must hold new keys only.
func preTenantTable(t *testing.T, w *Writer, tb *schemas.Table, mode string, first, second arrow.RecordBatch, c1, c2 state.Cursor) {
	t.Helper()
	ctx := context.Background()
	sc, err := table.ArrowSchemaToIcebergWithFreshIDs(preTenantSchema(tb), false)
	if err != nil {
		t.Fatal(err)
	}
	pk, _ := sc.FindFieldByName(tb.PrimaryKey)
	sc = iceberg.NewSchemaWithIdentifiers(0, []int{pk.ID}, sc.Fields()...)
	spec, err := iceberg.NewPartitionSpecOpts(iceberg.AddPartitionFieldByName(tb.Partition, tb.Partition, iceberg.IdentityTransform{}, sc, nil))
	if err != nil {
		t.Fatal(err)
	}
	props := iceberg.Properties{table.PropertyFormatVersion: "2", table.CommitNumRetriesKey: "0", "marketsync.primary-key": tb.PrimaryKey}
	tbl, err := w.cat.CreateTable(ctx, w.Identifier(tb), sc, catalog.WithPartitionSpec(&spec), catalog.WithProperties(props))
	if err != nil {
		t.Fatal(err)
	}
	target, err := writeSchema(tbl)
	if err != nil {
		t.Fatal(err)
	}
	old := func(b arrow.RecordBatch) arrow.RecordBatch {
		r, err := conform(ctx, b, target) // drops the tenant column
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	r1 := old(first)
	defer r1.Release()
	rdr, err := array.NewRecordReader(target, []arrow.RecordBatch{r1})
	if err != nil {
		t.Fatal(err)
	}
	defer rdr.Release()
	tx := tbl.NewTransaction()
	if err := tx.Append(ctx, rdr, iceberg.Properties{"marketsync.cursor." + tb.Name + ".loc-a": c1.Encode()}); err != nil {
		t.Fatal(err)
	}
	if tbl, err = tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	r2 := old(second)
	defer r2.Release()
	tx = tbl.NewTransaction()
	p2 := iceberg.Properties{"marketsync.cursor." + tb.Name + ".loc-a": c2.Encode()}
	if mode == EqualityDeletes {
		var data []iceberg.DataFile
		for df, err := range table.WriteRecords(ctx, tbl, target, retained([]arrow.RecordBatch{r2})) {
			if err != nil {
				t.Fatal(err)
			}
			data = append(data, df)
		}
		keys, err := project(r2, []string{tb.PrimaryKey, tb.Partition})
		if err != nil {
			t.Fatal(err)
		}
		defer keys.Release()
		dels, err := tx.WriteEqualityDeletes(ctx, []int{pk.ID}, retained([]arrow.RecordBatch{keys}))
		if err != nil {
			t.Fatal(err)
		}
		if err := tx.NewRowDelta(p2).AddRows(data...).AddDeletes(dels...).Commit(ctx); err != nil {
			t.Fatal(err)
		}
	} else {
		rdr, err := array.NewRecordReader(target, []arrow.RecordBatch{r2})
		if err != nil {
			t.Fatal(err)
		}
		defer rdr.Release()
		if err := tx.Append(ctx, rdr, p2); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
}

// A lake table written before tenants in the lake gets the tenant column when a writer of this
// build first uses it: every row kept, as tenant default (in the files: DuckDB reading them
// sees it), its cursor kept under its old name (no refetch), in one commit that an interruption
// leaves undone and that a second writer, or a second run, does not repeat.
func TestTenants_PreTenantTableMigrates(t *testing.T) {
	skipUnderRace(t) // about 25 s under -race on the loaded 2-core machine; .ci/run runs it without
	t.Parallel()     // the long tests overlap their waits when run without -race
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			ctx := context.Background()
			dir := newLakeDir(t)
			w, other := dir.open(t, mode), dir.open(t, mode)
			charges := mustTable(t, "charges")
			var v0, v1 [][]byte
			for i := range 30 {
				v0 = append(v0, chargeRec(i, fmt.Sprintf("loc-%d", i%2), 0))
				if i%3 == 0 && mode == EqualityDeletes {
					v1 = append(v1, chargeRec(i, fmt.Sprintf("loc-%d", i%2), 1)) // updates, by equality deletes
				}
			}
			v1 = append(v1, chargeRec(500, "loc-a", 0))
			b0 := tenantBatch(t, charges, schemas.DefaultTenant, "r1", v0...)
			defer b0.Release()
			b1 := tenantBatch(t, charges, schemas.DefaultTenant, "r2", v1...)
			defer b1.Release()
			c1, c2 := state.Cursor{Value: 1000}, state.Cursor{Value: 2000}
			preTenantTable(t, w, charges, mode, b0, b1, c1, c2)
			before := currentTable(t, w, charges)
			if _, ok := before.Schema().FindFieldByName(schemas.ColTenant); ok {
				t.Fatal("the pre-tenant table has a tenant column")
			}
			wantOld := rowsOf(t, charges, nil, b0, b1) // tenant default, the column the migration adds
			if len(wantOld) != 31 {
				t.Fatalf("%d rows expected", len(wantOld))
			}
			// Before the migration, ReadRows (a fresh machine's copy, which runs before any
			// commit) reads every row as the default tenant's, and none as another tenant's.
			inLoc0 := 0
			for _, r := range wantOld {
				if r["location_id"] == "loc-0" {
					inLoc0++
				}
			}
			for tenant, want := range map[string]int{schemas.DefaultTenant: inLoc0, "globex": 0} {
				read := map[string]row{}
				err := w.ReadRows(ctx, charges, tenant, "loc-0", func(b arrow.RecordBatch) error {
					rowsOf(t, charges, read, b)
					return nil
				})
				if err != nil || len(read) != want {
					t.Fatalf("ReadRows(%s) of the pre-tenant table: %d rows, %v; want %d", tenant, len(read), err, want)
				}
				for k, r := range read {
					equalRows(t, "ReadRows "+k, map[string]row{k: r}, map[string]row{k: wantOld[k]})
				}
			}
			// The cursor reads before the migration, under its old name.
			if c, ok, err := w.Cursor(ctx, charges, schemas.DefaultTenant, "charges", "loc-a"); err != nil || !ok || c.Value != c2.Value {
				t.Fatalf("pre-tenant cursor %+v %v %v", c, ok, err)
			}

			// Interrupted after the files are written, before the catalog commit: nothing changes.
			w.beforeMigrate = func(*schemas.Table, int) error { return fmt.Errorf("killed") }
			gb := tenantBatch(t, charges, "globex", "g1", chargeRec(3, "loc-a", 9), chargeRec(4, "loc-b", 9))
			defer gb.Release()
			if _, err := w.Commit(ctx, Commit{Table: charges, Tenant: "globex", Batches: []arrow.RecordBatch{gb}, Stream: "charges", Partition: "loc-a", Cursor: &state.Cursor{Value: 1}}); err == nil ||
				!strings.Contains(err.Error(), "killed") {
				t.Fatalf("interrupted migration: %v", err)
			}
			if after := currentTable(t, w, charges); after.CurrentSnapshot().SnapshotID != before.CurrentSnapshot().SnapshotID || after.Schema().ID != before.Schema().ID {
				t.Fatal("an interrupted migration changed the table")
			}

			// Another writer migrates in the middle of this one's attempt: this one's commit
			// loses the race, re-reads, and finds nothing to do.
			w.beforeMigrate = func(_ *schemas.Table, attempt int) error {
				if attempt == 1 {
					_, err := other.Table(ctx, charges)
					return err
				}
				return nil
			}
			if _, err := w.Commit(ctx, Commit{Table: charges, Tenant: "globex", Batches: []arrow.RecordBatch{gb}, Stream: "charges", Partition: "loc-a", Cursor: &state.Cursor{Value: 1}}); err != nil {
				t.Fatal(err)
			}
			w.beforeMigrate = nil
			if m, o := w.Migrated(), other.Migrated(); len(m) != 0 || !slices.Equal(o, []string{"charges"}) {
				t.Errorf("migrated by this writer %v, by the other %v: want the other only", m, o)
			}
			migrated := currentTable(t, w, charges)
			if err := sameColumns(charges, migrated.Schema()); err != nil {
				t.Fatal(err)
			}
			if ids := migrated.Schema().IdentifierFieldIDs; len(ids) != 2 {
				t.Errorf("identifier fields %v, want (tenant, charge_id)", ids)
			}
			migrations := 0
			for _, s := range migrated.Metadata().Snapshots() {
				if s.Summary != nil && s.Summary.Properties["marketsync.operation"] == "add-tenant" {
					migrations++
					if s.Summary.Properties["marketsync.cursor.charges.loc-a"] != c2.Encode() {
						t.Errorf("the migration snapshot carries %v, want the cursor", s.Summary.Properties)
					}
				}
			}
			if migrations != 1 {
				t.Errorf("%d migration snapshots, want 1", migrations)
			}
			want := rowsOf(t, charges, maps.Clone(wantOld), gb)
			equalRows(t, "scan after the migration", scanRows(t, w, charges), want)
			got, _ := duckRows(t, w, charges)
			equalRows(t, "DuckDB after the migration", got, want)
			assertTenantScoped(t, migrated, charges)
			for _, c := range []struct {
				tenant string
				want   int64
			}{{schemas.DefaultTenant, c2.Value}, {"globex", 1}} {
				if got, ok, err := w.Cursor(ctx, charges, c.tenant, "charges", "loc-a"); err != nil || !ok || got.Value != c.want {
					t.Errorf("%s's cursor after the migration: %+v %v %v, want %d", c.tenant, got, ok, err, c.want)
				}
			}

			// The default tenant keeps upserting its rows; a new writer (a second run) does not
			// migrate again.
			again := dir.open(t, mode)
			upd := tenantBatch(t, charges, schemas.DefaultTenant, "r3", chargeRec(3, "loc-1", 7), chargeRec(0, "loc-0", 7))
			defer upd.Release()
			if _, err := again.Commit(ctx, Commit{Table: charges, Batches: []arrow.RecordBatch{upd}, Stream: "charges", Partition: "loc-a", Cursor: &state.Cursor{Value: 3000}}); err != nil {
				t.Fatal(err)
			}
			want = rowsOf(t, charges, want, upd)
			equalRows(t, "scan after an upsert", scanRows(t, w, charges), want)
			got, _ = duckRows(t, w, charges)
			equalRows(t, "DuckDB after an upsert", got, want)
			if n := len(currentTable(t, w, charges).Metadata().Snapshots()); n != len(migrated.Metadata().Snapshots())+1 {
				t.Errorf("%d snapshots after one more commit, want %d: migrated again?", n, len(migrated.Metadata().Snapshots())+1)
			}
		})
	}
}
