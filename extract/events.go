package extract

import (
	"context"
	"fmt"
	"net/url"
	"time"
)

// Events lists the marketplace's subscription events created at or after since (zero: all
// events, a full scan), oldest first, by the zero-based page/size pager like Users. The
// documented fromDate filter is on the event's creationDate, in epoch milliseconds.
func (a *AppDirect) Events(ctx context.Context, since time.Time, stats *Counters, emit Emit) (Outcome, error) {
	if why := a.Unavailable("events"); why != "" {
		return Outcome{Total: -1}, fmt.Errorf("stream events: %s", why)
	}
	q := url.Values{"sortOrder": {"ASC"}}
	if !since.IsZero() {
		q.Set("fromDate", ms(since))
	}
	return a.wrappedPages(ctx, "events", "uuid", "/api/channel/v1/events", q, "page", 0, a.partner, a.budget, nil, stats, emit, pageOpts{})
}
