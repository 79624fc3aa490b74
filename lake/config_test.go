package lake

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/marketsync/marketsync/config"
)

// A lake section, as config validates it, opens a writer; wrong options fail by name.
func TestFromConfigOpens(t *testing.T) {
	d := t.TempDir()
	c := &config.Lake{URI: filepath.Join(d, "c.db"), Warehouse: filepath.Join(d, "wh"), S3Region: "eu-west-1"}
	c.SetDefaults()
	o := FromConfig(c)
	if o.Catalog != "sql" || o.Namespace != "marketsync" || o.Upsert != CopyOnWrite || o.MaxAttempts != 8 || o.Properties["s3.region"] != "eu-west-1" {
		t.Fatalf("%+v", o)
	}
	w, err := Open(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	// A second writer on the same catalog finds the namespace there.
	w2, err := Open(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	w2.Close()
	for _, bad := range []struct {
		o    Options
		want string
	}{
		{Options{Catalog: "glue", URI: "x", Warehouse: d}, "want sql or rest"},
		{Options{Catalog: "sql", URI: o.URI, Warehouse: d, Upsert: "merge"}, "upsert mode"},
		{Options{Catalog: "sql", URI: o.URI}, "no warehouse"},
	} {
		if _, err := Open(context.Background(), bad.o); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%+v: %v, want %q", bad.o, err, bad.want)
		}
	}
}
