package extract

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
)

// Probe is the outcome of reaching one endpoint.
type Probe struct {
	Source, Endpoint string
	Err              error
	// Skipped says why the endpoint was not probed: the configured API family lacks it.
	Skipped string
}

// Check gets tokens and reads one record from every AppDirect endpoint, writing nothing.
func (a *AppDirect) Check(ctx context.Context) []Probe {
	var st Counters
	probe := func(name, path string, auth Authorizer, hdr http.Header) Probe {
		err := a.c.Do(ctx, Request{Stream: "check", URL: a.cfg.BaseURL + path, Auth: auth, Budget: a.budget, Header: hdr, Stats: &st})
		return Probe{Source: "appdirect", Endpoint: name, Err: err}
	}
	if a.cfg.API == APIReseller {
		return a.checkReseller(ctx, probe)
	}
	leads := probe("leads", "/api/lead/v2/leads?page=0&size=1&context="+url.QueryEscape(a.cfg.LeadContext)+"&companyId="+url.QueryEscape(a.cfg.LeadCompanyID), a.user, nil)
	out := []Probe{
		probe("companies", "/api/account/v2/companies?page=0&size=1", a.partner, nil),
		probe("users", "/api/account/v2/users?page=0&size=1", a.partner, nil),
		probe("invoices", "/api/billing/v1/invoices?start=0&count=1", a.partner, nil),
		leads,
		probe("opportunities", "/api/assistedSales/v1/opportunities?number=1&size=1", a.partner, http.Header{"Accept-Language": {"en-US"}}),
		probe("events", "/api/channel/v1/events?page=0&size=1", a.partner, nil),
	}
	if leads.Err == nil {
		out = append(out, a.checkLeadDateUnit(ctx))
	}
	return out
}

// checkReseller probes the AppReseller family with the user's token; the streams it lacks are
// reported skipped.
func (a *AppDirect) checkReseller(ctx context.Context, probe func(name, path string, auth Authorizer, hdr http.Header) Probe) []Probe {
	rc := "context=" + url.QueryEscape(a.cfg.ResellerContext)
	out := []Probe{
		probe("companies (AppReseller)", "/api/appReseller/v1/companies?page=0&size=1&"+rc, a.user, nil),
		probe("users (AppReseller)", "/api/appReseller/v1/users?page=0&size=1&"+rc, a.user, nil),
	}
	if why := a.Unavailable("opportunities"); why != "" {
		out = append(out, Probe{Source: "appdirect", Endpoint: "opportunities", Skipped: why})
	} else {
		out = append(out, probe("opportunities (AppReseller)", "/api/appReseller/v1/opportunities?number=1&size=1&"+rc, a.user, nil))
	}
	leads := probe("leads", "/api/lead/v2/leads?page=0&size=1&context="+url.QueryEscape(a.cfg.LeadContext)+"&companyId="+url.QueryEscape(a.cfg.LeadCompanyID), a.user, nil)
	out = append(out, leads)
	if leads.Err == nil {
		out = append(out, a.checkLeadDateUnit(ctx))
	}
	for _, s := range []string{"invoices", "events"} {
		out = append(out, Probe{Source: "appdirect", Endpoint: s, Skipped: a.Unavailable(s)})
	}
	return out
}

// checkLeadDateUnit probes which unit the server reads lead fromDate in and compares it with
// the configured one.
func (a *AppDirect) checkLeadDateUnit(ctx context.Context) Probe {
	p := Probe{Source: "appdirect", Endpoint: "leads fromDate unit"}
	unit, err := a.LeadDateUnit(ctx)
	switch {
	case err != nil:
		p.Err = err
	case unit == "":
		p.Endpoint += " (no lead to test it with: assuming " + a.cfg.LeadFromDateUnit + ", as configured)"
	case unit != a.cfg.LeadFromDateUnit:
		p.Err = fmt.Errorf("%w: the server reads it in %s, the config says %s: set sources.appdirect.lead_from_date_unit: %s", ErrLeadDateUnit, unit, a.cfg.LeadFromDateUnit, unit)
	default:
		p.Endpoint += " (" + unit + ", as configured)"
	}
	return p
}

// Check gets the agency token, lists installed locations, mints a location token for the first
// one and reads one of its charges.
func (h *HighLevel) Check(ctx context.Context) []Probe {
	var st Counters
	ids, _, err := h.Locations(ctx, &st, func(context.Context, Page) error { return nil })
	out := []Probe{{Source: "highlevel", Endpoint: "installed locations", Err: err}}
	if err != nil || len(ids) == 0 {
		return out
	}
	err = h.c.Do(ctx, Request{Stream: "check", URL: h.cfg.BaseURL + "/marketplace/billing/charges?skip=0&limit=1", Header: hlHeader,
		Auth: h.auth.location(ids[0]), Budget: h.budget("location " + ids[0]), Stats: &st})
	return append(out, Probe{Source: "highlevel", Endpoint: "charges (location " + ids[0] + ")", Err: err})
}
