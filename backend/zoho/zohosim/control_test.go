package zohosim

import (
	"encoding/json"
	"net/http"
	"net/url"
	"reflect"
	"regexp"
	"testing"
	"time"
)

func TestControlClientsAndSelfClient(t *testing.T) {
	e := newEnv(t, Config{})
	if r := e.get("/sim/health"); r.status != http.StatusOK || r.str("status") != "ok" {
		t.Fatalf("health: %d %s", r.status, r.raw)
	}
	r := e.sendJSON(http.MethodPost, "/sim/clients", `{"dc":"eu","redirect_uris":["https://a.example/cb"]}`)
	if r.status != http.StatusOK || r.str("dc") != "eu" || !regexp.MustCompile(`^1000\.[A-Z0-9]{30}$`).MatchString(r.str("client_id")) {
		t.Fatalf("create client: %d %s", r.status, r.raw)
	}
	var c Client
	if err := json.Unmarshal([]byte(r.raw), &c); err != nil || len(c.ID) != 35 || len(c.Secret) != 42 || c.RedirectURIs[0] != "https://a.example/cb" {
		t.Fatalf("client JSON %s", r.raw)
	}
	if got, ok := e.sim.LookupClient(c.ID); !ok || got.Secret != c.Secret || got.DC != "eu" {
		t.Fatalf("not registered: %+v", got)
	}
	if r := e.get("/sim/clients/" + url.PathEscape(c.ID)); r.str("client_secret") != c.Secret {
		t.Fatalf("get client: %s", r.raw)
	}
	if r := e.get("/sim/clients/1000.NOPE"); r.status != http.StatusNotFound {
		t.Fatalf("get unknown client: %d", r.status)
	}
	if r := e.sendJSON(http.MethodPost, "/sim/clients", `{"client_id":"1000.FIXED","client_secret":"abc"}`); r.str("client_id") != "1000.FIXED" || r.str("client_secret") != "abc" || r.str("dc") != "us" {
		t.Fatalf("fixed client: %s", r.raw)
	}
	if r := e.sendJSON(http.MethodPost, "/sim/clients", `{"dc":"mars"}`); r.status != http.StatusBadRequest {
		t.Fatalf("unknown dc: %d", r.status)
	}
	if r := e.sendJSON(http.MethodPost, "/sim/clients", `{"dc":`); r.status != http.StatusBadRequest {
		t.Fatalf("bad JSON: %d", r.status)
	}

	// Self Client codes, with scopes as a string or a list.
	for _, body := range []string{
		`{"client_id":"` + c.ID + `","scopes":"ZohoCRM.modules.ALL,ZohoCRM.users.READ"}`,
		`{"client_id":"` + c.ID + `","scopes":["ZohoCRM.modules.ALL","ZohoCRM.users.READ"],"ttl_seconds":600,"user":"bo@example.com"}`,
	} {
		r := e.sendJSON(http.MethodPost, "/sim/self-client", body)
		if r.status != http.StatusOK || !tokenShape.MatchString(r.str("code")) {
			t.Fatalf("self-client: %d %s", r.status, r.raw)
		}
		x := e.exchangeWith(c, r.str("code"))
		if x.str("refresh_token") == "" {
			t.Fatalf("exchange of a control-API code: %s", x.raw)
		}
		if s := e.refreshWith(c, x.str("refresh_token")).str("scope"); s != "ZohoCRM.modules.ALL ZohoCRM.users.READ" {
			t.Fatalf("scopes %q", s)
		}
	}
	r = e.sendJSON(http.MethodPost, "/sim/self-client", `{"client_id":"`+c.ID+`","scopes":"a.b.READ","ttl_seconds":600}`)
	if r.num("expires_in") != 600 {
		t.Fatalf("expires_in: %s", r.raw)
	}
	e.clock.Advance(9 * time.Minute)
	if x := e.exchangeWith(c, r.str("code")); x.str("access_token") == "" {
		t.Fatalf("ttl_seconds ignored: %s", x.raw)
	}
	if r := e.sendJSON(http.MethodPost, "/sim/self-client", `{"client_id":"1000.NOPE","scopes":"a"}`); r.status != http.StatusNotFound {
		t.Fatalf("unknown client: %d", r.status)
	}
	if r := e.sendJSON(http.MethodPost, "/sim/self-client", `{"client_id":"`+c.ID+`","scopes":7}`); r.status != http.StatusBadRequest {
		t.Fatalf("bad scopes: %d", r.status)
	}
	if r := e.sendJSON(http.MethodPost, "/sim/self-client", `{"client_id":"`+c.ID+`"}`); r.num("expires_in") != 180 {
		t.Fatalf("default ttl: %s", r.raw)
	}
}

