// Package extract pulls pages of raw records from the AppDirect and HighLevel APIs. All HTTP
// policy lives in one http.RoundTripper chain built by NewClient (retry → auth → budget → caps →
// the wire, one small type per layer); a stream only says path, parameters, paginator and
// record path.
package extract

import (
	"errors"
	"fmt"
	"time"
)

// Sentinels callers branch on.
var (
	// ErrDailyBudget stops a run before it exhausts a HighLevel daily request budget.
	ErrDailyBudget = errors.New("daily request budget nearly exhausted")
	// ErrPagination means the API's paging went wrong (a page repeated, endless paging).
	ErrPagination = errors.New("pagination error")
	// ErrBody means a response body could not be read as the expected JSON.
	ErrBody = errors.New("unexpected response body")
	// ErrTooLarge means a response exceeded the size cap.
	ErrTooLarge = errors.New("response exceeds the size cap")
	// ErrContentType means a successful response declared a body that is not JSON (XML, HTML):
	// the API ignored Accept: application/json, and retrying will not change that.
	ErrContentType = errors.New("response is not JSON")
)

// DailyBudgetWindow is how long after a daily budget ran low it is surely back: HighLevel
// documents a budget "per day" but not when its day starts, so a rolling day or a calendar day
// in any time zone has reset at the latest this long after the stop.
const DailyBudgetWindow = 24 * time.Hour

// DailyBudgetError is an ErrDailyBudget stop: which budget, what it had left, and when it is
// back at the latest. It is not a failure: the work resumes then from the committed cursor.
type DailyBudgetError struct {
	Budget    string
	Left      int
	Floor     int
	ResumesAt time.Time
}

func (e *DailyBudgetError) Error() string {
	return fmt.Sprintf("%v: %s has %d requests left today (stopping at %d to leave room for other work); it resumes after %s at the latest, from the saved cursor",
		ErrDailyBudget, e.Budget, e.Left, e.Floor, e.ResumesAt.UTC().Format(time.RFC3339))
}

func (e *DailyBudgetError) Unwrap() error { return ErrDailyBudget }

// HTTPError is a response that ended a request: a non-retryable status, or the last of the
// retries. It names the path but never the query's secrets or a token.
type HTTPError struct {
	Stream     string
	Method     string
	Path       string
	Status     int
	Body       string // first 512 bytes
	RetryAfter time.Duration
}

func (e *HTTPError) Error() string {
	hint := ""
	switch e.Status {
	case 401:
		hint = " (check the credentials in your config)"
	case 403:
		hint = " (the credentials lack a role this endpoint needs)"
	case 404:
		hint = " (check base_url: the path does not exist there)"
	case 429:
		hint = " (rate limited and retries ran out)"
	}
	return fmt.Sprintf("stream %s: %s %s: HTTP %d%s: %s", e.Stream, e.Method, e.Path, e.Status, hint, e.Body)
}

// retryableStatus reports whether the status is worth retrying.
func retryableStatus(code int) bool {
	return code == 429 || code == 500 || code == 502 || code == 503 || code == 504
}

// permanentError marks an error a transport layer knows retrying cannot fix (a token endpoint
// that refused us after its own retries, an exhausted daily budget, a body over the cap); the
// retry layer returns it at once. Its text is the wrapped error's.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

func permanent(err error) error { return &permanentError{err} }

func isPermanent(err error) bool {
	var pe *permanentError
	return errors.As(err, &pe)
}
