package extract

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// tokenExpiryDelta is how long before its expiry a token is replaced, so that no request leaves
// with a token that dies in flight. Tokens that live less than ten times this are replaced at
// 90 % of their life instead (see fetcher.Token).
const tokenExpiryDelta = 5 * time.Minute

// defaultTokenLife is assumed for a token whose response gives no expires_in.
const defaultTokenLife = 10 * time.Minute

// tokenSource is a credential's one cache of bearer tokens. The caching and early refresh are
// oauth2.ReuseTokenSourceWithExpiry's; tokenSource adds what oauth2.TokenSource cannot say:
// the waiting caller's context reaches the fetch (so a cancelled run does not wait on a token
// endpoint), and a token the server refused is dropped.
type tokenSource struct {
	// sem is held while asking reuse for a token: one fetch at a time, by the holder, under
	// the holder's context (fetch.ctx), and a waiter can give up when its context ends.
	sem   chan struct{}
	fetch *fetcher
	reuse oauth2.TokenSource
	last  *oauth2.Token // the token handed out last; guarded by sem
	// failed is the error of the last fetch, which ended at failedAt (guarded by sem): callers
	// that were already waiting get it instead of repeating a fetch that was just retried to
	// its end (an unreachable token endpoint cost each stream its own round of retries).
	failed   error
	failedAt time.Time
}

func newTokenSource(get func(ctx context.Context) (*oauth2.Token, error)) *tokenSource {
	f := &fetcher{get: get}
	return &tokenSource{sem: make(chan struct{}, 1), fetch: f, reuse: oauth2.ReuseTokenSourceWithExpiry(nil, f, tokenExpiryDelta)}
}

// Token implements Authorizer.
func (s *tokenSource) Token(ctx context.Context, refused *oauth2.Token) (*oauth2.Token, error) {
	asked := time.Now()
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-s.sem }()
	if s.failed != nil && s.failedAt.After(asked) {
		return nil, s.failed
	}
	if refused != nil && refused == s.last {
		// oauth2 has no way to drop a cached token: start an empty cache over the same fetch.
		s.reuse, s.last = oauth2.ReuseTokenSourceWithExpiry(nil, s.fetch, tokenExpiryDelta), nil
	}
	s.fetch.ctx = ctx
	tok, err := s.reuse.Token()
	s.fetch.ctx = nil // keep no finished request's context
	if err != nil {
		if ctx.Err() == nil { // not this caller's cancellation: the endpoint's answer
			s.failed, s.failedAt = err, time.Now()
		}
		return nil, err
	}
	s.failed = nil
	s.last = tok
	return tok, nil
}

// fetcher is the oauth2.TokenSource under the cache: one call, one token from the endpoint. It
// runs only inside tokenSource.Token, which lends it the caller's context.
type fetcher struct {
	ctx context.Context
	get func(ctx context.Context) (*oauth2.Token, error)
}

func (f *fetcher) Token() (*oauth2.Token, error) {
	tok, err := f.get(f.ctx)
	if err != nil {
		return nil, err
	}
	if tok.Expiry.IsZero() {
		tok.Expiry = time.Now().Add(defaultTokenLife)
	}
	// The cache replaces a token tokenExpiryDelta before Expiry; a short-lived token moves its
	// Expiry so that it is replaced at 90 % of its life, not at once (or never used at all).
	if life := time.Until(tok.Expiry); life < 10*tokenExpiryDelta {
		tok.Expiry = tok.Expiry.Add(tokenExpiryDelta - life/10)
	}
	return tok, nil
}

// tokenContext is ctx for a token request of the given stream: sent by c's HTTP stack (oauth2
// looks it up under oauth2.HTTPClient) and counted like tokenStats says.
func (c *Client) tokenContext(ctx context.Context, stream string, stats *Counters) context.Context {
	return withCall(context.WithValue(ctx, oauth2.HTTPClient, c.http), &call{stream: stream, stats: tokenStats(ctx, stats)})
}

// tokenStats is where a token request made under ctx is counted: in the counters of the
// request waiting on the token (a fetch runs under the waiting caller's context), so that a
// stream whose source cannot even hand out a token reports the attempts and retries it cost;
// fallback (the credential's own counters) only when no counted request waits.
func tokenStats(ctx context.Context, fallback *Counters) *Counters {
	if c, ok := ctx.Value(callKey{}).(*call); ok && c.stats != nil {
		return c.stats
	}
	return fallback
}

