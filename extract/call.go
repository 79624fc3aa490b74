package extract

import (
	"context"
	"net/http"
)

// call is what the transport layers know about one logical request: which stream it is for,
// whose counters it adds to, which server-side budget and which credential it draws on, and how
// to tell a usable 2xx body from a transient fault. Client.Do puts it into the request's
// context, token fetches put their own, so every attempt is attributed to the stream that caused
// it without any shared state.
type call struct {
	stream string
	stats  *Counters  // nil: not counted
	budget *Budget    // nil: not rate limited
	auth   Authorizer // nil: no bearer token
	// check validates a 2xx body; an error is a transient fault (a truncated or garbled page)
	// and is retried. nil: any 2xx body is accepted.
	check func(status int, body []byte) error
}

type callKey struct{}

func withCall(ctx context.Context, c *call) context.Context {
	return context.WithValue(ctx, callKey{}, c)
}

// callOf returns the call of req; a request sent without one (a bare http.Request in a test)
// gets an empty call: no counters, no budget, no token.
func callOf(req *http.Request) *call {
	if c, ok := req.Context().Value(callKey{}).(*call); ok {
		return c
	}
	return &call{}
}
