package apisim

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

// HighLevel's official specs (CC0), kept in testdata.
func loadSpec(t *testing.T, name string) routers.Router {
	t.Helper()
	loader := openapi3.NewLoader()
	loader.IsExternalRefsAllowed = true
	doc, err := loader.LoadFromFile("testdata/highlevel/apps/" + name)
	if err != nil {
		t.Fatalf("loading %s: %v", name, err)
	}
	// doc.Validate rejects the published security schemes (type http with "in"): don't gate on it.
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	return router
}

// validate sends req to the simulator and checks the response against the spec operation.
func validate(t *testing.T, router routers.Router, req *http.Request, wantStatus int) []byte {
	t.Helper()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != wantStatus {
		t.Fatalf("%s %s: status %d, want %d: %s", req.Method, req.URL.Path, res.StatusCode, wantStatus, body)
	}
	// Route as if the request went to the spec's server.
	specReq := req.Clone(context.Background())
	specReq.URL, _ = url.Parse("https://services.leadconnectorhq.com" + req.URL.RequestURI())
	specReq.Host = "services.leadconnectorhq.com"
	route, params, err := router.FindRoute(specReq)
	if err != nil {
		t.Fatalf("no spec route for %s %s: %v", req.Method, req.URL.Path, err)
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: specReq, PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}},
		Status: res.StatusCode, Header: res.Header, Body: io.NopCloser(bytes.NewReader(body)),
		Options: &openapi3filter.Options{IncludeResponseStatus: true},
	}
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		t.Fatalf("%s %s (%d) does not match HighLevel's spec: %v", req.Method, req.URL.Path, res.StatusCode, err)
	}
	return body
}

func formReq(t *testing.T, u string, form url.Values, hdr map[string]string) *http.Request {
	req, _ := http.NewRequest("POST", u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	return req
}

func TestHighLevelResponsesMatchOfficialSpecs(t *testing.T) {
	for _, values := range ValueForms {
		t.Run(values, func(t *testing.T) { testHighLevelSpecs(t, values) })
	}
}

func testHighLevelSpecs(t *testing.T, values string) {
	s := testSim(t, Config{Seed: 4, Scale: 600, Locations: 7, Profile: "fast", Values: values})
	oauth := loadSpec(t, "oauth.json")
	market := loadSpec(t, "marketplace.json")

	validate(t, oauth, formReq(t, s.URL()+"/oauth/token", url.Values{"client_id": {DemoHLClientID}, "client_secret": {DemoHLClientSecret},
		"grant_type": {"client_credentials"}, "user_type": {"Company"}}, nil), 200)
	validate(t, oauth, formReq(t, s.URL()+"/oauth/token", url.Values{"client_id": {DemoHLClientID}, "client_secret": {"wrong"},
		"grant_type": {"client_credentials"}}, nil), 401)
	// The code flow and rotation answer in the spec's shapes too (200 and the 401 UnauthorizedDTO).
	grant := func(kv ...string) url.Values {
		v := url.Values{"client_id": {DemoHLClientID}, "client_secret": {DemoHLClientSecret}}
		for i := 0; i < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v
	}
	code := s.AuthorizationCode("https://app.example.com/cb")
	var tr struct {
		RefreshToken string `json:"refresh_token"`
	}
	body := validate(t, oauth, formReq(t, s.URL()+"/oauth/token", grant("grant_type", "authorization_code", "code", code,
		"user_type", "Company", "redirect_uri", "https://app.example.com/cb"), nil), 200)
	if err := json.Unmarshal(body, &tr); err != nil || tr.RefreshToken == "" {
		t.Fatalf("authorization_code grant gave no refresh token: %s", body)
	}
	validate(t, oauth, formReq(t, s.URL()+"/oauth/token", grant("grant_type", "refresh_token", "refresh_token", tr.RefreshToken), nil), 200)
	validate(t, oauth, formReq(t, s.URL()+"/oauth/token", grant("grant_type", "refresh_token", "refresh_token", tr.RefreshToken), nil), 401)
	agency := hlAgency(t, s)
	hv := map[string]string{"Authorization": "Bearer " + agency, "Version": HLVersion}

	for _, q := range []string{"skip=0&limit=20", "skip=3&limit=2", "skip=0&limit=20&isInstalled=true"} {
		req, _ := http.NewRequest("GET", s.URL()+"/oauth/installedLocations?companyId="+DemoHLCompanyID+"&appId="+DemoHLAppID+"&"+q, nil)
		for k, v := range hv {
			req.Header.Set(k, v)
		}
		validate(t, oauth, req, 200)
	}
	req, _ := http.NewRequest("GET", s.URL()+"/oauth/installedLocations?appId="+DemoHLAppID, nil)
	for k, v := range hv {
		req.Header.Set(k, v)
	}
	validate(t, oauth, req, 422)

	loc := s.locations[0].id
	validate(t, oauth, formReq(t, s.URL()+"/oauth/locationToken", url.Values{"companyId": {DemoHLCompanyID}, "locationId": {loc}}, hv), 200)
	validate(t, oauth, formReq(t, s.URL()+"/oauth/locationToken", url.Values{"companyId": {DemoHLCompanyID}}, hv), 422)
	validate(t, oauth, formReq(t, s.URL()+"/oauth/locationToken", url.Values{"companyId": {DemoHLCompanyID}, "locationId": {loc}},
		map[string]string{"Authorization": "Bearer nope", "Version": HLVersion}), 401)

	ltok := hlLocation(t, s, agency, loc)
	charge := func(q string, want int) []byte {
		req, _ := http.NewRequest("GET", s.URL()+"/marketplace/billing/charges?"+q, nil)
		req.Header.Set("Authorization", "Bearer "+ltok)
		req.Header.Set("Version", HLVersion)
		return validate(t, market, req, want)
	}
	for _, q := range []string{"skip=0&limit=10", "skip=10&limit=100&startDate=2025-03-26", "skip=0&limit=5&startDate=2025-01-01T00:00:00.000Z"} {
		charge(q, 200)
	}
	// Every charge of the location, in every value form the simulator serves.
	n := 0
	for skip := 0; ; skip += 50 {
		var page struct {
			Charges []json.RawMessage `json:"charges"`
		}
		if err := json.Unmarshal(charge("limit=50&skip="+strconv.Itoa(skip), 200), &page); err != nil || len(page.Charges) == 0 {
			break
		}
		n += len(page.Charges)
	}
	if n != s.locations[0].charges.live() {
		t.Fatalf("validated %d charges of %d", n, s.locations[0].charges.live())
	}
	charge("startDate=soon", 422)
}
