package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/marketsync/marketsync/apisim"
)

func runSimulate(ctx context.Context, args []string, stdout, _ io.Writer) error {
	fs := newFlags("simulate", "simulate [--addr 127.0.0.1:PORT] [--seed N] [--scale ROWS] [--profile realistic|fast|chaos]", stdout)
	addr := fs.String("addr", "127.0.0.1:8089", "listen `address`")
	seed := fs.Int64("seed", 42, "data seed: the same seed and scale always serve the same data")
	scale := fs.Int("scale", 10000, "rows per stream (up to 100M; rows are computed on demand)")
	profile := fs.String("profile", "realistic", "realistic (documented rate limits), fast (no limits), chaos (every fault) or hostile (chaos plus everything the documents leave open)")
	speed := fs.Float64("speed", 1, "speed factor: multiplies every rate limit and the background clock")
	locations := fs.Int("locations", 3, "HighLevel locations of the demo company")
	background := fs.Float64("background", 0, "simulated seconds per real second of background change (0: only POST /_sim/advance)")
	replay := fs.Bool("replay", false, "cache rendered pages (benchmarks measure the client, not the generator)")
	startAt := fs.String("start", "now", "the simulated clock's start `time` (RFC 3339, or now)")
	values := fs.String("values", "", "value forms: varied (every form the documents allow; default) or plain")
	leadUnit := fs.String("lead-from-date-unit", "milliseconds", "the `unit` lead v2 reads fromDate/toDate in: milliseconds or seconds (the documents leave it open)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	start, err := parseSimStart(*startAt)
	if err != nil {
		return err
	}
	sim, err := apisim.New(apisim.Config{Seed: *seed, Scale: *scale, Profile: *profile, Speed: *speed, Locations: *locations,
		Background: *background, Replay: *replay, Start: start, Values: *values, LeadFromDateUnit: *leadUnit})
	if err != nil {
		return usagef("%v", err)
	}
	if err := sim.Start(*addr); err != nil {
		return err
	}
	defer sim.Close()
	fmt.Fprintf(stdout, `marketsync API simulator (profile %s, seed %d, %d rows per stream, speed %g)
  AppDirect base_url:  %[5]s
  HighLevel base_url:  %[5]s
  AppDirect client credentials: client_id=%[6]s client_secret=%[7]s
  AppDirect lead user (password grant): username=%[8]s password=%[9]s roles ROLE_RESELLER ROLE_RESELLER_MANAGER
  AppDirect AppReseller family: /api/appReseller/v1/{companies,users,opportunities} (api: reseller)
  HighLevel: client_id=%[10]s client_secret=%[11]s company_id=%[12]s app_id=%[13]s
  HighLevel auth: refresh_token (authorize_url: %[5]s/v2/oauth/chooselocation, any redirect_uri), or private_token=%[14]s
  Introspection: GET %[5]s/_sim/stats, GET %[5]s/_sim/truth, GET %[5]s/_sim/rows?stream=NAME, POST %[5]s/_sim/advance?seconds=N
Ctrl-C to stop.
`, *profile, *seed, *scale, *speed, sim.URL(), apisim.DemoClientID, apisim.DemoClientSecret, apisim.DemoLeadUser, apisim.DemoLeadPassword,
		apisim.DemoHLClientID, apisim.DemoHLClientSecret, apisim.DemoHLCompanyID, apisim.DemoHLAppID, sim.IssuePrivateToken())
	<-ctx.Done()
	shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	_ = shutdown
	return nil
}
