// Package config loads and validates the syncer's YAML configuration.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v3"

	"github.com/marketsync/marketsync/schemas"
)

// Error names the key that is wrong and how to fix it.
type Error struct {
	Key string
	Msg string
}

func (e *Error) Error() string {
	if e.Key == "" {
		return "config: " + e.Msg
	}
	return fmt.Sprintf("config key %s: %s", e.Key, e.Msg)
}

// Duration is a time.Duration read from the config or a flag. Besides Go's units (90s, 15m,
// 1.5h) it accepts d (24 hours), w (7 days) and y (365 days): 7d, 1d12h.
type Duration time.Duration

// ParseDuration reads a duration in Go's syntax or with d, w or y units ("7d", "1d12h").
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if d, err := time.ParseDuration(s); err == nil {
		return d, nil
	}
	if d, err := model.ParseDuration(s); err == nil {
		return time.Duration(d), nil
	}
	return 0, fmt.Errorf("%q is not a duration: want a number with a unit, e.g. 90s, 15m, 12h, 7d or 1d12h", s)
}

// UnmarshalYAML reads a scalar such as 7d or 15m; an error names the line (see Parse).
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: want a duration, e.g. 15m, 12h or 7d", n.Line)}}
	}
	v, err := ParseDuration(n.Value)
	if err != nil {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %v", n.Line, err)}}
	}
	*d = Duration(v)
	return nil
}

// Std returns d as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// String formats d as time.Duration does.
func (d Duration) String() string { return time.Duration(d).String() }

