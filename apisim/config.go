package apisim

import (
	"fmt"
	"slices"
	"time"
)

// Demo credentials the simulator accepts; `syncer simulate` prints them and `syncer sync` with no
// config uses them. They guard nothing real.
const (
	DemoClientID       = "marketsync-demo"
	DemoClientSecret   = "demo-client-secret"
	DemoLeadUser       = "reseller.manager@example.com"
	DemoLeadPassword   = "demo-lead-password"
	DemoHLClientID     = "hl-demo-client"
	DemoHLClientSecret = "hl-demo-secret"
	DemoHLCompanyID    = "5DP41231LkQsiKESj6rh"
	DemoHLAppID        = "6578278e879ad2646715ba9c"
	HLVersion          = "2021-07-28"
)

// Faults are per-request probabilities (0..1) of each injected failure.
type Faults struct {
	ServerError float64       // 500/502/503/504
	Slow        float64       // answer after SlowDelay
	SlowDelay   time.Duration // default 300ms
	Reset       float64       // close the connection without answering
	Truncated   float64       // cut the body in half
	InvalidJSON float64       // a body that is not JSON
	Throttle    float64       // a spurious 429, Retry-After in seconds or HTTP-date form
	PageDrift   float64       // a row is inserted and one deleted just before a list page is served
	RevokeAfter int           // revoke every token after this many API requests (0: never)

	// Changes while a listing is paged, rolled for each list page request (every list endpoint
	// but installedLocations) and applied to that listing's table just before the page is
	// served. They move the source: turn them off (SetFaults) before a comparable final sync.
	//
	// MidListUpdate updates one row of the listing: half the time one on a later page (the
	// client must read its new values; creation-ordered listings keep it in place), else one on
	// an earlier page (modification-ordered listings, users and charges, move it to their end, so
	// the rows after it shift back across the page boundary and the updated row is listed
	// again).
	MidListUpdate float64
	// MidListInsert inserts one row: at the end of creation-ordered listings, at the end of
	// modification-ordered ones, or, when Hostile.LateArrivals picks it, back-dated inside them.
	MidListInsert float64
	// MidListDelete deletes one row of the listing, anywhere in it.
	MidListDelete float64
	// CrossPageDuplicate makes a page after the first start one row early, repeating the row
	// that ended the previous page (a page-number listing then misses the row that should have
	// ended this page).
	CrossPageDuplicate float64
}

// Hostile holds the server behaviours the documents leave open and a client must not assume
// away (issue 13). Each is independent of the profile; the hostile profile turns them all on.
// Changes while a listing is paged are Faults (MidList*, CrossPageDuplicate).
type Hostile struct {
	// PageCap is, per stream ("companies", "users", "invoices", "leads", "opportunities",
	// "charges", "locations"), the most rows one page serves, whatever size is asked; 0 or
	// absent: the size asked (up to the endpoint's documented or assumed maximum).
	PageCap map[string]int
	// CapHidden: page objects (companies, users, leads, opportunities) echo the size asked and
	// count totalPages by it, as if the cap did not exist; totalElements stays true.
	CapHidden bool
	// BareArrayCharges is the share of installed locations whose charges are answered as a
	// bare JSON array (no count, no pagination), the fallback shape of source-apis.md §6.8, §7.7.
	// Locations are picked deterministically, spread evenly (location 0 first).
	BareArrayCharges float64
	// NoTotals is the share of the other locations whose charges object has neither count nor
	// pagination.total.
	NoTotals float64
	// LateUpdates: updates reach invoices, leads and opportunities of any age, not only the 30
	// days after creation (invoices paid 45 days and more after creation, leads converted late).
	LateUpdates bool
	// UsersWithoutTimestamps is the share of users served without lastModified, as the
	// documents' user bodies are (§3.2.2); the lastModified filter still works on their internal
	// modification time. 1: every user. Picked per user, deterministically.
	UsersWithoutTimestamps float64
	// LateArrivals is the share of inserted users and charges whose modification time (user
	// lastModified; charge updatedAt, createdAt and meta.eventTime) lies 1 to 6 hours before the
	// insert (never before Config.Start): they appear inside a listing sorted by modification
	// time, behind rows already listed, with cursor values older than the cursor.
	LateArrivals float64
}

// zero reports whether no hostile behaviour is set.
func (h Hostile) zero() bool {
	return len(h.PageCap) == 0 && !h.CapHidden && h.BareArrayCharges == 0 && h.NoTotals == 0 && !h.LateUpdates &&
		h.UsersWithoutTimestamps == 0 && h.LateArrivals == 0
}

