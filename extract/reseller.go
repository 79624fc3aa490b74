package extract

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/marketsync/marketsync/internal/jsonscan"
)

// The AppReseller v1 family (source-apis.md §3.1.3, §3.2.3, §3.5.5), for reseller partners: a
// reseller's user may not call account v2 or assistedSales (their roles are the marketplace
// owner's) but reads companies, users and opportunities here with its own token. They land in
// the same tables: records are renamed to the marketplace shape's member names (resellerKeys)
// before anything reads them, so every column reads what it reads from the marketplace family;
// members with no marketplace counterpart (activated, numOfUsers, memberships, …) are kept in
// _extra. What differs:
//
//   - companies: a bare array without page metadata (paged until an empty page; a full
//     snapshot every run, as with account v2);
//   - users: no modification filter (fromDate/toDate bound an unstated date): every run lists
//     all users, and they carry no lastModified (last_modified stays NULL);
//   - opportunities: contexts RESELLER and SSR only, and the documented roles are
//     ROLE_CHANNEL_ADMIN, ROLE_RESELLER and ROLE_SALES_SUPPORT: with reseller_context
//     RESELLER_MANAGER the stream is skipped;
//   - invoices and events have no AppReseller endpoint: skipped.

// resellerKeys maps, per stream, AppReseller member names to the marketplace shape's (a dotted
// name nests the value: companyId becomes company.uuid, which users' company_id reads).
var resellerKeys = map[string]map[string]string{
	"companies": {"id": "uuid", "createdOn": "creationDate", "phone": "phoneNumber"},
	"users":     {"id": "uuid", "companyId": "company.uuid"},
}

// Unavailable says why the configured API family cannot list stream ("" if it can).
func (a *AppDirect) Unavailable(stream string) string {
	if a.cfg.API != APIReseller {
		return ""
	}
	switch stream {
	case "invoices", "events":
		return fmt.Sprintf("skipped: the AppReseller API family (sources.appdirect.api: reseller) has no %s endpoint", stream)
	case "opportunities":
		if a.cfg.ResellerContext != "RESELLER" {
			return "skipped: GET /api/appReseller/v1/opportunities takes the contexts RESELLER and SSR and the roles ROLE_CHANNEL_ADMIN, ROLE_RESELLER, ROLE_SALES_SUPPORT, not a Reseller Manager's (set reseller_context: RESELLER to read a reseller's opportunities)"
		}
	}
	return ""
}

// rekeyAll renames the members of every record (see rekey).
func rekeyAll(recs [][]byte, names map[string]string) ([][]byte, error) {
	for i, r := range recs {
		out, err := rekey(r, names)
		if err != nil {
			return nil, err
		}
		recs[i] = out
	}
	return recs, nil
}

// rekey returns a copy of the object rec with its top-level members renamed by names; a dotted
// new name puts the value in an object member (appended after the others). A member whose new
// name the record already has is left as it is (both then reach the warehouse: the other in
// _extra), so a later API version that adds the marketplace name loses nothing.
func rekey(rec []byte, names map[string]string) ([]byte, error) {
	type member struct{ name, raw, val []byte }
	var ms []member
	have := map[string]bool{}
	err := jsonscan.Object(rec, func(key, val []byte) error {
		name := key
		if bytes.IndexByte(key, '\\') >= 0 {
			var s string
			if err := json.Unmarshal(append(append([]byte{'"'}, key...), '"'), &s); err != nil {
				return err
			}
			name = []byte(s)
		}
		ms = append(ms, member{name: name, raw: key, val: val})
		have[string(name)] = true
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%w: renaming record members: %v", ErrBody, err)
	}
	out := make([]byte, 0, len(rec)+32)
	out = append(out, '{')
	parents := map[string][]member{} // raw holds the inner name
	var order []string
	for _, m := range ms {
		to, ok := names[string(m.name)]
		parent, child, dotted := strings.Cut(to, ".")
		switch {
		case ok && dotted && !have[parent]:
			if parents[parent] == nil {
				order = append(order, parent)
			}
			parents[parent] = append(parents[parent], member{raw: []byte(child), val: m.val})
			continue
		case ok && !dotted && !have[to]:
			m.raw = []byte(to)
		}
		if len(out) > 1 {
			out = append(out, ',')
		}
		out = append(out, '"')
		out = append(out, m.raw...)
		out = append(out, '"', ':')
		out = append(out, m.val...)
	}
	for _, p := range order {
		if len(out) > 1 {
			out = append(out, ',')
		}
		out = append(out, '"')
		out = append(out, p...)
		out = append(out, `":{`...)
		for k, c := range parents[p] {
			if k > 0 {
				out = append(out, ',')
			}
			out = append(out, '"')
			out = append(out, c.raw...)
			out = append(out, '"', ':')
			out = append(out, c.val...)
		}
		out = append(out, '}')
	}
	return append(out, '}'), nil
}

// resellerCompanies lists GET /api/appReseller/v1/companies: a bare array per page, zero-based
// pages (the base is undocumented) until an empty one, oldest first.
func (a *AppDirect) resellerCompanies(ctx context.Context, stats *Counters, emit Emit) (Outcome, error) {
	fetch := func(ctx context.Context, k, size int) (fetched, error) {
		q := url.Values{"context": {a.cfg.ResellerContext}, "sortField": {"CREATED_ON"}, "sortOrder": {"ASC"},
			"page": {strconv.Itoa(k)}, "size": {strconv.Itoa(size)}}
		f := fetched{page: Page{Stream: "companies"}, totalRows: -1, totalPages: -1, number: -1, shape: "bare array"}
		err := a.c.Do(ctx, Request{Stream: "companies", URL: a.cfg.BaseURL + "/api/appReseller/v1/companies?" + q.Encode(),
			Auth: a.user, Budget: a.budget, Stats: stats,
			Parse: func(_ int, body []byte) error {
				recs, err := splitArray(body)
				if err == nil {
					recs, err = rekeyAll(recs, resellerKeys["companies"])
				}
				f.page.Records = recs
				return err
			}})
		return f, err
	}
	l := newListing("companies", "", emit, "uuid")
	ended, err := pagesByNumber(ctx, a.cfg.Concurrency, a.cfg.PageSize, fetch, l)
	return l.finish(ended && err == nil, false), err
}

// resellerUsers lists GET /api/appReseller/v1/users: every user, every run (no modification
// filter exists), zero-based pages with page metadata.
func (a *AppDirect) resellerUsers(ctx context.Context, stats *Counters, emit Emit) (Outcome, error) {
	q := url.Values{"context": {a.cfg.ResellerContext}}
	return a.wrappedPages(ctx, "users", "uuid", "/api/appReseller/v1/users", q, "page", 0, a.user, a.budget, nil, stats, emit,
		pageOpts{rekey: resellerKeys["users"]})
}

// resellerOpportunities lists GET /api/appReseller/v1/opportunities in the RESELLER context:
// the assistedSales parameters (createdOn gte, sort, status), one-based number/size.
func (a *AppDirect) resellerOpportunities(ctx context.Context, since time.Time, status string, stats *Counters, emit Emit) (Outcome, error) {
	q := url.Values{"context": {a.cfg.ResellerContext}, "sort": {"+createdOn"}}
	if !since.IsZero() {
		q.Set("createdOn", "gte("+ms(since)+")")
	}
	if status != "" {
		q.Set("status", status)
	}
	return a.wrappedPages(ctx, "opportunities", "id", "/api/appReseller/v1/opportunities", q, "number", 1, a.user, a.budget, nil, stats, emit, pageOpts{})
}
