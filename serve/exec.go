package serve

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	bindings "github.com/duckdb/duckdb-go-bindings"
	"github.com/jackc/pgx/v5/pgproto3"
)

// action is what a statement does on a reader connection.
type action int

const (
	actQuery    action = iota // run by DuckDB
	actBegin                  // open a transaction block
	actCommit                 // end it
	actRollback               // end it
	actTag                    // accepted with no effect beyond the session (SET, RESET, DISCARD ...)
	actRows                   // answered by the server itself (SHOW)
	actDeallocate
)

// pstmt is a planned statement (a prepared statement of the extended protocol, or one
// statement of a simple Query).
type pstmt struct {
	act       action
	tag       string // command tag of actTag / actBegin / ...
	text      string // the statement as DuckDB runs it
	p         *prepared
	paramOIDs []uint32
	cols      []string   // actRows
	rows      [][]string // actRows
	apply     func()     // session change of an actTag statement, applied when it executes
	name      string     // actDeallocate
}

func (ps *pstmt) close() {
	if ps != nil && ps.p != nil {
		ps.p.close()
		ps.p = nil
	}
}

// portal is a bound statement ready to execute.
type portal struct {
	ps      *pstmt
	owned   bool // the portal owns ps (an unnamed simple-protocol statement)
	params  []param
	formats []int16
	cur     *cursor
	enc     []encoder
	rec     arrow.RecordBatch // current chunk
	row     int               // next row of rec
	sent    int64
	started bool
	done    bool
}

func (p *portal) close() {
	if p.rec != nil {
		p.rec.Release()
		p.rec = nil
	}
	p.cur.close()
	p.cur = nil
}

// Statements refused as writes (SQLSTATE 25006) and as other privileged operations (42501).
var (
	writeKeywords = map[string]bool{"insert": true, "update": true, "delete": true, "merge": true, "upsert": true,
		"create": true, "drop": true, "alter": true, "truncate": true, "comment": true, "replace": true, "grant": true,
		"revoke": true, "reindex": true, "cluster": true, "refresh": true, "lock": true}
	privilegedKeywords = map[string]string{
		"copy": "COPY", "attach": "ATTACH", "detach": "DETACH", "install": "INSTALL", "load": "LOAD", "force": "FORCE INSTALL",
		"pragma": "PRAGMA", "call": "CALL", "checkpoint": "CHECKPOINT", "export": "EXPORT DATABASE", "import": "IMPORT DATABASE",
		"vacuum": "VACUUM", "analyze": "ANALYZE", "use": "USE", "update_extensions": "UPDATE EXTENSIONS", "do": "DO",
	}
	queryKeywords = map[string]bool{"select": true, "with": true, "values": true, "table": true, "from": true,
		"explain": true, "describe": true, "desc": true, "summarize": true, "show": true}
	// Functions with global side effects, refused by name wherever they are called: they would
	// checkpoint or abort the sync's transaction, change logging or profiling for the whole
	// database, read raw memory (arrow_scan), or run serialized plans that bypass these checks.
	deniedFunctions = map[string]bool{
		"checkpoint": true, "force_checkpoint": true, "enable_logging": true, "disable_logging": true,
		"truncate_duckdb_logs": true, "write_log": true, "enable_profiling": true, "disable_profiling": true,
		"enable_peg_parser": true, "disable_peg_parser": true, "check_peg_parser": true, "arrow_scan": true,
		"arrow_scan_dumb": true, "json_execute_serialized_sql": true, "query": true,
	}
)

const readOnlyHint = "syncer serve is read-only: the warehouse is written only by its scheduled syncs"

func refuseWrite(what string) error {
	return &pgError{code: "25006", msg: fmt.Sprintf("cannot execute %s in a read-only transaction", what), hint: readOnlyHint}
}

func refusePrivileged(what string) error {
	return &pgError{code: "42501", msg: fmt.Sprintf("permission denied: %s is not allowed on reader connections", what), hint: readOnlyHint}
}