// tokenError names the endpoint and the status of a failed token request, never a secret: an
// oauth2.RetrieveError becomes an *HTTPError with the response's status and body excerpt.
func tokenError(what, stream, tokenURL string, err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.Response != nil {
		err = &HTTPError{Stream: stream, Method: http.MethodPost, Path: pathOf(tokenURL), Status: re.Response.StatusCode, Body: excerpt(re.Body)}
		return fmt.Errorf("getting %s: %w", what, err)
	}
	return fmt.Errorf("getting %s from %s: %w", what, pathOf(tokenURL), unwrapURLError(err))
}

// ScopePartnerRead is the one scope the client-credentials token asks for: "ROLE_PARTNER and
// ROLE_PARTNER_READ are the only scopes allowed for this grant type", and reading is all a sync
// does (source-apis.md §2.2).
const ScopePartnerRead = "ROLE_PARTNER_READ"

// appDirectPartner is the client-credentials token (system level, ROLE_PARTNER_READ); the client
// ID and secret travel by HTTP Basic, as the API guide shows.
func appDirectPartner(c *Client, cfg AppDirectConfig, stats *Counters) *tokenSource {
	cc := &clientcredentials.Config{ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret, TokenURL: cfg.BaseURL + "/oauth2/token",
		Scopes: []string{ScopePartnerRead}, AuthStyle: oauth2.AuthStyleInHeader}
	return newTokenSource(func(ctx context.Context) (*oauth2.Token, error) {
		tok, err := cc.Token(c.tokenContext(ctx, "appdirect auth", stats))
		if err != nil {
			return nil, appDirectTokenError("client_credentials", cc.Scopes, tokenError("an AppDirect token (grant client_credentials)", "appdirect auth", cc.TokenURL, err))
		}
		return tok, nil
	})
}

// appDirectUser is the AppDirect user's token from the password grant (HTTP Basic with the
// client ID and secret, form grant_type=password, username, password and the space-separated
// scope list, as the API guide's sample): lead v2 and the AppReseller family accept only
// user-level roles. It asks for the roles its contexts need (AppDirectConfig.UserScopes).
func appDirectUser(c *Client, cfg AppDirectConfig, stats *Counters) *tokenSource {
	oc := &oauth2.Config{ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret, Scopes: cfg.UserScopes(),
		Endpoint: oauth2.Endpoint{TokenURL: cfg.BaseURL + "/oauth2/token", AuthStyle: oauth2.AuthStyleInHeader}}
	return newTokenSource(func(ctx context.Context) (*oauth2.Token, error) {
		tok, err := oc.PasswordCredentialsToken(c.tokenContext(ctx, "appdirect auth", stats), cfg.LeadUsername, cfg.LeadPassword)
		if err != nil {
			return nil, appDirectTokenError("password", oc.Scopes, tokenError("an AppDirect user token (grant password)", "appdirect auth", oc.Endpoint.TokenURL, err))
		}
		return tok, nil
	})
}

// ErrAppDirectAuth marks a token request AppDirect refused for a reason the config can fix
// (credentials, password, scope); the message names the keys to check.
var ErrAppDirectAuth = errors.New("AppDirect refused the token request")

// appDirectTokenError turns the OAuth error code of a refused token request (RFC 6749 §5.2; the
// AppDirect documents give none of their own) into what the user should change. err already
// names the endpoint and status, never a secret.
func appDirectTokenError(grant string, scopes []string, err error) error {
	var re *oauth2.RetrieveError
	code := ""
	if errors.As(err, &re) {
		code = re.ErrorCode
	}
	var he *HTTPError
	if code == "" && errors.As(err, &he) {
		code = oauthErrorCode(he.Body)
	}
	var fix string
	switch {
	case code == "invalid_client" || (code == "" && he != nil && he.Status == http.StatusUnauthorized):
		fix = "the client ID or secret was refused: check sources.appdirect.client_id and client_secret (the API client's credentials from the marketplace's API client settings)"
	case code == "invalid_grant" && grant == "password":
		fix = "the user's username or password was refused: check sources.appdirect.lead_username and lead_password (a marketplace user who can sign in with a password)"
	case code == "invalid_scope" && grant == "password":
		fix = fmt.Sprintf("the scope %q was refused for this user: the user lacks the role, or the API client may not request it; "+
			"give the user the role, or set sources.appdirect.lead_context (and reseller_context) to contexts whose roles the user has", strings.Join(scopes, " "))
	case code == "invalid_scope":
		fix = fmt.Sprintf("the scope %q was refused for grant client_credentials: the API client must be allowed ROLE_PARTNER_READ (or ROLE_PARTNER); ask the marketplace manager to grant it", strings.Join(scopes, " "))
	case code == "unauthorized_client" || code == "unsupported_grant_type":
		fix = fmt.Sprintf("the API client may not use grant %s: enable it in the marketplace's API client settings", grant)
	default:
		return err
	}
	return fmt.Errorf("%w (%s): %s: %w", ErrAppDirectAuth, grant, fix, err)
}

