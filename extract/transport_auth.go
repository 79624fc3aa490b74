package extract

import (
	"context"
	"net/http"

	"golang.org/x/oauth2"
)

// Authorizer supplies bearer tokens for one credential.
type Authorizer interface {
	// Token returns a token for a request made under ctx, fetching one if none is cached or
	// the cached one is about to expire. refused, if not nil, is a token the server answered
	// 401 to: if it is still the cached one it is dropped first, so workers that were refused
	// the same token at once cause one fetch, not one each.
	Token(ctx context.Context, refused *oauth2.Token) (*oauth2.Token, error)
}

// maxRefreshes bounds how often one attempt gets a fresh token after a 401: a token can be
// revoked again before its first use, but credentials that keep failing are not retried forever.
const maxRefreshes = 3

// authTransport adds the call's bearer token. It sits below the budget, so the token is taken
// right before the request is sent, not before a wait in the budget's queue during which the
// server may revoke it. On 401 it replaces that token at once, waits for the budget again (the
// server counted the refused request) and sends the request again with the current token, at
// most maxRefreshes times. A redirect to another host gets no token. A token that cannot be had ends
// the request: the token endpoint's own request was already retried.
type authTransport struct {
	next http.RoundTripper
}

func (t *authTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	auth := callOf(req).auth
	if auth == nil || crossHostRedirect(req) {
		return t.next.RoundTrip(req)
	}
	var refused *oauth2.Token
	for refresh := 0; ; refresh++ {
		try := req
		if refresh > 0 {
			var err error
			if try, err = rewind(req); err != nil {
				return nil, err
			}
			// The refused token is replaced at once, so that the workers queued in the budget
			// meanwhile send the new one rather than be refused the old one in turn (each refusal
			// counts against the server's budget, and a server that revokes every n-th call
			// would revoke again).
			if _, err := auth.Token(req.Context(), refused); err != nil {
				return nil, permanent(err)
			}
			if err := waitBudget(req); err != nil {
				return nil, err
			}
		}
		tok, err := auth.Token(req.Context(), nil)
		if err != nil {
			return nil, permanent(err)
		}
		try = try.WithContext(try.Context())
		try.Header = req.Header.Clone()
		tok.SetAuthHeader(try)
		res, err := t.next.RoundTrip(try)
		if err != nil || res.StatusCode != http.StatusUnauthorized || refresh == maxRefreshes || !replayable(req) {
			return res, err
		}
		if b := callOf(req).budget; b != nil {
			b.Observe(res.Header) // the refused request's rate-limit headers still count
		}
		drain(res)
		refused = tok
	}
}

// crossHostRedirect reports a request the client made to follow redirects to a host other than
// the one first asked, which must not see our token.
func crossHostRedirect(req *http.Request) bool {
	first := req
	for first.Response != nil && first.Response.Request != nil {
		first = first.Response.Request
	}
	return first.URL.Host != req.URL.Host
}