// plan classifies a statement and, for queries, prepares it in DuckDB.
func (ss *session) plan(st statement) (*pstmt, error) {
	kw := st.keyword(0)
	if kw == "" {
		w := st.words()
		if len(w) > 0 && w[0].text == "(" {
			kw = "select"
		}
	}
	switch {
	case kw == "begin" || kw == "start":
		for _, t := range st.words() {
			if t.word() == "write" {
				return nil, refuseWrite("BEGIN READ WRITE")
			}
		}
		return &pstmt{act: actBegin, tag: "BEGIN"}, nil
	case kw == "commit" || kw == "end":
		return &pstmt{act: actCommit, tag: "COMMIT"}, nil
	case kw == "rollback" || kw == "abort":
		if st.keyword(1) == "to" {
			return &pstmt{act: actTag, tag: "ROLLBACK"}, nil
		}
		return &pstmt{act: actRollback, tag: "ROLLBACK"}, nil
	case kw == "savepoint":
		return &pstmt{act: actTag, tag: "SAVEPOINT"}, nil
	case kw == "release":
		return &pstmt{act: actTag, tag: "RELEASE"}, nil
	case kw == "set":
		return ss.planSet(st)
	case kw == "reset":
		name := strings.ToLower(strings.Join(wordTexts(st.words()[1:]), " "))
		if name == "all" {
			return &pstmt{act: actTag, tag: "RESET", apply: func() { ss.params = defaultParams(ss.user) }}, nil
		}
		if _, ok := sessionParams[name]; !ok {
			return nil, refusePrivileged("RESET " + name)
		}
		return &pstmt{act: actTag, tag: "RESET", apply: func() { ss.params[name] = defaultParams(ss.user)[name] }}, nil
	case kw == "show":
		if ps := ss.planShow(st); ps != nil {
			return ps, nil
		}
	case kw == "discard":
		return &pstmt{act: actTag, tag: "DISCARD ALL"}, nil
	case kw == "deallocate":
		w := st.words()
		name := ""
		if len(w) > 1 {
			name = w[len(w)-1].word()
		}
		return &pstmt{act: actDeallocate, tag: "DEALLOCATE", name: name}, nil
	case kw == "unlisten":
		return &pstmt{act: actTag, tag: "UNLISTEN"}, nil
	case kw == "listen" || kw == "notify" || kw == "declare" || kw == "fetch" || kw == "move" || kw == "close" ||
		kw == "prepare" || kw == "execute":
		return nil, &pgError{code: "0A000", msg: fmt.Sprintf("%s is not supported by syncer serve", strings.ToUpper(kw)),
			hint: "use the extended query protocol for prepared statements and fetch sizes"}
	case writeKeywords[kw]:
		return nil, refuseWrite(strings.ToUpper(kw))
	case privilegedKeywords[kw] != "":
		return nil, refusePrivileged(privilegedKeywords[kw])
	}
	if !queryKeywords[kw] {
		return nil, refusePrivileged(fmt.Sprintf("a statement starting with %q", firstText(st)))
	}
	if kw == "explain" && !explainsAQuery(st) {
		return nil, refusePrivileged("EXPLAIN [ANALYZE] of anything but a query")
	}
	for _, f := range st.calls() {
		if deniedFunctions[f] {
			return nil, refusePrivileged(f + "()")
		}
	}
	text := rewrite(st, ss.srv.wh.compat, ss.params)
	p, err := ss.db.prepare(text)
	if err != nil {
		return nil, err
	}
	switch p.kind {
	case bindings.StatementTypeSelect, bindings.StatementTypeExplain:
	case bindings.StatementTypeInsert, bindings.StatementTypeUpdate, bindings.StatementTypeDelete, bindings.StatementTypeCreate,
		bindings.StatementTypeDrop, bindings.StatementTypeAlter:
		p.close()
		return nil, refuseWrite("this statement")
	default:
		p.close()
		return nil, refusePrivileged("this statement")
	}
	ps := &pstmt{act: actQuery, text: text, p: p, tag: "SELECT"}
	if kw == "explain" {
		ps.tag = "EXPLAIN"
	}
	casts := st.paramCasts()
	for i, t := range p.params {
		oid := t.oid()
		if oid == 0 {
			oid = casts[i+1] // $1::BIGINT: DuckDB leaves the parameter untyped; the cast says it
		}
		ps.paramOIDs = append(ps.paramOIDs, oid)
	}
	// DuckDB numbers parameters by use; a statement that uses $3 but not $2 still takes 3.
	for len(ps.paramOIDs) < st.maxParam() {
		ps.paramOIDs = append(ps.paramOIDs, 0)
	}
	return ps, nil
}

