package extract

import (
	"net/http"
	"time"
)

// budgetTransport makes each attempt wait for its call's server-side budget (every worker on
// the budget shares its limiter and its pauses) and counts the wait in the call's Waited. It
// feeds the budget what the server says: HighLevel's X-RateLimit-* headers, and a 429's
// Retry-After, which pauses every worker of the budget, not only the one that was refused.
type budgetTransport struct {
	next     http.RoundTripper
	maxPause time.Duration // cap on a Retry-After taken as a pause
}

func (t *budgetTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	b := callOf(req).budget
	if b == nil {
		return t.next.RoundTrip(req)
	}
	if err := waitBudget(req); err != nil {
		return nil, err
	}
	res, err := t.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	b.Observe(res.Header)
	if res.StatusCode == http.StatusTooManyRequests {
		if ra := parseRetryAfter(res.Header.Get("Retry-After"), t.maxPause); ra > 0 {
			b.Pause(ra)
		}
	}
	return res, nil
}

// waitBudget waits for req's call's budget, if it has one, counting the wait in its Waited. A
// failed wait (the daily floor, a cancelled run) is permanent.
func waitBudget(req *http.Request) error {
	c := callOf(req)
	if c.budget == nil {
		return nil
	}
	if c.stats != nil {
		c.stats.beginWait()
	}
	err := c.budget.Wait(req.Context())
	if c.stats != nil {
		c.stats.endWait()
	}
	if err != nil {
		return permanent(err)
	}
	return nil
}
