package serve

import (
	"fmt"
	"strings"

	bindings "github.com/duckdb/duckdb-go-bindings"
)

// PostgreSQL catalog compatibility. DuckDB emulates most of pg_catalog (pg_class,
// pg_attribute, pg_type, pg_namespace, format_type, pg_table_is_visible, ...). The gaps that
// psql, SQLAlchemy (Superset), Metabase's and Grafana's drivers hit are filled by views and
// macros in an in-memory catalog attached to the warehouse's DuckDB instance; rewrite points
// references to them there (pg_catalog.pg_roles -> _pg.main.pg_roles) using the statement's
// tokens, so string literals and comments are never touched.

// compatFunctions are macros created in the compatibility catalog (name -> definitions).
var compatFunctions = map[string]string{
	"pg_get_userbyid":                    `(id) AS 'syncer'`,
	"pg_encoding_to_char":                `(e) AS 'UTF8'`,
	"pg_char_to_encoding":                `(e) AS 6`,
	"version":                            `() AS 'PostgreSQL ` + ServerVersion + ` (marketsync syncer serve on DuckDB ' || library_version() || ') on x86_64-pc-linux-gnu, 64-bit'`,
	"pg_get_indexdef":                    `(i) AS NULL::VARCHAR, (i, c, p) AS NULL::VARCHAR`,
	"pg_get_statisticsobjdef_columns":    `(o) AS NULL::VARCHAR`,
	"pg_get_triggerdef":                  `(o) AS NULL::VARCHAR, (o, p) AS NULL::VARCHAR`,
	"pg_get_ruledef":                     `(o) AS NULL::VARCHAR, (o, p) AS NULL::VARCHAR`,
	"pg_get_function_result":             `(o) AS NULL::VARCHAR`,
	"pg_get_function_arguments":          `(o) AS NULL::VARCHAR`,
	"pg_get_function_identity_arguments": `(o) AS NULL::VARCHAR`,
	"pg_get_partkeydef":                  `(o) AS NULL::VARCHAR`,
	"pg_get_serial_sequence":             `(t, c) AS NULL::VARCHAR`,
	"pg_tablespace_location":             `(o) AS ''`,
	"pg_relation_size":                   `(o) AS 0::BIGINT, (o, f) AS 0::BIGINT`,
	"pg_total_relation_size":             `(o) AS 0::BIGINT`,
	"pg_table_size":                      `(o) AS 0::BIGINT`,
	"pg_indexes_size":                    `(o) AS 0::BIGINT`,
	"pg_is_in_recovery":                  `() AS false`,
	"txid_current":                       `() AS 1::BIGINT`,
	"pg_current_xact_id":                 `() AS 1::BIGINT`,
	"pg_backend_pid":                     `() AS 0`,
	"pg_get_constraintdef":               `(o) AS NULL::VARCHAR, (o, p) AS NULL::VARCHAR`,
	"quote_ident":                        `(s) AS CASE WHEN regexp_full_match(s, '[a-z_][a-z0-9_$]*') THEN s ELSE '"' || replace(s, '"', '""') || '"' END`,
	"to_regclass":                        `(s) AS (SELECT min(oid) FROM pg_catalog.pg_class WHERE relname = trim(string_split(s, '.')[-1], '"'))`,
	"regclass_oid":                       `(s) AS (SELECT min(oid) FROM pg_catalog.pg_class WHERE relname = trim(string_split(s, '.')[-1], '"'))`,
	"to_regtype":                         `(s) AS (SELECT min(oid) FROM _pg.main.pg_type WHERE typname = s)`,
	"regtype_oid":                        `(s) AS (SELECT min(oid) FROM _pg.main.pg_type WHERE typname = s)`,
	"regnamespace_oid":                   `(s) AS (SELECT min(oid) FROM pg_catalog.pg_namespace WHERE nspname = s)`,
	"array_upper":                        `(a, d) AS len(a)`,
	"array_lower":                        `(a, d) AS CASE WHEN len(a) > 0 THEN 1 END`,
	"pg_get_keywords":                    `() AS TABLE SELECT keyword_name AS word, 'U' AS catcode, keyword_category AS catdesc FROM duckdb_keywords()`,
	"set_config":                         `(n, v, l) AS v`,
	"obj_description":                    `(o) AS NULL::VARCHAR, (o, c) AS pg_catalog.obj_description(o, c)`,
	"pg_relation_is_publishable":         `(o) AS false`,
	"pg_get_expr":                        `(e, r) AS pg_catalog.pg_get_expr(e, r), (e, r, p) AS pg_catalog.pg_get_expr(e, r)`,
	"shobj_description":                  `(o, c) AS NULL::VARCHAR`,
}

