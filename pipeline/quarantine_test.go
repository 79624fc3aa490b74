package pipeline

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/marketsync/marketsync/extract"
	"github.com/marketsync/marketsync/load"
)

// A full scan whose listing carries a bad new version of a row keeps the previous version live
// and marks it stale; it is neither deleted nor counted twice, and the summary says so.
func TestRun_QuarantinedUpdateKeepsPreviousVersionStale(t *testing.T) {
	var bad atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/oauth2/token":
			fmt.Fprint(w, `{"access_token":"t","token_type":"bearer","expires_in":3600}`)
		case "/api/account/v2/users":
			b := `1700000000500`
			if bad.Load() {
				b = `"next tuesday"`
			}
			fmt.Fprintf(w, `{"links":[],"content":[{"uuid":"a","lastModified":1700000000000},{"uuid":"b","lastModified":%s},{"uuid":"c","lastModified":1700000000001}],"page":{"size":250,"totalElements":3,"totalPages":1,"number":0}}`, b)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	cfg := Config{AppDirect: &extract.AppDirectConfig{BaseURL: srv.URL, ClientID: "x", ClientSecret: "y"}, Streams: []string{"users"},
		Warehouse: filepath.Join(t.TempDir(), "w.duckdb"), RejectPolicy: RejectQuarantine}
	if _, err := Run(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	bad.Store(true)
	cfg.FullRefresh = true
	sum, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	var rejected, stale int64
	for _, s := range sum.Streams {
		rejected += s.Rejected
		stale += s.Stale
		if s.Deleted != 0 {
			t.Errorf("%s deleted %d rows: the quarantined record was listed", s.Stream, s.Deleted)
		}
	}
	if rejected != 1 || stale != 1 {
		t.Fatalf("summary rejected %d stale %d, want 1 and 1", rejected, stale)
	}
	db, err := load.Open(context.Background(), cfg.Warehouse)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var live, staleRows, rejectedRows int
	var bMod int64
	ctx := context.Background()
	_ = db.Conn().QueryRowContext(ctx, "SELECT count(*) FILTER (WHERE _deleted_at IS NULL), count(*) FILTER (WHERE _stale_since IS NOT NULL) FROM users").Scan(&live, &staleRows)
	_ = db.Conn().QueryRowContext(ctx, "SELECT epoch_ms(last_modified) FROM users WHERE id = 'b' AND _stale_since IS NOT NULL AND _deleted_at IS NULL").Scan(&bMod)
	_ = db.Conn().QueryRowContext(ctx, "SELECT count(*) FROM _rejected").Scan(&rejectedRows)
	if live != 3 || staleRows != 1 || bMod != 1700000000500 || rejectedRows != 1 {
		t.Fatalf("live %d stale %d (b's kept version %d) _rejected %d; want 3 live, b stale at its previous version, 1 rejected row", live, staleRows, bMod, rejectedRows)
	}
}
