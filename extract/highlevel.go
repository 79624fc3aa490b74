package extract

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/marketsync/marketsync/internal/jsonscan"
)

// HighLevelConfig is what the HighLevel streams need.
type HighLevelConfig struct {
	BaseURL      string
	ClientID     string
	ClientSecret string
	CompanyID    string
	AppID        string
	// Auth is how the agency token is had: HLAuthClientCredentials (""), HLAuthRefreshToken
	// (the rotating refresh token in TokenFile) or HLAuthPrivateToken (PrivateToken, static).
	Auth         string
	TokenFile    string
	PrivateToken string
	PageSize     int // charges limit; default 100
	// Documented budget per app per location (or company): Burst requests per Interval, Daily per day.
	Burst       int
	Interval    time.Duration
	DailyFloor  int // stop a location's work when fewer requests than this remain today; default 1000
	Concurrency int // pages in flight per location; default 4
}

// SetDefaults fills unset fields.
func (c *HighLevelConfig) SetDefaults() {
	if c.PageSize == 0 {
		c.PageSize = 100
	}
	if c.Burst == 0 {
		c.Burst = 100
	}
	if c.Interval == 0 {
		c.Interval = 10 * time.Second
	}
	if c.DailyFloor == 0 {
		c.DailyFloor = 1000
	}
	if c.Concurrency == 0 {
		c.Concurrency = 4
	}
}

// HighLevel reads installed locations and, per location, wallet charges.
type HighLevel struct {
	cfg     HighLevelConfig
	c       *Client
	auth    *highLevelAuth
	mu      sync.Mutex
	budgets map[string]*Budget
}

// NewHighLevel wires the HighLevel streams onto the shared client.
func NewHighLevel(c *Client, cfg HighLevelConfig, authStats *Counters) *HighLevel {
	cfg.SetDefaults()
	return &HighLevel{cfg: cfg, c: c, auth: newHighLevelAuth(c, cfg, authStats),
		budgets: map[string]*Budget{}}
}

// budget returns the budget of one resource (a location, or the company); each has its own.
func (h *HighLevel) budget(resource string) *Budget {
	h.mu.Lock()
	defer h.mu.Unlock()
	b := h.budgets[resource]
	if b == nil {
		// Fixed windows of Burst per Interval: rate + bucket burst must stay under Burst per window.
		perSec := float64(h.cfg.Burst) / h.cfg.Interval.Seconds() * RateFactor
		b = NewBudget("highlevel "+resource, perSec, 2, h.cfg.DailyFloor)
		h.budgets[resource] = b
	}
	return b
}

var hlHeader = http.Header{"Version": {hlVersion}}

// Locations lists the company's locations where the app is installed (always a full list), by
// skip/limit with the offset pager. The response's total counts every location of the company,
// installed or not (§4.2, §7 item 49), so it only bounds the listing: the listing ends on an
// empty page or at that bound, and Outcome.Total is given only when the distinct locations
// listed equal it.
func (h *HighLevel) Locations(ctx context.Context, stats *Counters, emit Emit) (ids []string, out Outcome, err error) {
	const limit = 100
	l := newListing("locations", "", func(ctx context.Context, p Page) error {
		for _, r := range p.Records {
			id, err := jsonscan.Unquote(jsonscan.Get(r, "_id"), nil)
			if err != nil {
				return fmt.Errorf("stream locations: a location has no _id: %w", err)
			}
			ids = append(ids, string(id))
		}
		return emit(ctx, p)
	}, "_id")
	fetch := func(ctx context.Context, skip, limit int) (fetched, error) {
		q := url.Values{"companyId": {h.cfg.CompanyID}, "appId": {h.cfg.AppID}, "isInstalled": {"true"},
			"skip": {strconv.Itoa(skip)}, "limit": {strconv.Itoa(limit)}}
		f := fetched{page: Page{Stream: "locations"}, totalRows: -1, totalPages: -1, number: -1}
		err := h.c.Do(ctx, Request{Stream: "locations", URL: h.cfg.BaseURL + "/oauth/installedLocations?" + q.Encode(),
			Header: hlHeader, Auth: h.auth.agency, Budget: h.budget("company " + h.cfg.CompanyID), Stats: stats,
			Parse: func(_ int, body []byte) error {
				recs, err := splitArray(body, "locations")
				f.page.Records = recs
				f.totalRows, f.shape = responseTotal(body, "total")
				return err
			}})
		return f, err
	}
	// Locations are few: one page at a time.
	ended, err := pagesByOffset(ctx, 1, limit, totalBound, fetch, l)
	if err != nil {
		return nil, l.finish(false, false), err
	}
	if d, err := l.received.counts(); err == nil && l.bound >= 0 && d == l.bound {
		l.out.Total = l.bound
	} else {
		l.note("total unknown: installedLocations counts every location of the company, not the installed ones")
	}
	out = l.finish(ended, false)
	return dedupe(ids), out, nil
}

