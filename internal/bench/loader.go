package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/marketsync/marketsync/load"
	"github.com/marketsync/marketsync/schemas"
	"github.com/marketsync/marketsync/transform"
)

// userBatches builds n users as Arrow batches of size rows (the transform output the loader gets).
func userBatches(n, size int) ([]arrow.RecordBatch, error) {
	table, _ := schemas.Lookup("users")
	b := transform.NewBatcher(table, memory.NewGoAllocator(), transform.Meta{RunID: "bench", SyncedAt: time.Now().UnixMicro()})
	defer b.Release()
	var out []arrow.RecordBatch
	for i := 0; i < n; i++ {
		rec := fmt.Sprintf(`{"uuid":"%08x-7d1c-4a1b-9c7e-%012x","email":"user%d@example.com","userName":"user%d@example.com","firstName":"Zoë","lastName":"Müller","openId":"https://example.byappdirect.com/openid/id/%d","externalId":"u-%d","locale":"en_US","currency":"USD","roles":["ROLE_USER"],"company":{"uuid":"c-%d"},"lastModified":%d}`,
			i, i, i, i, i, i, i%5000, 1700000000000+int64(i))
		if err := b.Add([]byte(rec)); err != nil {
			return nil, err
		}
		if b.Len() == size {
			out = append(out, b.Flush())
		}
	}
	if r := b.Flush(); r != nil {
		out = append(out, r)
	}
	return out, nil
}

func release(rs []arrow.RecordBatch) {
	for _, r := range rs {
		r.Release()
	}
}

func timeIt(f func() error) (time.Duration, error) {
	start := time.Now()
	err := f()
	return time.Since(start), err
}