// emptyRelations are catalog tables DuckDB lacks that describe features it does not have
// (inheritance, triggers, row security, publications, ...): they exist, with no rows.
var emptyRelations = map[string]string{
	"pg_inherits":              "inhrelid BIGINT, inhparent BIGINT, inhseqno INTEGER, inhdetachpending BOOLEAN",
	"pg_trigger":               "oid BIGINT, tgrelid BIGINT, tgparentid BIGINT, tgname VARCHAR, tgfoid BIGINT, tgtype SMALLINT, tgenabled VARCHAR, tgisinternal BOOLEAN, tgconstrrelid BIGINT, tgconstrindid BIGINT, tgconstraint BIGINT, tgdeferrable BOOLEAN, tginitdeferred BOOLEAN, tgnargs SMALLINT, tgattr VARCHAR, tgargs BLOB, tgqual VARCHAR, tgoldtable VARCHAR, tgnewtable VARCHAR",
	"pg_policy":                "oid BIGINT, polname VARCHAR, polrelid BIGINT, polcmd VARCHAR, polpermissive BOOLEAN, polroles BIGINT[], polqual VARCHAR, polwithcheck VARCHAR",
	"pg_statistic_ext":         "oid BIGINT, stxrelid BIGINT, stxname VARCHAR, stxnamespace BIGINT, stxowner BIGINT, stxstattarget INTEGER, stxkeys VARCHAR, stxkind VARCHAR[], stxexprs VARCHAR",
	"pg_statistic_ext_data":    "stxoid BIGINT, stxdinherit BOOLEAN, stxdndistinct VARCHAR, stxddependencies VARCHAR, stxdmcv VARCHAR, stxdexpr VARCHAR",
	"pg_publication":           "oid BIGINT, pubname VARCHAR, pubowner BIGINT, puballtables BOOLEAN, pubinsert BOOLEAN, pubupdate BOOLEAN, pubdelete BOOLEAN, pubtruncate BOOLEAN, pubviaroot BOOLEAN",
	"pg_publication_rel":       "oid BIGINT, prpubid BIGINT, prrelid BIGINT, prqual VARCHAR, prattrs SMALLINT[]",
	"pg_publication_namespace": "oid BIGINT, pnpubid BIGINT, pnnspid BIGINT",
	"pg_publication_tables":    "pubname VARCHAR, schemaname VARCHAR, tablename VARCHAR, attnames VARCHAR[], rowfilter VARCHAR",
	"pg_rewrite":               "oid BIGINT, rulename VARCHAR, ev_class BIGINT, ev_type VARCHAR, ev_enabled VARCHAR, is_instead BOOLEAN, ev_qual VARCHAR, ev_action VARCHAR",
	"pg_foreign_table":         "ftrelid BIGINT, ftserver BIGINT, ftoptions VARCHAR[]",
	"pg_foreign_server":        "oid BIGINT, srvname VARCHAR, srvowner BIGINT, srvfdw BIGINT, srvtype VARCHAR, srvversion VARCHAR, srvacl VARCHAR[], srvoptions VARCHAR[]",
	"pg_foreign_data_wrapper":  "oid BIGINT, fdwname VARCHAR, fdwowner BIGINT, fdwhandler BIGINT, fdwvalidator BIGINT, fdwacl VARCHAR[], fdwoptions VARCHAR[]",
	"pg_partitioned_table":     "partrelid BIGINT, partstrat VARCHAR, partnatts SMALLINT, partdefid BIGINT, partattrs VARCHAR, partclass VARCHAR, partcollation VARCHAR, partexprs VARCHAR",
	"pg_matviews":              "schemaname VARCHAR, matviewname VARCHAR, matviewowner VARCHAR, tablespace VARCHAR, hasindexes BOOLEAN, ispopulated BOOLEAN, definition VARCHAR",
	"pg_extension":             "oid BIGINT, extname VARCHAR, extowner BIGINT, extnamespace BIGINT, extrelocatable BOOLEAN, extversion VARCHAR, extconfig BIGINT[], extcondition VARCHAR[]",
	"pg_event_trigger":         "oid BIGINT, evtname VARCHAR, evtevent VARCHAR, evtowner BIGINT, evtfoid BIGINT, evtenabled VARCHAR, evttags VARCHAR[]",
	"pg_range":                 "rngtypid BIGINT, rngsubtype BIGINT, rngmultitypid BIGINT, rngcollation BIGINT, rngsubopc BIGINT, rngcanonical VARCHAR, rngsubdiff VARCHAR",
	"pg_shdescription":         "objoid BIGINT, classoid BIGINT, description VARCHAR",
	"pg_auth_members":          "oid BIGINT, roleid BIGINT, member BIGINT, grantor BIGINT, admin_option BOOLEAN",
	"pg_stat_activity":         "datid BIGINT, datname VARCHAR, pid INTEGER, usesysid BIGINT, usename VARCHAR, application_name VARCHAR, client_addr VARCHAR, client_port INTEGER, backend_start TIMESTAMPTZ, xact_start TIMESTAMPTZ, query_start TIMESTAMPTZ, state_change TIMESTAMPTZ, wait_event_type VARCHAR, wait_event VARCHAR, state VARCHAR, backend_xid BIGINT, backend_xmin BIGINT, query VARCHAR, backend_type VARCHAR",
	"pg_locks":                 "locktype VARCHAR, database BIGINT, relation BIGINT, pid INTEGER, mode VARCHAR, granted BOOLEAN",
	"pg_opclass":               "oid BIGINT, opcmethod BIGINT, opcname VARCHAR, opcnamespace BIGINT, opcowner BIGINT, opcfamily BIGINT, opcintype BIGINT, opcdefault BOOLEAN, opckeytype BIGINT",
	"pg_operator":              "oid BIGINT, oprname VARCHAR, oprnamespace BIGINT, oprowner BIGINT, oprkind VARCHAR, oprleft BIGINT, oprright BIGINT, oprresult BIGINT",
	"pg_cast":                  "oid BIGINT, castsource BIGINT, casttarget BIGINT, castfunc BIGINT, castcontext VARCHAR, castmethod VARCHAR",
	"pg_conversion":            "oid BIGINT, conname VARCHAR, connamespace BIGINT, conowner BIGINT, conforencoding INTEGER, contoencoding INTEGER, conproc BIGINT, condefault BOOLEAN",
	"pg_language":              "oid BIGINT, lanname VARCHAR, lanowner BIGINT, lanispl BOOLEAN, lanpltrusted BOOLEAN",
}