func TestControlCountersFaultsRevoke(t *testing.T) {
	e := newEnv(t, Config{})
	rt, at := e.offline()
	other := e.sim.RegisterClient(Client{DC: "us"})
	code, _ := e.sim.SelfClientCode(other.ID, "", []string{"a"}, 0)
	e.exchangeWith(other, code)

	r := e.get("/sim/counters")
	if r.num("exchanges") != 2 || r.num("token_requests") != 2 {
		t.Fatalf("totals: %s", r.raw)
	}
	r = e.get("/sim/counters?client_id=" + url.QueryEscape(e.client.ID))
	if r.num("exchanges") != 1 || r.num("refreshes") != 0 {
		t.Fatalf("per client: %s", r.raw)
	}

	// Faults: add (latency as a duration string), list, clear.
	if r := e.sendJSON(http.MethodPost, "/sim/faults", `{"endpoint":"token","kind":"status","status":503,"times":2}`); r.status != http.StatusOK {
		t.Fatalf("add fault: %d %s", r.status, r.raw)
	}
	if r := e.sendJSON(http.MethodPost, "/sim/faults", `{"endpoint":"resource","kind":"latency","latency":"2s"}`); r.status != http.StatusOK {
		t.Fatalf("add latency fault: %d %s", r.status, r.raw)
	}
	if got := e.sim.Faults(); len(got) != 2 || got[0].Status != 503 || got[0].Times != 2 || got[1].Latency != 2*time.Second {
		t.Fatalf("installed faults %+v", got)
	}
	if r := e.refreshWith(e.client, rt); r.status != 503 {
		t.Fatalf("fault from the control API not applied: %d", r.status)
	}
	r = e.get("/sim/faults")
	var listed []Fault
	if err := json.Unmarshal([]byte(r.raw), &listed); err != nil || len(listed) != 2 || listed[0].Times != 1 || listed[1].Latency != 2*time.Second {
		t.Fatalf("list faults: %s %v", r.raw, err)
	}
	for _, bad := range []string{`{"kind":"explode"}`, `{"kind":"latency","latency":"soon"}`, `{"kind":"status","endpoint":"x"}`} {
		if r := e.sendJSON(http.MethodPost, "/sim/faults", bad); r.status != http.StatusBadRequest {
			t.Errorf("bad fault %s: %d", bad, r.status)
		}
	}
	if r := e.sendJSON(http.MethodDelete, "/sim/faults", ""); r.status != http.StatusOK || len(e.sim.Faults()) != 0 {
		t.Fatalf("clear faults: %d", r.status)
	}
	e.mustRefresh(rt)

	// Evict and revoke behind the engine's back.
	if r := e.sendJSON(http.MethodPost, "/sim/evict-oldest-access-token", `{"token":"`+rt+`"}`); r.body["evicted"] != true || e.sim.AccessTokenValid(at) {
		t.Fatalf("evict: %s", r.raw)
	}
	if r := e.sendJSON(http.MethodPost, "/sim/revoke-refresh-token", `{"token":"`+rt+`"}`); r.body["revoked"] != true || e.sim.RefreshTokenValid(rt) {
		t.Fatalf("revoke: %s", r.raw)
	}
	if r := e.sendJSON(http.MethodPost, "/sim/revoke-refresh-token", `{"token":"`+rt+`"}`); r.body["revoked"] != false {
		t.Fatalf("second revoke: %s", r.raw)
	}

	r = e.get("/sim/counters?client_id=" + url.QueryEscape(e.client.ID))
	if r.num("faults_injected") != 1 || r.num("refreshes") != 1 || r.num("evictions") != 1 || r.num("token_requests") != 3 {
		t.Fatalf("per client after: %s", r.raw)
	}
	if r := e.sendJSON(http.MethodPost, "/sim/counters/reset", ""); r.status != http.StatusOK {
		t.Fatalf("reset: %d", r.status)
	}
	if got := e.sim.Counters(); got != (Counters{}) {
		t.Fatalf("after reset %+v", got)
	}
	if r := e.get("/sim/counters"); r.num("token_requests") != 0 || len(r.body) != reflect.TypeFor[Counters]().NumField() || r.body["revoke_malformed"] != 0.0 || r.body["device_polls"] != 0.0 {
		t.Fatalf("counters JSON after reset: %s", r.raw)
	}
}

func TestCountersTotalsAndReset(t *testing.T) {
	e := newEnv(t, Config{})
	a := e.client
	b := e.sim.RegisterClient(Client{DC: "us"})
	rtA, _ := e.offline()
	e.mustRefresh(rtA)
	codeB, _ := e.sim.SelfClientCode(b.ID, "", []string{"x"}, 0)
	rB := e.exchangeWith(b, codeB)
	e.refreshWith(b, rB.str("refresh_token"))
	e.refreshWith(b, "1000.dead")
	e.revoke(rB.str("refresh_token"))

	wantCounters(t, "a", e.sim.ClientCounters(a.ID), Counters{TokenRequests: 2, Exchanges: 1, Refreshes: 1})
	wantCounters(t, "b", e.sim.ClientCounters(b.ID), Counters{TokenRequests: 3, Exchanges: 1, Refreshes: 1, RefreshFailures: 1, Revokes: 1, RevokedRefresh: 1})
	wantCounters(t, "total", e.sim.Counters(), Counters{TokenRequests: 5, Exchanges: 2, Refreshes: 2, RefreshFailures: 1, Revokes: 1, RevokedRefresh: 1})
	e.sim.ResetCounters()
	wantCounters(t, "a after reset", e.sim.ClientCounters(a.ID), Counters{})
	// Counting resumes after a reset.
	e.mustRefresh(rtA)
	wantCounters(t, "a after reset and a refresh", e.sim.ClientCounters(a.ID), Counters{TokenRequests: 1, Refreshes: 1})
}
