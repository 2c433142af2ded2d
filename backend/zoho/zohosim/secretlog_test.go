package zohosim

import (
	"net/url"
	"testing"
)

// Every request carrying a client_secret is logged with the data center it
// reached, faulted ones too; requests without one are not; taking the log
// empties it; a full log drops its oldest entries and counts them.
func TestSecretLog(t *testing.T) {
	e := newEnv(t, Config{})
	c := e.client
	e.sim.AddFault(Fault{Endpoint: "token", Kind: FaultStatus, Times: 1})
	e.postForm("/eu/oauth/v2/token", url.Values{"grant_type": {"refresh_token"}, "client_id": {c.ID}, "client_secret": {c.Secret}, "refresh_token": {"x"}})
	e.postQuery("/us/oauth/v2/token", url.Values{"grant_type": {"refresh_token"}, "client_id": {c.ID}, "client_secret": {"wrong"}, "refresh_token": {"x"}})
	e.postForm("/in/oauth/v3/device/token", url.Values{"grant_type": {"device_token"}, "client_id": {c.ID}, "client_secret": {c.Secret}, "code": {"x"}})
	e.postForm("/us/oauth/v3/device/code", url.Values{"grant_type": {"device_request"}, "client_id": {c.ID}, "scope": {"a.b.ALL"}})
	e.postQuery("/us/oauth/v2/token/revoke", url.Values{"token": {"x"}})
	e.postForm("/jp/oauth/v2/token/revoke?token=x", url.Values{"client_secret": {c.Secret}})
	got, dropped := e.sim.TakeSecretRequests()
	want := []SecretRequest{{"eu", "token", c.ID}, {"us", "token", c.ID}, {"in", "device_token", c.ID}, {"jp", "revoke", ""}}
	if dropped != 0 || len(got) != len(want) {
		t.Fatalf("got %+v (dropped %d), want %+v", got, dropped, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("entry %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
	if got, dropped := e.sim.TakeSecretRequests(); len(got) != 0 || dropped != 0 {
		t.Fatalf("the log was not emptied: %+v %d", got, dropped)
	}
	p := url.Values{"client_id": {c.ID}, "client_secret": {c.Secret}}
	for i := 0; i < maxSecretLog+3; i++ {
		e.sim.noteSecret("us", "token", p)
	}
	if got, dropped := e.sim.TakeSecretRequests(); len(got) != maxSecretLog || dropped != 3 {
		t.Fatalf("full log: %d entries, %d dropped", len(got), dropped)
	}
}
