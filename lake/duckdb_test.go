package lake

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/iceberg-go"
	_ "github.com/duckdb/duckdb-go/v2"

	"github.com/marketsync/marketsync/schemas"
	"github.com/marketsync/marketsync/state"
)

// duckRows reads tb's current snapshot with DuckDB alone (its bundled build has no iceberg
// extension and nothing is downloaded): the snapshot's plan names each data file and the
// equality-delete files that apply to it, and DuckDB's read_parquet reads them, dropping the
// keys a delete file names. This is what any Iceberg reader does.
func duckRows(t *testing.T, w *Writer, tb *schemas.Table) (map[string]row, int) {
	t.Helper()
	tbl := currentTable(t, w, tb)
	tasks, err := tbl.Scan().PlanFiles(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	quote := func(p string) string { return "'" + strings.ReplaceAll(localPath(p), "'", "''") + "'" }
	pk := `"` + tb.PrimaryKey + `"`
	var sel []string
	for _, c := range lakeColumns(tb) {
		q := `"` + c.Name + `"`
		switch c.Kind {
		case schemas.Timestamp:
			q = "CAST(epoch_us(" + q + ") AS VARCHAR)"
		case schemas.StringList:
			q = "CAST(to_json(" + q + ") AS VARCHAR)"
		default:
			q = "CAST(" + q + " AS VARCHAR)"
		}
		sel = append(sel, fmt.Sprintf("coalesce(%s, 'NULL')", q))
	}
	var parts []string
	deletes := 0
	for _, task := range tasks {
		if len(task.DeleteFiles)+len(task.DeletionVectorFiles) > 0 {
			t.Fatalf("position deletes in %s: this reader does not apply them", task.File.FilePath())
		}
		q := fmt.Sprintf("SELECT %s FROM read_parquet(%s)", strings.Join(sel, ", "), quote(task.File.FilePath()))
		if eq := task.EqualityDeleteFiles; len(eq) > 0 {
			var files []string
			for _, d := range eq {
				if d.ContentType() != iceberg.EntryContentEqDeletes {
					t.Fatalf("%s is not an equality delete file", d.FilePath())
				}
				files = append(files, quote(d.FilePath()))
			}
			deletes += len(eq)
			key := "tenant || chr(0) || CAST(" + pk + " AS VARCHAR)" // the deletes' key: (tenant, primary key)
			q += fmt.Sprintf(" WHERE %s NOT IN (SELECT %s FROM read_parquet([%s]))", key, key, strings.Join(files, ", "))
		}
		parts = append(parts, q)
	}
	out := map[string]row{}
	if len(parts) == 0 {
		return out, 0
	}
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rs, err := db.Query(strings.Join(parts, " UNION ALL "))
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	cols := lakeColumns(tb)
	for rs.Next() {
		vals := make([]string, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rs.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		r := row{}
		for i, c := range cols {
			r[c.Name] = vals[i]
		}
		if _, dup := out[keyOf(tb, r)]; dup {
			t.Fatalf("DuckDB: key %s twice", keyOf(tb, r))
		}
		out[keyOf(tb, r)] = r
	}
	if err := rs.Err(); err != nil {
		t.Fatal(err)
	}
	return out, deletes
}

// DuckDB, reading the Parquet files of the current snapshot, finds the same whole rows as the
// batches committed (inserts, updates across commits, soft deletes) and as iceberg-go's scan.
func TestDuckDBReadsLakeTables(t *testing.T) {
	skipUnderRace(t) // one writer, nothing concurrent; 13-16 s under -race: .ci/run runs it without
	t.Parallel()     // the long tests overlap their waits when run without -race
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			ctx := context.Background()
			w := newLakeDir(t).open(t, mode)
			charges, invoices := mustTable(t, "charges"), mustTable(t, "invoices")
			var v0, v1 [][]byte
			for i := range 60 {
				v0 = append(v0, chargeRec(i, fmt.Sprintf("loc-%d", i%3), 0))
				if i%4 == 0 {
					v1 = append(v1, chargeRec(i, fmt.Sprintf("loc-%d", i%3), 1))
				}
			}
			b0, b1 := batch(t, charges, "r1", v0...), batch(t, charges, "r2", v1...)
			defer b0.Release()
			defer b1.Release()
			i0 := batch(t, invoices, "r1", invoiceRec(1, "DUE"), invoiceRec(2, "DUE"), invoiceRec(3, "DUE"), invoiceRec(40, "DUE"))
			defer i0.Release()
			i1 := batch(t, invoices, "r2", invoiceRec(2, "PAID"))
			defer i1.Release()
			for _, c := range []Commit{
				{Table: charges, Batches: []arrow.RecordBatch{b0}, Stream: "charges"},
				{Table: charges, Batches: []arrow.RecordBatch{b1}, Stream: "charges"},
				{Table: invoices, Batches: []arrow.RecordBatch{i0}, Stream: "invoices"},
				{Table: invoices, Batches: []arrow.RecordBatch{i1}, Stream: "invoices", Cursor: &state.Cursor{Value: 5},
					DeleteUnseen: &DeleteScope{RunID: "r2", At: epoch}},
			} {
				if _, err := w.Commit(ctx, c); err != nil {
					t.Fatal(err)
				}
			}
			wantCharges := rowsOf(t, charges, nil, b0, b1)
			wantInvoices := rowsOf(t, invoices, nil, i0, i1)
			for _, k := range []string{"1001", "1003", "1040"} {
				wantInvoices[k]["_deleted_at"] = fmt.Sprint(epoch.UnixMicro())
			}
			for _, tc := range []struct {
				tb   *schemas.Table
				want map[string]row
			}{{charges, wantCharges}, {invoices, wantInvoices}} {
				got, deletes := duckRows(t, w, tc.tb)
				t.Logf("%s: DuckDB read %d rows, %d equality delete files applied", tc.tb.Name, len(got), deletes)
				equalRows(t, "DuckDB "+tc.tb.Name, got, tc.want)
				equalRows(t, "scan "+tc.tb.Name, scanRows(t, w, tc.tb), tc.want)
				if (mode == EqualityDeletes) != (deletes > 0) {
					t.Errorf("%s: %d equality delete files applied in mode %s", tc.tb.Name, deletes, mode)
				}
			}
		})
	}
}
