package pipeline

import (
	"context"
	"fmt"
	"time"

	"github.com/marketsync/marketsync/extract"
	"github.com/marketsync/marketsync/schemas"
)

// resource binds a table's declared Resource to the extractor call that lists it. partitions,
// when not nil, receives the keys of the rows listed (the partitions of the streams that
// declare PartitionedBy this one).
type resource struct {
	source string // the schemas.Table.Source it needs configured
	list   func(r *run, partition string, since time.Time, partitions *[]string) listFunc
	// sweep lists every record in one status, whatever its age (for the table's Sweeps).
	sweep func(r *run, status string) listFunc
}

var resources = map[string]resource{
	"appdirect.companies": appDirect(func(a *extract.AppDirect, ctx context.Context, _ time.Time, st *extract.Counters, emit extract.Emit) (extract.Outcome, error) {
		return a.Companies(ctx, st, emit) // no filter: a full snapshot every run
	}, nil),
	"appdirect.users":         appDirect((*extract.AppDirect).Users, nil),
	"appdirect.invoices":      appDirect((*extract.AppDirect).Invoices, (*extract.AppDirect).InvoicesByStatus),
	"appdirect.leads":         appDirect((*extract.AppDirect).Leads, (*extract.AppDirect).LeadsByStatus),
	"appdirect.opportunities": appDirect((*extract.AppDirect).Opportunities, (*extract.AppDirect).OpportunitiesByStatus),
	"appdirect.events":        appDirect((*extract.AppDirect).Events, nil),
	"highlevel.locations": {"highlevel", func(r *run, _ string, _ time.Time, partitions *[]string) listFunc {
		return func(ctx context.Context, st *extract.Counters, emit extract.Emit) (extract.Outcome, error) {
			ids, out, err := r.hl.Locations(ctx, st, emit)
			if partitions != nil {
				*partitions = ids
			}
			return out, err
		}
	}, nil},
	"highlevel.charges": {"highlevel", func(r *run, partition string, since time.Time, _ *[]string) listFunc {
		return func(ctx context.Context, st *extract.Counters, emit extract.Emit) (extract.Outcome, error) {
			return r.hl.Charges(ctx, partition, since, st, emit)
		}
	}, nil},
}

// An AppDirect listing from a lower bound, and a listing of one status.
type (
	adSince  func(*extract.AppDirect, context.Context, time.Time, *extract.Counters, extract.Emit) (extract.Outcome, error)
	adStatus func(*extract.AppDirect, context.Context, string, *extract.Counters, extract.Emit) (extract.Outcome, error)
)

// appDirect binds an AppDirect listing (and its status sweep, if any) to the run's extractor.
func appDirect(list adSince, sweep adStatus) resource {
	res := resource{source: "appdirect", list: func(r *run, _ string, since time.Time, _ *[]string) listFunc {
		return func(ctx context.Context, st *extract.Counters, emit extract.Emit) (extract.Outcome, error) {
			return list(r.ad, ctx, since, st, emit)
		}
	}}
	if sweep != nil {
		res.sweep = func(r *run, status string) listFunc {
			return func(ctx context.Context, st *extract.Counters, emit extract.Emit) (extract.Outcome, error) {
				return sweep(r.ad, ctx, status, st, emit)
			}
		}
	}
	return res
}

// lister returns the call that lists table t's partition from since.
func (r *run) lister(t *schemas.Table, partition string, since time.Time, partitions *[]string) (listFunc, error) {
	res, ok := resources[t.Resource]
	if !ok {
		return nil, fmt.Errorf("stream %s: no extractor for resource %q", t.Name, t.Resource)
	}
	return res.list(r, partition, since, partitions), nil
}

// configured reports whether the source a table is read from is configured.
func (r *run) configured(t *schemas.Table) bool {
	switch t.Source {
	case "appdirect":
		return r.ad != nil
	case "highlevel":
		return r.hl != nil
	}
	return false
}

// unavailable says why the configured source cannot list table t ("" if it can): the AppDirect
// AppReseller family has no invoices or events endpoint, for example.
func (r *run) unavailable(t *schemas.Table) string {
	if t.Source == "appdirect" && r.ad != nil {
		return r.ad.Unavailable(t.Name)
	}
	return ""
}
