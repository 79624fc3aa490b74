// Package restcatalog serves the Apache Iceberg REST catalog protocol on loopback, for tests of
// the lake through a REST catalog. It implements the endpoints iceberg-go's REST client calls for
// the lake (config, OAuth2 client-credentials tokens, namespaces, create/load/list/drop table and
// the table commit with its requirements) and keeps the tables in iceberg-go's SQL catalog on a
// SQLite file: the server owns the metadata files and the commit's compare-and-swap, the clients
// write the data files and manifests, as with Polaris, Lakekeeper or Nessie.
//
// A commit whose requirements do not hold on the table's current metadata (another writer
// committed first) is answered 409 CommitFailedException, as the specification says; so is one
// that loses the backing catalog's compare-and-swap.
package restcatalog

import (
	"crypto/rand"
	"crypto/subtle"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/catalog"
	sqlcat "github.com/apache/iceberg-go/catalog/sql"
	"github.com/apache/iceberg-go/table"
	_ "modernc.org/sqlite" // the backing SQL catalog
)

// Options configure a server.
type Options struct {
	// Dir holds the backing catalog (Dir/catalog.db) and, unless Location is set, the tables'
	// files (Dir/warehouse).
	Dir string
	// Location is where new tables go (a file:// or s3:// URL); default file://Dir/warehouse.
	Location string
	// Properties are the backing catalog's file IO properties (s3.endpoint, keys, ...).
	Properties map[string]string
	// Warehouse, if set, is the only warehouse name a client may ask for in GET /v1/config.
	Warehouse string
	// Credential "id:secret" is accepted at POST /v1/oauth/tokens (client_credentials grant);
	// Token is a bearer token accepted as it is. With either set, every other request must carry
	// a token the server accepts.
	Credential, Token string
}

// Server is a running REST catalog.
type Server struct {
	URL      string // http://127.0.0.1:PORT, the catalog's uri
	Location string // where the tables' files are
	backend  *sqlcat.Catalog
	o        Options
	issued   string // the token handed out for the credential

	mu     sync.Mutex
	tables map[string]*sync.Mutex // one commit at a time per table

	commits, conflicts, tokens, unauthorized atomic.Int64
}

// Start serves a REST catalog until the test ends.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: s.Handler()}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close(); _ = s.backend.Close() })
	s.URL = "http://" + ln.Addr().String()
	return s
}

// New opens the backing catalog; Handler serves it.
func New(o Options) (*Server, error) {
	loc := o.Location
	if loc == "" {
		abs, err := filepath.Abs(filepath.Join(o.Dir, "warehouse"))
		if err != nil {
			return nil, err
		}
		loc = (&url.URL{Scheme: "file", Path: filepath.ToSlash(abs)}).String()
	}
	db, err := sql.Open("sqlite", filepath.Join(o.Dir, "catalog.db")+"?_pragma=busy_timeout(30000)&_pragma=journal_mode(WAL)")
	if err != nil {
		return nil, err
	}
	props := iceberg.Properties{"warehouse": loc}
	for k, v := range o.Properties {
		props[k] = v
	}
	// The catalog name keys the backing rows: "marketsync", as a SQL-catalog lake, so the test
	// can read the same tables through the SQL catalog as an independent reader.
	cat, err := sqlcat.NewCatalog("marketsync", db, sqlcat.SQLite, props)
	if err != nil {
		db.Close()
		return nil, err
	}
	s := &Server{Location: loc, backend: cat, o: o, tables: map[string]*sync.Mutex{}}
	if o.Credential != "" {
		s.issued = "issued-" + rand.Text() // opaque, nothing of the secret
	}
	return s, nil
}

// Backend is the SQL catalog that holds the tables: an independent reader of what clients
// committed through the REST protocol.
func (s *Server) Backend() catalog.Catalog { return s.backend }

// Commits counts the table commits accepted; Conflicts the commits answered 409.
func (s *Server) Commits() int64   { return s.commits.Load() }
func (s *Server) Conflicts() int64 { return s.conflicts.Load() }