// Set parses a flag value (flag.Value), accepting the same units as the config.
func (d *Duration) Set(s string) error {
	v, err := ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// AppDirect is the sources.appdirect section.
type AppDirect struct {
	BaseURL       string `yaml:"base_url"`
	ClientID      string `yaml:"client_id"`
	ClientSecret  string `yaml:"client_secret" secret:"true"`
	LeadUsername  string `yaml:"lead_username"`
	LeadPassword  string `yaml:"lead_password" secret:"true"`
	LeadCompanyID string `yaml:"lead_company_id"`
	LeadContext   string `yaml:"lead_context"`
	// LeadFromDateUnit is the unit lead v2's fromDate is sent in: milliseconds (default) or
	// seconds (the documents disagree; see the README).
	LeadFromDateUnit string `yaml:"lead_from_date_unit"`
	// API is the family companies, users and opportunities come from: marketplace (default)
	// or reseller (AppReseller v1, for reseller partners).
	API string `yaml:"api"`
	// ResellerContext is the AppReseller context: RESELLER or RESELLER_MANAGER (default).
	ResellerContext string  `yaml:"reseller_context"`
	PageSize        int     `yaml:"page_size"`
	RatePerSecond   float64 `yaml:"rate_per_second"`
	CompaniesRate   float64 `yaml:"companies_rate_per_second"`
}

// HighLevel is the sources.highlevel section.
type HighLevel struct {
	BaseURL      string `yaml:"base_url"`
	ClientID     string `yaml:"client_id"`
	ClientSecret string `yaml:"client_secret" secret:"true"`
	CompanyID    string `yaml:"company_id"`
	AppID        string `yaml:"app_id"`
	// Auth is how the agency token is had: client_credentials (default), refresh_token (the
	// Authorization Code flow: `syncer auth highlevel` stores a rotating refresh token in
	// TokenFile) or private_token (a Private Integration Token in PrivateToken).
	Auth         string   `yaml:"auth"`
	TokenFile    string   `yaml:"token_file" path:"true"` // refresh_token: default highlevel-token.json beside the config file
	PrivateToken string   `yaml:"private_token" secret:"true"`
	RedirectURI  string   `yaml:"redirect_uri"`  // syncer auth highlevel: the app's registered redirect URL
	Scopes       string   `yaml:"scopes"`        // syncer auth highlevel: default DefaultHLScopes
	AuthorizeURL string   `yaml:"authorize_url"` // syncer auth highlevel: default DefaultHLAuthorizeURL
	PageSize     int      `yaml:"page_size"`
	Burst        int      `yaml:"burst"`
	Interval     Duration `yaml:"interval"`
	DailyFloor   int      `yaml:"daily_floor"`
}

// Sources holds the configured APIs; a missing section skips its streams.
type Sources struct {
	AppDirect *AppDirect `yaml:"appdirect"`
	HighLevel *HighLevel `yaml:"highlevel"`
}

// Tenant is one entry of the tenants list: an AppDirect marketplace and/or a HighLevel agency,
// with its own credentials (so its own rate budgets), cursors and rows (the tenant column).
type Tenant struct {
	// Name is [a-z0-9_-]+, unique, and stable: it is the tenant column's value and part of every
	// key, cursor and shard unit; renaming a tenant makes it a new one.
	Name    string  `yaml:"name"`
	Sources Sources `yaml:"sources"`
}

// tenantName is what a tenant's name may be.
var tenantName = regexp.MustCompile(`^[a-z0-9_-]{1,63}$`)

// File is the whole configuration file.
type File struct {
	Warehouse         string              `yaml:"warehouse" path:"true"`
	ParquetDir        string              `yaml:"parquet_dir" path:"true"`
	Streams           []string            `yaml:"streams"`
	Concurrency       int                 `yaml:"concurrency"`
	BatchRows         int                 `yaml:"batch_rows"`
	RejectPolicy      string              `yaml:"reject_policy"`
	FullScanEvery     Duration            `yaml:"full_scan_every"`
	Lookback          map[string]Duration `yaml:"lookback"`
	AllowInsecureHTTP bool                `yaml:"allow_insecure_http"`
	Sources           Sources             `yaml:"sources"`
	Tenants           []Tenant            `yaml:"tenants"` // instead of sources: several tenants
	Serve             *Serve              `yaml:"serve"`
	Lake              *Lake               `yaml:"lake"`
}

// Serve is the serve section: `syncer serve`'s SQL server and schedule.
type Serve struct {
	Listen         string      `yaml:"listen"`               // PostgreSQL protocol address (default DefaultServeListen)
	HTTP           string      `yaml:"http"`                 // /healthz and /metrics address (default DefaultServeHTTP; "off" for none)
	Every          Duration    `yaml:"every"`                // sync interval (default DefaultServeEvery unless cron is set)
	Cron           string      `yaml:"cron"`                 // or a 5-field cron expression, e.g. "*/15 * * * *"
	Users          []ServeUser `yaml:"users"`                // who may connect (SCRAM-SHA-256 passwords)
	TLSCert        string      `yaml:"tls_cert" path:"true"` // PEM certificate file: TLS is offered when set
	TLSKey         string      `yaml:"tls_key" path:"true"`  // its PEM private key file
	RequireTLS     bool        `yaml:"require_tls"`          // refuse clients without TLS
	AllowPlaintext bool        `yaml:"allow_plaintext"`      // allow a non-loopback listen address without TLS
	MaxConnections int         `yaml:"max_connections"`      // default 64
	MemoryLimit    string      `yaml:"memory_limit"`         // DuckDB's buffer pool, shared by the syncs and every reader (default DefaultServeMemoryLimit)
}

// ServeUser is one serve.users entry.
type ServeUser struct {
	Name     string `yaml:"name"`
	Password string `yaml:"password" secret:"true"`
}

// Defaults of the serve section.
const (
	DefaultServeListen = "127.0.0.1:5433"
	DefaultServeHTTP   = "127.0.0.1:9188"
	DefaultServeEvery  = Duration(15 * time.Minute)
	// DefaultServeMemoryLimit is larger than a sync's own (pipeline.DefaultDuckDBMemoryLimit, 128MB): readers share the buffer pool
	// (and spill to the warehouse's .tmp directory beyond it).
	DefaultServeMemoryLimit = "1GB"
)

// Defaults for a file that leaves them out.
const (
	DefaultWarehouse  = "./data/warehouse.duckdb"
	DefaultParquetDir = "./data/parquet"
)

// HighLevel auth defaults.
const (
	HLAuthClientCredentials = "client_credentials"
	HLAuthRefreshToken      = "refresh_token"
	HLAuthPrivateToken      = "private_token"
	DefaultHLTokenFile      = "highlevel-token.json"
	// DefaultHLAuthorizeURL is the standard Authorization Page; white-labeled agencies use
	// https://marketplace.leadconnectorhq.com/v2/oauth/chooselocation.
	DefaultHLAuthorizeURL = "https://marketplace.gohighlevel.com/v2/oauth/chooselocation"
	// DefaultHLScopes are what the charges stream needs: installedLocations, locationToken, charges.
	DefaultHLScopes = "oauth.readonly oauth.write charges.readonly"
)

// Load reads, expands and validates a config file. Relative paths in it (warehouse,
// parquet_dir, lake files, TLS files, and the defaults of those left out) are relative to the
// file's folder, so a config means the same whatever the working directory.
func Load(path string) (*File, error) {
	return load(path, false)
}

func load(path string, deferSecrets bool) (*File, error) {
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, &Error{Msg: fmt.Sprintf("file %s does not exist: check the --config path (relative paths start in the working directory)", path)}
	}
	if err != nil {
		return nil, &Error{Msg: fmt.Sprintf("reading %s: %v", path, err)}
	}
	f, err := parse(raw, os.LookupEnv, deferSecrets)
	if err != nil {
		var ce *Error
		if errors.As(err, &ce) && ce.Key == "" {
			ce.Msg = path + ": " + ce.Msg
		}
		return nil, err
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, &Error{Msg: fmt.Sprintf("resolving %s: %v", path, err)}
	}
	f.ResolvePaths(filepath.Dir(abs))
	return f, nil
}

var (
	unknownField = regexp.MustCompile(`^line (\d+): field (\S+) not found in type config\.(\w+)`)
	lineError    = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)
	quotedValue  = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
	cannotDecode = regexp.MustCompile("cannot unmarshal !!(\\w+) `([^`]*)` into (.*)$")
)

