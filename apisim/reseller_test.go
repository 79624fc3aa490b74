package apisim

import (
	"encoding/json"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
)

func keysOf(m map[string]json.RawMessage) string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return strings.Join(ks, ",")
}

// The AppReseller endpoints serve every row of the marketplace endpoints in the documented
// AppReseller shapes, and ResellerRows holds the same rows.
func TestReseller_ServesEveryRowInTheDocumentedShapes(t *testing.T) {
	s := testSim(t, Config{Seed: 2, Scale: 130, Profile: "fast"})
	tok := adToken(t, s, url.Values{"grant_type": {"password"}, "username": {DemoLeadUser}, "password": {DemoLeadPassword}, "scope": {"ROLE_RESELLER ROLE_RESELLER_MANAGER"}})
	list := func(stream, path, idKey, want string, wrapped bool, first int) []string {
		var ids []string
		for pg := first; ; pg++ {
			param := "page"
			if stream == "opportunities" {
				param = "number"
			}
			r := do(t, "GET", s.URL()+path+"&size=50&"+param+"="+strconv.Itoa(pg), bearer(tok), nil)
			if r.status != 200 {
				t.Fatalf("%s page %d: %d %s", stream, pg, r.status, r.body)
			}
			var recs []map[string]json.RawMessage
			if wrapped {
				var body struct {
					Content []map[string]json.RawMessage
					Page    struct{ Number, TotalElements int }
				}
				if err := json.Unmarshal(r.body, &body); err != nil || body.Page.Number != pg || body.Page.TotalElements == 0 {
					t.Fatalf("%s page %d: %v %s", stream, pg, err, r.body[:min(200, len(r.body))])
				}
				recs = body.Content
			} else if err := json.Unmarshal(r.body, &recs); err != nil {
				t.Fatalf("%s page %d is not a bare array: %v", stream, pg, err)
			}
			if len(recs) == 0 {
				break
			}
			for _, rec := range recs {
				if got := keysOf(rec); got != want {
					t.Fatalf("%s record keys %s, want the documented %s", stream, got, want)
				}
				var id string
				_ = json.Unmarshal(rec[idKey], &id)
				ids = append(ids, id)
			}
		}
		return ids
	}
	for _, c := range []struct {
		stream, path, want string
		wrapped            bool
		first              int
	}{
		{"companies", "/api/appReseller/v1/companies?context=RESELLER_MANAGER&sortField=CREATED_ON&sortOrder=ASC", "activated,createdOn,externalId,grantedAccesses,id,name,numOfUsers,phone", false, 0},
		{"users", "/api/appReseller/v1/users?context=RESELLER", "activated,companyId,createdOn,email,firstName,id,invitationRequired,lastName,memberships", true, 0},
		{"opportunities", "/api/appReseller/v1/opportunities?context=RESELLER&sort=%2BcreatedOn", "createdOn,customerUser,id,name,ownerType,ownerUser,purchaseEffectiveDate,status", true, 1},
	} {
		ids := list(c.stream, c.path, "id", c.want, c.wrapped, c.first)
		rows, err := s.ResellerRows(c.stream)
		if err != nil {
			t.Fatal(err)
		}
		var want []string
		for _, r := range rows {
			want = append(want, r.Key)
		}
		slices.Sort(ids)
		if !slices.Equal(ids, want) || len(ids) != 130 {
			t.Fatalf("%s: served %d ids, ResellerRows %d: want the same 130", c.stream, len(ids), len(want))
		}
	}
	// The context is required and needs its role.
	if r := do(t, "GET", s.URL()+"/api/appReseller/v1/companies", bearer(tok), nil); r.status != 400 || !strings.Contains(string(r.body), "context") {
		t.Fatalf("no context: %d %s", r.status, r.body)
	}
	manager := adToken(t, s, url.Values{"grant_type": {"password"}, "username": {DemoLeadUser}, "password": {DemoLeadPassword}, "scope": {"ROLE_RESELLER_MANAGER"}})
	if r := do(t, "GET", s.URL()+"/api/appReseller/v1/users?context=RESELLER", bearer(manager), nil); r.status != 403 {
		t.Fatalf("RESELLER context with a manager-only token: %d", r.status)
	}
	if r := do(t, "GET", s.URL()+"/api/appReseller/v1/opportunities?context=RESELLER", bearer(manager), nil); r.status != 403 {
		t.Fatalf("opportunities with a reseller-manager token (the role is not among the endpoint's): %d", r.status)
	}
	if r := do(t, "GET", s.URL()+"/api/appReseller/v1/companies?context=RESELLER", bearer(partnerToken(t, s)), nil); r.status != 403 {
		t.Fatalf("a partner token on AppReseller: %d", r.status)
	}
}
