package extract

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"golang.org/x/oauth2"

	"github.com/marketsync/marketsync/internal/tokenfile"
)

// HighLevel auth modes (HighLevelConfig.Auth).
const (
	HLAuthClientCredentials = "client_credentials" // the default
	HLAuthRefreshToken      = "refresh_token"      // Authorization Code flow: a stored, rotating refresh token
	HLAuthPrivateToken      = "private_token"      // a Private Integration Token: static bearer
)

// HLAuthModes lists the modes, for messages.
var HLAuthModes = []string{HLAuthClientCredentials, HLAuthRefreshToken, HLAuthPrivateToken}

// HighLevelOAuth is the OAuth 2.0 client of HighLevel's Authorization Code flow: the token
// endpoint takes the client credentials in the form (AuthStyleInParams), as the spec has them.
func HighLevelOAuth(baseURL, clientID, clientSecret, authorizeURL, redirectURI string, scopes []string) *oauth2.Config {
	return &oauth2.Config{ClientID: clientID, ClientSecret: clientSecret, RedirectURL: redirectURI, Scopes: scopes,
		Endpoint: oauth2.Endpoint{AuthURL: authorizeURL, TokenURL: baseURL + "/oauth/token", AuthStyle: oauth2.AuthStyleInParams}}
}

// ReauthorizeHint is what a user does when the stored refresh token no longer works.
const ReauthorizeHint = "run `syncer auth highlevel --config <your config>` to authorize again"

// refreshSource is the agency token of the refresh_token mode. The refresh token lives in the
// token file and rotates on every use, so:
//
//   - the new tokens are saved (fsync + rename, tokenfile.Save) the moment the response is
//     read, before the access token is handed to anyone or any later refresh can start: a
//     crash after that point leaves the file with the newest refresh token;
//   - refreshes are serialized: one at a time in this process (sem) and across processes that
//     share the file (tokenfile.Lock), and whoever waited first re-reads the file, using the
//     access token another process saved rather than spending the refresh token again;
//   - tokens are never logged; errors name the file, never its content.
//
// The one window no client can close is between HighLevel's answer (which already voided the
// old refresh token) and the end of the save: a kill there loses the new one, and the next
// refresh is refused, which Token reports with ReauthorizeHint.
type refreshSource struct {
	c     *Client
	oc    *oauth2.Config
	path  string
	stats *Counters
	sem   chan struct{}
	cur   *oauth2.Token // the token handed out last; guarded by sem
	// afterRefresh, if set (tests), runs at "received" (new tokens read, not yet saved) and at
	// "saved" (saved, not yet handed out); an error stops Token there, as a kill would.
	afterRefresh func(stage string) error
}

// refreshTimeout bounds one refresh (with its retries), which a stopping run still waits for.
const refreshTimeout = 30 * time.Second

func newRefreshSource(c *Client, cfg HighLevelConfig, stats *Counters) *refreshSource {
	return &refreshSource{c: c, path: cfg.TokenFile, stats: stats, sem: make(chan struct{}, 1),
		oc: HighLevelOAuth(cfg.BaseURL, cfg.ClientID, cfg.ClientSecret, "", "", nil)}
}

// usable reports whether an access token can still be sent (tokenExpiryDelta before expiry;
// a token without expiry is taken as usable until refused).
func usable(t *oauth2.Token) bool {
	return t != nil && t.AccessToken != "" && (t.Expiry.IsZero() || time.Until(t.Expiry) > tokenExpiryDelta)
}

