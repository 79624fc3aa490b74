package apisim

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
)

// The AppReseller v1 family (source-apis.md §3.1.3, §3.2.3, §3.5.5): what a reseller partner
// reads instead of account v2 and assistedSales. The endpoints serve the same rows as the
// marketplace endpoints, in the AppReseller shapes:
//
//   - GET /api/appReseller/v1/companies: context required; page/size without documented
//     defaults or base (served zero-based [INFERRED], size default 50); a bare array of
//     Company {activated, createdOn, externalId, grantedAccesses, id, name, numOfUsers, phone}
//     with no page metadata; fromDate/toDate bound createdOn (epoch ms, inclusive [INFERRED]).
//   - GET /api/appReseller/v1/users: context required; page/size (zero-based [INFERRED], size
//     default 50); {content: [User {activated, companyId, createdOn, email, firstName, id,
//     invitationRequired, lastName, memberships}], page: {number, size, totalElements,
//     totalPages}}.
//   - GET /api/appReseller/v1/opportunities: context RESELLER or SSR (optional); number
//     (default 1) / size (default 10), createdOn gte()/lte(), sort, status as assistedSales;
//     the same wrapper and items without createdByUser.
//
// Every listing shows every row (the documents' visibility rules narrow what a reseller sees;
// the simulator does not), so a sync through either family can be compared with the same rows.

// resellerNames are the member names the AppReseller shapes use; oracleNames are the names the
// marketplace shapes (and so the warehouse's columns) give the same values: ResellerRows renders
// with them, independently of the extractor's renaming.
type resellerNames struct {
	id, created, phone string
	companyID          func(b []byte, id string) []byte
}

var (
	servedNames = resellerNames{id: "id", created: "createdOn", phone: "phone", companyID: func(b []byte, id string) []byte {
		b = append(b, `"companyId":`...)
		return appendStr(b, id)
	}}
	oracleNames = resellerNames{id: "uuid", created: "creationDate", phone: "phoneNumber", companyID: func(b []byte, id string) []byte {
		b = append(b, `"company":{"uuid":`...)
		return append(appendStr(b, id), '}')
	}}
)

// resellerCompany renders company i as the AppReseller Company, with the values of the
// marketplace company (name, enabled as activated, creation date, external id).
func (g *gen) resellerCompany(b []byte, t *table, i int, n resellerNames) []byte {
	h := rnd(g.seed, "companies", i, 3)
	b = append(b, `{"activated":`...)
	b = strconv.AppendBool(b, h%7 != 0)
	b = append(b, ',')
	b = appendKey(b, n.created)
	b = strconv.AppendInt(b, t.created(i), 10)
	b = append(b, `,"externalId":`...)
	b = appendStrOrNull(b, fmt.Sprintf("ext-%d", i), h%2 == 0)
	b = append(b, `,"grantedAccesses":[],`...)
	b = appendKey(b, n.id)
	b = appendStr(b, uuidOf(g.seed, "companies", i))
	b = append(b, `,"name":`...)
	b = appendStr(b, g.companyName(i))
	b = append(b, `,"numOfUsers":`...)
	b = strconv.AppendUint(b, 1+rnd(g.seed, "companies", i, 50)%40, 10)
	b = append(b, ',')
	b = appendKey(b, n.phone)
	b = appendStrOrNull(b, fmt.Sprintf("5550%06d", i), h%3 == 0)
	return append(b, '}')
}