// HostileDefaults are the hostile profile's server behaviours: a different page cap per
// endpoint, all below the size the client asks, hidden; bare-array and total-less charges;
// late updates; half the users without timestamps; a fifth of inserts late.
func HostileDefaults() Hostile {
	return Hostile{
		PageCap: map[string]int{"invoices": 100, "charges": 50, "users": 100, "locations": 5,
			"companies": 200, "leads": 150, "opportunities": 120},
		CapHidden: true, BareArrayCharges: 0.34, NoTotals: 0.5, LateUpdates: true,
		UsersWithoutTimestamps: 0.5, LateArrivals: 0.2,
	}
}

// HostileFaults are chaos's faults plus changes while listings are paged.
func HostileFaults() Faults {
	f := ChaosFaults()
	f.MidListUpdate, f.MidListInsert, f.MidListDelete, f.CrossPageDuplicate = 0.05, 0.03, 0.02, 0.03
	return f
}

// HostileStreams are the streams Hostile.PageCap knows.
var HostileStreams = []string{"companies", "users", "invoices", "leads", "opportunities", "events", "charges", "locations"}

// Config says what the simulator serves. The zero value plus SetDefaults is the realistic profile.
type Config struct {
	Seed      int64
	Scale     int           // base rows per stream (charges: spread over the locations)
	Locations int           // installed HighLevel locations
	Profile   string        // realistic | fast | chaos
	Speed     float64       // multiplies every rate limit and the background clock
	TokenTTL  time.Duration // access-token lifetime in simulated time (AppDirect: 43199s)
	Faults    Faults
	// AppDirect leaky bucket per client credential, as documented.
	ADBucket, ADLeak, ADCompaniesLeak float64
	// HighLevel: HLBurst requests per HLInterval, HLDaily per day, per app per location or company.
	HLBurst    int
	HLInterval time.Duration
	HLDaily    int
	// Background change rate: simulated seconds advance this fast per real second (0: clock only
	// moves on POST /_sim/advance).
	Background float64
	// Change rates per simulated hour, per stream, as fractions of base rows.
	InsertRate, UpdateRate, DeleteRate float64
	Replay                             bool // cache rendered pages: measures the client, not the generator
	// Values picks how values are written: "plain" (one form per member, as in the documents'
	// examples) or "varied" (every form the documents allow, and adversarial ones where they are
	// silent, deterministically per row: escaped keys and strings, extra members, absent
	// optionals, other member orders, timestamps as numeric strings, seconds or ISO-8601 with
	// offsets, money as decimal strings or float-noisy numbers). "" takes the profile's default:
	// varied for realistic and chaos, plain for fast.
	Values string
	// Start is the simulated "now" when the simulator starts; base rows span the two years
	// before it. Zero keeps the fixed 2026-01-01T00:00:00Z, so tests stay deterministic; a CLI
	// serving demo data sets the wall clock. Data is a function of (Seed, Scale, Start).
	Start time.Time
	// LinkBase is the base of the links the rows carry (company hrefs, openId, product links);
	// "" uses the simulator's own URL. A real marketplace links to its public address, which
	// does not change between runs: the embedded demo sets one so that a new port per run does
	// not change every linking row's content.
	LinkBase string
	// Hostile turns on server behaviours the documents leave open (see Hostile); the hostile
	// profile sets HostileDefaults when it is zero.
	Hostile Hostile
	// LeadFromDateUnit is the unit lead v2 reads fromDate and toDate in: "milliseconds" (the
	// default, like every other AppDirect date filter) or "seconds" (as the lead v2 list
	// example's 10-digit dates suggest). The documents leave it open; a client must not lose a
	// lead whichever it is.
	LeadFromDateUnit string
}

// ValueForms lists the accepted Values settings.
var ValueForms = []string{"plain", "varied"}

// DefaultStart is the simulated clock's start when Config.Start is zero.
var DefaultStart = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// DemoLinkBase is the LinkBase of the demo data (the embedded simulator of `syncer sync`/`serve`).
const DemoLinkBase = "https://marketplace.demo.invalid"

// Profiles lists the accepted profile names.
var Profiles = []string{"realistic", "fast", "chaos", "hostile"}

