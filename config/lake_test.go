package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLake_DefaultsAndEnv(t *testing.T) {
	f, err := Parse([]byte(good+"lake: {}\n"), env(map[string]string{"AD_SECRET": "x", "HL_SECRET": "y"}))
	if err != nil {
		t.Fatal(err)
	}
	l := f.Lake
	if l.Catalog != "sql" || l.URI != DefaultLakeURI || l.Warehouse != DefaultLakeWarehouse || l.Namespace != "marketsync" || l.Upsert != "copy-on-write" || l.MaxAttempts != 8 {
		t.Fatalf("defaults: %+v", l)
	}
	y := good + `lake:
  catalog: rest
  uri: https://catalog.example.com/api/catalog
  warehouse: s3://lake-bucket/marketsync
  token: ${LAKE_TOKEN}
  s3_endpoint: http://127.0.0.1:7070
  s3_access_key_id: key
  s3_secret_access_key: ${S3_SECRET}
  upsert: equality-deletes
`
	f, err = Parse([]byte(y), env(map[string]string{"AD_SECRET": "x", "HL_SECRET": "y", "LAKE_TOKEN": "tok", "S3_SECRET": "sec"}))
	if err != nil {
		t.Fatal(err)
	}
	if f.Lake.Token != "tok" || f.Lake.S3SecretAccessKey != "sec" || f.Lake.Upsert != "equality-deletes" {
		t.Fatalf("%+v", f.Lake)
	}
	if f, err := Parse([]byte(good), env(map[string]string{"AD_SECRET": "x", "HL_SECRET": "y"})); err != nil || f.Lake != nil {
		t.Fatalf("no lake section: %+v %v", f.Lake, err)
	}
}

func TestLake_ErrorsNameTheKey(t *testing.T) {
	all := env(map[string]string{"AD_SECRET": "x", "HL_SECRET": "y"})
	cases := []struct{ lake, key, hint string }{
		{"catalog: glue", "lake.catalog", "sql"},
		{"catalog: rest", "lake.uri", "required"},
		{"catalog: rest\n  uri: http://catalog.example.com", "lake.uri", "plain http"},
		{"uri: mysql://x/y", "lake.uri", "postgres"},
		{"warehouse: gs://bucket/x", "lake.warehouse", "not supported"},
		{"warehouse: s3:///x", "lake.warehouse", "bucket"},
		{"s3_endpoint: http://127.0.0.1:9000", "lake.s3_endpoint", "s3:// warehouse only"},
		{"warehouse: s3://b/p\n  s3_access_key_id: k", "lake.s3_secret_access_key", "both"},
		{"warehouse: s3://b/p\n  s3_endpoint: http://minio.internal:9000", "lake.s3_endpoint", "plain http"},
		{"namespace: a.b", "lake.namespace", "letters"},
		{"upsert: merge", "lake.upsert", "copy-on-write"},
		{"max_attempts: 1000", "lake.max_attempts", "1 to 100"},
		{"token: t", "lake.credential", "rest catalog"},
		{"catalog: rest\n  uri: https://c.example.com\n  token: a\n  credential: b", "lake.token", "not both"},
		{"warehose: x", "warehose", "in lake"},
		{"token: ${NOPE}", "lake.token", "NOPE"},
	}
	for _, c := range cases {
		_, err := Parse([]byte(good+"lake:\n  "+c.lake+"\n"), all)
		var ce *Error
		if !errors.As(err, &ce) || ce.Key != c.key || !strings.Contains(err.Error(), c.hint) {
			t.Errorf("lake %q: err = %v, want key %s mentioning %q", c.lake, err, c.key, c.hint)
		}
	}
}

// A relative lake catalog file and folder are the config file's neighbours; a REST catalog's
// warehouse is a name the catalog knows, left as written.
func TestLake_PathsResolveForSQLOnly(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("AD_SECRET", "x")
	t.Setenv("HL_SECRET", "y")
	for _, tc := range []struct{ lake, uri, warehouse string }{
		{"catalog: sql\n  uri: lake/catalog.db\n  warehouse: lake/files", dir + "/lake/catalog.db", dir + "/lake/files"},
		{"catalog: rest\n  uri: http://127.0.0.1:8181\n  warehouse: analytics", "http://127.0.0.1:8181", "analytics"},
	} {
		p := filepath.Join(dir, "config.yaml")
		if err := os.WriteFile(p, []byte(good+"lake:\n  "+tc.lake+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		f, err := Load(p)
		if err != nil {
			t.Fatal(err)
		}
		if f.Lake.URI != tc.uri || f.Lake.Warehouse != tc.warehouse {
			t.Errorf("%q: uri %q warehouse %q, want %q and %q", tc.lake, f.Lake.URI, f.Lake.Warehouse, tc.uri, tc.warehouse)
		}
	}
}
