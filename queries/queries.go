// Package queries holds the SQL reports shipped with marketsync, embedded and installed as
// views in the warehouse so that any SQL client or BI tool can use them by name.
package queries

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"path"
	"sort"
	"strings"
)

//go:embed *.sql
var files embed.FS

// Query is one shipped report.
type Query struct {
	Name        string
	Description string
	SQL         string
}

// All returns every shipped query, sorted by name.
func All() []Query {
	entries, _ := files.ReadDir(".") // embedded: cannot fail
	var out []Query
	for _, e := range entries {
		b, _ := files.ReadFile(e.Name())
		text := string(b)
		var desc []string
		for _, line := range strings.Split(text, "\n") {
			if d, ok := strings.CutPrefix(line, "-- "); ok {
				desc = append(desc, d)
				continue
			}
			break
		}
		out = append(out, Query{Name: strings.TrimSuffix(e.Name(), path.Ext(e.Name())), Description: strings.Join(desc, " "), SQL: text})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Lookup returns the named query.
func Lookup(name string) (Query, bool) {
	for _, q := range All() {
		if q.Name == name {
			return q, true
		}
	}
	return Query{}, false
}

// Execer is the part of *sql.DB / *sql.Conn that Install needs.
type Execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// Install creates or replaces every query as a view. Call it after the tables exist.
func Install(ctx context.Context, db Execer) error {
	for _, q := range All() {
		if _, err := db.ExecContext(ctx, fmt.Sprintf(`CREATE OR REPLACE VIEW "%s" AS %s`, q.Name, q.SQL)); err != nil {
			return fmt.Errorf("installing view %s: %w", q.Name, err)
		}
	}
	return nil
}
