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
	"appdirect.companies": {"appdirect", func(r *run, _ string, _ time.Time, _ *[]string) listFunc {
		return func(ctx context.Context, st *extract.Counters, emit extract.Emit) (extract.Outcome, error) {
			return r.ad.Companies(ctx, st, emit)
		}
	}, nil},
	"appdirect.users": {"appdirect", func(r *run, _ string, since time.Time, _ *[]string) listFunc {
		return func(ctx context.Context, st *extract.Counters, emit extract.Emit) (extract.Outcome, error) {
			return r.ad.Users(ctx, since, st, emit)
		}
	}, nil},
	"appdirect.invoices": {"appdirect", func(r *run, _ string, since time.Time, _ *[]string) listFunc {
		return func(ctx context.Context, st *extract.Counters, emit extract.Emit) (extract.Outcome, error) {
			return r.ad.Invoices(ctx, since, st, emit)
		}
	}, func(r *run, status string) listFunc {
		return func(ctx context.Context, st *extract.Counters, emit extract.Emit) (extract.Outcome, error) {
			return r.ad.InvoicesByStatus(ctx, status, st, emit)
		}
	}},
	"appdirect.leads": {"appdirect", func(r *run, _ string, since time.Time, _ *[]string) listFunc {
		return func(ctx context.Context, st *extract.Counters, emit extract.Emit) (extract.Outcome, error) {
			return r.ad.Leads(ctx, since, st, emit)
		}
	}, func(r *run, status string) listFunc {
		return func(ctx context.Context, st *extract.Counters, emit extract.Emit) (extract.Outcome, error) {
			return r.ad.LeadsByStatus(ctx, status, st, emit)
		}
	}},
	"appdirect.opportunities": {"appdirect", func(r *run, _ string, since time.Time, _ *[]string) listFunc {
		return func(ctx context.Context, st *extract.Counters, emit extract.Emit) (extract.Outcome, error) {
			return r.ad.Opportunities(ctx, since, st, emit)
		}
	}, func(r *run, status string) listFunc {
		return func(ctx context.Context, st *extract.Counters, emit extract.Emit) (extract.Outcome, error) {
			return r.ad.OpportunitiesByStatus(ctx, status, st, emit)
		}
	}},
	"appdirect.events": {"appdirect", func(r *run, _ string, since time.Time, _ *[]string) listFunc {
		return func(ctx context.Context, st *extract.Counters, emit extract.Emit) (extract.Outcome, error) {
			return r.ad.Events(ctx, since, st, emit)
		}
	}, nil},
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
