package extract

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// tokenCache holds one bearer token, refreshing it before it expires; concurrent callers share
// one fetch.
type tokenCache struct {
	mu      sync.Mutex
	token   string
	expires time.Time
	fetch   func(ctx context.Context) (token string, ttl time.Duration, err error)
}

func (c *tokenCache) Token(ctx context.Context) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token != "" && time.Now().Before(c.expires) {
		return c.token, nil
	}
	tok, ttl, err := c.fetch(ctx)
	if err != nil {
		return "", err
	}
	// Refresh early: 5 minutes before expiry, or at 90% of short lifetimes.
	skew := min(5*time.Minute, ttl/10)
	c.token, c.expires = tok, time.Now().Add(ttl-skew)
	return tok, nil
}

func (c *tokenCache) Invalidate(token string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token == token {
		c.token = ""
	}
}

type tokenResponse struct {
	AccessToken string  `json:"access_token"`
	ExpiresIn   float64 `json:"expires_in"`
}

func parseToken(into *tokenResponse) func(int, []byte) error {
	return func(_ int, body []byte) error {
		if err := json.Unmarshal(body, into); err != nil {
			return err
		}
		if into.AccessToken == "" {
			return fmt.Errorf("token response has no access_token")
		}
		return nil
	}
}

func ttlOf(t tokenResponse) time.Duration {
	if t.ExpiresIn <= 0 {
		return 10 * time.Minute
	}
	return time.Duration(t.ExpiresIn * float64(time.Second))
}

// newAppDirectToken returns the OAuth2 token provider for AppDirect: client credentials
// (form empty of username) or the password grant for a user-level role (lead v2 needs one).
// Credentials travel by HTTP Basic, as the API guide shows.
func newAppDirectToken(c *Client, baseURL, clientID, secret string, form url.Values, stats *Counters) *tokenCache {
	return &tokenCache{fetch: func(ctx context.Context) (string, time.Duration, error) {
		var tr tokenResponse
		err := c.Do(ctx, Request{Stream: "appdirect auth", Method: http.MethodPost, URL: baseURL + "/oauth2/token",
			Form: form, Basic: [2]string{clientID, secret}, Stats: stats, Parse: parseToken(&tr)})
		if err != nil {
			return "", 0, fmt.Errorf("getting an AppDirect token (grant %s): %w", form.Get("grant_type"), err)
		}
		return tr.AccessToken, ttlOf(tr), nil
	}}
}

// HighLevel tokens: an agency (company) token from client credentials, then one location token
// per installed location minted from it.
type highLevelAuth struct {
	c         *Client
	baseURL   string
	companyID string
	agency    *tokenCache
	mu        sync.Mutex
	locations map[string]*tokenCache
	stats     *Counters
}

func newHighLevelAuth(c *Client, baseURL, clientID, secret, companyID string, stats *Counters) *highLevelAuth {
	h := &highLevelAuth{c: c, baseURL: baseURL, companyID: companyID, locations: map[string]*tokenCache{}, stats: stats}
	h.agency = &tokenCache{fetch: func(ctx context.Context) (string, time.Duration, error) {
		var tr tokenResponse
		form := url.Values{"client_id": {clientID}, "client_secret": {secret}, "grant_type": {"client_credentials"}, "user_type": {"Company"}}
		err := c.Do(ctx, Request{Stream: "highlevel auth", Method: http.MethodPost, URL: baseURL + "/oauth/token",
			Form: form, Stats: stats, Parse: parseToken(&tr)})
		if err != nil {
			return "", 0, fmt.Errorf("getting a HighLevel agency token: %w", err)
		}
		return tr.AccessToken, ttlOf(tr), nil
	}}
	return h
}

func (h *highLevelAuth) location(id string) *tokenCache {
	h.mu.Lock()
	defer h.mu.Unlock()
	if t, ok := h.locations[id]; ok {
		return t
	}
	t := &tokenCache{fetch: func(ctx context.Context) (string, time.Duration, error) {
		var tr tokenResponse
		err := h.c.Do(ctx, Request{Stream: "highlevel auth", Method: http.MethodPost, URL: h.baseURL + "/oauth/locationToken",
			Header: http.Header{"Version": {hlVersion}}, Form: url.Values{"companyId": {h.companyID}, "locationId": {id}},
			Auth: h.agency, Stats: h.stats, Parse: parseToken(&tr)})
		if err != nil {
			return "", 0, fmt.Errorf("getting a HighLevel location token for %s: %w", id, err)
		}
		return tr.AccessToken, ttlOf(tr), nil
	}}
	h.locations[id] = t
	return t
}

const hlVersion = "2021-07-28"
