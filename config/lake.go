package config

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
)

// Lake is the lake section: the Apache Iceberg destination beside the DuckDB warehouse (see the
// README's "Lake: Apache Iceberg tables for many machines").
type Lake struct {
	Catalog   string `yaml:"catalog"`   // sql (default) or rest
	URI       string `yaml:"uri"`       // sql: SQLite file or postgres:// DSN; rest: the catalog URL
	Warehouse string `yaml:"warehouse"` // local folder or s3://bucket/prefix
	Namespace string `yaml:"namespace"` // default marketsync
	Upsert    string `yaml:"upsert"`    // copy-on-write (default) or equality-deletes
	// MaxAttempts bounds how often a commit that lost a race with another writer is re-applied.
	MaxAttempts int `yaml:"max_attempts"`
	// REST catalog credentials: an OAuth2 client credential "id:secret", or a bearer token.
	Credential string `yaml:"credential" secret:"true"`
	Token      string `yaml:"token" secret:"true"`
	// S3-compatible storage (s3:// warehouses); a custom endpoint gets path-style addressing
	// (MinIO, versitygw, Ceph). Without keys the AWS default chain applies
	// (environment, shared config, instance or pod role).
	S3Endpoint        string `yaml:"s3_endpoint"`
	S3Region          string `yaml:"s3_region"`
	S3AccessKeyID     string `yaml:"s3_access_key_id"`
	S3SecretAccessKey string `yaml:"s3_secret_access_key" secret:"true"`
}

// Defaults of the lake section: a local lake beside the DuckDB file.
const (
	DefaultLakeCatalog   = "sql"
	DefaultLakeURI       = "./data/lake/catalog.db"
	DefaultLakeWarehouse = "./data/lake/warehouse"
	DefaultLakeNamespace = "marketsync"
	DefaultLakeUpsert    = "copy-on-write"
	DefaultLakeAttempts  = 8
)

// SetDefaults fills the lake section's unset values.
func (l *Lake) SetDefaults() {
	if l.Catalog == "" {
		l.Catalog = DefaultLakeCatalog
	}
	if l.Catalog == "sql" {
		if l.URI == "" {
			l.URI = DefaultLakeURI
		}
		if l.Warehouse == "" {
			l.Warehouse = DefaultLakeWarehouse
		}
	}
	if l.Namespace == "" {
		l.Namespace = DefaultLakeNamespace
	}
	if l.Upsert == "" {
		l.Upsert = DefaultLakeUpsert
	}
	if l.MaxAttempts == 0 {
		l.MaxAttempts = DefaultLakeAttempts
	}
}

var lakeNamespace = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// validateLake checks the lake section, naming the first wrong key.
func (f *File) validateLake() error {
	l := f.Lake
	if l == nil {
		return nil
	}
	switch l.Catalog {
	case "sql":
		if l.URI == "" {
			return &Error{Key: "lake.uri", Msg: "is required: a SQLite file (e.g. " + DefaultLakeURI + ") or a postgres:// DSN"}
		}
		if strings.Contains(l.URI, "://") && !strings.HasPrefix(l.URI, "postgres://") && !strings.HasPrefix(l.URI, "postgresql://") {
			return &Error{Key: "lake.uri", Msg: fmt.Sprintf("%q: a sql catalog is a SQLite file path or a postgres:// DSN", l.URI)}
		}
		if l.Credential != "" || l.Token != "" {
			return &Error{Key: "lake.credential", Msg: "credential and token are for a rest catalog; a sql catalog's credentials go in its DSN"}
		}
	case "rest":
		if err := f.checkURL("lake.uri", l.URI); err != nil {
			return err
		}
		if l.Credential != "" && l.Token != "" {
			return &Error{Key: "lake.token", Msg: "set either lake.credential or lake.token, not both"}
		}
	default:
		return &Error{Key: "lake.catalog", Msg: fmt.Sprintf("%q: want sql (SQLite or Postgres) or rest", l.Catalog)}
	}
	if l.Warehouse == "" {
		if l.Catalog == "sql" {
			return &Error{Key: "lake.warehouse", Msg: "is required: a local folder or s3://bucket/prefix"}
		}
	} else if strings.Contains(l.Warehouse, "://") {
		u, err := url.Parse(l.Warehouse)
		switch {
		case err != nil:
			return &Error{Key: "lake.warehouse", Msg: fmt.Sprintf("%q is not a URL", l.Warehouse)}
		case u.Scheme == "s3" || u.Scheme == "s3a":
			if u.Host == "" {
				return &Error{Key: "lake.warehouse", Msg: fmt.Sprintf("%q names no bucket: want s3://bucket/prefix", l.Warehouse)}
			}
		case u.Scheme == "file":
		default:
			return &Error{Key: "lake.warehouse", Msg: fmt.Sprintf("scheme %q is not supported by this build: use a local folder, file:// or s3:// (S3-compatible stores via lake.s3_endpoint)", u.Scheme)}
		}
	}
	s3 := strings.HasPrefix(l.Warehouse, "s3://") || strings.HasPrefix(l.Warehouse, "s3a://")
	if !s3 && (l.S3Endpoint != "" || l.S3AccessKeyID != "" || l.S3SecretAccessKey != "" || l.S3Region != "") {
		return &Error{Key: "lake.s3_endpoint", Msg: "the s3_* keys apply to an s3:// warehouse only"}
	}
	if l.S3Endpoint != "" {
		if err := f.checkURL("lake.s3_endpoint", l.S3Endpoint); err != nil {
			return err
		}
	}
	if (l.S3AccessKeyID == "") != (l.S3SecretAccessKey == "") {
		return &Error{Key: "lake.s3_secret_access_key", Msg: "set both lake.s3_access_key_id and lake.s3_secret_access_key (use ${ENV_VAR}), or neither for the AWS default credentials"}
	}
	if !lakeNamespace.MatchString(l.Namespace) {
		return &Error{Key: "lake.namespace", Msg: fmt.Sprintf("%q: want letters, digits and _, e.g. %s", l.Namespace, DefaultLakeNamespace)}
	}
	if l.Upsert != "copy-on-write" && l.Upsert != "equality-deletes" {
		return &Error{Key: "lake.upsert", Msg: fmt.Sprintf("%q: want copy-on-write (every reader, Snowflake included) or equality-deletes (cheaper commits; Trino, Spark, Flink)", l.Upsert)}
	}
	if l.MaxAttempts < 1 || l.MaxAttempts > 100 {
		return &Error{Key: "lake.max_attempts", Msg: "want 1 to 100"}
	}
	return nil
}
