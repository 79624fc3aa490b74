package serve

import (
	"sort"
	"strconv"
	"strings"
	"time"
)

// ServerVersion is what clients see as the PostgreSQL version: drivers and BI tools choose
// their catalog queries by it.
const ServerVersion = "15.0"

// sessionParams are the PostgreSQL settings a client may SET and SHOW; they change nothing in
// DuckDB (results are always UTF-8, ISO dates, UTC times), so accepting them is harmless.
// The value is the default ("" means taken from the session).
var sessionParams = map[string]string{
	"application_name": "", "client_encoding": "UTF8", "datestyle": "ISO, MDY", "timezone": "UTC",
	"intervalstyle": "postgres", "extra_float_digits": "1", "search_path": `"$user", public`,
	"statement_timeout": "0", "lock_timeout": "0", "idle_in_transaction_session_timeout": "0",
	"standard_conforming_strings": "on", "bytea_output": "hex", "client_min_messages": "notice",
	"default_transaction_isolation": "read committed", "transaction_isolation": "read committed",
	"default_transaction_read_only": "on", "transaction_read_only": "on", "jit": "off", "work_mem": "4MB",
	"server_version": ServerVersion, "server_version_num": "150000", "server_encoding": "UTF8",
	"integer_datetimes": "on", "is_superuser": "off", "session_authorization": "", "in_hot_standby": "off",
	"max_identifier_length": "63", "lc_collate": "C", "lc_ctype": "C", "lc_messages": "C", "lc_monetary": "C",
	"lc_numeric": "C", "lc_time": "C", "row_security": "on", "geqo": "on", "enable_seqscan": "on",
	"max_parallel_workers_per_gather": "2", "synchronous_commit": "on", "default_with_oids": "off",
	"escape_string_warning": "on", "check_function_bodies": "on", "xmloption": "content",
	"tcp_keepalives_idle": "0", "tcp_keepalives_interval": "0", "tcp_keepalives_count": "0",
	"deadlock_timeout": "1s", "max_connections": "64", "block_size": "8192", "ssl": "off", "wal_level": "replica",
}

// readOnlyParams can be shown but not set.
var readOnlyParams = map[string]bool{"server_version": true, "server_version_num": true, "server_encoding": true,
	"integer_datetimes": true, "is_superuser": true, "in_hot_standby": true, "max_identifier_length": true,
	"lc_collate": true, "lc_ctype": true, "max_connections": true, "block_size": true, "ssl": true, "wal_level": true,
	"transaction_read_only": true}

func defaultParams(user string) map[string]string {
	m := make(map[string]string, len(sessionParams))
	for k, v := range sessionParams {
		m[k] = v
	}
	m["session_authorization"] = user
	return m
}

// planSet accepts SET of a PostgreSQL session setting (with no effect on DuckDB) and refuses
// every other SET: DuckDB settings are global or change what a reader can reach.
func (ss *session) planSet(st statement) (*pstmt, error) {
	w := st.words()[1:]
	if len(w) > 0 && (w[0].word() == "session" || w[0].word() == "local") && w[0].kind == tokWord {
		if len(w) > 1 && w[1].word() == "characteristics" {
			return ss.txCharacteristics(w)
		}
		w = w[1:]
	}
	if len(w) == 0 {
		return nil, errorf("42601", "syntax error at end of input")
	}
	name := w[0].word()
	var val []token
	switch {
	case name == "transaction":
		return ss.txCharacteristics(w)
	case name == "time" && len(w) > 1 && w[1].word() == "zone":
		name, val = "timezone", w[2:]
	case name == "names":
		name, val = "client_encoding", w[1:]
	case len(w) > 1 && (w[1].text == "=" || w[1].word() == "to"):
		val = w[2:]
	default:
		return nil, refusePrivileged("SET " + strings.Join(wordTexts(w), " "))
	}
	if _, ok := sessionParams[name]; !ok || readOnlyParams[name] {
		return nil, refusePrivileged("SET " + name)
	}
	v := paramValue(val)
	switch name {
	case "client_encoding":
		if u := strings.ToUpper(strings.ReplaceAll(v, "-", "")); u != "UTF8" && u != "UNICODE" && u != "DEFAULT" {
			return nil, errorf("22023", "client_encoding %q is not supported: results are UTF8", v)
		}
		v = "UTF8"
	case "standard_conforming_strings":
		if strings.ToLower(v) != "on" && strings.ToLower(v) != "true" {
			return nil, errorf("22023", "standard_conforming_strings is always on")
		}
	case "statement_timeout":
		if parseTimeout(v) < 0 {
			return nil, errorf("22023", "invalid value for parameter \"statement_timeout\": %q", v)
		}
	}
	if strings.EqualFold(v, "default") {
		v = defaultParams(ss.user)[name]
	}
	return &pstmt{act: actTag, tag: "SET", apply: func() { ss.params[name] = v }}, nil
}

// txCharacteristics accepts SET TRANSACTION / SET SESSION CHARACTERISTICS unless they ask for
// writes.
func (ss *session) txCharacteristics(w []token) (*pstmt, error) {
	for _, t := range w {
		if t.word() == "write" {
			return nil, refuseWrite("SET TRANSACTION READ WRITE")
		}
	}
	return &pstmt{act: actTag, tag: "SET"}, nil
}

func paramValue(ts []token) string {
	var parts []string
	for _, t := range ts {
		switch t.kind {
		case tokString:
			s := t.text
			if strings.HasPrefix(s, "'") && strings.HasSuffix(s, "'") && len(s) >= 2 {
				s = strings.ReplaceAll(s[1:len(s)-1], "''", "'")
			}
			parts = append(parts, s)
		case tokPunct:
			if t.text == "," {
				parts[len(parts)-1] += ","
				continue
			}
			parts = append(parts, t.text)
		default:
			parts = append(parts, t.text)
		}
	}
	return strings.Join(parts, " ")
}

// planShow answers SHOW of a session setting, SHOW ALL and SHOW TRANSACTION ISOLATION LEVEL;
// any other SHOW (DuckDB's SHOW TABLES) goes to DuckDB (nil).
func (ss *session) planShow(st statement) *pstmt {
	w := st.words()[1:]
	if len(w) == 0 {
		return nil
	}
	name := strings.ToLower(strings.Join(wordTexts(w), " "))
	switch name {
	case "transaction isolation level":
		name = "transaction_isolation"
	case "all":
		keys := make([]string, 0, len(ss.params))
		for k := range ss.params {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		ps := &pstmt{act: actRows, cols: []string{"name", "setting", "description"}}
		for _, k := range keys {
			ps.rows = append(ps.rows, []string{k, ss.params[k], ""})
		}
		return ps
	}
	v, ok := ss.params[name]
	if !ok {
		return nil
	}
	return &pstmt{act: actRows, cols: []string{name}, rows: [][]string{{v}}}
}

// parseTimeout reads a statement_timeout value (milliseconds, or with a unit); -1 if invalid.
func parseTimeout(v string) time.Duration {
	v = strings.TrimSpace(strings.ToLower(v))
	if v == "" || v == "0" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return time.Duration(n) * time.Millisecond
	}
	v = strings.ReplaceAll(v, " ", "")
	for _, u := range []struct {
		s string
		d time.Duration
	}{{"ms", time.Millisecond}, {"s", time.Second}, {"min", time.Minute}, {"h", time.Hour}} {
		if n, ok := strings.CutSuffix(v, u.s); ok {
			if f, err := strconv.ParseFloat(n, 64); err == nil && f >= 0 {
				return time.Duration(f * float64(u.d))
			}
		}
	}
	return -1
}