// resellerUser renders user i as the AppReseller User, with the marketplace user's values.
func (g *gen) resellerUser(b []byte, t *table, i int, n resellerNames) []byte {
	h := rnd(g.seed, "users", i, 3)
	first, last := g.personName("users", i, 4)
	cj := g.companyRef("users", i, 5)
	cid := g.companyID(cj)
	b = append(b, `{"activated":`...)
	b = strconv.AppendBool(b, h%5 != 0)
	b = append(b, ',')
	b = n.companyID(b, cid)
	b = append(b, `,"createdOn":`...)
	b = strconv.AppendInt(b, t.created(i), 10)
	b = append(b, `,"email":`...)
	b = appendStr(b, fmt.Sprintf("user%d@example.com", i))
	b = append(b, `,"firstName":`...)
	b = appendStrOrNull(b, first, h%17 == 0)
	b = append(b, ',')
	b = appendKey(b, n.id)
	b = appendStr(b, uuidOf(g.seed, "users", i))
	b = append(b, `,"invitationRequired":false,"lastName":`...)
	b = appendStr(b, last)
	b = append(b, `,"memberships":[{"company":{"createdOn":`...)
	b = strconv.AppendInt(b, g.companies.created(cj), 10)
	b = append(b, `,"id":`...)
	b = appendStr(b, cid)
	b = append(b, `,"name":`...)
	b = appendStr(b, g.companyName(cj))
	return append(b, `},"enabled":true}]}`...)
}

// resellerOpportunity renders opportunity i as the AppReseller Opportunity: the assistedSales
// item's values, keys in alphabetical order, no createdByUser.
func (g *gen) resellerOpportunity(b []byte, t *table, i int) []byte {
	h := rnd(g.seed, "opportunities", i, 3)
	created, purchase, hasPurchase := g.oppTimes(t, i)
	b = append(b, `{"createdOn":`...)
	b = strconv.AppendInt(b, created, 10)
	b = append(b, `,"customerUser":`...)
	b = g.oppUser(b, "opportunities", i, 40)
	b = append(b, `,"id":`...)
	b = appendStr(b, uuidOf(g.seed, "opportunities", i))
	b = append(b, `,"name":`...)
	b = appendStrOrNull(b, fmt.Sprintf("Prospect N%d", i), h%8 == 0)
	b = append(b, `,"ownerType":`...)
	b = appendStr(b, pick([]string{"PLATFORM_OWNER", "RESELLER", "SSR"}, h>>8))
	b = append(b, `,"ownerUser":`...)
	b = g.oppUser(b, "opportunities", i, 20)
	b = append(b, `,"purchaseEffectiveDate":`...)
	if hasPurchase {
		b = strconv.AppendInt(b, purchase, 10)
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `,"status":`...)
	b = appendStr(b, oppStatus(t, g.seed, g.start, i))
	return append(b, '}')
}

// resellerContext checks the required AppReseller context and that the token has its role.
func resellerContext(w http.ResponseWriter, r *http.Request, t token) bool {
	c := r.URL.Query().Get("context")
	switch c {
	case "RESELLER", "RESELLER_MANAGER":
	case "":
		adError(w, 400, "VALIDATION_ERROR", "Required parameter 'context' is missing")
		return false
	default:
		adError(w, 400, "VALIDATION_ERROR", fmt.Sprintf("parameter 'context' must be RESELLER or RESELLER_MANAGER, got %q", c))
		return false
	}
	if !t.has("ROLE_" + c) {
		forbidden(w, []string{"ROLE_" + c})
		return false
	}
	return true
}

func (s *Server) resellerCompanies(w http.ResponseWriter, r *http.Request, t token) {
	if !resellerContext(w, r, t) {
		return
	}
	q := r.URL.Query()
	pg, err1 := qint(q, "page", 0, 0, math.MaxInt32)
	size, err2 := qint(q, "size", 50, 1, 250)
	from, _, err3 := qms(q, "fromDate")
	to, hasTo, err4 := qms(q, "toDate")
	desc, err5 := sortDesc(q, "ASC")
	var err6 error
	if sf := q.Get("sortField"); sf != "" && sf != "COMPANY_ID" && sf != "CREATED_ON" {
		err6 = fmt.Errorf("parameter 'sortField' must be COMPANY_ID or CREATED_ON, got %q", sf)
	}
	if err := firstErr(err1, err2, err3, err4, err5, err6); err != nil {
		adError(w, 400, "VALIDATION_ERROR", err.Error())
		return
	}
	end := int64(0)
	if hasTo {
		end = to + 1
	}
	tb := s.tables["companies"]
	s.midList(tb, func() listing { return tb.window(from, end) }, pg*size, size)
	s.mu.RLock()
	b := renderRows(make([]byte, 0, 64+size*300), tb, page(tb.window(from, end), pg*size, size, desc), func(b []byte, t *table, i int) []byte {
		return s.gen.resellerCompany(b, t, i, servedNames)
	})
	s.mu.RUnlock()
	writeBody(w, 200, b)
}

