package extract

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/marketsync/marketsync/internal/jsonscan"
)

// The unit of lead v2's fromDate. The documents disagree (source-apis.md §3.4.2, §7 item 30):
// the parameter is "in Unix timestamp format", the LeadResponse schema gives createdOn "in UNIX
// Epoch milliseconds", every other AppDirect date filter (events, prm v1 leads, users'
// lastModified) is in milliseconds, but the lead v2 list example shows 10-digit createdOn
// values, i.e. seconds. Milliseconds is the default; the wrong guess is not silent:
//
//   - milliseconds read as seconds put the bound tens of thousands of years ahead: the listing
//     is empty. An incremental run's bound is at or before the newest lead it already holds, so
//     an empty first page is checked by listing from the same bound in the other unit; leads
//     from then on there mean the server reads the other unit, and the stream fails naming
//     the fix (nothing was skipped: its cursor does not move).
//   - seconds read as milliseconds put the bound in January 1970: the listing returns older
//     leads than asked. No lead is lost (the listing is wider than asked); the run notes it.

// ErrLeadDateUnit means the server reads lead v2's fromDate in another unit than configured.
var ErrLeadDateUnit = errors.New("the server reads lead fromDate in another unit")

// leadDate renders t as lead v2's fromDate in the configured unit (seconds round down, so the
// bound never moves later than asked).
func (a *AppDirect) leadDate(t time.Time, unit string) string {
	if unit == LeadDateSeconds {
		return strconv.FormatInt(t.Unix(), 10)
	}
	return ms(t)
}

func otherUnit(unit string) string {
	if unit == LeadDateSeconds {
		return LeadDateMilliseconds
	}
	return LeadDateSeconds
}

// leadCreated reads a lead record's createdOn in every documented form: epoch milliseconds or
// seconds (below 10^11), as a number or numeric string, or ISO-8601 with an offset.
func leadCreated(rec []byte) (time.Time, bool) {
	v := jsonscan.Get(rec, "createdOn")
	if v == nil || jsonscan.IsNull(v) {
		return time.Time{}, false
	}
	s := string(v)
	if jsonscan.Kind(v) == '"' {
		var scratch []byte
		u, err := jsonscan.Unquote(v, &scratch)
		if err != nil {
			return time.Time{}, false
		}
		s = string(u)
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n < 100_000_000_000 {
			return time.Unix(n, 0), true
		}
		return time.UnixMilli(n), true
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.000-0700", "2006-01-02T15:04:05-0700"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// oldestLead returns the earliest createdOn of records (ok false if none has one).
func oldestLead(recs [][]byte) (time.Time, bool) {
	var oldest time.Time
	found := false
	for _, r := range recs {
		if t, ok := leadCreated(r); ok && (!found || t.Before(oldest)) {
			oldest, found = t, true
		}
	}
	return oldest, found
}

// leadUnitCheck checks the first page of an incremental leads listing from since against the
// configured fromDate unit (see the comment at the top of this file).
func (a *AppDirect) leadUnitCheck(since time.Time, stats *Counters) pageCheck {
	unit := a.cfg.LeadFromDateUnit
	return func(ctx context.Context, first fetched, l *listing) error {
		if oldest, ok := oldestLead(first.page.Records); ok {
			if oldest.Before(since.Truncate(time.Second)) {
				l.out.Notice = fmt.Sprintf("lead fromDate was sent in %s (%s) but leads created before it came back (from %s): the server seems to read it in a finer unit; "+
					"no lead was lost, but set sources.appdirect.lead_from_date_unit: %s to list only what changed",
					unit, a.leadDate(since, unit), oldest.UTC().Format(time.RFC3339), otherUnit(unit))
			}
			return nil
		}
		if len(first.page.Records) > 0 {
			return nil
		}
		// An empty listing from a bound at or before the newest lead already synced: no lead was
		// created since, or the server read the bound in a coarser unit. Ask in the other unit.
		other := otherUnit(unit)
		probe, err := a.leadsFrom(ctx, since, other, stats)
		if err != nil {
			return fmt.Errorf("checking the lead fromDate unit: %w", err)
		}
		if oldest, ok := oldestLead(probe); ok && !oldest.Before(since.Truncate(time.Second)) {
			return fmt.Errorf("%w: stream leads: the listing from %s with fromDate in %s (%s) came back empty, but the same bound in %s (%s) lists leads created since then (from %s): "+
				"the server reads fromDate in %s; set sources.appdirect.lead_from_date_unit: %s (nothing was skipped: the leads cursor did not move)",
				ErrLeadDateUnit, since.UTC().Format(time.RFC3339), unit, a.leadDate(since, unit), other, a.leadDate(since, other),
				oldest.UTC().Format(time.RFC3339), other, other)
		}
		return nil
	}
}

// leadsFrom lists the first page (oldest first, up to 5 leads) of leads created from since,
// with fromDate in unit.
func (a *AppDirect) leadsFrom(ctx context.Context, since time.Time, unit string, stats *Counters) ([][]byte, error) {
	q := url.Values{"context": {a.cfg.LeadContext}, "companyId": {a.cfg.LeadCompanyID}, "sortField": {"DATE"}, "sortOrder": {"ASC"},
		"page": {"0"}, "size": {"5"}, "fromDate": {a.leadDate(since, unit)}}
	var recs [][]byte
	err := a.c.Do(ctx, Request{Stream: "leads", URL: a.cfg.BaseURL + "/api/lead/v2/leads?" + q.Encode(), Auth: a.user, Budget: a.budget, Stats: stats,
		Parse: func(_ int, body []byte) error {
			var err error
			recs, _, err = splitWrapped(body)
			return err
		}})
	return recs, err
}

// LeadDateUnit reports which unit the server reads lead v2's fromDate in, for syncer check: it
// takes the newest lead and lists from its creation time in each unit; the unit whose listing
// holds leads from that time on is the server's. It returns "" if there is no lead to test with.
func (a *AppDirect) LeadDateUnit(ctx context.Context) (string, error) {
	var st Counters
	q := url.Values{"context": {a.cfg.LeadContext}, "companyId": {a.cfg.LeadCompanyID}, "sortField": {"DATE"}, "sortOrder": {"DESC"}, "page": {"0"}, "size": {"1"}}
	var newest [][]byte
	err := a.c.Do(ctx, Request{Stream: "check", URL: a.cfg.BaseURL + "/api/lead/v2/leads?" + q.Encode(), Auth: a.user, Budget: a.budget, Stats: &st,
		Parse: func(_ int, body []byte) error {
			var err error
			newest, _, err = splitWrapped(body)
			return err
		}})
	if err != nil {
		return "", err
	}
	created, ok := oldestLead(newest)
	if !ok {
		return "", nil
	}
	for _, unit := range []string{LeadDateMilliseconds, LeadDateSeconds} {
		recs, err := a.leadsFrom(ctx, created, unit, &st)
		if err != nil {
			return "", err
		}
		if oldest, ok := oldestLead(recs); ok && !oldest.Before(created.Truncate(time.Second)) {
			return unit, nil
		}
	}
	return "", nil
}
