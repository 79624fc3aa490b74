package apisim

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

type hlTokenBody struct {
	AccessToken  string  `json:"access_token"`
	RefreshToken string  `json:"refresh_token"`
	ExpiresIn    float64 `json:"expires_in"`
	UserType     string  `json:"userType"`
	CompanyID    string  `json:"companyId"`
	StatusCode   int     `json:"statusCode"`
	Message      any     `json:"message"`
	Error        string  `json:"error"`
}

func hlGrantReq(t *testing.T, s *Server, kv ...string) (int, hlTokenBody) {
	t.Helper()
	v := url.Values{"client_id": {DemoHLClientID}, "client_secret": {DemoHLClientSecret}}
	for i := 0; i < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	r := do(t, "POST", s.URL()+"/oauth/token", nil, v)
	var b hlTokenBody
	if err := json.Unmarshal(r.body, &b); err != nil {
		t.Fatalf("token body %s: %v", r.body, err)
	}
	return r.status, b
}

func installed(t *testing.T, s *Server, bearer string) int {
	t.Helper()
	return do(t, "GET", s.URL()+"/oauth/installedLocations?companyId="+DemoHLCompanyID+"&appId="+DemoHLAppID,
		map[string]string{"Authorization": "Bearer " + bearer, "Version": HLVersion}, nil).status
}

func TestHighLevelOAuth_CodeFlowRotationExpiryAndPrivateTokens(t *testing.T) {
	s := testSim(t, Config{Seed: 3, Scale: 50, Locations: 3, Profile: "fast", TokenTTL: time.Hour})
	const cb = "http://127.0.0.1:9999/callback"

	// The authorize page redirects to redirect_uri with a code and the state.
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	q := url.Values{"response_type": {"code"}, "client_id": {DemoHLClientID}, "redirect_uri": {cb}, "scope": {DemoHLScopes}, "state": {"st-1"}}
	res, err := noRedirect.Get(s.URL() + "/v2/oauth/chooselocation?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	loc, _ := url.Parse(res.Header.Get("Location"))
	if res.StatusCode != http.StatusFound || !strings.HasPrefix(loc.String(), cb+"?") || loc.Query().Get("state") != "st-1" || loc.Query().Get("code") == "" {
		t.Fatalf("authorize: %d Location %q", res.StatusCode, loc)
	}
	code := loc.Query().Get("code")
	q.Set("client_id", "someone-else")
	if res, _ := noRedirect.Get(s.URL() + "/v2/oauth/chooselocation?" + q.Encode()); res.StatusCode != 400 {
		t.Fatalf("unknown client_id: %d", res.StatusCode)
	}

	// A code for another redirect_uri is refused, and is spent by the attempt (single use).
	if st, b := hlGrantReq(t, s, "grant_type", "authorization_code", "code", code, "user_type", "Company", "redirect_uri", "http://elsewhere/cb"); st != 401 || b.Error != "Unauthorized" {
		t.Fatalf("redirect mismatch: %d %+v", st, b)
	}
	if st, _ := hlGrantReq(t, s, "grant_type", "authorization_code", "code", code, "user_type", "Company", "redirect_uri", cb); st != 401 {
		t.Fatalf("a spent code: %d", st)
	}
	// An expired code is refused.
	old := s.AuthorizationCode(cb)
	s.Advance(CodeTTL + time.Second)
	if st, b := hlGrantReq(t, s, "grant_type", "authorization_code", "code", old, "user_type", "Company", "redirect_uri", cb); st != 401 || !strings.Contains(b.Message.(string), "expired") {
		t.Fatalf("expired code: %d %+v", st, b)
	}
	// A good exchange: agency token + refresh token.
	st, first := hlGrantReq(t, s, "grant_type", "authorization_code", "code", s.AuthorizationCode(cb), "user_type", "Company", "redirect_uri", cb)
	if st != 200 || first.RefreshToken == "" || first.UserType != "Company" || first.CompanyID != DemoHLCompanyID || first.ExpiresIn != 3600 {
		t.Fatalf("exchange: %d %+v", st, first)
	}
	if installed(t, s, first.AccessToken) != 200 {
		t.Fatal("the exchanged agency token is refused")
	}
	// The access token expires after expires_in (simulated time): 401.
	s.Advance(time.Hour)
	if installed(t, s, first.AccessToken) != 401 {
		t.Fatal("an expired access token was accepted")
	}
	// Refresh rotates: a new refresh token, and the used one is refused afterwards.
	st, second := hlGrantReq(t, s, "grant_type", "refresh_token", "refresh_token", first.RefreshToken)
	if st != 200 || second.RefreshToken == "" || second.RefreshToken == first.RefreshToken || installed(t, s, second.AccessToken) != 200 {
		t.Fatalf("refresh: %d %+v", st, second)
	}
	st, again := hlGrantReq(t, s, "grant_type", "refresh_token", "refresh_token", first.RefreshToken)
	if st != 401 || again.StatusCode != 401 || again.Error != "Unauthorized" || !strings.Contains(again.Message.(string), "refresh token is invalid") {
		t.Fatalf("a used refresh token: %d %+v", st, again)
	}
	if s.RefreshTokenValid(first.RefreshToken) || !s.RefreshTokenValid(second.RefreshToken) {
		t.Fatal("RefreshTokenValid disagrees with the grant")
	}
	// Wrong client credentials refuse the refresh without spending the token.
	if r := do(t, "POST", s.URL()+"/oauth/token", nil, url.Values{"client_id": {DemoHLClientID}, "client_secret": {"wrong"},
		"grant_type": {"refresh_token"}, "refresh_token": {second.RefreshToken}}); r.status != 401 || !s.RefreshTokenValid(second.RefreshToken) {
		t.Fatalf("wrong secret: %d, token still valid %v", r.status, s.RefreshTokenValid(second.RefreshToken))
	}

	// A Private Integration Token is an agency bearer that does not expire; revoked, it is 401.
	pit := s.IssuePrivateToken()
	s.Advance(48 * time.Hour)
	if installed(t, s, pit) != 200 {
		t.Fatal("private token refused")
	}
	s.RevokePrivateToken(pit)
	if installed(t, s, pit) != 401 {
		t.Fatal("a revoked private token was accepted")
	}
	issued := s.IssuedTokens()
	for _, secret := range []string{code, old, first.RefreshToken, second.RefreshToken, first.AccessToken, pit} {
		if !slices.Contains(issued, secret) {
			t.Fatal("IssuedTokens lacks an issued secret")
		}
	}
}