// Tokens counts the tokens issued for the credential; Unauthorized the requests refused 401.
func (s *Server) Tokens() int64       { return s.tokens.Load() }
func (s *Server) Unauthorized() int64 { return s.unauthorized.Load() }

// endpoints are the ones advertised in GET /v1/config: exactly those served.
var endpoints = []string{
	"GET /v1/{prefix}/namespaces", "POST /v1/{prefix}/namespaces", "GET /v1/{prefix}/namespaces/{namespace}",
	"HEAD /v1/{prefix}/namespaces/{namespace}", "DELETE /v1/{prefix}/namespaces/{namespace}",
	"GET /v1/{prefix}/namespaces/{namespace}/tables", "POST /v1/{prefix}/namespaces/{namespace}/tables",
	"GET /v1/{prefix}/namespaces/{namespace}/tables/{table}", "HEAD /v1/{prefix}/namespaces/{namespace}/tables/{table}",
	"POST /v1/{prefix}/namespaces/{namespace}/tables/{table}", "DELETE /v1/{prefix}/namespaces/{namespace}/tables/{table}",
}

// Handler serves the REST protocol.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/oauth/tokens", s.token)
	mux.HandleFunc("GET /v1/config", s.auth(s.config))
	mux.HandleFunc("GET /v1/namespaces", s.auth(s.listNamespaces))
	mux.HandleFunc("POST /v1/namespaces", s.auth(s.createNamespace))
	mux.HandleFunc("GET /v1/namespaces/{ns}", s.auth(s.loadNamespace))
	mux.HandleFunc("HEAD /v1/namespaces/{ns}", s.auth(s.loadNamespace))
	mux.HandleFunc("DELETE /v1/namespaces/{ns}", s.auth(s.dropNamespace))
	mux.HandleFunc("GET /v1/namespaces/{ns}/tables", s.auth(s.listTables))
	mux.HandleFunc("POST /v1/namespaces/{ns}/tables", s.auth(s.createTable))
	mux.HandleFunc("GET /v1/namespaces/{ns}/tables/{table}", s.auth(s.loadTable))
	mux.HandleFunc("HEAD /v1/namespaces/{ns}/tables/{table}", s.auth(s.loadTable))
	mux.HandleFunc("POST /v1/namespaces/{ns}/tables/{table}", s.auth(s.commit))
	mux.HandleFunc("DELETE /v1/namespaces/{ns}/tables/{table}", s.auth(s.dropTable))
	return mux
}

// fail writes the specification's ErrorModel.
func fail(w http.ResponseWriter, code int, typ, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"message": msg, "type": typ, "code": code}})
}

func reply(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// token is the OAuth2 client-credentials token endpoint.
func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		fail(w, http.StatusBadRequest, "invalid_request", "not a form")
		return
	}
	id, secret, _ := strings.Cut(s.o.Credential, ":")
	if s.o.Credential == "" || r.PostForm.Get("grant_type") != "client_credentials" ||
		subtle.ConstantTimeCompare([]byte(r.PostForm.Get("client_id")), []byte(id)) != 1 ||
		subtle.ConstantTimeCompare([]byte(r.PostForm.Get("client_secret")), []byte(secret)) != 1 {
		s.unauthorized.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": "invalid_client", "error_description": "unknown client or wrong secret"})
		return
	}
	s.tokens.Add(1)
	reply(w, map[string]any{"access_token": s.issued, "token_type": "Bearer", "expires_in": 3600,
		"issued_token_type": "urn:ietf:params:oauth:token-type:access_token"})
}

// auth refuses a request without an accepted bearer token, if the server has credentials.
func (s *Server) auth(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.o.Credential != "" || s.o.Token != "" {
			got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			good := ok && ((s.issued != "" && subtle.ConstantTimeCompare([]byte(got), []byte(s.issued)) == 1) ||
				(s.o.Token != "" && subtle.ConstantTimeCompare([]byte(got), []byte(s.o.Token)) == 1))
			if !good {
				s.unauthorized.Add(1)
				fail(w, http.StatusUnauthorized, "NotAuthorizedException", "no valid bearer token")
				return
			}
		}
		h(w, r)
	}
}

