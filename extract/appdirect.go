package extract

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/marketsync/marketsync/internal/jsonscan"
)

// AppDirectConfig is what the AppDirect streams need.
type AppDirectConfig struct {
	BaseURL      string
	ClientID     string
	ClientSecret string
	// Lead v2 needs a user-level role (e.g. a Reseller Manager) and that user's company.
	LeadUsername  string
	LeadPassword  string
	LeadCompanyID string
	LeadContext   string // default RESELLER_MANAGER
	// LeadFromDateUnit is the unit lead v2's fromDate is sent in: LeadDateMilliseconds
	// (default) or LeadDateSeconds. The documents disagree (see leadDateUnit); every incremental
	// leads run checks that the server read it so (checkLeadDateUnit).
	LeadFromDateUnit string
	// API is the family companies, users and opportunities are read from: APIMarketplace
	// (default: account v2 and assistedSales with the client-credentials token) or APIReseller
	// (the AppReseller v1 endpoints with the user's token, for reseller partners).
	API string
	// ResellerContext is the AppReseller context (RESELLER or RESELLER_MANAGER) of APIReseller.
	ResellerContext string
	PageSize        int     // default 250, the documented maximum
	RatePerSecond   float64 // default 4 (the documented leak rate); negative: no client-side limit
	CompaniesRate   float64 // default 5 (the companies list's own bucket); negative: no limit
	Burst           int     // default 10 (half the documented bucket of 20, to absorb jitter)
	Concurrency     int     // pages in flight per stream; default 4
}

// SetDefaults fills unset fields.
func (c *AppDirectConfig) SetDefaults() {
	if c.PageSize == 0 {
		c.PageSize = 250
	}
	if c.LeadContext == "" {
		c.LeadContext = "RESELLER_MANAGER"
	}
	if c.LeadFromDateUnit == "" {
		c.LeadFromDateUnit = LeadDateMilliseconds
	}
	if c.API == "" {
		c.API = APIMarketplace
	}
	if c.API == APIReseller && c.ResellerContext == "" {
		c.ResellerContext = "RESELLER_MANAGER"
	}
	if c.RatePerSecond == 0 {
		c.RatePerSecond = 4
	}
	if c.CompaniesRate == 0 {
		c.CompaniesRate = 5
	}
	if c.Burst == 0 {
		c.Burst = 10
	}
	if c.Concurrency == 0 {
		c.Concurrency = 4
	}
}

// The AppDirect API families (AppDirectConfig.API).
const (
	APIMarketplace = "marketplace"
	APIReseller    = "reseller"
)

// The units lead v2's fromDate can be sent in (AppDirectConfig.LeadFromDateUnit).
const (
	LeadDateMilliseconds = "milliseconds"
	LeadDateSeconds      = "seconds"
)

// ContextRoles maps each user-level context the syncer sends (lead v2's context, AppReseller's
// context) to the role, and so the OAuth scope, the documents require for it (source-apis.md
// §2.2, §3.4.2, §3.1.3): a token is asked for exactly the roles its contexts need.
var ContextRoles = map[string]string{
	"RESELLER":         "ROLE_RESELLER",
	"RESELLER_MANAGER": "ROLE_RESELLER_MANAGER",
	"REFERRAL":         "ROLE_REFERRAL",
	"DEVELOPER":        "ROLE_DEVELOPER",
}

// UserScopes returns the scopes the user token asks for: the role of the lead context, and with
// the AppReseller family the role of its context too (once each, in that order).
func (c AppDirectConfig) UserScopes() []string {
	c.SetDefaults()
	out := []string{ContextRoles[c.LeadContext]}
	if r := ContextRoles[c.ResellerContext]; c.API == APIReseller && r != "" && !slices.Contains(out, r) {
		out = append(out, r)
	}
	return out
}

// AppDirect reads companies, users, invoices, leads and opportunities.
type AppDirect struct {
	cfg       AppDirectConfig
	c         *Client
	partner   *tokenSource // client credentials, ROLE_PARTNER_READ
	user      *tokenSource // the lead user's password grant
	budget    *Budget
	companies *Budget
}

// NewAppDirect wires the AppDirect streams onto the shared client; token requests count in
// authStats.
func NewAppDirect(c *Client, cfg AppDirectConfig, authStats *Counters) *AppDirect {
	cfg.SetDefaults()
	return &AppDirect{cfg: cfg, c: c,
		partner: appDirectPartner(c, cfg, authStats),
		user:    appDirectUser(c, cfg, authStats),
		// One budget per server-side bucket: the client credential, and the companies list's own.
		budget:    NewBudget("appdirect client "+cfg.ClientID, cfg.RatePerSecond*RateFactor, cfg.Burst, 0),
		companies: NewBudget("appdirect companies list", cfg.CompaniesRate*RateFactor, cfg.Burst, 0),
	}
}