// Parse decodes YAML, rejecting unknown keys, then expands ${ENV} in string values (never in
// keys or structure, so a secret's characters cannot change the document) and validates. Every
// error is an *Error naming the key (and line) that is wrong, and how to fix it.
func Parse(raw []byte, lookup func(string) (string, bool)) (*File, error) {
	return parse(raw, lookup, false)
}

// deferredSecret stands in, during validation, for a secret whose variable is not set when
// the secrets are deferred; it is cleared before the file is returned.
const deferredSecret = "\x00deferred secret\x00"

func parse(raw []byte, lookup func(string) (string, bool), deferSecrets bool) (*File, error) {
	var f File
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return nil, decodeError(raw, err)
	}
	if err := refuseZeros(raw, &f); err != nil {
		return nil, err
	}
	if err := expand(reflect.ValueOf(&f).Elem(), "", lookup, deferSecrets, false); err != nil {
		return nil, err
	}
	f.SetDefaults()
	if err := f.Validate(); err != nil {
		return &f, err
	}
	if deferSecrets {
		clearDeferred(reflect.ValueOf(&f).Elem())
	}
	return &f, nil
}

// refuseZeros refuses a key written with the value that would silently mean "the default": a
// concurrency or batch_rows of 0, an empty streams list (the flags refuse them too).
func refuseZeros(raw []byte, f *File) error {
	var doc yaml.Node
	if yaml.Unmarshal(raw, &doc) != nil || len(doc.Content) == 0 {
		return nil
	}
	checks := []struct {
		key  string
		zero bool
		want string
	}{
		{"concurrency", f.Concurrency == 0, "want 1 to 64 (streams and locations synced in parallel); leave the key out for the default, 6"},
		{"batch_rows", f.BatchRows == 0, "want 1 to 1000000 (rows per committed batch); leave the key out for the default, 25000"},
		{"streams", len(f.Streams) == 0, "name at least one stream (" + strings.Join(schemas.Streams, ", ") + "), or leave the key out to sync all"},
		{"sources.appdirect.page_size", f.Sources.AppDirect != nil && f.Sources.AppDirect.PageSize == 0, "want 1 to 250; leave the key out for the default"},
	}
	for _, c := range checks {
		n := nodeAt(doc.Content[0], strings.Split(c.key, "."))
		if n == nil || !c.zero {
			continue
		}
		what := fmt.Sprintf("%q", n.Value)
		switch {
		case n.Kind == yaml.SequenceNode:
			what = "an empty list"
		case n.Tag == "!!null":
			what = "no value"
		}
		return &Error{Key: c.key, Msg: fmt.Sprintf("%s (line %d) would silently mean the default: %s", what, n.Line, c.want)}
	}
	return nil
}

// nodeAt returns the value node of a dotted key path in a mapping node, or nil.
func nodeAt(n *yaml.Node, path []string) *yaml.Node {
	for _, k := range path {
		if n.Kind != yaml.MappingNode {
			return nil
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == k {
				next = n.Content[i+1]
			}
		}
		if next == nil {
			return nil
		}
		n = next
	}
	return n
}

// LoadDeferringSecrets is Load for commands that only read the warehouse or its Parquet files
// (status, runs, query, export): secrets (keys tagged secret) whose environment variables are
// not set are not an error, and come back empty. Every other value is expanded and checked as
// Load does.
func LoadDeferringSecrets(path string) (*File, error) {
	return load(path, true)
}

// clearDeferred empties the secrets that stood in for unset variables.
func clearDeferred(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			clearDeferred(v.Elem())
		}
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			clearDeferred(v.Field(i))
		}
	case reflect.Slice:
		for i := 0; i < v.Len(); i++ {
			clearDeferred(v.Index(i))
		}
	case reflect.String:
		if strings.Contains(v.String(), deferredSecret) {
			v.SetString("")
		}
	}
}

// decodeError turns the YAML decoder's error into one naming the key: a type error says its
// line only, so the line is looked up in the document's node tree.
func decodeError(raw []byte, err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) || len(te.Errors) == 0 {
		return &Error{Msg: fmt.Sprintf("not valid YAML: %s (fix the syntax there; quote values that contain ': ' or start with a special character)",
			strings.TrimPrefix(err.Error(), "yaml: "))}
	}
	first := te.Errors[0]
	if m := unknownField.FindStringSubmatch(first); m != nil {
		return &Error{Key: m[2], Msg: fmt.Sprintf("unknown key at line %s (in %s); check its spelling against the README's config reference", m[1], sectionName(m[3]))}
	}
	m := lineError.FindStringSubmatch(first)
	if m == nil {
		return &Error{Msg: first}
	}
	line, msg := m[1], m[2]
	value := ""
	if c := cannotDecode.FindStringSubmatch(msg); c != nil {
		value = c[2]
		msg = fmt.Sprintf("%q is not %s", c[2], wantOf(c[3]))
		if c[1] == "map" || c[1] == "seq" {
			msg = fmt.Sprintf("a %s is not %s", map[string]string{"map": "mapping", "seq": "list"}[c[1]], wantOf(c[3]))
		}
	}
	if q := quotedValue.FindString(msg); value == "" && q != "" {
		value, _ = strconv.Unquote(q)
	}
	key := keyAtLine(raw, line, value)
	if key == "" {
		return &Error{Msg: fmt.Sprintf("line %s: %s", line, msg)}
	}
	return &Error{Key: key, Msg: fmt.Sprintf("%s (line %s)", msg, line)}
}