func wordTexts(ts []token) []string {
	out := make([]string, 0, len(ts))
	for _, t := range ts {
		out = append(out, t.text)
	}
	return out
}

func firstText(st statement) string {
	if w := st.words(); len(w) > 0 {
		return w[0].text
	}
	return ""
}

// fields describes a planned statement's result columns (nil: none).
func (ps *pstmt) fields(formats []int16) []pgproto3.FieldDescription {
	switch ps.act {
	case actRows:
		out := make([]pgproto3.FieldDescription, len(ps.cols))
		for i, c := range ps.cols {
			out[i] = pgproto3.FieldDescription{Name: []byte(c), DataTypeOID: oidText, DataTypeSize: -1, TypeModifier: -1}
		}
		return out
	case actQuery:
		if len(ps.p.cols) == 0 {
			return nil
		}
		out := make([]pgproto3.FieldDescription, len(ps.p.cols))
		for i, c := range ps.p.cols {
			oid := c.typ.oid()
			if oid == 0 {
				oid = oidText
			}
			size, ok := typeSize[oid]
			if !ok {
				size = -1
			}
			mod := int32(-1)
			if c.typ.id == bindings.TypeDecimal {
				mod = (int32(c.typ.width)<<16 | int32(c.typ.scale)) + 4
			}
			out[i] = pgproto3.FieldDescription{Name: []byte(c.name), DataTypeOID: oid, DataTypeSize: size, TypeModifier: mod,
				Format: formatOf(formats, i, oid)}
		}
		return out
	}
	return nil
}

// formatOf is the result format of column i: Bind gives none (all text), one (for all) or one
// per column. Binary is used only where the server can encode it.
func formatOf(formats []int16, i int, oid uint32) int16 {
	f := int16(0)
	switch {
	case len(formats) == 1:
		f = formats[0]
	case i < len(formats):
		f = formats[i]
	}
	if f == 1 && !binaryOK(oid) {
		return 0
	}
	return f
}

// runPortal executes a portal: up to maxRows rows (0: all), with the row description first
// when describe is set (the simple protocol; the extended one sends it on Describe).
func (ss *session) runPortal(p *portal, maxRows uint32, describe bool) error {
	ps := p.ps
	switch ps.act {
	case actBegin:
		if ss.tx != txIdle {
			ss.be.Send(&pgproto3.NoticeResponse{Severity: "WARNING", Code: "25001", Message: "there is already a transaction in progress"})
		} else {
			if ss.implicit {
				ss.implicit = false // the implicit transaction becomes the block
			} else if err := ss.db.exec("BEGIN TRANSACTION READ ONLY"); err != nil {
				return err
			}
			ss.tx = txInBlock
		}
	case actCommit, actRollback:
		tag := ps.tag
		if ss.tx == txFailed {
			tag = "ROLLBACK"
		}
		if ss.tx == txIdle {
			ss.be.Send(&pgproto3.NoticeResponse{Severity: "WARNING", Code: "25P01", Message: "there is no transaction in progress"})
		}
		ss.endTx(ps.act == actCommit)
		ss.be.Send(&pgproto3.CommandComplete{CommandTag: []byte(tag)})
		return nil
	case actTag:
		if ps.apply != nil {
			ps.apply()
		}
	case actDeallocate:
		if ps.name == "all" {
			for k, v := range ss.stmts {
				v.close()
				delete(ss.stmts, k)
			}
		} else if v, ok := ss.stmts[ps.name]; ok {
			v.close()
			delete(ss.stmts, ps.name)
		}
	case actRows:
		if describe {
			ss.be.Send(&pgproto3.RowDescription{Fields: ps.fields(nil)})
		}
		for _, r := range ps.rows {
			vals := make([][]byte, len(r))
			for i, v := range r {
				vals[i] = []byte(v)
			}
			ss.be.Send(&pgproto3.DataRow{Values: vals})
		}
		ss.be.Send(&pgproto3.CommandComplete{CommandTag: []byte("SHOW")})
		return nil
	case actQuery:
		return ss.runQuery(p, maxRows, describe)
	}
	ss.be.Send(&pgproto3.CommandComplete{CommandTag: []byte(ps.tag)})
	return nil
}

