package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/marketsync/marketsync/apisim"
	"github.com/marketsync/marketsync/config"
	"github.com/marketsync/marketsync/extract"
	"github.com/marketsync/marketsync/internal/tokenfile"
	"github.com/marketsync/marketsync/pipeline"
)

func runCheck(ctx context.Context, args []string, stdout, _ io.Writer) error {
	fs := newFlags("check", "check [--config FILE]", stdout)
	cfgPath := fs.String("config", "", "YAML config `file` (default: the embedded simulator)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	var f *config.File
	if *cfgPath == "" {
		sim, err := apisim.New(apisim.Config{Seed: 42, Scale: 100, Profile: "fast"})
		if err != nil {
			return err
		}
		if err := sim.Start("127.0.0.1:0"); err != nil {
			return err
		}
		defer sim.Close()
		f = demoConfig(sim)
		fmt.Fprintln(stdout, "no --config: checking the embedded simulator")
	} else {
		var err error
		if f, err = config.Load(*cfgPath); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "config ok: warehouse %s, parquet %s\n", f.Warehouse, f.ParquetDir)
	var lakeErr error
	if f.Lake != nil {
		lakeErr = checkLake(ctx, f.Lake, stdout)
	}
	client := extract.NewClient(slog.New(slog.DiscardHandler), extract.RetryPolicy{MaxAttempts: 3}, 0)
	defer client.CloseIdle()
	failed, skipped, probed := 0, 0, 0
	for _, tn := range f.TenantList() { // each tenant's probes under its name
		if len(f.Tenants) > 0 {
			fmt.Fprintf(stdout, "tenant %s:\n", tn.Name)
		}
		probes := checkSources(ctx, client, tn.Sources, stdout)
		probed += len(probes)
		for _, p := range probes {
			if p.Skipped != "" {
				skipped++
				fmt.Fprintf(stdout, "skip %s %s: %s\n", p.Source, p.Endpoint, strings.TrimPrefix(p.Skipped, "skipped: "))
				continue
			}
			if p.Err != nil {
				failed++
				fmt.Fprintf(stdout, "FAIL %s %s: %v\n", p.Source, p.Endpoint, p.Err)
			} else {
				fmt.Fprintf(stdout, "ok   %s %s\n", p.Source, p.Endpoint)
			}
		}
	}
	if failed > 0 {
		return errors.New(fmt.Sprintf("%d of %d endpoints failed", failed, probed-skipped))
	}
	if lakeErr != nil {
		return errors.New("the lake catalog failed")
	}
	return nil
}

// checkSources prints the auth a sources section uses and probes its endpoints.
func checkSources(ctx context.Context, client *extract.Client, s config.Sources, stdout io.Writer) []extract.Probe {
	var pc pipeline.Config
	pc.AppDirect, pc.HighLevel = sourcesOf(s)
	if ad := pc.AppDirect; ad != nil {
		// The auth in use, never a secret nor its length.
		ad.SetDefaults()
		fmt.Fprintf(stdout, "appdirect: %s api=%s client_id=%s client_secret %s\n", ad.BaseURL, ad.API, ad.ClientID, setOrNot(ad.ClientSecret))
		if ad.API == extract.APIMarketplace {
			fmt.Fprintf(stdout, "appdirect auth: grant client_credentials scope %s (companies, users, invoices, opportunities, events)\n", extract.ScopePartnerRead)
		}
		fmt.Fprintf(stdout, "appdirect auth: grant password for user %s (password %s) scope %s (%s); lead fromDate sent in %s\n",
			ad.LeadUsername, setOrNot(ad.LeadPassword), strings.Join(ad.UserScopes(), " "), userStreams(*ad), ad.LeadFromDateUnit)
	}
	if hl := s.HighLevel; hl != nil {
		fmt.Fprintf(stdout, "highlevel: %s auth=%s %s company_id=%s app_id=%s\n", hl.BaseURL, hl.Auth, highLevelCredentials(hl), hl.CompanyID, hl.AppID)
	}
	var probes []extract.Probe
	if pc.AppDirect != nil {
		probes = append(probes, extract.NewAppDirect(client, *pc.AppDirect, &extract.Counters{}).Check(ctx)...)
	}
	if pc.HighLevel != nil {
		probes = append(probes, extract.NewHighLevel(client, *pc.HighLevel, &extract.Counters{}).Check(ctx)...)
	}
	return probes
}

// highLevelCredentials describes the credentials of hl's auth mode: which are set, and for
// refresh_token the token file's state, never a secret or its length.
func highLevelCredentials(hl *config.HighLevel) string {
	switch hl.Auth {
	case config.HLAuthPrivateToken:
		return "private_token=" + config.Mask(hl.PrivateToken)
	case config.HLAuthRefreshToken:
		var state string
		switch t, err := tokenfile.Load(hl.TokenFile); {
		case errors.Is(err, tokenfile.ErrNotExist):
			state = "missing: run `syncer auth highlevel` first"
		case err != nil:
			state = "unusable: " + err.Error()
		default:
			state = "saved " + t.Saved.Format(time.RFC3339)
		}
		return fmt.Sprintf("client_id=%s client_secret=%s token_file=%s (%s)", hl.ClientID, config.Mask(hl.ClientSecret), hl.TokenFile, state)
	}
	return fmt.Sprintf("client_id=%s client_secret=%s", hl.ClientID, config.Mask(hl.ClientSecret))
}

// setOrNot says whether a secret is configured, and nothing else about it.
func setOrNot(secret string) string {
	if secret == "" {
		return "not set"
	}
	return "set"
}

// userStreams names what the AppDirect user's token reads in the configured family.
func userStreams(ad extract.AppDirectConfig) string {
	if ad.API == extract.APIReseller {
		return "leads, and companies, users, opportunities through AppReseller context " + ad.ResellerContext
	}
	return "leads, context " + ad.LeadContext
}