// wantOf says in words what a Go type the decoder named expects.
func wantOf(goType string) string {
	switch {
	case strings.HasPrefix(goType, "int"), strings.HasPrefix(goType, "uint"):
		return "a whole number"
	case strings.HasPrefix(goType, "float"):
		return "a number"
	case goType == "bool":
		return "true or false"
	case goType == "string":
		return "a string"
	case strings.HasPrefix(goType, "[]"):
		return "a list, e.g. [a, b]"
	case strings.HasPrefix(goType, "map["), strings.HasPrefix(goType, "config."):
		return "a mapping of keys to values"
	}
	return "a " + goType
}

// keyAtLine finds the dotted key whose value sits on line (preferring the one whose value is
// value, for flow mappings that put several keys on one line).
func keyAtLine(raw []byte, line, value string) string {
	var doc yaml.Node
	if yaml.Unmarshal(raw, &doc) != nil {
		return ""
	}
	var first, match string
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, path)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				p := k.Value
				if path != "" {
					p = path + "." + k.Value
				}
				if fmt.Sprint(v.Line) == line || (v.Kind != yaml.ScalarNode && fmt.Sprint(k.Line) == line && v.Line != k.Line) {
					if first == "" {
						first = p
					}
					if v.Kind == yaml.ScalarNode && v.Value == value && match == "" {
						match = p
					}
				}
				walk(v, p)
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				p := fmt.Sprintf("%s[%d]", path, i)
				if c.Kind == yaml.ScalarNode && fmt.Sprint(c.Line) == line {
					if first == "" {
						first = p
					}
					if c.Value == value && match == "" {
						match = p
					}
				}
				walk(c, p)
			}
		}
	}
	walk(&doc, "")
	if match != "" {
		return match
	}
	return first
}

func sectionName(typ string) string {
	switch typ {
	case "AppDirect":
		return "sources.appdirect"
	case "HighLevel":
		return "sources.highlevel"
	case "Sources":
		return "sources"
	case "Tenant":
		return "tenants"
	case "Serve":
		return "serve"
	case "ServeUser":
		return "serve.users"
	case "Lake":
		return "lake"
	}
	return "the top level"
}

// expand replaces ${NAME} in every string value with the environment variable NAME. A $ not
// followed by { is kept as is (secrets may contain it); an unset variable and a variable set
// to "" are errors that say which.
//
// With deferSecrets, a secret (a field tagged secret) whose variable is unset or empty gets
// deferredSecret instead of an error (secret says the field being expanded is one).
func expand(v reflect.Value, key string, lookup func(string) (string, bool), deferSecrets, secret bool) error {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			return expand(v.Elem(), key, lookup, deferSecrets, secret)
		}
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			name := strings.Split(v.Type().Field(i).Tag.Get("yaml"), ",")[0]
			k := name
			if key != "" {
				k = key + "." + name
			}
			if err := expand(v.Field(i), k, lookup, deferSecrets, v.Type().Field(i).Tag.Get("secret") == "true"); err != nil {
				return err
			}
		}
	case reflect.Slice:
		for i := 0; i < v.Len(); i++ {
			if err := expand(v.Index(i), fmt.Sprintf("%s[%d]", key, i), lookup, deferSecrets, secret); err != nil {
				return err
			}
		}
	case reflect.String:
		l := lookup
		if deferSecrets && secret {
			l = func(name string) (string, bool) {
				if val, ok := lookup(name); ok && val != "" {
					return val, true
				}
				return deferredSecret, true
			}
		}
		out, err := expandString(v.String(), l)
		if err != nil {
			return &Error{Key: key, Msg: err.Error()}
		}
		v.SetString(out)
	}
	return nil
}

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// expandString expands ${NAME} references with os.Expand. Every other $ is doubled first,
// which os.Expand turns back into one $, so only the ${NAME} form is ever expanded.
func expandString(s string, lookup func(string) (string, bool)) (string, error) {
	if !strings.Contains(s, "${") {
		return s, nil
	}
	// os.Expand would take an unclosed "${NAME" for the text "NAME": say so instead. The value
	// is not quoted: it may be a secret written in the file.
	for rest := s; ; {
		i := strings.Index(rest, "${")
		if i < 0 {
			break
		}
		if !strings.Contains(rest[i:], "}") {
			return "", fmt.Errorf("a ${ is not closed by }: write ${NAME} for a variable")
		}
		rest = rest[i+2:]
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		b.WriteByte(s[i])
		if s[i] == '$' && !strings.HasPrefix(s[i:], "${") {
			b.WriteByte('$')
		}
	}
	var err error
	out := os.Expand(b.String(), func(name string) string {
		if name == "$" {
			return "$"
		}
		if err != nil {
			return ""
		}
		if !envName.MatchString(name) {
			err = fmt.Errorf("${%s} is not a variable reference: a name is letters, digits and _ (write $$ for a literal $ before {)", name)
			return ""
		}
		val, ok := lookup(name)
		switch {
		case !ok:
			err = fmt.Errorf("environment variable %s is not set (export it, or put the value in the file)", name)
		case val == "":
			err = fmt.Errorf("environment variable %s is set but empty (give it a value, or take ${%s} out of the file)", name, name)
		}
		return val
	})
	return out, err
}