func (ss *session) runQuery(p *portal, maxRows uint32, describe bool) error {
	if p.done {
		ss.be.Send(&pgproto3.CommandComplete{CommandTag: []byte(fmt.Sprintf("%s %d", p.ps.tag, p.sent))})
		return nil
	}
	ctx, done := ss.queryContext()
	defer done()
	if !p.started {
		if err := ss.ensureTx(); err != nil {
			return err
		}
		if err := p.ps.p.bind(p.params); err != nil {
			return err
		}
		fields := p.ps.fields(p.formats)
		if describe && fields != nil {
			ss.be.Send(&pgproto3.RowDescription{Fields: fields})
		}
		p.enc = make([]encoder, len(fields))
		for i, f := range fields {
			p.enc[i] = newEncoder(f.DataTypeOID, f.Format == 1)
		}
		cur, err := ss.db.open(ctx, p.ps.p)
		if err != nil {
			return err
		}
		p.cur, p.started = cur, true
	}
	var n uint32
	var buf []byte
	for {
		if p.rec == nil || p.row >= int(p.rec.NumRows()) {
			if p.rec != nil {
				p.rec.Release()
				p.rec = nil
			}
			rec, err := p.cur.next(ctx)
			if err != nil {
				return err
			}
			if rec == nil {
				break
			}
			p.rec, p.row = rec, 0
		}
		if maxRows > 0 && n >= maxRows {
			ss.be.Send(&pgproto3.PortalSuspended{})
			return nil
		}
		buf = encodeRow(buf[:0], p.rec, p.row, p.enc)
		if err := ss.send(rawMessage(buf), len(buf)); err != nil {
			return err
		}
		p.row++
		p.sent++
		n++
	}
	p.done = true
	p.close()
	ss.be.Send(&pgproto3.CommandComplete{CommandTag: []byte(fmt.Sprintf("%s %d", p.ps.tag, p.sent))})
	return nil
}

// encodeRow writes a complete DataRow message for one row.
func encodeRow(b []byte, rec arrow.RecordBatch, row int, enc []encoder) []byte {
	b = append(b, 'D', 0, 0, 0, 0)
	b = append(b, byte(len(enc)>>8), byte(len(enc)))
	for c, e := range enc {
		col := rec.Column(c)
		if col.IsNull(row) {
			b = append(b, 0xff, 0xff, 0xff, 0xff)
			continue
		}
		at := len(b)
		b = append(b, 0, 0, 0, 0)
		b = e(b, col, row)
		n := len(b) - at - 4
		b[at], b[at+1], b[at+2], b[at+3] = byte(n>>24), byte(n>>16), byte(n>>8), byte(n)
	}
	n := len(b) - 1
	b[1], b[2], b[3], b[4] = byte(n>>24), byte(n>>16), byte(n>>8), byte(n)
	return b
}

// rawMessage is an already encoded backend message.
type rawMessage []byte

func (rawMessage) Backend()                            {}
func (m rawMessage) Encode(dst []byte) ([]byte, error) { return append(dst, m...), nil }
func (rawMessage) Decode([]byte) error                 { return errors.New("rawMessage is send-only") }
func (m rawMessage) MarshalJSON() ([]byte, error)      { return []byte(strconv.Quote(string(m))), nil }