// pageMeta is the page object of the P1/P2 styles; -1 marks a member the page object lacks.
type pageMeta struct {
	Size, TotalElements, TotalPages, Number int
}

// records walks the array at body[vs] once, collecting its objects.
func records(body []byte, vs int, recs *[][]byte) (int, error) {
	return jsonscan.Elements(body, vs, func(es int) (int, error) {
		if body[es] != '{' {
			return 0, fmt.Errorf("the record array holds a non-object")
		}
		ee, err := jsonscan.Skip(body, es)
		*recs = append(*recs, body[es:ee])
		return ee, err
	})
}

// splitWrapped splits {"content":[...],"page":{...}} into records and metadata in one pass.
func splitWrapped(body []byte) ([][]byte, pageMeta, error) {
	var recs [][]byte
	meta := pageMeta{-1, -1, -1, -1}
	sawContent := false
	_, err := jsonscan.Members(body, 0, func(key []byte, vs int) (int, error) {
		switch string(key) {
		case "content":
			sawContent = true
			return records(body, vs, &recs)
		case "page":
			if body[vs] != '{' {
				return jsonscan.Skip(body, vs)
			}
			return jsonscan.Members(body, vs, func(k []byte, ps int) (int, error) {
				pe, err := jsonscan.Skip(body, ps)
				if err != nil {
					return 0, err
				}
				n, ok := jsonIntOK(body[ps:pe])
				if !ok {
					n = -1
				}
				switch string(k) {
				case "size":
					meta.Size = n
				case "totalElements":
					meta.TotalElements = n
				case "totalPages":
					meta.TotalPages = n
				case "number":
					meta.Number = n
				}
				return pe, nil
			})
		}
		return jsonscan.Skip(body, vs)
	})
	if err == nil && !sawContent {
		err = fmt.Errorf("no content array")
	}
	return recs, meta, err
}

// splitArray splits a bare array, or an object holding the array under one of keys.
func splitArray(body []byte, keys ...string) ([][]byte, error) {
	var recs [][]byte
	i := skipWS(body)
	if i < len(body) && body[i] == '[' {
		_, err := records(body, i, &recs)
		return recs, err
	}
	found := false
	_, err := jsonscan.Members(body, 0, func(key []byte, vs int) (int, error) {
		for _, k := range keys {
			if string(key) == k && !found && body[vs] == '[' {
				found = true
				return records(body, vs, &recs)
			}
		}
		return jsonscan.Skip(body, vs)
	})
	if err == nil && !found {
		err = fmt.Errorf("no record array (looked for a bare array and %v)", keys)
	}
	return recs, err
}

func skipWS(b []byte) int {
	i := 0
	for i < len(b) && (b[i] == ' ' || b[i] == '\n' || b[i] == '\r' || b[i] == '\t') {
		i++
	}
	return i
}

// pageCheck checks the first page of a listing before any of it is delivered: an error ends
// the listing; notes go to its Outcome.
type pageCheck func(ctx context.Context, first fetched, l *listing) error

// pageOpts are what some listings add to wrappedPages.
type pageOpts struct {
	check pageCheck         // if not nil, sees the first page served
	rekey map[string]string // if not nil, renames record members (see rekey) before anything reads them
}

// wrappedPages pages a P1 (zero-based page) or P2 (one-based number) endpoint; key is the
// records' id member (after opt.rekey).
func (a *AppDirect) wrappedPages(ctx context.Context, stream, key, path string, q url.Values, pageParam string, base int,
	auth Authorizer, budget *Budget, hdr http.Header, stats *Counters, emit Emit, opt pageOpts) (Outcome, error) {
	check := opt.check
	l := newListing(stream, "", emit, key)
	var checked atomic.Bool
	fetch := func(ctx context.Context, k, size int) (fetched, error) {
		qq := url.Values{}
		for key, v := range q {
			qq[key] = v
		}
		qq.Set(pageParam, strconv.Itoa(k+base))
		qq.Set("size", strconv.Itoa(size))
		var f fetched
		var date time.Time
		err := a.c.Do(ctx, Request{Stream: stream, URL: a.cfg.BaseURL + path + "?" + qq.Encode(), Header: hdr,
			Auth: auth, Budget: budget, Stats: stats, Date: &date,
			Parse: func(_ int, body []byte) error {
				recs, meta, err := splitWrapped(body)
				if err == nil && opt.rekey != nil {
					recs, err = rekeyAll(recs, opt.rekey)
				}
				if err != nil {
					return err
				}
				number := -1
				if meta.Number >= 0 {
					number = meta.Number - base
				}
				f = fetched{page: Page{Stream: stream, Records: recs}, totalRows: meta.TotalElements, totalPages: meta.TotalPages, number: number}
				return nil
			}})
		f.date = date
		if err == nil && k == 0 && check != nil && checked.CompareAndSwap(false, true) {
			err = check(ctx, f, l)
		}
		return f, err
	}
	ended, err := pagesByNumber(ctx, a.cfg.Concurrency, a.cfg.PageSize, fetch, l)
	_, filtered := q["lastModified"]
	for _, p := range []string{"fromDate", "createdOn", "status"} {
		if _, ok := q[p]; ok {
			filtered = true
		}
	}
	return l.finish(ended && err == nil, filtered), err
}

