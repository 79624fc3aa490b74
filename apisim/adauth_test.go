package apisim

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// tokenRefusal posts a token request with the demo client and returns status and OAuth error.
func tokenRefusal(t *testing.T, s *Server, grant url.Values) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", s.URL()+"/oauth2/token", strings.NewReader(grant.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(DemoClientID, DemoClientSecret)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var e struct {
		Error string `json:"error"`
	}
	_ = json.NewDecoder(res.Body).Decode(&e)
	return res.StatusCode, e.Error
}

// The token endpoint grants only the scopes the grant allows (source-apis.md §2.2): client
// credentials ROLE_PARTNER / ROLE_PARTNER_READ, the password grant the user's own roles; a
// request without scope is refused.
func TestAuth_TokenEndpointChecksScopes(t *testing.T) {
	s := testSim(t, Config{Seed: 1, Scale: 10, Profile: "fast"})
	user := func(scope string) url.Values {
		v := url.Values{"grant_type": {"password"}, "username": {DemoLeadUser}, "password": {DemoLeadPassword}}
		if scope != "" {
			v.Set("scope", scope)
		}
		return v
	}
	for _, tc := range []struct {
		name  string
		grant url.Values
		code  string
	}{
		{"client credentials without scope", url.Values{"grant_type": {"client_credentials"}}, "invalid_scope"},
		{"client credentials with a user role", url.Values{"grant_type": {"client_credentials"}, "scope": {"ROLE_RESELLER_MANAGER"}}, "invalid_scope"},
		{"password without scope", user(""), "invalid_scope"},
		{"password with a system scope", user("ROLE_PARTNER_READ"), "invalid_scope"},
		{"password with a role the user lacks", user("ROLE_DEVELOPER"), "invalid_scope"},
		{"password with a wrong password", url.Values{"grant_type": {"password"}, "username": {DemoLeadUser}, "password": {"wrong"}, "scope": {"ROLE_RESELLER"}}, "invalid_grant"},
	} {
		if status, code := tokenRefusal(t, s, tc.grant); status != 400 || code != tc.code {
			t.Errorf("%s: %d %q, want 400 %q", tc.name, status, code, tc.code)
		}
	}
	for _, sc := range []string{"ROLE_PARTNER_READ", "ROLE_PARTNER"} {
		adToken(t, s, url.Values{"grant_type": {"client_credentials"}, "scope": {sc}})
	}
	adToken(t, s, user("ROLE_RESELLER ROLE_RESELLER_MANAGER"))
}

// Each endpoint accepts only the roles its reference lists; a token without one gets 403 with
// the documented {status, code, message} body.
func TestAuth_EndpointsRefuseTokensWithoutTheirScope(t *testing.T) {
	s := testSim(t, Config{Seed: 1, Scale: 10, Profile: "fast"})
	partner := partnerToken(t, s)
	full := adToken(t, s, url.Values{"grant_type": {"client_credentials"}, "scope": {"ROLE_PARTNER"}})
	userTok := func(scope string) string {
		return adToken(t, s, url.Values{"grant_type": {"password"}, "username": {DemoLeadUser}, "password": {DemoLeadPassword}, "scope": {scope}})
	}
	manager, reseller := userTok("ROLE_RESELLER_MANAGER"), userTok("ROLE_RESELLER")
	hdr := func(tok string) map[string]string {
		return map[string]string{"Authorization": "Bearer " + tok, "Accept-Language": "en-US"}
	}
	leads := "/api/lead/v2/leads?companyId=x&context="
	for _, tc := range []struct {
		path, tok, name string
		status          int
	}{
		{"/api/account/v2/companies", partner, "partner read", 200},
		{"/api/account/v2/companies", full, "partner", 200},
		{"/api/account/v2/companies", manager, "reseller manager", 403},
		{"/api/account/v2/users", reseller, "reseller", 403},
		{"/api/assistedSales/v1/opportunities", manager, "reseller manager", 200},
		{leads + "RESELLER_MANAGER", partner, "partner read", 403},
		{leads + "RESELLER_MANAGER", manager, "reseller manager", 200},
		{leads + "RESELLER_MANAGER", reseller, "reseller in the manager context", 403},
		{leads + "RESELLER", reseller, "reseller", 200},
		{"/api/billing/v1/invoices", manager, "any token (no scope listed)", 200},
	} {
		r := do(t, "GET", s.URL()+tc.path, hdr(tc.tok), nil)
		if r.status != tc.status {
			t.Errorf("%s with a %s token: %d %s, want %d", tc.path, tc.name, r.status, r.body, tc.status)
			continue
		}
		if tc.status == 403 {
			var e struct {
				Status  int
				Code    string
				Message string
			}
			if json.Unmarshal(r.body, &e) != nil || e.Status != 403 || e.Code != "FORBIDDEN" || !strings.HasPrefix(e.Message, forbiddenMessage) {
				t.Errorf("%s with a %s token: body %s, want the documented {status, code, message}", tc.path, tc.name, r.body)
			}
		}
	}
}