// ResolvePaths makes every relative path of the file (fields tagged path:"true", and the
// lake's local catalog and folder) relative to dir instead of the working directory.
func (f *File) ResolvePaths(dir string) {
	resolve := func(p *string) {
		if *p != "" && *p != ":memory:" && !filepath.IsAbs(*p) && !strings.Contains(*p, "://") {
			*p = filepath.Join(dir, *p)
		}
	}
	var walk func(v reflect.Value)
	walk = func(v reflect.Value) {
		switch v.Kind() {
		case reflect.Pointer:
			if !v.IsNil() {
				walk(v.Elem())
			}
		case reflect.Struct:
			for i := 0; i < v.NumField(); i++ {
				fv := v.Field(i)
				if v.Type().Field(i).Tag.Get("path") == "true" && fv.Kind() == reflect.String {
					s := fv.String()
					resolve(&s)
					fv.SetString(s)
					continue
				}
				walk(fv)
			}
		case reflect.Slice:
			for i := 0; i < v.Len(); i++ {
				walk(v.Index(i))
			}
		}
	}
	walk(reflect.ValueOf(f).Elem())
	// A SQL catalog's local file and folder (a DSN or URL contains "://"); a REST catalog's
	// warehouse is the catalog's name for it, not a path.
	if l := f.Lake; l != nil && (l.Catalog == "" || l.Catalog == DefaultLakeCatalog) {
		resolve(&l.URI)
		resolve(&l.Warehouse)
	}
}

// SetDefaults fills unset values.
func (f *File) SetDefaults() {
	if f.Warehouse == "" {
		f.Warehouse = DefaultWarehouse
	}
	if f.ParquetDir == "" {
		f.ParquetDir = DefaultParquetDir
	}
	f.Sources.setDefaults()
	for i := range f.Tenants {
		tn := &f.Tenants[i]
		// Each tenant's refresh token rotates on its own: one file each.
		if hl := tn.Sources.HighLevel; hl != nil && hl.Auth == HLAuthRefreshToken && hl.TokenFile == "" && tenantName.MatchString(tn.Name) {
			hl.TokenFile = "highlevel-token-" + tn.Name + ".json"
		}
		tn.Sources.setDefaults()
	}
	if sv := f.Serve; sv != nil {
		sv.SetDefaults()
	}
	if l := f.Lake; l != nil {
		l.SetDefaults()
	}
}

// TenantList returns the tenants to sync: the tenants list, or without one the default tenant
// (schemas.DefaultTenant) of the sources section.
func (f *File) TenantList() []Tenant {
	if len(f.Tenants) > 0 {
		return f.Tenants
	}
	return []Tenant{{Name: schemas.DefaultTenant, Sources: f.Sources}}
}

// setDefaults fills a sources section's unset values.
func (s *Sources) setDefaults() {
	if ad := s.AppDirect; ad != nil {
		if ad.LeadContext == "" {
			ad.LeadContext = "RESELLER_MANAGER"
		}
		if ad.LeadFromDateUnit == "" {
			ad.LeadFromDateUnit = "milliseconds"
		}
		if ad.API == "" {
			ad.API = "marketplace"
		}
		if ad.API == "reseller" && ad.ResellerContext == "" {
			ad.ResellerContext = "RESELLER_MANAGER"
		}
	}
	if hl := s.HighLevel; hl != nil {
		if hl.BaseURL == "" {
			hl.BaseURL = "https://services.leadconnectorhq.com"
		}
		if hl.Auth == "" {
			hl.Auth = HLAuthClientCredentials
		}
		if hl.Auth == HLAuthRefreshToken {
			if hl.TokenFile == "" {
				hl.TokenFile = DefaultHLTokenFile
			}
			if hl.AuthorizeURL == "" {
				hl.AuthorizeURL = DefaultHLAuthorizeURL
			}
			if hl.Scopes == "" {
				hl.Scopes = DefaultHLScopes
			}
		}
	}
}

// SetDefaults fills the serve section's unset values.
func (sv *Serve) SetDefaults() {
	if sv.Listen == "" {
		sv.Listen = DefaultServeListen
	}
	if sv.HTTP == "" {
		sv.HTTP = DefaultServeHTTP
	}
	if sv.Every == 0 && sv.Cron == "" {
		sv.Every = DefaultServeEvery
	}
	if sv.MemoryLimit == "" {
		sv.MemoryLimit = DefaultServeMemoryLimit
	}
}