// dedupe drops repeated ids, keeping the first.
func dedupe(ids []string) []string {
	seen := make(map[string]bool, len(ids))
	out := ids[:0]
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

// responseTotal reads a top-level count member of an object body, or explains why there is none.
func responseTotal(body []byte, path ...string) (int, string) {
	i := skipWS(body)
	if i < len(body) && body[i] == '[' {
		return -1, "bare array"
	}
	if n, ok := jsonIntOK(jsonscan.Get(body, path...)); ok && n >= 0 {
		return n, ""
	}
	return -1, "no " + strings.Join(path, ".")
}

// Charges lists one location's charges updated after since (zero: all, a full scan), with a
// location token, under that location's own budget, by skip/limit with the offset pager. The
// total is pagination.total (or the deprecated count); a bare array or a body without either
// leaves it unknown (§6.8, §7.7 item 40), and the listing then ends on an empty page.
func (h *HighLevel) Charges(ctx context.Context, locationID string, since time.Time, stats *Counters, emit Emit) (Outcome, error) {
	auth := h.auth.location(locationID)
	budget := h.budget("location " + locationID)
	fetch := func(ctx context.Context, skip, limit int) (fetched, error) {
		q := url.Values{"skip": {strconv.Itoa(skip)}, "limit": {strconv.Itoa(limit)}}
		if !since.IsZero() {
			q.Set("startDate", since.UTC().Format("2006-01-02T15:04:05.000Z"))
		}
		f := fetched{page: Page{Stream: "charges", Partition: locationID}, totalRows: -1, totalPages: -1, number: -1}
		err := h.c.Do(ctx, Request{Stream: "charges", URL: h.cfg.BaseURL + "/marketplace/billing/charges?" + q.Encode(),
			Header: hlHeader, Auth: auth, Budget: budget, Stats: stats,
			Parse: func(_ int, body []byte) error {
				recs, err := splitArray(body, "charges", "data", "items")
				if err != nil {
					return err
				}
				f.page.Records = recs
				// pagination.total, or the deprecated count, read straight from the body.
				f.totalRows, f.shape = responseTotal(body, "pagination", "total")
				if f.totalRows < 0 && f.shape != "bare array" {
					if n, ok := jsonIntOK(jsonscan.Get(body, "count")); ok && n >= 0 {
						f.totalRows, f.shape = n, ""
					} else {
						f.shape = "no pagination.total"
					}
				}
				return nil
			}})
		return f, err
	}
	l := newListing("charges", locationID, emit, "chargeId", "_id", "id")
	ended, err := pagesByOffset(ctx, h.cfg.Concurrency, h.cfg.PageSize, totalExact, fetch, l)
	return l.finish(ended && err == nil, !since.IsZero()), err
}

// jsonIntOK reads a raw JSON integer; ok is false if v is absent or not an integer.
func jsonIntOK(v []byte) (int, bool) {
	n, err := strconv.Atoi(jsonscan.String(v))
	return n, err == nil
}
