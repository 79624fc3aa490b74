package apisim_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/marketsync/marketsync/apisim"
)

// The request log has every API request in the order answered, with its status and the
// location a location token is asked for; /_sim/requests serves the same.
func TestRequests_LogsEveryRequestInOrder(t *testing.T) {
	s, err := apisim.New(apisim.Config{Seed: 1, Scale: 10, Profile: "fast"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	res, err := http.Get(s.URL() + "/api/account/v2/companies")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	res, err = http.Post(s.URL()+"/oauth/locationToken", "application/x-www-form-urlencoded",
		strings.NewReader(url.Values{"companyId": {"c"}, "locationId": {"loc-1"}}.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	log, dropped := s.Requests()
	if dropped != 0 || len(log) != 2 || log[0].Endpoint != "appdirect.companies" || log[0].Status != 401 ||
		log[1].Endpoint != "highlevel.locationToken" || log[1].Status != 400 && log[1].Status != 401 || log[1].Location != "loc-1" {
		t.Fatalf("request log: %+v (dropped %d)", log, dropped)
	}
	res, err = http.Get(s.URL() + "/_sim/requests")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var body struct {
		Requests []apisim.Request `json:"requests"`
		Dropped  int              `json:"not_logged"`
	}
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil || len(body.Requests) != 2 ||
		body.Requests[1].Endpoint != log[1].Endpoint || body.Requests[1].Location != log[1].Location || !body.Requests[1].At.Equal(log[1].At) {
		t.Fatalf("/_sim/requests: %+v %v", body, err)
	}
}
