package apisim

import (
	"fmt"
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
}

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
}

// ValueForms lists the accepted Values settings.
var ValueForms = []string{"plain", "varied"}

// DefaultStart is the simulated clock's start when Config.Start is zero.
var DefaultStart = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// Profiles lists the accepted profile names.
var Profiles = []string{"realistic", "fast", "chaos"}

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
	if c.Faults.SlowDelay == 0 {
		c.Faults.SlowDelay = 300 * time.Millisecond
	}
	if c.Profile == "chaos" && c.Faults == (Faults{SlowDelay: c.Faults.SlowDelay}) {
		c.Faults = ChaosFaults()
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
	case c.Profile != "realistic" && c.Profile != "fast" && c.Profile != "chaos":
		return fmt.Errorf("simulator profile %q: want one of %v", c.Profile, Profiles)
	case c.Scale < 1 || c.Scale > 100_000_000:
		return fmt.Errorf("simulator scale %d: want 1 to 100000000 rows per stream", c.Scale)
	case c.Locations < 1 || c.Locations > 10_000:
		return fmt.Errorf("simulator locations %d: want 1 to 10000", c.Locations)
	case c.Speed <= 0:
		return fmt.Errorf("simulator speed %g: want > 0", c.Speed)
	case c.Values != "plain" && c.Values != "varied":
		return fmt.Errorf("simulator values %q: want one of %v", c.Values, ValueForms)
	case c.Start.Year() < 1990 || c.Start.Year() > 9000:
		return fmt.Errorf("simulator start %s: want a time between 1990 and 9000", c.Start.Format(time.RFC3339))
	}
	return nil
}

func (c *Config) limited() bool { return c.Profile != "fast" }

func (c *Config) varied() bool { return c.Values == "varied" }