// extraTypes are PostgreSQL types DuckDB's pg_type lacks but results use (text, json, arrays).
var extraTypes = [][3]any{
	{oidText, "text", -1}, {oidJSON, "json", -1}, {oidInt2, "int2", 2}, {oidFloat4, "float4", 4}, {oidBytea, "bytea", -1},
	{oidTime, "time", 8}, {oidTimestamp, "timestamp", 8}, {oidInterval, "interval", 16}, {oidTimeTZ, "timetz", 12},
	{1000, "_bool", -1}, {1001, "_bytea", -1}, {1005, "_int2", -1}, {1007, "_int4", -1}, {1009, "_text", -1},
	{1015, "_varchar", -1}, {1016, "_int8", -1}, {1021, "_float4", -1}, {1022, "_float8", -1}, {1182, "_date", -1},
	{1183, "_time", -1}, {1115, "_timestamp", -1}, {1185, "_timestamptz", -1}, {1187, "_interval", -1},
	{1231, "_numeric", -1}, {2951, "_uuid", -1}, {199, "_json", -1}, {19, "name", 64}, {26, "oid", 4},
	{18, "char", 1}, {2205, "regclass", 4}, {2206, "regtype", 4}, {24, "regproc", 4}, {3802, "jsonb", -1},
}

// compatRelations are the relation names rewrite redirects to the compatibility catalog.
var compatRelations = func() map[string]bool {
	m := map[string]bool{"pg_class": true, "pg_type": true, "pg_database": true, "pg_roles": true, "pg_user": true,
		"pg_authid": true, "pg_stat_user_tables": true, "pg_statio_user_tables": true, "pg_tables": true, "pg_views": true,
		"pg_settings": true}
	for k := range emptyRelations {
		m[k] = true
	}
	return m
}()