// Validate checks the serve section (syncer serve requires users; see ValidateServe).
func (sv *Serve) Validate() error {
	host, _, err := net.SplitHostPort(sv.Listen)
	if err != nil {
		return &Error{Key: "serve.listen", Msg: fmt.Sprintf("%q: want host:port, e.g. %s", sv.Listen, DefaultServeListen)}
	}
	if sv.HTTP != "off" {
		if _, _, err := net.SplitHostPort(sv.HTTP); err != nil {
			return &Error{Key: "serve.http", Msg: fmt.Sprintf("%q: want host:port, e.g. %s, or off", sv.HTTP, DefaultServeHTTP)}
		}
	}
	if sv.Every != 0 && sv.Cron != "" {
		return &Error{Key: "serve.cron", Msg: "set either serve.every or serve.cron, not both"}
	}
	if sv.Every < 0 || (sv.Every > 0 && sv.Every < Duration(time.Second)) {
		return &Error{Key: "serve.every", Msg: "want a duration of at least 1s, e.g. 15m or 1d"}
	}
	if sv.Cron != "" && len(strings.Fields(sv.Cron)) != 5 {
		return &Error{Key: "serve.cron", Msg: fmt.Sprintf("%q: want 5 fields (minute hour day month weekday), e.g. \"*/15 * * * *\"", sv.Cron)}
	}
	if (sv.TLSCert == "") != (sv.TLSKey == "") {
		return &Error{Key: "serve.tls_key", Msg: "serve.tls_cert and serve.tls_key go together"}
	}
	if sv.RequireTLS && sv.TLSCert == "" {
		return &Error{Key: "serve.require_tls", Msg: "needs serve.tls_cert and serve.tls_key"}
	}
	if sv.TLSCert == "" && !sv.AllowPlaintext && !IsLoopback(host) {
		return &Error{Key: "serve.listen", Msg: "a non-loopback address needs serve.tls_cert and serve.tls_key (query results would cross the network in clear), or serve.allow_plaintext: true"}
	}
	if sv.MaxConnections < 0 || sv.MaxConnections > 10000 {
		return &Error{Key: "serve.max_connections", Msg: "want 1 to 10000"}
	}
	seen := map[string]bool{}
	for i, u := range sv.Users {
		key := fmt.Sprintf("serve.users[%d]", i)
		if u.Name == "" {
			return &Error{Key: key + ".name", Msg: "is required"}
		}
		if seen[u.Name] {
			return &Error{Key: key + ".name", Msg: fmt.Sprintf("user %q is listed twice", u.Name)}
		}
		seen[u.Name] = true
		if len(u.Password) < 8 {
			return &Error{Key: key + ".password", Msg: "want at least 8 characters (use ${ENV_VAR})"}
		}
	}
	return nil
}

// ValidateServe checks what syncer serve needs beyond Validate: a serve section with users.
func (f *File) ValidateServe() error {
	if f.Serve == nil || len(f.Serve.Users) == 0 {
		return &Error{Key: "serve.users", Msg: "syncer serve needs at least one user, e.g. serve: {users: [{name: metabase, password: ${METABASE_DB_PASSWORD}}]}"}
	}
	return f.Serve.Validate()
}

// Validate checks every value and names the first wrong key.
func (f *File) Validate() error {
	for i, s := range f.Streams {
		if !slices.Contains(schemas.Streams, s) {
			return &Error{Key: fmt.Sprintf("streams[%d]", i), Msg: fmt.Sprintf("unknown stream %q; streams are %s", s, strings.Join(schemas.Streams, ", "))}
		}
	}
	if f.Concurrency < 0 || f.Concurrency > 64 {
		return &Error{Key: "concurrency", Msg: "want 1 to 64"}
	}
	if f.BatchRows < 0 || f.BatchRows > 1_000_000 {
		return &Error{Key: "batch_rows", Msg: "want 1 to 1000000"}
	}
	if f.RejectPolicy != "" && f.RejectPolicy != "fail" && f.RejectPolicy != "quarantine" {
		return &Error{Key: "reject_policy", Msg: fmt.Sprintf("%q: want fail or quarantine", f.RejectPolicy)}
	}
	if f.FullScanEvery < 0 || (f.FullScanEvery > 0 && f.FullScanEvery < Duration(time.Minute)) {
		return &Error{Key: "full_scan_every", Msg: fmt.Sprintf("%s: want at least 1m, e.g. 7d (the default) or 12h", f.FullScanEvery)}
	}
	for k, v := range f.Lookback {
		if !slices.Contains(schemas.Streams, k) {
			return &Error{Key: "lookback." + k, Msg: fmt.Sprintf("not a stream; streams are %s", strings.Join(schemas.Streams, ", "))}
		}
		if v < 0 {
			return &Error{Key: "lookback." + k, Msg: fmt.Sprintf("%s: want 0 or more, e.g. 30d", v)}
		}
	}
	if err := f.validateLake(); err != nil {
		return err
	}
	if f.Serve != nil {
		if err := f.Serve.Validate(); err != nil {
			return err
		}
	}
	if len(f.Tenants) == 0 {
		return f.validateSources("sources.", &f.Sources)
	}
	return f.validateTenants()
}

