package apisim

import (
	"net/http"
	"net/url"
	"time"
)

// HighLevel's Authorization Code flow (../shared/specs/highlevel/docs/Authorization.md), as the
// simulator serves it:
//
//   - GET /v2/oauth/chooselocation (the app's authorize page) stands for the agency admin who
//     logs in, picks the agency and consents: it redirects at once to redirect_uri with a code
//     and the state it was given.
//   - POST /oauth/token grant_type=authorization_code trades a code (single use, valid for
//     CodeTTL of simulated time, bound to its redirect_uri) for an agency access token and a
//     refresh token.
//   - grant_type=refresh_token trades a refresh token for a new access token and a NEW refresh
//     token; the one used is refused from then on (rotation: "valid for a year unless used").
//   - Private Integration Tokens (IssuePrivateToken) are static agency bearer tokens.
//
// Refused codes and refresh tokens get 401 with the spec's UnauthorizedDTO shape
// ({statusCode, message, error}); the spec documents no other shape for /oauth/token.
// Refresh tokens, codes and private tokens are kept apart from access tokens, so
// Faults.RevokeAfter (which revokes access tokens) leaves them usable.

// CodeTTL is how long an authorization code can be exchanged (simulated time).
const CodeTTL = 10 * time.Minute

// DemoHLScopes are the scopes the app needs: installedLocations, locationToken and charges.
const DemoHLScopes = "oauth.readonly oauth.write charges.readonly"

type authCode struct {
	redirectURI string
	expires     int64 // simulated epoch ms
}

// rememberLocked records a secret the simulator handed out, for tests that search outputs for leaks.
// The caller holds tokMu.
func (s *Server) rememberLocked(secret string) { s.issued = append(s.issued, secret) }

// chooseLocation is the app's Authorization Page: the simulated admin consents at once.
func (s *Server) chooseLocation(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	redirect, err := url.Parse(q.Get("redirect_uri"))
	switch {
	case q.Get("response_type") != "code":
		hlError(w, 400, "response_type must be code")
		return
	case q.Get("client_id") != DemoHLClientID:
		hlError(w, 400, "Unknown client_id")
		return
	case q.Get("redirect_uri") == "" || err != nil || redirect.Scheme == "" || redirect.Host == "":
		hlError(w, 400, "redirect_uri must be an absolute URL registered for the app")
		return
	}
	back := redirect.Query()
	back.Set("code", s.AuthorizationCode(q.Get("redirect_uri")))
	if st := q.Get("state"); st != "" {
		back.Set("state", st)
	}
	redirect.RawQuery = back.Encode()
	http.Redirect(w, r, redirect.String(), http.StatusFound)
}

// AuthorizationCode issues a code for redirectURI, as the authorize page does after consent.
func (s *Server) AuthorizationCode(redirectURI string) string {
	s.mu.RLock()
	expires := s.now + CodeTTL.Milliseconds()
	s.mu.RUnlock()
	code := newToken()
	s.tokMu.Lock()
	defer s.tokMu.Unlock()
	s.codes[code] = authCode{redirectURI: redirectURI, expires: expires}
	s.rememberLocked(code)
	return code
}

// IssuePrivateToken creates a Private Integration Token of the demo agency: a static bearer
// token that never expires and is not refreshed.
func (s *Server) IssuePrivateToken() string {
	tok := "pit-" + newToken()
	s.tokMu.Lock()
	defer s.tokMu.Unlock()
	s.pits[tok] = true
	s.rememberLocked(tok)
	return tok
}

// RevokePrivateToken revokes a Private Integration Token (as rotating it in HighLevel does).
func (s *Server) RevokePrivateToken(tok string) {
	s.tokMu.Lock()
	defer s.tokMu.Unlock()
	delete(s.pits, tok)
}

// RefreshTokenValid reports whether a refresh token would be accepted now.
func (s *Server) RefreshTokenValid(rt string) bool {
	s.tokMu.Lock()
	defer s.tokMu.Unlock()
	return s.refresh[rt]
}

// hlGrant answers the authorization_code and refresh_token grants of POST /oauth/token; the
// client has been authenticated.
func (s *Server) hlGrant(w http.ResponseWriter, r *http.Request, grant string) {
	switch grant {
	case "authorization_code":
		code := r.PostFormValue("code")
		if code == "" {
			hlError(w, 422, "code should not be empty")
			return
		}
		if ut := r.PostFormValue("user_type"); ut != "" && ut != "Company" {
			hlError(w, 400, "user_type "+ut+": the simulated admin chose the agency, ask for user_type Company")
			return
		}
		s.mu.RLock()
		now := s.now
		s.mu.RUnlock()
		s.tokMu.Lock()
		c, ok := s.codes[code]
		delete(s.codes, code) // single use, even when the exchange fails
		s.tokMu.Unlock()
		switch {
		case !ok:
			hlError(w, 401, "Invalid grant: authorization code is invalid or was already used")
			return
		case now >= c.expires:
			hlError(w, 401, "Invalid grant: authorization code has expired")
			return
		case r.PostFormValue("redirect_uri") != c.redirectURI:
			hlError(w, 401, "Invalid grant: redirect_uri does not match the authorization request")
			return
		}
	case "refresh_token":
		rt := r.PostFormValue("refresh_token")
		if rt == "" {
			hlError(w, 422, "refresh_token should not be empty")
			return
		}
		s.tokMu.Lock()
		ok := s.refresh[rt]
		delete(s.refresh, rt) // rotation: a used refresh token is refused from now on
		s.tokMu.Unlock()
		if !ok {
			hlError(w, 401, "Invalid grant: refresh token is invalid")
			return
		}
	default:
		hlError(w, 400, "Unsupported grant_type "+grant)
		return
	}
	s.writeAgencyToken(w, true)
}

// writeAgencyToken issues an agency access token (and, withRefresh, a new refresh token).
func (s *Server) writeAgencyToken(w http.ResponseWriter, withRefresh bool) {
	tok := s.issue(token{kind: "hl-company", client: DemoHLClientID})
	body := map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": int(s.cfg.TokenTTL.Seconds()),
		"scope": DemoHLScopes, "userType": "Company", "companyId": DemoHLCompanyID,
		"userId": "u1C08ntBrFjLS0elLIYU", "installToFutureLocations": true, "approveAllLocations": true}
	if withRefresh {
		rt := newToken()
		s.tokMu.Lock()
		s.refresh[rt] = true
		s.rememberLocked(rt)
		s.tokMu.Unlock()
		body["refresh_token"] = rt
	}
	writeJSON(w, 200, body)
}
