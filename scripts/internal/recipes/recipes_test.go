package recipes

import (
	"strings"
	"testing"
)

const doc = "# x\n\n```sh recipe=crm step=settings\nAPI=https://www.zohoapis.com/crm/v7\n```\n\n" +
	"```sh recipe=crm step=config\nvault write zoho/config/crm client_id=\"$CLIENT_ID\" \\\n    data_center=eu scopes=ZohoCRM.users.READ,ZohoCRM.org.READ\n```\n\n" +
	"```sh\nnot a recipe\n```\n\n" +
	"```sh recipe=crm step=call\ncurl \"$API/users\"\n```\n"

func TestParse(t *testing.T) {
	rs, err := Parse(doc)
	if err != nil || len(rs) != 1 {
		t.Fatalf("%v %v", rs, err)
	}
	r := rs[0]
	if r.Product != "crm" || r.Line != 3 || r.Account() != "crm" || r.DataCenter() != "eu" ||
		strings.Join(r.Scopes(), "|") != "ZohoCRM.users.READ|ZohoCRM.org.READ" || r.Call != "curl \"$API/users\"\n" {
		t.Fatalf("%+v", r)
	}
	if got := r.OfflineSettings("http://127.0.0.1:9/eu/api/"); got != "API=http://127.0.0.1:9/eu/api/crm/v7\n" {
		t.Errorf("OfflineSettings: %q", got)
	}
	if got := r.OfflineConfig("http://127.0.0.1:9/eu"); !strings.HasPrefix(got, "vault write zoho/config/crm accounts_url=http://127.0.0.1:9/eu client_id=") {
		t.Errorf("OfflineConfig: %q", got)
	}
	s := r.Script("http://sim/eu/api", "http://sim/eu", false)
	if !strings.HasPrefix(s, "set -euo pipefail\n") || strings.Contains(s, "vault write") || !strings.HasSuffix(s, r.Call) {
		t.Errorf("Script without config: %q", s)
	}
	if s := r.Script("http://sim/eu/api", "http://sim/eu", true); !strings.Contains(s, "accounts_url=http://sim/eu") {
		t.Errorf("Script with config: %q", s)
	}
}

func TestParseRefuses(t *testing.T) {
	for name, md := range map[string]string{
		"a missing step":  strings.Replace(doc, "step=call", "step=nothing", 1),
		"a repeated step": doc + "\n```sh recipe=crm step=call\ncurl x\n```\n",
		"no account":      strings.Replace(doc, "zoho/config/crm", "zoho/creds/crm", 1),
		"no scopes":       strings.Replace(doc, "scopes=", "scope=", 1),
		"unterminated":    strings.TrimSuffix(doc, "```\n"),
		"no data center":  strings.Replace(doc, "data_center=eu", "", 1),
	} {
		if _, err := Parse(md); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
}