// validateTenants checks the tenants list: names, and each tenant's sources as a sources
// section. One account listed in two tenants is refused: both would draw on one server-side
// budget through two limiters, and sync the same data twice.
func (f *File) validateTenants() error {
	if f.Sources.AppDirect != nil || f.Sources.HighLevel != nil {
		return &Error{Key: "sources", Msg: "set either sources: (one tenant) or tenants: (several, each with its own sources:), not both; move the sources section into a tenant (name it default to keep the rows a warehouse already holds)"}
	}
	names := map[string]int{}
	accounts, tokenFiles := map[string]string{}, map[string]string{}
	for i, tn := range f.Tenants {
		key := fmt.Sprintf("tenants[%d]", i)
		if !tenantName.MatchString(tn.Name) {
			return &Error{Key: key + ".name", Msg: fmt.Sprintf("%q: want 1 to 63 of a-z, 0-9, _ and - (it is stored in every row and key, so keep it stable), e.g. acme", tn.Name)}
		}
		if j, dup := names[tn.Name]; dup {
			return &Error{Key: key + ".name", Msg: fmt.Sprintf("tenant %q is also tenants[%d]: names must be unique", tn.Name, j)}
		}
		names[tn.Name] = i
		if err := f.validateSources(key+".sources.", &f.Tenants[i].Sources); err != nil {
			return err
		}
		if hl := tn.Sources.HighLevel; hl != nil && hl.TokenFile != "" {
			if other, dup := tokenFiles[hl.TokenFile]; dup {
				return &Error{Key: key + ".sources.highlevel.token_file", Msg: fmt.Sprintf("is also tenant %s's: each tenant's refresh token rotates on its own, so each needs its own file", other)}
			}
			tokenFiles[hl.TokenFile] = tn.Name
		}
		var ids []string
		if ad := tn.Sources.AppDirect; ad != nil {
			ids = append(ids, fmt.Sprintf("the AppDirect client %s at %s", ad.ClientID, strings.TrimRight(ad.BaseURL, "/")))
		}
		if hl := tn.Sources.HighLevel; hl != nil {
			ids = append(ids, fmt.Sprintf("the HighLevel agency %s at %s", hl.CompanyID, strings.TrimRight(hl.BaseURL, "/")))
		}
		for _, id := range ids {
			// A URL's scheme and host are case-insensitive: HTTPS://Acme.example.com is acme's.
			if other, dup := accounts[strings.ToLower(id)]; dup {
				return &Error{Key: key + ".sources", Msg: fmt.Sprintf("tenants %s and %s both read %s: one account is one tenant (its rate budget is one)", other, tn.Name, id)}
			}
			accounts[strings.ToLower(id)] = tn.Name
		}
	}
	return nil
}

// validateSources checks one sources section; prefix is its key with a trailing dot
// ("sources." or "tenants[0].sources.").
func (f *File) validateSources(prefix string, s *Sources) error {
	if s.AppDirect == nil && s.HighLevel == nil {
		return &Error{Key: strings.TrimSuffix(prefix, "."), Msg: fmt.Sprintf("configure at least one of %sappdirect and %shighlevel", prefix, prefix)}
	}
	if ad := s.AppDirect; ad != nil {
		sec := prefix + "appdirect."
		if err := f.checkURL(sec+"base_url", ad.BaseURL); err != nil {
			return err
		}
		for k, v := range map[string]string{"client_id": ad.ClientID, "client_secret": ad.ClientSecret} {
			if v == "" {
				return &Error{Key: sec + k, Msg: "is required (use ${ENV_VAR} for secrets)"}
			}
		}
		if ad.PageSize < 0 || ad.PageSize > 250 {
			return &Error{Key: sec + "page_size", Msg: "want 1 to 250 (the documented maximum)"}
		}
		// Lead v2 always sends companyId: without it every leads request is a 400.
		if ad.LeadUsername != "" && ad.LeadCompanyID == "" && (len(f.Streams) == 0 || slices.Contains(f.Streams, "leads")) {
			return &Error{Key: sec + "lead_company_id", Msg: "is required to sync leads: lead v2 lists the leads of one company (companyId: your company's id in the marketplace)"}
		}
		if err := ad.validateFamily(sec); err != nil {
			return err
		}
	}
	if hl := s.HighLevel; hl != nil {
		if err := f.checkURL(prefix+"highlevel.base_url", hl.BaseURL); err != nil {
			return err
		}
		if err := f.validateHighLevelAuth(prefix+"highlevel.", hl); err != nil {
			return err
		}
	}
	return nil
}

