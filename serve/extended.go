package serve

import (
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
)

// The extended query protocol: Parse, Bind, Describe, Execute, Close (Sync is in loop).

func (ss *session) parse(m *pgproto3.Parse) error {
	if m.Name != "" {
		if _, ok := ss.stmts[m.Name]; ok {
			return errorf("42P05", "prepared statement %q already exists", m.Name)
		}
	}
	stmts := splitStatements(m.Query)
	var ps *pstmt
	switch len(stmts) {
	case 0:
		ps = &pstmt{act: actTag, tag: ""}
	case 1:
		var err error
		if ps, err = ss.plan(stmts[0]); err != nil {
			return err
		}
	default:
		return errorf("42601", "cannot insert multiple commands into a prepared statement")
	}
	// The client's declared parameter types win where given.
	for i, oid := range m.ParameterOIDs {
		if oid == 0 {
			continue
		}
		for len(ps.paramOIDs) <= i {
			ps.paramOIDs = append(ps.paramOIDs, 0)
		}
		ps.paramOIDs[i] = oid
	}
	if old, ok := ss.stmts[m.Name]; ok { // the unnamed statement is replaced, with its portals
		for name, p := range ss.portals {
			if p.ps == old {
				p.close()
				delete(ss.portals, name)
			}
		}
		old.close()
	}
	ss.stmts[m.Name] = ps
	ss.be.Send(&pgproto3.ParseComplete{})
	return nil
}

func (ss *session) bind(m *pgproto3.Bind) error {
	ps, ok := ss.stmts[m.PreparedStatement]
	if !ok {
		return errorf("26000", "prepared statement %q does not exist", m.PreparedStatement)
	}
	if ss.tx == txFailed {
		return errorf("25P02", "current transaction is aborted, commands ignored until end of transaction block")
	}
	if m.DestinationPortal != "" {
		if _, ok := ss.portals[m.DestinationPortal]; ok {
			return errorf("42P03", "cursor %q already exists", m.DestinationPortal)
		}
	}
	want := len(ps.paramOIDs)
	if ps.p != nil {
		want = max(want, len(ps.p.params))
	}
	if len(m.Parameters) != want {
		return errorf("08P01", "bind message supplies %d parameters, but prepared statement requires %d", len(m.Parameters), want)
	}
	params := make([]param, len(m.Parameters))
	for i, v := range m.Parameters {
		f := int16(0)
		if len(m.ParameterFormatCodes) == 1 {
			f = m.ParameterFormatCodes[0]
		} else if i < len(m.ParameterFormatCodes) {
			f = m.ParameterFormatCodes[i]
		}
		switch {
		case v == nil:
			params[i] = param{null: true}
		case f == 0:
			params[i] = param{bytes: append([]byte(nil), v...)}
		default:
			oid := uint32(0)
			if i < len(ps.paramOIDs) {
				oid = ps.paramOIDs[i]
			}
			p, ok := decodeBinaryParam(oid, append([]byte(nil), v...))
			if !ok {
				return errorf("22P03", "parameter $%d: binary format of type %d is not supported; send it as text", i+1, oid)
			}
			params[i] = p
		}
	}
	if old, ok := ss.portals[m.DestinationPortal]; ok {
		old.close()
	}
	ss.portals[m.DestinationPortal] = &portal{ps: ps, params: params, formats: m.ResultFormatCodes}
	ss.be.Send(&pgproto3.BindComplete{})
	return nil
}

func (ss *session) describe(m *pgproto3.Describe) error {
	switch m.ObjectType {
	case 'S':
		ps, ok := ss.stmts[m.Name]
		if !ok {
			return errorf("26000", "prepared statement %q does not exist", m.Name)
		}
		oids := ps.paramOIDs
		if oids == nil {
			oids = []uint32{}
		}
		// Parameters DuckDB could not type are described as text: the client sends text.
		desc := make([]uint32, len(oids))
		for i, o := range oids {
			if o == 0 {
				o = oidText
			}
			desc[i] = o
		}
		ss.be.Send(&pgproto3.ParameterDescription{ParameterOIDs: desc})
		ss.sendRowDescription(ps.fields(nil))
	case 'P':
		p, ok := ss.portals[m.Name]
		if !ok {
			return errorf("34000", "portal %q does not exist", m.Name)
		}
		ss.sendRowDescription(p.ps.fields(p.formats))
	default:
		return errorf("08P01", "invalid Describe object type %q", m.ObjectType)
	}
	return nil
}

func (ss *session) sendRowDescription(fields []pgproto3.FieldDescription) {
	if fields == nil {
		ss.be.Send(&pgproto3.NoData{})
		return
	}
	ss.be.Send(&pgproto3.RowDescription{Fields: fields})
}

func (ss *session) execute(m *pgproto3.Execute) error {
	p, ok := ss.portals[m.Portal]
	if !ok {
		return errorf("34000", "portal %q does not exist", m.Portal)
	}
	if ss.tx == txFailed && p.ps.act != actCommit && p.ps.act != actRollback {
		return errorf("25P02", "current transaction is aborted, commands ignored until end of transaction block")
	}
	if p.ps.act == actTag && p.ps.tag == "" {
		ss.be.Send(&pgproto3.EmptyQueryResponse{})
		return nil
	}
	start := time.Now()
	if err := ss.runPortal(p, m.MaxRows, false); err != nil {
		return err
	}
	if p.ps.act != actQuery || p.done {
		ss.srv.cfg.Metrics.query(time.Since(start), nil)
	}
	return nil
}

func (ss *session) closeObject(m *pgproto3.Close) error {
	switch m.ObjectType {
	case 'S':
		if ps, ok := ss.stmts[m.Name]; ok {
			for name, p := range ss.portals {
				if p.ps == ps {
					p.close()
					delete(ss.portals, name)
				}
			}
			ps.close()
			delete(ss.stmts, m.Name)
		}
	case 'P':
		if p, ok := ss.portals[m.Name]; ok {
			p.close()
			delete(ss.portals, m.Name)
		}
	}
	ss.be.Send(&pgproto3.CloseComplete{})
	return nil
}
