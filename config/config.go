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
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/marketsync/marketsync/schemas"
)

// Error names the key that is wrong and how to fix it.
type Error struct {
	Key string
	Msg string
}

func (e *Error) Error() string { return fmt.Sprintf("config key %s: %s", e.Key, e.Msg) }

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
	BaseURL      string        `yaml:"base_url"`
	ClientID     string        `yaml:"client_id"`
	ClientSecret string        `yaml:"client_secret" secret:"true"`
	CompanyID    string        `yaml:"company_id"`
	AppID        string        `yaml:"app_id"`
	PageSize     int           `yaml:"page_size"`
	Burst        int           `yaml:"burst"`
	Interval     time.Duration `yaml:"interval"`
	DailyFloor   int           `yaml:"daily_floor"`
}

// Sources holds the configured APIs; a missing section skips its streams.
type Sources struct {
	AppDirect *AppDirect `yaml:"appdirect"`
	HighLevel *HighLevel `yaml:"highlevel"`
}

// File is the whole configuration file.
type File struct {
	Warehouse         string                   `yaml:"warehouse"`
	ParquetDir        string                   `yaml:"parquet_dir"`
	Streams           []string                 `yaml:"streams"`
	Concurrency       int                      `yaml:"concurrency"`
	BatchRows         int                      `yaml:"batch_rows"`
	RejectPolicy      string                   `yaml:"reject_policy"`
	FullScanEvery     time.Duration            `yaml:"full_scan_every"`
	Lookback          map[string]time.Duration `yaml:"lookback"`
	AllowInsecureHTTP bool                     `yaml:"allow_insecure_http"`
	Sources           Sources                  `yaml:"sources"`
	Serve             *Serve                   `yaml:"serve"`
	Lake              *Lake                    `yaml:"lake"`
}

// Serve is the serve section: `syncer serve`'s SQL server and schedule.
type Serve struct {
	Listen         string        `yaml:"listen"`          // PostgreSQL protocol address (default DefaultServeListen)
	HTTP           string        `yaml:"http"`            // /healthz and /metrics address (default DefaultServeHTTP; "off" for none)
	Every          time.Duration `yaml:"every"`           // sync interval (default DefaultServeEvery unless cron is set)
	Cron           string        `yaml:"cron"`            // or a 5-field cron expression, e.g. "*/15 * * * *"
	Users          []ServeUser   `yaml:"users"`           // who may connect (SCRAM-SHA-256 passwords)
	TLSCert        string        `yaml:"tls_cert"`        // PEM certificate file: TLS is offered when set
	TLSKey         string        `yaml:"tls_key"`         // its PEM private key file
	RequireTLS     bool          `yaml:"require_tls"`     // refuse clients without TLS
	AllowPlaintext bool          `yaml:"allow_plaintext"` // allow a non-loopback listen address without TLS
	MaxConnections int           `yaml:"max_connections"` // default 64
	MemoryLimit    string        `yaml:"memory_limit"`    // DuckDB's buffer pool, shared by the syncs and every reader (default DefaultServeMemoryLimit)
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
	DefaultServeEvery  = 15 * time.Minute
	// DefaultServeMemoryLimit is larger than a sync's own 256MB: readers share the buffer pool
	// (and spill to the warehouse's .tmp directory beyond it).
	DefaultServeMemoryLimit = "1GB"
)

// Defaults for a file that leaves them out.
const (
	DefaultWarehouse  = "./data/warehouse.duckdb"
	DefaultParquetDir = "./data/parquet"
)

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// Load reads, expands and validates a config file.
func Load(path string) (*File, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	return Parse(raw, os.LookupEnv)
}

var unknownField = regexp.MustCompile(`line (\d+): field (\S+) not found in type config\.(\w+)`)

// Parse decodes YAML, rejecting unknown keys, then expands ${ENV} in string values (never in
// keys or structure, so a secret's characters cannot change the document) and validates.
func Parse(raw []byte, lookup func(string) (string, bool)) (*File, error) {
	var f File
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		if m := unknownField.FindStringSubmatch(err.Error()); m != nil {
			return nil, &Error{Key: m[2], Msg: fmt.Sprintf("unknown key at line %s (in %s); check its spelling against the README's config reference", m[1], sectionName(m[3]))}
		}
		return nil, fmt.Errorf("config is not valid YAML for this schema: %w", err)
	}
	if err := expand(reflect.ValueOf(&f).Elem(), "", lookup); err != nil {
		return nil, err
	}
	f.SetDefaults()
	return &f, f.Validate()
}

func sectionName(typ string) string {
	switch typ {
	case "AppDirect":
		return "sources.appdirect"
	case "HighLevel":
		return "sources.highlevel"
	case "Sources":
		return "sources"
	case "Serve":
		return "serve"
	case "ServeUser":
		return "serve.users"
	case "Lake":
		return "lake"
	}
	return "the top level"
}

