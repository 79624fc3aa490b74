package extract

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
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

// Locations lists the company's locations where the app is installed (always a full list).
func (h *HighLevel) Locations(ctx context.Context, stats *Counters, emit Emit) (ids []string, out Outcome, err error) {
	const limit = 100
	for skip := 0; skip < maxPages*limit; skip += limit {
		q := url.Values{"companyId": {h.cfg.CompanyID}, "appId": {h.cfg.AppID}, "isInstalled": {"true"},
			"skip": {strconv.Itoa(skip)}, "limit": {strconv.Itoa(limit)}}
		var recs [][]byte
		err := h.c.Do(ctx, Request{Stream: "locations", URL: h.cfg.BaseURL + "/oauth/installedLocations?" + q.Encode(),
			Header: hlHeader, Auth: h.auth.agency, Budget: h.budget("company " + h.cfg.CompanyID), Stats: stats,
			Parse: func(_ int, body []byte) error {
				var err error
				recs, err = splitArray(body, "locations")
				return err
			}})
		if err != nil {
			return nil, out, err
		}
		for _, r := range recs {
			id, err := jsonscan.Unquote(jsonscan.Get(r, "_id"), nil)
			if err != nil {
				return nil, out, fmt.Errorf("stream locations: a location has no _id: %w", err)
			}
			ids = append(ids, string(id))
		}
		if len(recs) > 0 {
			if err := emit(ctx, Page{Stream: "locations", Number: out.Pages, Records: recs}); err != nil {
				return nil, out, err
			}
			out.Pages++
		}
		// total counts every location of the company, not the filtered ones: stop on a short page.
		if len(recs) < limit {
			out.Complete, out.Total = true, -1
			return ids, out, nil
		}
	}
	return nil, out, fmt.Errorf("%w: installed locations never end", ErrPagination)
}

// Charges lists one location's charges updated after since (zero: all, a full scan), with a
// location token, under that location's own budget.
func (h *HighLevel) Charges(ctx context.Context, locationID string, since time.Time, stats *Counters, emit Emit) (Outcome, error) {
	size := h.cfg.PageSize
	auth := h.auth.location(locationID)
	budget := h.budget("location " + locationID)
	fetch := func(ctx context.Context, k int) (fetched, error) {
		q := url.Values{"skip": {strconv.Itoa(k * size)}, "limit": {strconv.Itoa(size)}}
		if !since.IsZero() {
			q.Set("startDate", since.UTC().Format("2006-01-02T15:04:05.000Z"))
		}
		var f fetched
		err := h.c.Do(ctx, Request{Stream: "charges", URL: h.cfg.BaseURL + "/marketplace/billing/charges?" + q.Encode(),
			Header: hlHeader, Auth: auth, Budget: budget, Stats: stats,
			Parse: func(_ int, body []byte) error {
				recs, err := splitArray(body, "charges", "data", "items")
				if err != nil {
					return err
				}
				// pagination.total, or the deprecated count, read straight from the body.
				total := jsonInt(jsonscan.Get(body, "pagination", "total"))
				if total == 0 {
					total = jsonInt(jsonscan.Get(body, "count"))
				}
				pages := -1
				if total > 0 {
					pages = (total + size - 1) / size
				}
				f = fetched{page: Page{Stream: "charges", Partition: locationID, Number: k, Records: recs}, totalRows: total, totalPages: pages}
				return nil
			}})
		return f, err
	}
	out, err := pagesWithTotal(ctx, h.cfg.Concurrency, fetch, emit)
	out.Complete = out.Complete && since.IsZero()
	return out, err
}

// jsonInt reads a raw JSON number (0 if absent or not an integer).
func jsonInt(v []byte) int {
	n, err := strconv.Atoi(jsonscan.String(v))
	if err != nil {
		return 0
	}
	return n
}