// SetDefaults fills unset fields and applies the profile.
func (c *Config) SetDefaults() {
	if c.Scale == 0 {
		c.Scale = 500
	}
	if c.Locations == 0 {
		c.Locations = 3
	}
	if c.Profile == "" {
		c.Profile = "realistic"
	}
	if c.Speed == 0 {
		c.Speed = 1
	}
	if c.TokenTTL == 0 {
		c.TokenTTL = 43199 * time.Second
	}
	if c.ADBucket == 0 {
		c.ADBucket = 20
	}
	if c.ADLeak == 0 {
		c.ADLeak = 4
	}
	if c.ADCompaniesLeak == 0 {
		c.ADCompaniesLeak = 5
	}
	if c.HLBurst == 0 {
		c.HLBurst = 100
	}
	if c.HLInterval == 0 {
		c.HLInterval = 10 * time.Second
	}
	if c.HLDaily == 0 {
		c.HLDaily = 200000
	}
	if c.InsertRate == 0 && c.UpdateRate == 0 && c.DeleteRate == 0 {
		c.InsertRate, c.UpdateRate, c.DeleteRate = 0.002, 0.004, 0.0005
	}
	if c.Values == "" {
		c.Values = "varied"
		if c.Profile == "fast" {
			c.Values = "plain"
		}
	}
	if c.Start.IsZero() {
		c.Start = DefaultStart
	}
	if c.LeadFromDateUnit == "" {
		c.LeadFromDateUnit = "milliseconds"
	}
	if c.Faults.SlowDelay == 0 {
		c.Faults.SlowDelay = 300 * time.Millisecond
	}
	if c.Profile == "chaos" && c.Faults == (Faults{SlowDelay: c.Faults.SlowDelay}) {
		c.Faults = ChaosFaults()
	}
	if c.Profile == "hostile" {
		if c.Faults == (Faults{SlowDelay: c.Faults.SlowDelay}) {
			c.Faults = HostileFaults()
		}
		if c.Hostile.zero() {
			c.Hostile = HostileDefaults()
		}
	}
}

// ChaosFaults turns every fault on at rates a correct client must survive.
func ChaosFaults() Faults {
	return Faults{ServerError: 0.03, Slow: 0.01, SlowDelay: 200 * time.Millisecond, Reset: 0.01,
		Truncated: 0.01, InvalidJSON: 0.01, Throttle: 0.02, PageDrift: 0.02, RevokeAfter: 40}
}

// Validate reports the first unusable setting, naming it.
func (c *Config) Validate() error {
	switch {
	case !slices.Contains(Profiles, c.Profile):
		return fmt.Errorf("simulator profile %q: want one of %v", c.Profile, Profiles)
	case c.Scale < 1 || c.Scale > 100_000_000:
		return fmt.Errorf("simulator scale %d: want 1 to 100000000 rows per stream", c.Scale)
	case c.Locations < 1 || c.Locations > 10_000:
		return fmt.Errorf("simulator locations %d: want 1 to 10000", c.Locations)
	case c.Speed <= 0:
		return fmt.Errorf("simulator speed %g: want > 0", c.Speed)
	case c.Values != "plain" && c.Values != "varied":
		return fmt.Errorf("simulator values %q: want one of %v", c.Values, ValueForms)
	case c.LeadFromDateUnit != "milliseconds" && c.LeadFromDateUnit != "seconds":
		return fmt.Errorf("simulator lead fromDate unit %q: want milliseconds or seconds", c.LeadFromDateUnit)
	case c.Start.Year() < 1990 || c.Start.Year() > 9000:
		return fmt.Errorf("simulator start %s: want a time between 1990 and 9000", c.Start.Format(time.RFC3339))
	}
	for name, n := range c.Hostile.PageCap {
		if !slices.Contains(HostileStreams, name) || n < 0 {
			return fmt.Errorf("simulator page cap %s=%d: want one of %v and a cap >= 0", name, n, HostileStreams)
		}
	}
	for _, p := range []struct {
		name string
		v    float64
	}{{"bare-array charges", c.Hostile.BareArrayCharges}, {"no totals", c.Hostile.NoTotals},
		{"users without timestamps", c.Hostile.UsersWithoutTimestamps}, {"late arrivals", c.Hostile.LateArrivals}} {
		if p.v < 0 || p.v > 1 {
			return fmt.Errorf("simulator %s %g: want a share between 0 and 1", p.name, p.v)
		}
	}
	return nil
}

func (c *Config) limited() bool { return c.Profile != "fast" }

func (c *Config) varied() bool { return c.Values == "varied" }