func ms(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }

// Companies lists every company (no server-side filter exists: always a full snapshot).
func (a *AppDirect) Companies(ctx context.Context, stats *Counters, emit Emit) (Outcome, error) {
	if a.cfg.API == APIReseller {
		return a.resellerCompanies(ctx, stats, emit)
	}
	q := url.Values{"sortField": {"NAME"}, "sortOrder": {"ASC"}, "includeCustomAttributes": {"true"}, "includePurchaseLimitData": {"false"}}
	return a.wrappedPages(ctx, "companies", "uuid", "/api/account/v2/companies", q, "page", 0, a.partner, a.companies, nil, stats, emit, pageOpts{})
}

// Users lists users modified at or after since (zero: all users, a full scan). Nothing here
// reads a modification time from the records: the documents show none on user responses.
func (a *AppDirect) Users(ctx context.Context, since time.Time, stats *Counters, emit Emit) (Outcome, error) {
	if a.cfg.API == APIReseller {
		return a.resellerUsers(ctx, stats, emit) // no modification filter: all users
	}
	q := url.Values{"sortField": {"DATE"}, "sortOrder": {"ASC"}}
	if !since.IsZero() {
		q.Set("lastModified", ms(since))
	}
	return a.wrappedPages(ctx, "users", "uuid", "/api/account/v2/users", q, "page", 0, a.partner, a.budget, nil, stats, emit, pageOpts{})
}

// Leads lists leads created at or after since (the API filters on creation only).
func (a *AppDirect) Leads(ctx context.Context, since time.Time, stats *Counters, emit Emit) (Outcome, error) {
	return a.leads(ctx, since, "", stats, emit)
}

func (a *AppDirect) leads(ctx context.Context, since time.Time, status string, stats *Counters, emit Emit) (Outcome, error) {
	q := url.Values{"context": {a.cfg.LeadContext}, "companyId": {a.cfg.LeadCompanyID}, "sortField": {"DATE"}, "sortOrder": {"ASC"}}
	var check pageCheck
	if !since.IsZero() {
		q.Set("fromDate", a.leadDate(since, a.cfg.LeadFromDateUnit))
		check = a.leadUnitCheck(since, stats)
	}
	if status != "" {
		q.Set("status", status)
	}
	return a.wrappedPages(ctx, "leads", "id", "/api/lead/v2/leads", q, "page", 0, a.user, a.budget, nil, stats, emit, pageOpts{check: check})
}

// Opportunities lists opportunities created at or after since.
func (a *AppDirect) Opportunities(ctx context.Context, since time.Time, stats *Counters, emit Emit) (Outcome, error) {
	return a.opportunities(ctx, since, "", stats, emit)
}

func (a *AppDirect) opportunities(ctx context.Context, since time.Time, status string, stats *Counters, emit Emit) (Outcome, error) {
	if why := a.Unavailable("opportunities"); why != "" {
		return Outcome{Total: -1}, fmt.Errorf("stream opportunities: %s", why)
	}
	if a.cfg.API == APIReseller {
		return a.resellerOpportunities(ctx, since, status, stats, emit)
	}
	q := url.Values{"sort": {"+createdOn"}}
	if !since.IsZero() {
		q.Set("createdOn", "gte("+ms(since)+")")
	}
	if status != "" {
		q.Set("status", status)
	}
	hdr := http.Header{"Accept-Language": {"en-US"}}
	return a.wrappedPages(ctx, "opportunities", "id", "/api/assistedSales/v1/opportunities", q, "number", 1, a.partner, a.budget, hdr, stats, emit, pageOpts{})
}

// Invoices lists invoices created at or after since, by start/count until an empty page or 204
// (the API gives no total).
func (a *AppDirect) Invoices(ctx context.Context, since time.Time, stats *Counters, emit Emit) (Outcome, error) {
	return a.invoices(ctx, since, "", stats, emit)
}

