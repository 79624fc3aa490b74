package extract

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
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
	LeadContext   string  // default RESELLER_MANAGER
	PageSize      int     // default 250, the documented maximum
	RatePerSecond float64 // default 4 (the documented leak rate); negative: no client-side limit
	CompaniesRate float64 // default 5 (the companies list's own bucket); negative: no limit
	Burst         int     // default 10 (half the documented bucket of 20, to absorb jitter)
	Concurrency   int     // pages in flight per stream; default 4
}

// SetDefaults fills unset fields.
func (c *AppDirectConfig) SetDefaults() {
	if c.PageSize == 0 {
		c.PageSize = 250
	}
	if c.LeadContext == "" {
		c.LeadContext = "RESELLER_MANAGER"
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

// pageMeta is the page object of the P1/P2 styles.
type pageMeta struct {
	Size          int `json:"size"`
	TotalElements int `json:"totalElements"`
	TotalPages    int `json:"totalPages"`
	Number        int `json:"number"`
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
	var meta pageMeta
	sawContent := false
	_, err := jsonscan.Members(body, 0, func(key []byte, vs int) (int, error) {
		switch string(key) {
		case "content":
			sawContent = true
			return records(body, vs, &recs)
		case "page":
			ve, err := jsonscan.Skip(body, vs)
			if err != nil {
				return 0, err
			}
			return ve, json.Unmarshal(body[vs:ve], &meta)
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

// wrappedPages pages a P1 (zero-based page) or P2 (one-based number) endpoint.
func (a *AppDirect) wrappedPages(ctx context.Context, stream, path string, q url.Values, pageParam string, base int,
	auth Authorizer, budget *Budget, hdr http.Header, stats *Counters, emit Emit) (Outcome, error) {
	size := a.cfg.PageSize
	fetch := func(ctx context.Context, k int) (fetched, error) {
		qq := url.Values{}
		for key, v := range q {
			qq[key] = v
		}
		qq.Set(pageParam, strconv.Itoa(k+base))
		qq.Set("size", strconv.Itoa(size))
		var f fetched
		err := a.c.Do(ctx, Request{Stream: stream, URL: a.cfg.BaseURL + path + "?" + qq.Encode(), Header: hdr,
			Auth: auth, Budget: budget, Stats: stats,
			Parse: func(_ int, body []byte) error {
				recs, meta, err := splitWrapped(body)
				if err != nil {
					return err
				}
				f = fetched{page: Page{Stream: stream, Number: k, Records: recs}, totalRows: meta.TotalElements, totalPages: meta.TotalPages}
				return nil
			}})
		return f, err
	}
	return pagesWithTotal(ctx, a.cfg.Concurrency, fetch, emit)
}

func ms(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }

// Companies lists every company (no server-side filter exists: always a full snapshot).
func (a *AppDirect) Companies(ctx context.Context, stats *Counters, emit Emit) (Outcome, error) {
	q := url.Values{"sortField": {"NAME"}, "sortOrder": {"ASC"}, "includeCustomAttributes": {"true"}, "includePurchaseLimitData": {"false"}}
	return a.wrappedPages(ctx, "companies", "/api/account/v2/companies", q, "page", 0, a.partner, a.companies, nil, stats, emit)
}

// Users lists users modified at or after since (zero: all users, a full scan).
func (a *AppDirect) Users(ctx context.Context, since time.Time, stats *Counters, emit Emit) (Outcome, error) {
	q := url.Values{"sortField": {"DATE"}, "sortOrder": {"ASC"}}
	if !since.IsZero() {
		q.Set("lastModified", ms(since))
	}
	out, err := a.wrappedPages(ctx, "users", "/api/account/v2/users", q, "page", 0, a.partner, a.budget, nil, stats, emit)
	out.Complete = out.Complete && since.IsZero()
	return out, err
}

// Leads lists leads created at or after since (the API filters on creation only).
func (a *AppDirect) Leads(ctx context.Context, since time.Time, stats *Counters, emit Emit) (Outcome, error) {
	q := url.Values{"context": {a.cfg.LeadContext}, "companyId": {a.cfg.LeadCompanyID}, "sortField": {"DATE"}, "sortOrder": {"ASC"}}
	if !since.IsZero() {
		q.Set("fromDate", ms(since))
	}
	out, err := a.wrappedPages(ctx, "leads", "/api/lead/v2/leads", q, "page", 0, a.user, a.budget, nil, stats, emit)
	out.Complete = out.Complete && since.IsZero()
	return out, err
}

// Opportunities lists opportunities created at or after since.
func (a *AppDirect) Opportunities(ctx context.Context, since time.Time, stats *Counters, emit Emit) (Outcome, error) {
	q := url.Values{"sort": {"+createdOn"}}
	if !since.IsZero() {
		q.Set("createdOn", "gte("+ms(since)+")")
	}
	hdr := http.Header{"Accept-Language": {"en-US"}}
	out, err := a.wrappedPages(ctx, "opportunities", "/api/assistedSales/v1/opportunities", q, "number", 1, a.partner, a.budget, hdr, stats, emit)
	out.Complete = out.Complete && since.IsZero()
	return out, err
}

// Invoices lists invoices created at or after since, by start/count until a short page or 204.
func (a *AppDirect) Invoices(ctx context.Context, since time.Time, stats *Counters, emit Emit) (Outcome, error) {
	size := a.cfg.PageSize
	fetch := func(ctx context.Context, k int) (fetched, error) {
		q := url.Values{"sortField": {"DATE"}, "sortOrder": {"ASC"}, "start": {strconv.Itoa(k * size)}, "count": {strconv.Itoa(size)}}
		if !since.IsZero() {
			q.Set("fromDate", ms(since))
		}
		f := fetched{page: Page{Stream: "invoices", Number: k}, totalRows: -1, totalPages: -1}
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
	out, err := pagesUntilShort(ctx, a.cfg.Concurrency, size, fetch, emit)
	out.Complete = out.Complete && since.IsZero()
	return out, err
}
