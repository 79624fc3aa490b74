package load

import (
	"context"
	"fmt"
	"strings"

	"github.com/marketsync/marketsync/schemas"
)

// Migrate creates missing tables and adds missing columns in place. A column whose type differs
// from its declaration is an ErrSchema naming the column and the fix; nothing is changed then.
func (d *DuckDB) Migrate(ctx context.Context, tables []*schemas.Table) error {
	for _, t := range tables {
		existing := map[string]string{}
		rows, err := d.conn.QueryContext(ctx, `SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = 'main' AND table_name = ?`, t.Name)
		if err != nil {
			return fmt.Errorf("reading columns of %s: %w", t.Name, err)
		}
		for rows.Next() {
			var name, typ string
			if err := rows.Scan(&name, &typ); err != nil {
				rows.Close()
				return fmt.Errorf("reading columns of %s: %w", t.Name, err)
			}
			existing[name] = normType(typ)
		}
		rows.Close()
		if len(existing) == 0 {
			var defs []string
			for _, c := range t.WarehouseColumns() {
				def := Quote(c.Name) + " " + c.Kind.SQL()
				if c.Name == t.PrimaryKey {
					def += " NOT NULL"
				}
				defs = append(defs, def)
			}
			// No PRIMARY KEY constraint: upserts are staged UPDATE / INSERT steps on the key
			// (apply.go), which measured ~10x faster than INSERT ... ON CONFLICT against an ART
			// index; batches carry unique keys.
			if _, err := d.conn.ExecContext(ctx, fmt.Sprintf("CREATE TABLE %s (%s)", Quote(t.Name), strings.Join(defs, ", "))); err != nil {
				return fmt.Errorf("creating table %s: %w", t.Name, err)
			}
			continue
		}
		for _, c := range t.WarehouseColumns() {
			have, ok := existing[c.Name]
			if !ok {
				if _, err := d.conn.ExecContext(ctx, fmt.Sprintf("ALTER TABLE %s ADD COLUMN %s %s", Quote(t.Name), Quote(c.Name), c.Kind.SQL())); err != nil {
					return fmt.Errorf("adding column %s.%s: %w", t.Name, c.Name, err)
				}
				if d.altered == nil {
					d.altered = map[string]bool{}
				}
				d.altered[t.Name] = true
				continue
			}
			if have != normType(c.Kind.SQL()) {
				return &FixByReset{Err: ErrSchema, Path: d.path, Streams: []string{streamOf(t.Name)},
					format: fmt.Sprintf("%s: column %s.%s is %s in the warehouse but this build declares %s. "+
						"Fix: export what you need (syncer export), then run `%%s` (it clears the stream's rows, cursors and Parquet files) "+
						"and `syncer sync`, which loads it again from the source", ErrSchema, t.Name, c.Name, have, c.Kind.SQL())}
			}
		}
	}
	return nil
}
