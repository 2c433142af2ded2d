package zohosim

import (
	"net/http"
	"testing"
	"time"
)

// productToken is an access token of the env's client in dc with scopes.
func (e *env) productToken(dc string, scopes ...string) string {
	e.t.Helper()
	c := e.sim.RegisterClient(Client{DC: dc})
	code, err := e.sim.SelfClientCode(c.ID, "", scopes, time.Minute)
	if err != nil {
		e.t.Fatal(err)
	}
	r := e.exchangeWith(c, code)
	if r.status != http.StatusOK || r.str("access_token") == "" {
		e.t.Fatalf("exchange: %d %s", r.status, r.raw)
	}
	return r.str("access_token")
}

func TestProductAPIs(t *testing.T) {
	e := newEnv(t, Config{})
	analyticsTok := e.productToken("eu", "ZohoAnalytics.metadata.read", "ZohoAnalytics.data.read")
	crmTok := e.productToken("in", "ZohoCRM.users.READ")
	connectTok := e.productToken("us", "zohopulse.tasks.READ")
	tcTok := e.productToken("au", "TrainerCentral.portalapi.READ", "TrainerCentral.courseapi.READ")
	auth := func(tok string) string { return "Zoho-oauthtoken " + tok }
	const jsonCT = "application/json"

	for _, tc := range []struct {
		name   string
		path   string
		header []string
		status int
		code   string // the refusal's code; "" for a 200
	}{
		// Zoho Analytics: the org id header on all but /orgs.
		{"analytics orgs", "/eu/analytics/restapi/v2/orgs", []string{"Authorization", auth(analyticsTok)}, 200, ""},
		{"analytics workspaces", "/eu/analytics/restapi/v2/workspaces", []string{"Authorization", auth(analyticsTok), "ZANALYTICS-ORGID", "6000000123"}, 200, ""},
		{"analytics header name in lower case", "/eu/analytics/restapi/v2/workspaces", []string{"Authorization", auth(analyticsTok), "zanalytics-orgid", "6000000123"}, 200, ""},
		{"analytics without org id", "/eu/analytics/restapi/v2/workspaces", []string{"Authorization", auth(analyticsTok)}, 400, "MISSING_ORGID"},
		{"analytics with a name for org id", "/eu/analytics/restapi/v2/workspaces", []string{"Authorization", auth(analyticsTok), "ZANALYTICS-ORGID", "acme"}, 400, "INVALID_ORGID"},
		{"analytics in another data center", "/us/analytics/restapi/v2/orgs", []string{"Authorization", auth(analyticsTok)}, 401, "INVALID_OAUTHTOKEN"},
		{"analytics with a CRM token", "/in/analytics/restapi/v2/orgs", []string{"Authorization", auth(crmTok)}, 401, "OAUTH_SCOPE_MISMATCH"},
		{"analytics v1 path", "/eu/analytics/api/v1/orgs", []string{"Authorization", auth(analyticsTok)}, 404, ""},
		// Zoho CRM: /crm/v2 .. /crm/v8.
		{"crm v7 current user", "/in/api/crm/v7/users?type=CurrentUser", []string{"Authorization", auth(crmTok)}, 200, ""},
		{"crm v2 org", "/in/api/crm/v2/org", []string{"Authorization", auth(crmTok)}, 200, ""},
		{"crm v1", "/in/api/crm/v1/org", []string{"Authorization", auth(crmTok)}, 400, "INVALID_URL_PATTERN"},
		{"crm Bearer", "/in/api/crm/v7/org", []string{"Authorization", "Bearer " + crmTok}, 401, "INVALID_OAUTHTOKEN"},
		{"crm token in the query", "/in/api/crm/v7/org?authtoken=" + crmTok, nil, 401, "INVALID_OAUTHTOKEN"},
		{"crm with a Connect token", "/us/api/crm/v7/org", []string{"Authorization", auth(connectTok)}, 401, "OAUTH_SCOPE_MISMATCH"},
		// Zoho Connect: JSON content type.
		{"connect tasks", "/us/connect/nativeapi/v2/tasks", []string{"Authorization", auth(connectTok), "Content-Type", jsonCT}, 200, ""},
		{"connect without content type", "/us/connect/nativeapi/v2/tasks", []string{"Authorization", auth(connectTok)}, 400, "INVALID_CONTENT_TYPE"},
		{"connect form content type", "/us/connect/nativeapi/v2/tasks", []string{"Authorization", auth(connectTok), "Content-Type", "application/x-www-form-urlencoded"}, 400, "INVALID_CONTENT_TYPE"},
		{"connect no token", "/us/connect/nativeapi/v2/tasks", []string{"Content-Type", jsonCT}, 401, "INVALID_OAUTHTOKEN"},
		// TrainerCentral: org id in the path, .json, JSON content type.
		{"trainercentral portals", "/au/trainercentral/api/v4/org/portals.json", []string{"Authorization", auth(tcTok), "Content-Type", jsonCT}, 200, ""},
		{"trainercentral courses", "/au/trainercentral/api/v4/7000123/courses.json", []string{"Authorization", auth(tcTok), "Content-Type", "application/json; charset=utf-8"}, 200, ""},
		{"trainercentral without org id", "/au/trainercentral/api/v4/courses.json", []string{"Authorization", auth(tcTok), "Content-Type", jsonCT}, 404, "INVALID_URL_PATTERN"},
		{"trainercentral without .json", "/au/trainercentral/api/v4/7000123/courses", []string{"Authorization", auth(tcTok), "Content-Type", jsonCT}, 404, "INVALID_URL_PATTERN"},
		{"trainercentral without content type", "/au/trainercentral/api/v4/7000123/courses.json", []string{"Authorization", auth(tcTok)}, 400, "INVALID_CONTENT_TYPE"},
		{"trainercentral unknown data center", "/xx/trainercentral/api/v4/org/portals.json", []string{"Authorization", auth(tcTok), "Content-Type", jsonCT}, 404, ""},
	} {
		r := e.get(tc.path, tc.header...)
		if r.status != tc.status {
			t.Errorf("%s: GET %s: HTTP %d %s; want %d", tc.name, tc.path, r.status, r.raw, tc.status)
			continue
		}
		if tc.code != "" && r.str("code") != tc.code {
			t.Errorf("%s: code %q (%s); want %q", tc.name, r.str("code"), r.raw, tc.code)
		}
		if tc.status == 200 && (r.str("Email") != DefaultUser || r.str("client_id") == "" || r.str("dc") != tc.path[1:3]) {
			t.Errorf("%s: %s", tc.name, r.raw)
		}
	}

	// What the product answers echoes what it was asked.
	if r := e.get("/eu/analytics/restapi/v2/workspaces", "Authorization", auth(analyticsTok), "ZANALYTICS-ORGID", "42"); r.str("org_id") != "42" || r.str("product") != "analytics" || r.str("path") != "/restapi/v2/workspaces" {
		t.Errorf("analytics: %s", r.raw)
	}
	if r := e.get("/in/api/crm/v7/users", "Authorization", auth(crmTok)); r.str("api_version") != "v7" || r.str("path") != "/crm/v7/users" {
		t.Errorf("crm: %s", r.raw)
	}
	if r := e.get("/au/trainercentral/api/v4/7000123/course/1.json", "Authorization", auth(tcTok), "Content-Type", jsonCT); r.str("org_id") != "7000123" {
		t.Errorf("trainercentral: %s", r.raw)
	}
	// Only GET is served.
	req, _ := http.NewRequest(http.MethodPost, e.ts.URL+"/in/api/crm/v7/org", nil)
	req.Header.Set("Authorization", auth(crmTok))
	if r := e.do(req); r.status != http.StatusMethodNotAllowed {
		t.Errorf("POST: HTTP %d", r.status)
	}
	// A revoked token is refused by every product.
	wantRevoked(t, e.postQuery("/in/oauth/v2/token/revoke", map[string][]string{"token": {crmTok}}))
	if r := e.get("/in/api/crm/v7/org", "Authorization", auth(crmTok)); r.status != http.StatusUnauthorized || r.str("code") != "INVALID_OAUTHTOKEN" {
		t.Errorf("revoked token: %d %s", r.status, r.raw)
	}
	if got := e.sim.ProductURL("eu", "analytics"); got != e.ts.URL+"/eu/analytics" {
		t.Errorf("ProductURL: %s", got)
	}
	if got := e.sim.ProductURL("eu", "crm"); got != e.sim.APIDomain("eu") {
		t.Errorf("ProductURL of crm: %s", got)
	}
}