// oauthErrorCode reads the "error" member of an OAuth error body ("" if there is none).
func oauthErrorCode(body string) string {
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal([]byte(body), &e) != nil {
		return ""
	}
	return e.Error
}

const hlVersion = "2021-07-28"

// highLevelAuth holds HighLevel's tokens: the agency (company) token, by the configured mode
// (client credentials, a stored rotating refresh token, or a static private integration
// token), and one location token per installed location, minted with the agency token.
type highLevelAuth struct {
	c       *Client
	cfg     HighLevelConfig
	stats   *Counters
	agency  Authorizer
	mu      sync.Mutex
	located map[string]*tokenSource
}

func newHighLevelAuth(c *Client, cfg HighLevelConfig, stats *Counters) *highLevelAuth {
	h := &highLevelAuth{c: c, cfg: cfg, stats: stats, located: map[string]*tokenSource{}}
	switch cfg.Auth {
	case HLAuthRefreshToken:
		h.agency = newRefreshSource(c, cfg, stats)
	case HLAuthPrivateToken:
		h.agency = staticToken{tok: &oauth2.Token{AccessToken: cfg.PrivateToken, TokenType: "Bearer"}}
	default: // HLAuthClientCredentials
		cc := &clientcredentials.Config{ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret, TokenURL: cfg.BaseURL + "/oauth/token",
			EndpointParams: url.Values{"user_type": {"Company"}}, AuthStyle: oauth2.AuthStyleInParams}
		h.agency = newTokenSource(func(ctx context.Context) (*oauth2.Token, error) {
			tok, err := cc.Token(c.tokenContext(ctx, "highlevel auth", stats))
			if err != nil {
				return nil, tokenError("a HighLevel agency token", "highlevel auth", cc.TokenURL, err)
			}
			return tok, nil
		})
	}
	return h
}

// location returns the token source of one location, made on first use.
func (h *highLevelAuth) location(id string) *tokenSource {
	h.mu.Lock()
	defer h.mu.Unlock()
	if t, ok := h.located[id]; ok {
		return t
	}
	t := newTokenSource(func(ctx context.Context) (*oauth2.Token, error) { return h.locationToken(ctx, id) })
	h.located[id] = t
	return t
}

// locationToken mints a location token: POST /oauth/locationToken, form companyId + locationId,
// with the agency token (a 401 there refreshes the agency token like any other request).
func (h *highLevelAuth) locationToken(ctx context.Context, id string) (*oauth2.Token, error) {
	var tr tokenResponse
	err := h.c.Do(ctx, Request{Stream: "highlevel auth", Method: http.MethodPost, URL: h.cfg.BaseURL + "/oauth/locationToken",
		Header: http.Header{"Version": {hlVersion}}, Form: url.Values{"companyId": {h.cfg.CompanyID}, "locationId": {id}},
		Auth: h.agency, Stats: tokenStats(ctx, h.stats), Parse: tr.parse})
	if err != nil {
		return nil, fmt.Errorf("getting a HighLevel location token for %s: %w", id, err)
	}
	tok := &oauth2.Token{AccessToken: tr.AccessToken, TokenType: tr.TokenType}
	if tr.ExpiresIn > 0 {
		tok.Expiry = time.Now().Add(time.Duration(tr.ExpiresIn * float64(time.Second)))
	}
	return tok, nil
}

type tokenResponse struct {
	AccessToken string  `json:"access_token"`
	TokenType   string  `json:"token_type"`
	ExpiresIn   float64 `json:"expires_in"`
}

func (tr *tokenResponse) parse(_ int, body []byte) error {
	if err := json.Unmarshal(body, tr); err != nil {
		return err
	}
	if tr.AccessToken == "" {
		return errors.New("token response has no access_token")
	}
	return nil
}