func (s *Server) config(w http.ResponseWriter, r *http.Request) {
	if wh := r.URL.Query().Get("warehouse"); s.o.Warehouse != "" && wh != s.o.Warehouse {
		fail(w, http.StatusBadRequest, "BadRequestException", fmt.Sprintf("unknown warehouse %q", wh))
		return
	}
	reply(w, map[string]any{"defaults": map[string]string{}, "overrides": map[string]string{}, "endpoints": endpoints})
}

// namespace decodes the {namespace} path segment (levels joined by the unit separator).
func namespace(r *http.Request) table.Identifier {
	return strings.Split(r.PathValue("ns"), "\x1f")
}

func ident(r *http.Request) table.Identifier {
	return append(namespace(r), r.PathValue("table"))
}

// catalogError answers a backend error with the specification's status and type.
func catalogError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, catalog.ErrNoSuchNamespace):
		fail(w, http.StatusNotFound, "NoSuchNamespaceException", err.Error())
	case errors.Is(err, catalog.ErrNoSuchTable):
		fail(w, http.StatusNotFound, "NoSuchTableException", err.Error())
	case errors.Is(err, catalog.ErrNamespaceAlreadyExists), errors.Is(err, catalog.ErrTableAlreadyExists):
		fail(w, http.StatusConflict, "AlreadyExistsException", err.Error())
	case errors.Is(err, catalog.ErrNamespaceNotEmpty):
		fail(w, http.StatusConflict, "NamespaceNotEmptyException", err.Error())
	case errors.Is(err, table.ErrCommitFailed):
		fail(w, http.StatusConflict, "CommitFailedException", err.Error())
	default:
		fail(w, http.StatusInternalServerError, "InternalServerError", err.Error())
	}
}

func (s *Server) listNamespaces(w http.ResponseWriter, r *http.Request) {
	var parent table.Identifier
	if p := r.URL.Query().Get("parent"); p != "" {
		parent = strings.Split(p, "\x1f")
	}
	nss, err := s.backend.ListNamespaces(r.Context(), parent)
	if err != nil {
		catalogError(w, err)
		return
	}
	if nss == nil {
		nss = []table.Identifier{}
	}
	reply(w, map[string]any{"namespaces": nss})
}