// compatSQL returns the statements that create the compatibility objects in catalog.
func compatSQL(catalog string) []string {
	var out []string
	for name, cols := range emptyRelations {
		out = append(out, fmt.Sprintf("CREATE OR REPLACE TEMPORARY TABLE %s.main.%s (%s)", catalog, name, cols))
	}
	var types []string
	for _, t := range extraTypes {
		types = append(types, fmt.Sprintf("(%d, '%s', %d)", t[0], t[1], t[2]))
	}
	// Objects of the warehouse only: not DuckDB's internal views, nor this catalog's.
	visible := `oid IN (SELECT table_oid FROM duckdb_tables() WHERE database_name = current_database() AND NOT internal
		UNION ALL SELECT view_oid FROM duckdb_views() WHERE database_name = current_database() AND NOT internal)`
	out = append(out,
		fmt.Sprintf(`CREATE OR REPLACE TEMPORARY VIEW %s.main.pg_class AS
			SELECT *, false AS relforcerowsecurity FROM pg_catalog.pg_class
			WHERE relkind NOT IN ('r', 'v') OR %s`, catalog, visible),
		fmt.Sprintf(`CREATE OR REPLACE TEMPORARY VIEW %[1]s.main.pg_type AS
			SELECT oid, typname, typnamespace, typowner, typlen, typbyval, typtype, typcategory, typispreferred, typisdefined,
			       typdelim, typrelid, typsubscript, typelem, typarray, typinput, typoutput, typreceive, typsend, typmodin,
			       typmodout, typanalyze, typalign, typstorage, typnotnull, typbasetype, typtypmod, typndims, typcollation,
			       typdefaultbin, typdefault, typacl
			FROM pg_catalog.pg_type WHERE oid NOT IN (SELECT col0 FROM (VALUES %[2]s))
			UNION ALL
			SELECT col0, col1, (SELECT oid FROM pg_catalog.pg_namespace LIMIT 1), 10, col2, col2 > 0,
			       CASE WHEN col1 LIKE '\_%%' ESCAPE '\' THEN 'b' ELSE 'b' END,
			       CASE WHEN col1 LIKE '\_%%' ESCAPE '\' THEN 'A' ELSE 'U' END, false, true, ',', 0, NULL, 0, 0,
			       NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'i', 'p', false, 0, -1, 0, 0, NULL, NULL, NULL
			FROM (VALUES %[2]s)`, catalog, strings.Join(types, ", ")),
		fmt.Sprintf(`CREATE OR REPLACE TEMPORARY VIEW %s.main.pg_database AS
			SELECT oid, datname, 10::BIGINT AS datdba, 6 AS encoding, 'c' AS datlocprovider, datistemplate, datallowconn,
			       -1 AS datconnlimit, 0::BIGINT AS datlastsysoid, 0::BIGINT AS datfrozenxid, 0::BIGINT AS datminmxid,
			       1663::BIGINT AS dattablespace, 'C' AS datcollate, 'C' AS datctype, NULL::VARCHAR AS daticulocale,
			       NULL::VARCHAR AS daticurules, NULL::VARCHAR AS datcollversion, NULL::VARCHAR[] AS datacl
			FROM pg_catalog.pg_database WHERE datname = current_database()`, catalog),
		fmt.Sprintf(`CREATE OR REPLACE TEMPORARY VIEW %s.main.pg_roles AS
			SELECT 10::BIGINT AS oid, current_user AS rolname, false AS rolsuper, true AS rolinherit, false AS rolcreaterole,
			       false AS rolcreatedb, true AS rolcanlogin, false AS rolreplication, -1 AS rolconnlimit,
			       '********' AS rolpassword, NULL::TIMESTAMPTZ AS rolvaliduntil, false AS rolbypassrls, NULL::VARCHAR[] AS rolconfig`, catalog),
		fmt.Sprintf(`CREATE OR REPLACE TEMPORARY VIEW %s.main.pg_authid AS SELECT * FROM %[1]s.main.pg_roles`, catalog),
		fmt.Sprintf(`CREATE OR REPLACE TEMPORARY VIEW %s.main.pg_user AS
			SELECT current_user AS usename, 10::BIGINT AS usesysid, false AS usecreatedb, false AS usesuper, false AS userepl,
			       false AS usebypassrls, '********' AS passwd, NULL::TIMESTAMPTZ AS valuntil, NULL::VARCHAR[] AS useconfig`, catalog),
		fmt.Sprintf(`CREATE OR REPLACE TEMPORARY VIEW %s.main.pg_tables AS
			SELECT schema_name AS schemaname, table_name AS tablename, 'syncer' AS tableowner, NULL::VARCHAR AS tablespace,
			       has_primary_key AS hasindexes, false AS hasrules, false AS hastriggers, false AS rowsecurity
			FROM duckdb_tables() WHERE database_name = current_database() AND NOT internal`, catalog),
		fmt.Sprintf(`CREATE OR REPLACE TEMPORARY VIEW %s.main.pg_views AS
			SELECT schema_name AS schemaname, view_name AS viewname, 'syncer' AS viewowner, sql AS definition
			FROM duckdb_views() WHERE database_name = current_database() AND NOT internal`, catalog),
		fmt.Sprintf(`CREATE OR REPLACE TEMPORARY VIEW %s.main.pg_stat_user_tables AS
			SELECT table_oid AS relid, schema_name AS schemaname, table_name AS relname, 0::BIGINT AS seq_scan,
			       0::BIGINT AS seq_tup_read, 0::BIGINT AS idx_scan, 0::BIGINT AS idx_tup_fetch, 0::BIGINT AS n_tup_ins,
			       0::BIGINT AS n_tup_upd, 0::BIGINT AS n_tup_del, estimated_size::BIGINT AS n_live_tup, 0::BIGINT AS n_dead_tup,
			       NULL::TIMESTAMPTZ AS last_vacuum, NULL::TIMESTAMPTZ AS last_autovacuum, NULL::TIMESTAMPTZ AS last_analyze,
			       NULL::TIMESTAMPTZ AS last_autoanalyze
			FROM duckdb_tables() WHERE database_name = current_database() AND NOT internal`, catalog),
		fmt.Sprintf(`CREATE OR REPLACE TEMPORARY VIEW %s.main.pg_statio_user_tables AS
			SELECT relid, schemaname, relname, 0::BIGINT AS heap_blks_read, 0::BIGINT AS heap_blks_hit FROM %[1]s.main.pg_stat_user_tables`, catalog),
		fmt.Sprintf(`CREATE OR REPLACE TEMPORARY VIEW %s.main.pg_settings AS
			SELECT name, setting, NULL::VARCHAR AS unit, 'Settings' AS category, short_desc, NULL::VARCHAR AS extra_desc,
			       'user' AS context, vartype, 'default' AS source, NULL::VARCHAR AS min_val, NULL::VARCHAR AS max_val,
			       NULL::VARCHAR[] AS enumvals, setting AS boot_val, setting AS reset_val, false AS pending_restart
			FROM pg_catalog.pg_settings`, catalog),
	)
	for name, def := range compatFunctions {
		if name == "version" {
			def = fmt.Sprintf("() AS 'PostgreSQL %s (marketsync syncer serve, DuckDB %s) on x86_64-pc-linux-gnu, 64-bit'", ServerVersion, bindings.LibraryVersion())
		}
		out = append(out, fmt.Sprintf("CREATE OR REPLACE TEMPORARY MACRO %s.main.%s%s", catalog, name, strings.ReplaceAll(def, "_pg.main.", catalog+".main.")))
	}
	return out
}