// validateHighLevelAuth checks the keys of the chosen auth mode, and refuses keys of another
// mode (a private_token that would be silently ignored, say).
func (f *File) validateHighLevelAuth(sec string, hl *HighLevel) error {
	required := []string{"company_id", "app_id"}
	switch hl.Auth {
	case HLAuthClientCredentials, HLAuthRefreshToken:
		required = append([]string{"client_id", "client_secret"}, required...)
		if hl.PrivateToken != "" {
			return &Error{Key: sec + "private_token", Msg: fmt.Sprintf("is set but auth is %s: set auth: private_token to use it, or remove it", hl.Auth)}
		}
	case HLAuthPrivateToken:
		required = append([]string{"private_token"}, required...)
		for k, v := range map[string]string{"client_id": hl.ClientID, "client_secret": hl.ClientSecret} {
			if v != "" {
				return &Error{Key: sec + k, Msg: "is set but auth is private_token, which sends only the token: remove it, or choose auth: client_credentials or refresh_token"}
			}
		}
	default:
		return &Error{Key: sec + "auth", Msg: fmt.Sprintf("%q: want client_credentials (the default), refresh_token or private_token", hl.Auth)}
	}
	vals := map[string]string{"client_id": hl.ClientID, "client_secret": hl.ClientSecret, "company_id": hl.CompanyID, "app_id": hl.AppID, "private_token": hl.PrivateToken}
	for _, k := range required {
		if vals[k] == "" {
			msg := "is required"
			if k == "client_secret" || k == "private_token" {
				msg = "is required (use ${ENV_VAR} for secrets)"
			}
			return &Error{Key: sec + k, Msg: fmt.Sprintf("%s with auth: %s", msg, hl.Auth)}
		}
	}
	if hl.Auth == HLAuthRefreshToken {
		if err := f.checkURL(sec+"authorize_url", hl.AuthorizeURL); err != nil {
			return err
		}
		if hl.RedirectURI != "" {
			if u, err := url.Parse(hl.RedirectURI); err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
				return &Error{Key: sec + "redirect_uri", Msg: fmt.Sprintf("%q is not an http(s) URL with a host; use the redirect URL registered for the app, e.g. http://localhost:8976/oauth/callback", hl.RedirectURI)}
			}
		}
	} else if hl.TokenFile != "" || hl.RedirectURI != "" {
		key := "token_file"
		if hl.TokenFile == "" {
			key = "redirect_uri"
		}
		return &Error{Key: sec + key, Msg: fmt.Sprintf("is used only with auth: refresh_token, but auth is %s", hl.Auth)}
	}
	return nil
}

// validateFamily checks the API family, the contexts and the lead date unit (sec: the section's
// key with a trailing dot).
func (ad *AppDirect) validateFamily(sec string) error {
	switch ad.LeadContext {
	case "RESELLER_MANAGER", "RESELLER", "REFERRAL", "DEVELOPER":
	default:
		return &Error{Key: sec + "lead_context", Msg: fmt.Sprintf("%q: want RESELLER_MANAGER, RESELLER, REFERRAL or DEVELOPER (the lead v2 contexts a user token can list)", ad.LeadContext)}
	}
	if ad.LeadFromDateUnit != "milliseconds" && ad.LeadFromDateUnit != "seconds" {
		return &Error{Key: sec + "lead_from_date_unit", Msg: fmt.Sprintf("%q: want milliseconds or seconds (syncer check reports which one the server reads)", ad.LeadFromDateUnit)}
	}
	switch ad.API {
	case "marketplace":
		if ad.ResellerContext != "" {
			return &Error{Key: sec + "reseller_context", Msg: "only applies with api: reseller; remove it, or set api: reseller"}
		}
	case "reseller":
		if ad.ResellerContext != "RESELLER" && ad.ResellerContext != "RESELLER_MANAGER" {
			return &Error{Key: sec + "reseller_context", Msg: fmt.Sprintf("%q: want RESELLER or RESELLER_MANAGER (the AppReseller contexts)", ad.ResellerContext)}
		}
		// Every AppReseller endpoint needs the user's token.
		for k, v := range map[string]string{"lead_username": ad.LeadUsername, "lead_password": ad.LeadPassword} {
			if v == "" {
				return &Error{Key: sec + k, Msg: "is required with api: reseller (the AppReseller endpoints accept only a reseller user's token; use ${ENV_VAR} for the password)"}
			}
		}
	default:
		return &Error{Key: sec + "api", Msg: fmt.Sprintf("%q: want marketplace (account v2, billing, assistedSales: a marketplace owner's API client) or reseller (AppReseller v1: a reseller partner's user)", ad.API)}
	}
	return nil
}

// checkURL accepts https, and http only on loopback or when allow_insecure_http is set: a
// token sent over plain HTTP can be read by anyone on the path.
func (f *File) checkURL(key, raw string) error {
	if raw == "" {
		return &Error{Key: key, Msg: "is required, e.g. https://marketplace.example.com"}
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return &Error{Key: key, Msg: fmt.Sprintf("%q is not an http(s) URL with a host", raw)}
	}
	if u.Scheme == "http" && !f.AllowInsecureHTTP && !IsLoopback(u.Hostname()) {
		return &Error{Key: key, Msg: "plain http is refused for non-loopback hosts (tokens would travel in clear); use https, or set allow_insecure_http: true"}
	}
	return nil
}

// IsLoopback reports whether host names this machine.
func IsLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Mask says whether a secret is set, revealing neither its content nor its length.
func Mask(s string) string {
	if s == "" {
		return "(empty)"
	}
	return "****** (set)"
}