func (a *AppDirect) invoices(ctx context.Context, since time.Time, status string, stats *Counters, emit Emit) (Outcome, error) {
	if why := a.Unavailable("invoices"); why != "" {
		return Outcome{Total: -1}, fmt.Errorf("stream invoices: %s", why)
	}
	fetch := func(ctx context.Context, start, count int) (fetched, error) {
		q := url.Values{"sortField": {"DATE"}, "sortOrder": {"ASC"}, "start": {strconv.Itoa(start)}, "count": {strconv.Itoa(count)}}
		if !since.IsZero() {
			q.Set("fromDate", ms(since))
		}
		if status != "" {
			q.Set("status", status)
		}
		f := fetched{page: Page{Stream: "invoices"}, totalRows: -1, totalPages: -1, number: -1}
		err := a.c.Do(ctx, Request{Stream: "invoices", URL: a.cfg.BaseURL + "/api/billing/v1/invoices?" + q.Encode(),
			Auth: a.partner, Budget: a.budget, Stats: stats,
			Parse: func(status int, body []byte) error {
				if status == http.StatusNoContent || len(body) == 0 {
					f.page.Records = nil
					return nil
				}
				recs, err := splitArray(body, "content", "invoices", "invoice")
				f.page.Records = recs
				return err
			}})
		return f, err
	}
	l := newListing("invoices", "", emit, "invoiceId")
	l.note("total unknown: the invoices endpoint gives none")
	ended, err := pagesByOffset(ctx, a.cfg.Concurrency, a.cfg.PageSize, totalNone, fetch, l)
	return l.finish(ended && err == nil, !since.IsZero() || status != ""), err
}

// Statuses the documents name as not final (source-apis.md §3.3.2, §3.4.5, §3.5.4, §7 items
// 26, 29, 33): rows in them keep changing with no modification filter to find them by, so a
// caller re-reads them (InvoicesByStatus, LeadsByStatus, OpportunitiesByStatus).
var (
	InvoiceOpenStatuses     = []string{"UNPAID"}
	LeadOpenStatuses        = []string{"PENDING_SUBMISSION", "SUBMITTED", "ASSIGNED", "PENDING_CONVERSION_APPROVAL", "CONVERSION_APPROVED"}
	OpportunityOpenStatuses = []string{"OPEN", "PENDING_REVIEW"}
)

// The status enums the documents give for each list's status filter.
var (
	invoiceStatuses     = []string{"CARRIED", "PAID", "UNPAID", "VOIDED"}
	leadStatuses        = []string{"CONVERTED", "DISQUALIFIED", "DELETED", "PENDING_CONVERSION_APPROVAL", "CONVERSION_APPROVED", "PENDING_SUBMISSION", "SUBMITTED", "ASSIGNED", "LEGACY", "PENDING_FOR_MANAGERS", "ACCEPTED_FOR_MANAGERS"}
	opportunityStatuses = []string{"OPEN", "CLOSED", "PENDING_REVIEW"}
)

func checkStatus(stream, status string, enum []string) error {
	if !slices.Contains(enum, status) {
		return fmt.Errorf("stream %s: status %q is not in the documented enum %v", stream, status, enum)
	}
	return nil
}

// InvoicesByStatus lists every invoice in one status, of any creation date (the documented
// status filter of GET /api/billing/v1/invoices, §3.3.2), by start/count like Invoices. The
// listing is filtered, so it is never Complete; a nil error with Drift false says every invoice
// in that status was listed. Invoices give no total (Total is -1).
func (a *AppDirect) InvoicesByStatus(ctx context.Context, status string, stats *Counters, emit Emit) (Outcome, error) {
	if err := checkStatus("invoices", status, invoiceStatuses); err != nil {
		return Outcome{Total: -1}, err
	}
	return a.invoices(ctx, time.Time{}, status, stats, emit)
}

// LeadsByStatus lists every lead in one status (or one of the documented groups
// PENDING_FOR_MANAGERS, ACCEPTED_FOR_MANAGERS), of any creation date (§3.4.2). Filtered: never
// Complete; TotalAgrees says every lead in that status was listed.
func (a *AppDirect) LeadsByStatus(ctx context.Context, status string, stats *Counters, emit Emit) (Outcome, error) {
	if err := checkStatus("leads", status, leadStatuses); err != nil {
		return Outcome{Total: -1}, err
	}
	return a.leads(ctx, time.Time{}, status, stats, emit)
}

// OpportunitiesByStatus lists every opportunity in one status, of any creation date (§3.5.2).
// Filtered: never Complete; TotalAgrees says every opportunity in that status was listed.
func (a *AppDirect) OpportunitiesByStatus(ctx context.Context, status string, stats *Counters, emit Emit) (Outcome, error) {
	if err := checkStatus("opportunities", status, opportunityStatuses); err != nil {
		return Outcome{Total: -1}, err
	}
	return a.opportunities(ctx, time.Time{}, status, stats, emit)
}