// castKeywords are PostgreSQL object-identifier types DuckDB has no type for.
var oidCasts = map[string]string{"regclass": "regclass_oid", "regtype": "regtype_oid", "regnamespace": "regnamespace_oid",
	"regproc": "", "regprocedure": "", "regrole": "", "oid": "", "regoper": "", "regconfig": ""}

// rewrite returns the statement's text for DuckDB: references to the compatibility objects
// point to catalog, PostgreSQL-only syntax psql sends (OPERATOR(pg_catalog.~), COLLATE
// pg_catalog.default, ::regclass) is translated, and current_setting('x') of a session
// setting becomes its value.
func rewrite(st statement, catalog string, params map[string]string) string {
	toks := aliasColumns(st.toks)
	var b strings.Builder
	// sig returns the index of the next significant token at or after i.
	sig := func(i int) int {
		for i < len(toks) && toks[i].kind == tokSpace {
			i++
		}
		return i
	}
	prevSig := func(i int) int {
		i--
		for i >= 0 && toks[i].kind == tokSpace {
			i--
		}
		return i
	}
	isPunct := func(i int, s string) bool {
		return i >= 0 && i < len(toks) && toks[i].kind == tokPunct && toks[i].text == s
	}
	for i := 0; i < len(toks); i++ {
		t := toks[i]
		w := t.word()
		// OPERATOR(pg_catalog.~) -> ~
		if t.kind == tokWord && w == "operator" && isPunct(sig(i+1), "(") {
			j := sig(sig(i+1) + 1)
			if j < len(toks) && toks[j].word() == "pg_catalog" && isPunct(sig(j+1), ".") {
				j = sig(sig(j+1) + 1)
			}
			if j < len(toks) && toks[j].kind == tokPunct && isPunct(sig(j+1), ")") {
				b.WriteString(toks[j].text)
				i = sig(j + 1)
				continue
			}
		}
		// COLLATE pg_catalog.default / COLLATE "default" / COLLATE "C" -> (nothing)
		if t.kind == tokWord && w == "collate" {
			j := sig(i + 1)
			if j < len(toks) && toks[j].word() == "pg_catalog" && isPunct(sig(j+1), ".") {
				j = sig(sig(j+1) + 1)
			}
			if j < len(toks) && (toks[j].word() == "default" || toks[j].word() == "C" || toks[j].word() == "POSIX") {
				i = j
				continue
			}
		}
		// ::[pg_catalog.]regclass after a string literal -> catalog lookup; after anything else
		// the cast is dropped (the value is already the oid).
		if t.kind == tokPunct && t.text == "::" {
			j := sig(i + 1)
			if j < len(toks) && toks[j].word() == "pg_catalog" && isPunct(sig(j+1), ".") {
				j = sig(sig(j+1) + 1)
			}
			if j < len(toks) {
				if fn, ok := oidCasts[toks[j].word()]; ok {
					p := prevSig(i)
					if fn != "" && p >= 0 && toks[p].kind == tokString {
						// already written: wrap by rewriting the output tail
						out := b.String()
						lit := toks[p].text
						if k := strings.LastIndex(out, lit); k >= 0 {
							b.Reset()
							b.WriteString(out[:k] + catalog + ".main." + fn + "(" + lit + ")")
						}
					} else if !(p >= 0 && toks[p].kind == tokString && toks[j].word() != "oid") {
						b.WriteString("::BIGINT")
					} // a literal named function or role stays a string: pg_type.typinput is text here
					i = j
					continue
				}
				// ::pg_catalog.text -> ::text
				if toks[sig(i+1)].word() == "pg_catalog" {
					b.WriteString("::")
					i = sig(sig(i+1) + 1)
					continue
				}
			}
		}
		if t.kind == tokWord || t.kind == tokQuoted {
			p := prevSig(i)
			afterDot := isPunct(p, ".")
			next := sig(i + 1)
			// pg_catalog.X / information_schema.X
			if (w == "pg_catalog") && isPunct(next, ".") && !afterDot {
				k := sig(next + 1)
				if k < len(toks) {
					name := toks[k].word()
					call := isPunct(sig(k+1), "(")
					if (call && hasCompatFunction(name)) || (!call && compatRelations[name]) {
						b.WriteString(catalog + ".main." + name)
						i = k
						continue
					}
					if call { // DuckDB resolves its functions by name; pg_catalog has only some
						i = k - 1
						continue
					}
				}
			}
			if !afterDot && !isPunct(next, ".") {
				call := isPunct(next, "(")
				switch {
				case call && w == "current_setting":
					// current_setting('name') of a session setting -> its value
					a := sig(next + 1)
					c := sig(a + 1)
					if a < len(toks) && toks[a].kind == tokString && isPunct(c, ")") {
						name := strings.ToLower(strings.Trim(toks[a].text, "'"))
						if v, ok := params[name]; ok {
							b.WriteString("'" + strings.ReplaceAll(v, "'", "''") + "'")
							i = c
							continue
						}
					}
				case call && hasCompatFunction(w) && t.kind == tokWord:
					b.WriteString(catalog + ".main." + w)
					continue
				case !call && compatRelations[w] && t.kind == tokWord && isRelationPosition(toks, p):
					b.WriteString(catalog + ".main." + w)
					continue
				}
			}
		}
		b.WriteString(t.text)
	}
	return b.String()
}