func (s *Server) createNamespace(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Namespace  table.Identifier   `json:"namespace"`
		Properties iceberg.Properties `json:"properties"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || len(req.Namespace) == 0 {
		fail(w, http.StatusBadRequest, "BadRequestException", "want {\"namespace\": [...], \"properties\": {...}}")
		return
	}
	if err := s.backend.CreateNamespace(r.Context(), req.Namespace, req.Properties); err != nil {
		catalogError(w, err)
		return
	}
	if req.Properties == nil {
		req.Properties = iceberg.Properties{}
	}
	reply(w, map[string]any{"namespace": req.Namespace, "properties": req.Properties})
}

func (s *Server) loadNamespace(w http.ResponseWriter, r *http.Request) {
	props, err := s.backend.LoadNamespaceProperties(r.Context(), namespace(r))
	if err != nil {
		catalogError(w, err)
		return
	}
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	reply(w, map[string]any{"namespace": namespace(r), "properties": props})
}

func (s *Server) dropNamespace(w http.ResponseWriter, r *http.Request) {
	if err := s.backend.DropNamespace(r.Context(), namespace(r)); err != nil {
		catalogError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) listTables(w http.ResponseWriter, r *http.Request) {
	type id struct {
		Namespace []string `json:"namespace"`
		Name      string   `json:"name"`
	}
	ids := []id{}
	for t, err := range s.backend.ListTables(r.Context(), namespace(r)) {
		if err != nil {
			catalogError(w, err)
			return
		}
		ids = append(ids, id{Namespace: catalog.NamespaceFromIdent(t), Name: catalog.TableNameFromIdent(t)})
	}
	reply(w, map[string]any{"identifiers": ids})
}

// tableResponse is LoadTableResult.
func tableResponse(w http.ResponseWriter, tbl *table.Table) {
	reply(w, map[string]any{"metadata-location": tbl.MetadataLocation(), "metadata": tbl.Metadata(), "config": map[string]string{}})
}

func (s *Server) createTable(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Name          string                 `json:"name"`
		Schema        *iceberg.Schema        `json:"schema"`
		Location      string                 `json:"location"`
		PartitionSpec *iceberg.PartitionSpec `json:"partition-spec"`
		WriteOrder    *table.SortOrder       `json:"write-order"`
		StageCreate   bool                   `json:"stage-create"`
		Properties    iceberg.Properties     `json:"properties"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Name == "" || req.Schema == nil {
		fail(w, http.StatusBadRequest, "BadRequestException", fmt.Sprintf("want a CreateTableRequest with name and schema (%v)", err))
		return
	}
	if req.StageCreate {
		fail(w, http.StatusNotAcceptable, "UnsupportedOperationException", "staged creates are not served")
		return
	}
	opts := []catalog.CreateTableOpt{catalog.WithProperties(req.Properties)}
	if req.PartitionSpec != nil {
		opts = append(opts, catalog.WithPartitionSpec(req.PartitionSpec))
	}
	if req.WriteOrder != nil {
		opts = append(opts, catalog.WithSortOrder(*req.WriteOrder))
	}
	if req.Location != "" {
		opts = append(opts, catalog.WithLocation(req.Location))
	}
	tbl, err := s.backend.CreateTable(r.Context(), append(namespace(r), req.Name), req.Schema, opts...)
	if err != nil {
		catalogError(w, err)
		return
	}
	tableResponse(w, tbl)
}

func (s *Server) loadTable(w http.ResponseWriter, r *http.Request) {
	tbl, err := s.backend.LoadTable(r.Context(), ident(r))
	if err != nil {
		catalogError(w, err)
		return
	}
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	tableResponse(w, tbl)
}

func (s *Server) dropTable(w http.ResponseWriter, r *http.Request) {
	if err := s.backend.DropTable(r.Context(), ident(r)); err != nil {
		catalogError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// lock serialises the commits of one table, so the requirements are checked against the
// metadata the commit replaces.
func (s *Server) lock(id table.Identifier) func() {
	key := strings.Join(id, "\x1f")
	s.mu.Lock()
	m, ok := s.tables[key]
	if !ok {
		m = &sync.Mutex{}
		s.tables[key] = m
	}
	s.mu.Unlock()
	m.Lock()
	return m.Unlock
}

// commit is CommitTableRequest: the requirements must hold on the current metadata, then the
// updates are applied as one new metadata file.
func (s *Server) commit(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Requirements table.Requirements `json:"requirements"`
		Updates      table.Updates      `json:"updates"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		fail(w, http.StatusBadRequest, "BadRequestException", fmt.Sprintf("not a CommitTableRequest: %v", err))
		return
	}
	id := ident(r)
	defer s.lock(id)()
	ctx := r.Context()
	cur, err := s.backend.LoadTable(ctx, id)
	if err != nil {
		catalogError(w, err)
		return
	}
	for _, q := range req.Requirements {
		if err := q.Validate(cur.Metadata()); err != nil {
			s.conflicts.Add(1)
			fail(w, http.StatusConflict, "CommitFailedException", err.Error())
			return
		}
	}
	meta, loc, err := s.backend.CommitTable(ctx, id, req.Requirements, req.Updates)
	if err != nil {
		if errors.Is(err, table.ErrCommitFailed) {
			s.conflicts.Add(1)
		}
		catalogError(w, err)
		return
	}
	s.commits.Add(1)
	reply(w, map[string]any{"metadata-location": loc, "metadata": meta})
}
