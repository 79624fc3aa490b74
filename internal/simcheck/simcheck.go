// Package simcheck compares a warehouse with the simulator's truth, for tests and benchmarks.
package simcheck

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/marketsync/marketsync/apisim"
	"github.com/marketsync/marketsync/extract"
	"github.com/marketsync/marketsync/schemas"
)

// Sources returns extractor configs that talk to the simulator with its demo credentials.
// ratePerSec scales the documented limits by the simulator's speed factor.
func Sources(sim *apisim.Server, speed float64) (*extract.AppDirectConfig, *extract.HighLevelConfig) {
	ad := &extract.AppDirectConfig{BaseURL: sim.URL(), ClientID: apisim.DemoClientID, ClientSecret: apisim.DemoClientSecret,
		LeadUsername: apisim.DemoLeadUser, LeadPassword: apisim.DemoLeadPassword, LeadCompanyID: "6b4bd452-895d-4098-aa56-e6046b238e0f",
		RatePerSecond: 4 * speed, CompaniesRate: 5 * speed}
	hl := &extract.HighLevelConfig{BaseURL: sim.URL(), ClientID: apisim.DemoHLClientID, ClientSecret: apisim.DemoHLClientSecret,
		CompanyID: apisim.DemoHLCompanyID, AppID: apisim.DemoHLAppID, Interval: time.Duration(float64(10*time.Second) / speed)}
	return ad, hl
}

// Observed is the warehouse side of a StreamTruth.
type Observed struct {
	Live            int
	IDChecksum      uint64
	VersionChecksum uint64
	Duplicates      int
}

// Observe computes, from the warehouse's live rows, the checksums the simulator's truth uses.
func Observe(ctx context.Context, db *sql.DB, stream string) (Observed, error) {
	t, err := schemas.Lookup(stream)
	if err != nil {
		return Observed{}, err
	}
	vf := apisim.VersionFields[stream]
	verExpr := fmt.Sprintf("CAST(%s AS VARCHAR)", vf)
	if c, _ := t.Column(vf); c.Kind == schemas.Timestamp {
		verExpr = fmt.Sprintf("CAST(epoch_ms(%s) AS VARCHAR)", vf)
	}
	q := fmt.Sprintf("SELECT CAST(%s AS VARCHAR), %s FROM %s WHERE _deleted_at IS NULL", t.PrimaryKey, verExpr, t.Name)
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		return Observed{}, err
	}
	defer rows.Close()
	var o Observed
	seen := map[string]bool{}
	for rows.Next() {
		var id string
		var ver sql.NullString
		if err := rows.Scan(&id, &ver); err != nil {
			return o, err
		}
		if seen[id] {
			o.Duplicates++
		}
		seen[id] = true
		o.Live++
		o.IDChecksum += apisim.RowChecksum(id)
		o.VersionChecksum += apisim.RowChecksum(id, ver.String)
	}
	return o, rows.Err()
}

// Compare returns a description of every difference between warehouse and truth ("" if equal).
func Compare(ctx context.Context, db *sql.DB, truth apisim.Truth, streams []string) (string, error) {
	var diffs []string
	for _, s := range streams {
		o, err := Observe(ctx, db, s)
		if err != nil {
			return "", err
		}
		tr := truth.Streams[s]
		if o.Live != tr.Live || o.IDChecksum != tr.IDChecksum || o.VersionChecksum != tr.VersionChecksum || o.Duplicates > 0 {
			diffs = append(diffs, fmt.Sprintf("%s: warehouse live=%d dup=%d ids=%x versions=%x; source live=%d ids=%x versions=%x",
				s, o.Live, o.Duplicates, o.IDChecksum, o.VersionChecksum, tr.Live, tr.IDChecksum, tr.VersionChecksum))
		}
	}
	return strings.Join(diffs, "\n"), nil
}

// TB is the part of testing.TB that Start needs (so the product binary, which links simcheck
// for benchmarks, does not link package testing).
type TB interface {
	Helper()
	Fatal(args ...any)
	Cleanup(func())
}

// Start runs a simulator on loopback for a test and stops it when the test ends.
func Start(t TB, cfg apisim.Config) *apisim.Server {
	t.Helper()
	s, err := apisim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// Requests returns how many requests an endpoint answered, and how many of them with 429.
func Requests(st apisim.Stats, endpoint string) (total, throttled int64) {
	for code, n := range st.Requests[endpoint] {
		total += int64(n)
		if code == "429" {
			throttled += int64(n)
		}
	}
	return total, throttled
}