func (s *Server) resellerUsers(w http.ResponseWriter, r *http.Request, t token) {
	if !resellerContext(w, r, t) {
		return
	}
	q := r.URL.Query()
	pg, err1 := qint(q, "page", 0, 0, math.MaxInt32)
	size, err2 := qint(q, "size", 50, 1, 250)
	var err3 error
	if q.Get("fromDate") != "" || q.Get("toDate") != "" {
		err3 = fmt.Errorf("parameters 'fromDate' and 'toDate' are not simulated on this endpoint (the documents do not say which date they bound)")
	}
	if err := firstErr(err1, err2, err3); err != nil {
		adError(w, 400, "VALIDATION_ERROR", err.Error())
		return
	}
	tb := s.tables["users"]
	s.midList(tb, func() listing { return tb.window(0, 0) }, pg*size, size)
	s.mu.RLock()
	v := tb.window(0, 0)
	b := make([]byte, 0, 64+size*400)
	b = append(b, `{"content":`...)
	b = renderRows(b, tb, page(v, pg*size, size, false), func(b []byte, t *table, i int) []byte {
		return s.gen.resellerUser(b, t, i, servedNames)
	})
	b = append(b, `,"page":`...)
	b = pageMeta(b, size, v.len(), pg)
	b = append(b, '}')
	s.mu.RUnlock()
	writeBody(w, 200, b)
}

func (s *Server) resellerOpportunities(w http.ResponseWriter, r *http.Request, t token) {
	switch c := r.URL.Query().Get("context"); c {
	case "", "RESELLER", "SSR":
		if c == "RESELLER" && !t.has("ROLE_RESELLER") {
			forbidden(w, []string{"ROLE_RESELLER"})
			return
		}
	default:
		adError(w, 400, "VALIDATION_ERROR", fmt.Sprintf("parameter 'context' must be RESELLER or SSR, got %q", c))
		return
	}
	s.opportunityPage(w, r, s.gen.resellerOpportunity)
}

// ResellerStreams are the streams the AppReseller family serves.
var ResellerStreams = []string{"companies", "users", "opportunities"}

// ResellerRows returns what a sync through the AppReseller family must hold for stream
// (companies, users or opportunities): the rows the AppReseller endpoints serve now, each
// rendered with the member names of the marketplace shape the warehouse's columns read (id as
// uuid, createdOn as creationDate, phone as phoneNumber, companyId as company.uuid), so the
// comparison needs no renaming of its own. Other streams are as Rows gives them.
func (s *Server) ResellerRows(stream string) ([]Row, error) {
	var render func(b []byte, t *table, i int) []byte
	switch stream {
	case "companies":
		render = func(b []byte, t *table, i int) []byte { return s.gen.resellerCompany(b, t, i, oracleNames) }
	case "users":
		render = func(b []byte, t *table, i int) []byte { return s.gen.resellerUser(b, t, i, oracleNames) }
	case "opportunities":
		render = s.gen.resellerOpportunity
	default:
		return s.Rows(stream)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	refs, err := s.sortedRefsLocked(stream)
	if err != nil {
		return nil, err
	}
	out := make([]Row, 0, len(refs))
	for _, r := range refs {
		rec := render(nil, r.t, r.i)
		root, err := parseJSON(rec)
		if err != nil {
			return nil, fmt.Errorf("apisim: reseller %s row %s: %w", stream, r.key, err)
		}
		var st []stamp
		if stream != "users" { // AppReseller users carry no lastModified
			st = s.stampsLocked(stream, r)
		}
		ls, err := leavesOf(stream, root, st)
		if err != nil {
			return nil, fmt.Errorf("apisim: reseller %s row %s: %w", stream, r.key, err)
		}
		vals := make(map[string]any, len(ls))
		for _, l := range ls {
			vals[l.path] = l.v
		}
		out = append(out, Row{Key: r.key, Record: rec, Values: vals})
	}
	return out, nil
}