func expand(v reflect.Value, key string, lookup func(string) (string, bool)) error {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			return expand(v.Elem(), key, lookup)
		}
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			name := strings.Split(v.Type().Field(i).Tag.Get("yaml"), ",")[0]
			k := name
			if key != "" {
				k = key + "." + name
			}
			if err := expand(v.Field(i), k, lookup); err != nil {
				return err
			}
		}
	case reflect.Slice:
		for i := 0; i < v.Len(); i++ {
			if err := expand(v.Index(i), fmt.Sprintf("%s[%d]", key, i), lookup); err != nil {
				return err
			}
		}
	case reflect.String:
		var missing string
		out := envRef.ReplaceAllStringFunc(v.String(), func(ref string) string {
			name := envRef.FindStringSubmatch(ref)[1]
			val, ok := lookup(name)
			if !ok && missing == "" {
				missing = name
			}
			return val
		})
		if missing != "" {
			return &Error{Key: key, Msg: fmt.Sprintf("environment variable %s is not set (export it, or put the value in the file)", missing)}
		}
		v.SetString(out)
	}
	return nil
}

// SetDefaults fills unset values.
func (f *File) SetDefaults() {
	if f.Warehouse == "" {
		f.Warehouse = DefaultWarehouse
	}
	if f.ParquetDir == "" {
		f.ParquetDir = DefaultParquetDir
	}
	if ad := f.Sources.AppDirect; ad != nil {
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
	if hl := f.Sources.HighLevel; hl != nil && hl.BaseURL == "" {
		hl.BaseURL = "https://services.leadconnectorhq.com"
	}
	if sv := f.Serve; sv != nil {
		sv.SetDefaults()
	}
	if l := f.Lake; l != nil {
		l.SetDefaults()
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
	if sv.Every < 0 || (sv.Every > 0 && sv.Every < time.Second) {
		return &Error{Key: "serve.every", Msg: "want a duration of at least 1s, e.g. 15m"}
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
	for k := range f.Lookback {
		if !slices.Contains(schemas.Streams, k) {
			return &Error{Key: "lookback." + k, Msg: "not a stream"}
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
	if f.Sources.AppDirect == nil && f.Sources.HighLevel == nil {
		return &Error{Key: "sources", Msg: "configure at least one of sources.appdirect and sources.highlevel"}
	}
	if ad := f.Sources.AppDirect; ad != nil {
		if err := f.checkURL("sources.appdirect.base_url", ad.BaseURL); err != nil {
			return err
		}
		for k, v := range map[string]string{"client_id": ad.ClientID, "client_secret": ad.ClientSecret} {
			if v == "" {
				return &Error{Key: "sources.appdirect." + k, Msg: "is required (use ${ENV_VAR} for secrets)"}
			}
		}
		if ad.PageSize < 0 || ad.PageSize > 250 {
			return &Error{Key: "sources.appdirect.page_size", Msg: "want 1 to 250 (the documented maximum)"}
		}
		if err := ad.validateFamily(); err != nil {
			return err
		}
	}
	if hl := f.Sources.HighLevel; hl != nil {
		if err := f.checkURL("sources.highlevel.base_url", hl.BaseURL); err != nil {
			return err
		}
		for k, v := range map[string]string{"client_id": hl.ClientID, "client_secret": hl.ClientSecret, "company_id": hl.CompanyID, "app_id": hl.AppID} {
			if v == "" {
				return &Error{Key: "sources.highlevel." + k, Msg: "is required"}
			}
		}
	}
	return nil
}

// validateFamily checks the API family, the contexts and the lead date unit.
func (ad *AppDirect) validateFamily() error {
	switch ad.LeadContext {
	case "RESELLER_MANAGER", "RESELLER", "REFERRAL", "DEVELOPER":
	default:
		return &Error{Key: "sources.appdirect.lead_context", Msg: fmt.Sprintf("%q: want RESELLER_MANAGER, RESELLER, REFERRAL or DEVELOPER (the lead v2 contexts a user token can list)", ad.LeadContext)}
	}
	if ad.LeadFromDateUnit != "milliseconds" && ad.LeadFromDateUnit != "seconds" {
		return &Error{Key: "sources.appdirect.lead_from_date_unit", Msg: fmt.Sprintf("%q: want milliseconds or seconds (syncer check reports which one the server reads)", ad.LeadFromDateUnit)}
	}
	switch ad.API {
	case "marketplace":
		if ad.ResellerContext != "" {
			return &Error{Key: "sources.appdirect.reseller_context", Msg: "only applies with api: reseller; remove it, or set api: reseller"}
		}
	case "reseller":
		if ad.ResellerContext != "RESELLER" && ad.ResellerContext != "RESELLER_MANAGER" {
			return &Error{Key: "sources.appdirect.reseller_context", Msg: fmt.Sprintf("%q: want RESELLER or RESELLER_MANAGER (the AppReseller contexts)", ad.ResellerContext)}
		}
		// Every AppReseller endpoint needs the user's token.
		for k, v := range map[string]string{"lead_username": ad.LeadUsername, "lead_password": ad.LeadPassword} {
			if v == "" {
				return &Error{Key: "sources.appdirect." + k, Msg: "is required with api: reseller (the AppReseller endpoints accept only a reseller user's token; use ${ENV_VAR} for the password)"}
			}
		}
	default:
		return &Error{Key: "sources.appdirect.api", Msg: fmt.Sprintf("%q: want marketplace (account v2, billing, assistedSales: a marketplace owner's API client) or reseller (AppReseller v1: a reseller partner's user)", ad.API)}
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

// Mask shows a secret's shape without its content.
func Mask(s string) string {
	if s == "" {
		return "(empty)"
	}
	return fmt.Sprintf("****** (%d chars)", len(s))
}