// isRelationPosition reports whether the token after p names a relation (follows FROM, JOIN or
// a comma in a FROM list), so a column that happens to be called pg_type is left alone.
func isRelationPosition(toks []token, p int) bool {
	if p < 0 {
		return false
	}
	switch toks[p].word() {
	case "from", "join":
		return true
	}
	return toks[p].kind == tokPunct && toks[p].text == ","
}

func hasCompatFunction(name string) bool {
	_, ok := compatFunctions[name]
	return ok
}

// aliasColumns gives a single-column set-returning function's table alias a column alias of
// the same name, as PostgreSQL does: FROM generate_series(1, 3) s ... s is then the value.
func aliasColumns(toks []token) []token {
	out := make([]token, 0, len(toks)+4)
	for i := 0; i < len(toks); i++ {
		out = append(out, toks[i])
		w := toks[i].word()
		if toks[i].kind != tokWord || (w != "generate_series" && w != "unnest" && w != "generate_subscripts") {
			continue
		}
		j := i + 1
		for j < len(toks) && toks[j].kind == tokSpace {
			j++
		}
		if j >= len(toks) || toks[j].text != "(" {
			continue
		}
		depth := 0
		k := j
		for ; k < len(toks); k++ {
			if toks[k].text == "(" {
				depth++
			} else if toks[k].text == ")" {
				depth--
				if depth == 0 {
					break
				}
			}
		}
		if k >= len(toks) {
			continue
		}
		a := k + 1
		for a < len(toks) && toks[a].kind == tokSpace {
			a++
		}
		if a < len(toks) && toks[a].word() == "as" {
			for a++; a < len(toks) && toks[a].kind == tokSpace; a++ {
			}
		}
		if a >= len(toks) || toks[a].kind != tokWord || sqlKeywords[toks[a].word()] {
			continue
		}
		n := a + 1
		for n < len(toks) && toks[n].kind == tokSpace {
			n++
		}
		if n < len(toks) && toks[n].text == "(" {
			continue // already has column aliases
		}
		out = append(out, toks[i+1:a+1]...)
		out = append(out, token{kind: tokPunct, text: "("}, toks[a], token{kind: tokPunct, text: ")"})
		i = a
	}
	return out
}

var sqlKeywords = map[string]bool{"where": true, "on": true, "join": true, "left": true, "right": true, "inner": true,
	"cross": true, "full": true, "group": true, "order": true, "limit": true, "union": true, "with": true, "offset": true,
	"having": true, "window": true, "using": true, "natural": true, "lateral": true, "except": true, "intersect": true,
	"from": true, "select": true, "and": true, "or": true, "then": true, "else": true, "end": true, "when": true, "is": true, "in": true}