// benchLoader: upsert N rows, then the same N again, four ways, each into its own database.
func benchLoader(ctx context.Context, o Options, rep *Report) error {
	n := o.Rows
	batches, err := userBatches(n, 50_000)
	if err != nil {
		return err
	}
	defer release(batches)
	users, _ := schemas.Lookup("users")
	open := func(name string) (*load.DuckDB, error) {
		d, err := load.Open(ctx, filepath.Join(o.Dir, name+".duckdb"))
		if err != nil {
			return nil, err
		}
		return d, d.Migrate(ctx, []*schemas.Table{users})
	}

	// Ours: Arrow view + MERGE by key, in a transaction per batch.
	ours, err := open("loader-ours")
	if err != nil {
		return err
	}
	defer ours.Close()
	var oursT [2]time.Duration
	for pass := 0; pass < 2; pass++ {
		if oursT[pass], err = timeIt(func() error {
			for _, b := range batches {
				if _, err := ours.Apply(ctx, load.Write{Table: users, Batch: b}); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			return err
		}
	}

	// Floor: the same batches appended with no key at all.
	floor, err := open("loader-floor")
	if err != nil {
		return err
	}
	defer floor.Close()
	var floorT [2]time.Duration
	for pass := 0; pass < 2; pass++ {
		if floorT[pass], err = timeIt(func() error {
			for _, b := range batches {
				if err := floor.Append(ctx, "users", b); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			return err
		}
	}

	// CloudQuery's DuckDB destination: 1,000-row Parquet files, COPY into a temp table, then
	// INSERT ... ON CONFLICT into a table with a PRIMARY KEY.
	cq, err := load.Open(ctx, filepath.Join(o.Dir, "loader-cq.duckdb"))
	if err != nil {
		return err
	}
	defer cq.Close()
	cols := users.AllColumns()
	var defs, sets []string
	for _, c := range cols {
		defs = append(defs, load.Quote(c.Name)+" "+c.Kind.SQL())
		if c.Name != users.PrimaryKey {
			sets = append(sets, fmt.Sprintf("%s = excluded.%s", load.Quote(c.Name), load.Quote(c.Name)))
		}
	}
	conn := cq.Conn()
	for _, q := range []string{
		fmt.Sprintf("CREATE TABLE users (%s, PRIMARY KEY (id))", strings.Join(defs, ", ")),
		fmt.Sprintf("CREATE TEMP TABLE tmp (%s)", strings.Join(defs, ", ")),
	} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			return err
		}
	}
	upsert := fmt.Sprintf("INSERT INTO users SELECT * FROM tmp ON CONFLICT (id) DO UPDATE SET %s", strings.Join(sets, ", "))
	var cqT [2]time.Duration
	chunkN := 0
	for pass := 0; pass < 2; pass++ {
		if cqT[pass], err = timeIt(func() error {
			for _, b := range batches {
				for off := int64(0); off < b.NumRows(); off += 1000 {
					chunk := b.NewSlice(off, min(off+1000, b.NumRows()))
					chunkN++ // a fresh file per flush, as CloudQuery does (DuckDB caches Parquet metadata by path)
					pq := filepath.Join(o.Dir, fmt.Sprintf("cq-%d.parquet", chunkN))
					err := writeParquet(pq, chunk)
					chunk.Release()
					if err != nil {
						return err
					}
					for _, q := range []string{"COPY tmp FROM '" + pq + "' (FORMAT parquet)", upsert, "DELETE FROM tmp"} {
						if _, err := conn.ExecContext(ctx, q); err != nil {
							return fmt.Errorf("%s: %w", q[:20], err)
						}
					}
					os.Remove(pq)
				}
			}
			return nil
		}); err != nil {
			return err
		}
	}

	// Row by row through database/sql (measured on 2,000 rows: it is that slow).
	rr, err := load.Open(ctx, filepath.Join(o.Dir, "loader-rows.duckdb"))
	if err != nil {
		return err
	}
	defer rr.Close()
	if _, err := rr.Conn().ExecContext(ctx, fmt.Sprintf("CREATE TABLE users (%s, PRIMARY KEY (id))", strings.Join(defs, ", "))); err != nil {
		return err
	}
	ph := strings.TrimSuffix(strings.Repeat("?, ", len(cols)), ", ")
	stmt, err := rr.Conn().PrepareContext(ctx, fmt.Sprintf("INSERT INTO users VALUES (%s) ON CONFLICT (id) DO UPDATE SET %s", ph, strings.Join(sets, ", ")))
	if err != nil {
		return err
	}
	defer stmt.Close()
	const rowN = 2000
	rowT, err := timeIt(func() error {
		b := batches[0]
		for i := 0; i < rowN && i < int(b.NumRows()); i++ {
			args := make([]any, len(cols))
			for c := range cols {
				args[c] = cell(b.Column(c), i)
			}
			if _, err := stmt.ExecContext(ctx, args...); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}

	rps := func(d time.Duration) float64 { return float64(n) / d.Seconds() }
	rowRate := float64(min(rowN, n)) / rowT.Seconds()
	rep.add(Row{Measure: fmt.Sprintf("Loader: upsert %d users into DuckDB (new rows)", n), Ours: fmt.Sprintf("%.2f s, %.0fk rows/s", oursT[0].Seconds(), rps(oursT[0])/1e3),
		Baseline: fmt.Sprintf("CloudQuery's method %.2f s (%.0fk rows/s)", cqT[0].Seconds(), rps(cqT[0])/1e3), Ratio: ratio(cqT[0].Seconds(), oursT[0].Seconds()),
		Goal: ">= 3x CloudQuery's method", Verdict: verdict(cqT[0] >= 3*oursT[0])})
	rep.add(Row{Measure: fmt.Sprintf("Loader: upsert the same %d again (every row conflicts)", n), Ours: fmt.Sprintf("%.2f s, %.0fk rows/s", oursT[1].Seconds(), rps(oursT[1])/1e3),
		Baseline: fmt.Sprintf("CloudQuery's method %.2f s (%.0fk rows/s)", cqT[1].Seconds(), rps(cqT[1])/1e3), Ratio: ratio(cqT[1].Seconds(), oursT[1].Seconds()),
		Goal: ">= 3x CloudQuery's method", Verdict: verdict(cqT[1] >= 3*oursT[1])})
	rep.add(Row{Measure: "Loader: our upsert vs the no-key ingestion floor", Ours: fmt.Sprintf("%.2f s + %.2f s", oursT[0].Seconds(), oursT[1].Seconds()),
		Baseline: fmt.Sprintf("plain INSERT ... SELECT from Arrow, no key: %.2f s + %.2f s", floorT[0].Seconds(), floorT[1].Seconds()),
		Ratio:    ratio((oursT[0] + oursT[1]).Seconds(), (floorT[0] + floorT[1]).Seconds()), Goal: "<= 1.5x the floor",
		Verdict: verdict(float64(oursT[0]+oursT[1]) <= 1.5*float64(floorT[0]+floorT[1]))})
	rep.add(Row{Measure: "Loader: row-by-row database/sql INSERT ... ON CONFLICT", Ours: fmt.Sprintf("%.0fk rows/s (ours, new rows)", rps(oursT[0])/1e3),
		Baseline: fmt.Sprintf("%.0f rows/s (measured on %d rows)", rowRate, min(rowN, n)), Ratio: ratio(rps(oursT[0]), rowRate), Goal: "(context)", Verdict: "-"})
	return nil
}

func writeParquet(path string, rec arrow.RecordBatch) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w, err := pqarrow.NewFileWriter(rec.Schema(), f, parquet.NewWriterProperties(parquet.WithCompression(compress.Codecs.Snappy)), pqarrow.DefaultWriterProps())
	if err != nil {
		f.Close()
		return err
	}
	if err := w.Write(rec); err != nil {
		w.Close()
		return err
	}
	return w.Close() // closes f
}

// cell returns a database/sql argument for row i of a column.
func cell(a arrow.Array, i int) any {
	if a.IsNull(i) {
		return nil
	}
	switch x := a.(type) {
	case *array.String:
		return x.Value(i)
	case *array.Timestamp:
		return x.Value(i).ToTime(arrow.Microsecond)
	case *array.Int64:
		return x.Value(i)
	case *array.Boolean:
		return x.Value(i)
	case *array.List:
		start, end := x.ValueOffsets(i)
		vals := x.ListValues().(*array.String)
		var out []string
		for k := start; k < end; k++ {
			out = append(out, vals.Value(int(k)))
		}
		return out
	}
	return a.ValueStr(i)
}
