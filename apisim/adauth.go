package apisim

import (
	"net/http"
	"slices"
	"strings"
)

// AppDirect OAuth 2.0 as source-apis.md §2.2 documents it: the token endpoint grants the scopes
// asked for when the grant allows them, and each endpoint accepts only the roles its reference
// lists. What the documents leave open is marked [INFERRED] (the OAuth error bodies follow
// RFC 6749 §5.2; a refused role is the 403 body assistedSales documents).

// DemoLeadUserRoles are the roles of the demo user (DemoLeadUser), a reseller manager who is
// also a reseller: the scopes a password grant for it may ask for.
var DemoLeadUserRoles = []string{"ROLE_USER", "ROLE_RESELLER", "ROLE_RESELLER_MANAGER"}

// clientCredentialsScopes: "ROLE_PARTNER and ROLE_PARTNER_READ are the only scopes allowed for
// this grant type".
var clientCredentialsScopes = []string{"ROLE_PARTNER", "ROLE_PARTNER_READ"}

// userScopes are the scopes of the documented scopes table whose grant types include Password,
// with the two roles the endpoints' authorization rules add (ROLE_RESELLER_MANAGER,
// ROLE_REFERRAL).
var userScopes = []string{"ROLE_USER", "ROLE_BILLING_ADMIN", "ROLE_SYS_ADMIN", "ROLE_RESELLER", "ROLE_SALES_SUPPORT",
	"ROLE_CHANNEL_SUPPORT", "ROLE_CHANNEL_PRODUCT_SUPPORT", "ROLE_CHANNEL_ADMIN", "ROLE_CORPORATE_ADMIN", "ROLE_DEVELOPER",
	"ROLE_RESELLER_MANAGER", "ROLE_REFERRAL", "openid", "profile", "email"}

// EndpointRoles lists, per AppDirect list endpoint, the roles its "Required Scopes and
// Authorization Rules" accept (source-apis.md §3); an endpoint absent here (invoices, events)
// lists none and accepts any AppDirect token. ROLE_PARTNER ("read and write all marketplace
// data") counts as ROLE_PARTNER_READ.
var EndpointRoles = map[string][]string{
	"/api/account/v2/companies":           {"ROLE_SALES_SUPPORT", "ROLE_CHANNEL_SUPPORT", "ROLE_CHANNEL_ADMIN", "ROLE_CORPORATE_ADMIN", "ROLE_PARTNER_READ"},
	"/api/account/v2/users":               {"ROLE_SALES_SUPPORT", "ROLE_CHANNEL_SUPPORT", "ROLE_CHANNEL_ADMIN", "ROLE_CORPORATE_ADMIN", "ROLE_PARTNER_READ"},
	"/api/lead/v2/leads":                  {"ROLE_RESELLER", "ROLE_REFERRAL", "ROLE_DEVELOPER", "ROLE_RESELLER_MANAGER"},
	"/api/assistedSales/v1/opportunities": {"ROLE_RESELLER", "ROLE_SALES_SUPPORT", "ROLE_CHANNEL_ADMIN", "ROLE_RESELLER_MANAGER", "ROLE_PARTNER", "ROLE_PARTNER_READ"},
	"/api/appReseller/v1/companies":       {"ROLE_RESELLER", "ROLE_RESELLER_MANAGER"},
	"/api/appReseller/v1/users":           {"ROLE_RESELLER", "ROLE_RESELLER_MANAGER"},
	"/api/appReseller/v1/opportunities":   {"ROLE_CHANNEL_ADMIN", "ROLE_RESELLER", "ROLE_SALES_SUPPORT"},
}

// Error bodies of refused scopes.
const (
	forbiddenMessage = "The user does not have permission to execute the action"
)

// grantScopes checks the scope parameter of a token request against what the grant (and, for
// the password grant, the user) may have. It returns the granted scopes, or the RFC 6749 error
// code and description to refuse with.
func grantScopes(grant, scope string, userRoles []string) ([]string, string, string) {
	asked := strings.Fields(scope)
	if len(asked) == 0 {
		// [INFERRED] every documented token request names its scopes; one without is refused
		// rather than given a default the caller did not choose.
		return nil, "invalid_scope", "Empty scope (the scope parameter is required: a space-separated list of requested scopes)"
	}
	for _, sc := range asked {
		switch grant {
		case "client_credentials":
			if !slices.Contains(clientCredentialsScopes, sc) {
				return nil, "invalid_scope", "Invalid scope: " + sc + ". ROLE_PARTNER and ROLE_PARTNER_READ are the only scopes allowed for this grant type"
			}
		default:
			if !slices.Contains(userScopes, sc) {
				return nil, "invalid_scope", "Invalid scope: " + sc + " is not a user-level scope (the Password grant cannot have " + sc + ")"
			}
			if !slices.Contains(userRoles, sc) && sc != "openid" && sc != "profile" && sc != "email" {
				return nil, "invalid_scope", "Invalid scope: " + sc + " (the user does not have this role)"
			}
		}
	}
	return asked, "", ""
}

// allows reports whether a token's scopes satisfy one of an endpoint's roles.
func (t token) allows(roles []string) bool {
	for _, sc := range t.scopes {
		if slices.Contains(roles, sc) || (sc == "ROLE_PARTNER" && slices.Contains(roles, "ROLE_PARTNER_READ")) {
			return true
		}
	}
	return false
}

// has reports whether the token was granted the scope.
func (t token) has(scope string) bool { return slices.Contains(t.scopes, scope) }

// forbidden answers a request whose token lacks the endpoint's (or its context's) role.
func forbidden(w http.ResponseWriter, need []string) {
	writeJSON(w, 403, map[string]any{"status": 403, "code": "FORBIDDEN",
		"message": forbiddenMessage + " (requires one of the scopes " + strings.Join(need, ", ") + ")"})
}