// Token implements Authorizer.
func (s *refreshSource) Token(ctx context.Context, refused *oauth2.Token) (*oauth2.Token, error) {
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-s.sem }()
	if s.cur != nil && s.cur != refused && usable(s.cur) {
		return s.cur, nil
	}
	unlock, err := tokenfile.Lock(ctx, s.path)
	if err != nil {
		return nil, err
	}
	defer unlock()
	stored, err := tokenfile.Load(s.path)
	if errors.Is(err, tokenfile.ErrNotExist) {
		return nil, permanent(fmt.Errorf("HighLevel auth is refresh_token but there is %v: run `syncer auth highlevel --config <your config>` first", err))
	}
	if err != nil {
		return nil, permanent(err)
	}
	// An access token in the file that this source has not been refused, nor already found
	// stale, is used as it is: it was saved by an earlier run or by another process.
	if t := stored.OAuth2(); usable(t) && (refused == nil || t.AccessToken != refused.AccessToken) && (s.cur == nil || t.AccessToken != s.cur.AccessToken) {
		s.cur = t
		return t, nil
	}
	// Once sent, a refresh is seen through even if the run is being stopped (SIGINT/SIGTERM
	// cancel ctx): HighLevel may already have voided the old refresh token, and only reading
	// the answer and saving it keeps a usable one. refreshTimeout bounds the wait instead.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), refreshTimeout)
	defer cancel()
	tok, err := s.oc.TokenSource(s.c.tokenContext(rctx, "highlevel auth", s.stats), &oauth2.Token{RefreshToken: stored.RefreshToken}).Token()
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.Response != nil && (re.Response.StatusCode == http.StatusBadRequest || re.Response.StatusCode == http.StatusUnauthorized) {
			return nil, permanent(fmt.Errorf("HighLevel refused the refresh token stored in %s (HTTP %d: already used, revoked, expired, or the app was uninstalled; or client_id/client_secret are wrong): %s",
				s.path, re.Response.StatusCode, ReauthorizeHint))
		}
		return nil, tokenError("a HighLevel agency token (grant refresh_token)", "highlevel auth", s.oc.Endpoint.TokenURL, err)
	}
	if err := s.hook("received"); err != nil {
		return nil, err
	}
	// The old refresh token is void from now on: save the new one before anything else.
	next := tokenfile.FromOAuth2(tok)
	if next.UserType == "" {
		next.UserType = stored.UserType
	}
	if next.CompanyID == "" {
		next.CompanyID = stored.CompanyID
	}
	if err := tokenfile.Save(s.path, next); err != nil {
		return nil, permanent(fmt.Errorf("HighLevel issued a new refresh token but it could not be saved (%w); the previous one no longer works: fix the cause, then %s", err, ReauthorizeHint))
	}
	if err := s.hook("saved"); err != nil {
		return nil, err
	}
	s.cur = next.OAuth2()
	return s.cur, nil
}

func (s *refreshSource) hook(stage string) error {
	if s.afterRefresh == nil {
		return nil
	}
	return s.afterRefresh(stage)
}

// staticToken is a Private Integration Token: sent as it is, never refreshed.
type staticToken struct{ tok *oauth2.Token }

// ErrPrivateTokenRefused is returned when HighLevel answers 401 to the private token.
var ErrPrivateTokenRefused = errors.New("HighLevel refused the private integration token (HTTP 401): it was rotated or deleted, or lacks a scope; " +
	"in HighLevel open Settings → Private Integrations, rotate the token (or create one with the scopes oauth.readonly, oauth.write and charges.readonly), " +
	"and put the new one in sources.highlevel.private_token (e.g. export HL_PRIVATE_TOKEN)")

// Token implements Authorizer.
func (s staticToken) Token(_ context.Context, refused *oauth2.Token) (*oauth2.Token, error) {
	if refused != nil {
		return nil, ErrPrivateTokenRefused
	}
	return s.tok, nil
}

// AuthorizeHighLevel trades an authorization code (from the authorize page's redirect) for
// the agency's tokens (grant authorization_code, user_type Company) and saves them to path.
// companyID, if set, must be the company the tokens are for.
func AuthorizeHighLevel(ctx context.Context, c *Client, oc *oauth2.Config, code, companyID, path string) (tokenfile.Tokens, error) {
	tok, err := oc.Exchange(c.tokenContext(ctx, "highlevel auth", &Counters{}), code, oauth2.SetAuthURLParam("user_type", "Company"))
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.Response != nil && re.Response.StatusCode >= 400 && re.Response.StatusCode < 500 {
			return tokenfile.Tokens{}, fmt.Errorf("HighLevel refused the authorization code (HTTP %d: %s); a code works once and only for minutes, "+
				"with the redirect_uri of its authorize URL and this app's client_id/client_secret: run `syncer auth highlevel` again and paste the new redirect promptly",
				re.Response.StatusCode, excerpt(re.Body))
		}
		return tokenfile.Tokens{}, tokenError("HighLevel tokens (grant authorization_code)", "highlevel auth", oc.Endpoint.TokenURL, err)
	}
	got := tokenfile.FromOAuth2(tok)
	switch {
	case got.RefreshToken == "":
		return got, errors.New("HighLevel's token response has no refresh_token: check that the app is a marketplace app using the Authorization Code flow")
	case got.UserType != "" && got.UserType != "Company":
		return got, fmt.Errorf("HighLevel issued a %s token, not an agency (Company) one: open the authorize URL again, logged in as an agency admin, and choose the agency, not a sub-account", got.UserType)
	case companyID != "" && got.CompanyID != "" && got.CompanyID != companyID:
		return got, fmt.Errorf("the authorization is for company %s but sources.highlevel.company_id is %s: fix company_id, or authorize with the right agency", got.CompanyID, companyID)
	}
	unlock, err := tokenfile.Lock(ctx, path)
	if err != nil {
		return got, err
	}
	defer unlock()
	return got, tokenfile.Save(path, got)
}
