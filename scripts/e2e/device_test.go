package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/zoho-vault/vault-plugin-secrets-zoho/backend/zoho/zohosim"
)

// TestDeviceAuthorization: the operator starts Zoho's device flow with the
// vault CLI, the user approves through the simulator's control API (as they
// would on the verification page), and the plugin, polling in the
// background inside Vault, stores the refresh token: status says approved
// within a deadline and creds/ serves a token Zoho accepts. A second account
// whose user refuses ends denied and is listed by attention/ (that polling stops is
// asserted by the unit tests, on the injected clock).
func TestDeviceAuthorization(t *testing.T) {
	t.Parallel()
	v := devVault(t)
	c := v.root()
	from := v.LogSize()

	// A simulator of its own, with a one-second poll interval so that the
	// test does not wait Zoho's 30 s.
	devSim := zohosim.New(zohosim.Config{DevicePollInterval: time.Second})
	base, err := devSim.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = devSim.Close() })

	configure := func(name string) *account {
		a := &account{name: name, sim: devSim, client: devSim.RegisterClient(zohosim.Client{DC: "us"}), scopes: []string{"ZohoCRM.modules.ALL", "ZohoCRM.users.READ"}}
		_, err := c.Logical().Write(mountPath+"/config/"+name, map[string]interface{}{
			"client_id": a.client.ID, "client_secret": a.client.Secret, "data_center": "us",
			"accounts_url": devSim.AccountsURL("us"), "scopes": strings.Join(a.scopes, ","),
		})
		if err != nil {
			t.Fatalf("writing config/%s: %v", name, err)
		}
		return a
	}
	start := func(a *account) (userCode, verificationURL string) {
		var out cliSecret
		r := v.cliJSON(t, &out, "write", "-format=json", "-f", mountPath+"/device/"+a.name)
		userCode, verificationURL = toString(out.Data["user_code"]), toString(out.Data["verification_url"])
		if userCode == "" || verificationURL != devSim.AccountsURL("us")+"/oauth/v3/device" ||
			fmt.Sprint(out.Data["interval"]) != "1" || fmt.Sprint(out.Data["expires_in"]) != "300" || out.Data["expires_at"] == nil {
			t.Fatalf("vault write -f %s/device/%s: %s", mountPath, a.name, r.stdout)
		}
		if zohoTokenRe.MatchString(r.stdout + r.stderr) {
			t.Fatalf("the device/ answer shows a code or token: %s", r.stdout)
		}
		return userCode, verificationURL
	}
	decide := func(action, userCode string) {
		body, _ := json.Marshal(map[string]string{"user_code": userCode})
		resp, err := loopbackHTTP.Post(base+"/sim/device/"+action, "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if msg, _ := io.ReadAll(resp.Body); resp.StatusCode != http.StatusOK {
			t.Fatalf("POST /sim/device/%s: %d %s", action, resp.StatusCode, msg)
		}
	}
	health := func(name string) (map[string]interface{}, error) {
		s, err := c.Logical().Read(mountPath + "/status/" + name)
		if err != nil || s == nil {
			return nil, fmt.Errorf("status/%s: %v", name, err)
		}
		return s.Data, nil
	}

	// path-help explains the flow and its answer.
	r := v.mustCLI(t, "path-help", mountPath+"/device/x")
	for _, w := range []string{"user_code", "verification_url", "slow_down", "other_dc", "name ("} {
		if !strings.Contains(r.stdout, w) {
			t.Errorf("path-help %s/device/x lacks %q:\n%s", mountPath, w, r.stdout)
		}
	}

	a := configure("device-e2e")
	userCode, verificationURL := start(a)
	// The verification page the user would open is served.
	page, err := loopbackHTTP.Get(verificationURL)
	if err != nil {
		t.Fatal(err)
	}
	page.Body.Close()
	if page.StatusCode != http.StatusOK {
		t.Fatalf("verification page: HTTP %d", page.StatusCode)
	}
	if st, err := health(a.name); err != nil || st["device_authorization"] != "pending" || st["device_user_code"] != userCode {
		t.Fatalf("status while pending: %v %v", st, err)
	}
	decide("approve", userCode)
	eventually(t, 30*time.Second, func() error {
		st, err := health(a.name)
		if err != nil {
			return err
		}
		if st["device_authorization"] != "approved" || st["has_refresh_token"] != true {
			return fmt.Errorf("status: device_authorization %v, has_refresh_token %v, last answer %v",
				st["device_authorization"], st["has_refresh_token"], st["device_last_poll_answer"])
		}
		return nil
	})
	cr := readCreds(t, c, a)
	a.expectAccepted(t, cr.accessToken)
	got := a.counters()
	if got.DeviceGrants != 1 || got.DeviceSlowDowns != 0 || got.Refreshes != 0 || got.DevicePolls < 1 {
		t.Fatalf("at the simulator: %+v; want one grant, no slow_down, the token that came with it served", got)
	}
	var dev cliSecret
	v.cliJSON(t, &dev, "read", "-format=json", mountPath+"/device/"+a.name)
	if dev.Data["state"] != "approved" || dev.Data["last_poll_answer"] != "granted" {
		t.Fatalf("device/%s read: %v", a.name, dev.Data)
	}
	if strings.Contains(v.LogSince(from), cr.accessToken) {
		t.Fatal("Vault's log shows the access token")
	}

	// Refused: denied, polling stops, attention/ lists the account.
	b := configure("device-e2e-denied")
	userCode, _ = start(b)
	decide("deny", userCode)
	eventually(t, 30*time.Second, func() error {
		st, err := health(b.name)
		if err != nil {
			return err
		}
		if st["device_authorization"] != "denied" {
			return fmt.Errorf("device_authorization %v", st["device_authorization"])
		}
		return nil
	})
	list, err := c.Logical().List(mountPath + "/attention")
	if err != nil || list == nil {
		t.Fatalf("attention/: %v", err)
	}
	info, _ := list.Data["key_info"].(map[string]interface{})[b.name].(map[string]interface{})
	if fmt.Sprint(info["reasons"]) != "[device_authorization_denied]" {
		t.Fatalf("attention/ for %s: %v", b.name, list.Data)
	}
}

// TestDeviceAuthorizationSurvivesRestart: Vault stops while a device
// authorization is pending and the user approves meanwhile; the restarted
// Vault resumes polling (the plugin's initialization, or its first periodic
// tick) and stores the refresh token.
func TestDeviceAuthorizationSurvivesRestart(t *testing.T) {
	t.Parallel()
	pv, v, err := newPersistentVault(t.TempDir())
	if err != nil {
		t.Fatalf("starting a file-storage Vault: %v", err)
	}
	t.Cleanup(func() { v.Kill() })
	v.dumpLogOnFailure(t, "file-storage Vault")
	if err := v.enablePlugin(); err != nil {
		t.Fatal(err)
	}
	devSim := zohosim.New(zohosim.Config{DevicePollInterval: time.Second})
	if _, err := devSim.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = devSim.Close() })
	a := &account{name: "device-restart", sim: devSim, client: devSim.RegisterClient(zohosim.Client{DC: "us"}), scopes: []string{"ZohoCRM.modules.ALL"}}
	c := v.root()
	if _, err := c.Logical().Write(mountPath+"/config/"+a.name, map[string]interface{}{
		"client_id": a.client.ID, "client_secret": a.client.Secret, "accounts_url": devSim.AccountsURL("us"), "scopes": "ZohoCRM.modules.ALL",
	}); err != nil {
		t.Fatal(err)
	}
	s, err := c.Logical().Write(mountPath+"/device/"+a.name, nil)
	if err != nil || s == nil {
		t.Fatalf("device/%s: %v", a.name, err)
	}
	userCode := toString(s.Data["user_code"])

	if err := v.Terminate(60 * time.Second); err != nil {
		t.Fatalf("stopping Vault: %v", err)
	}
	if err := devSim.ApproveDevice(userCode, "", ""); err != nil { // while Vault is down
		t.Fatal(err)
	}
	v2, err := pv.start()
	if err != nil {
		t.Fatalf("restarting Vault: %v", err)
	}
	t.Cleanup(func() { v2.Kill() })
	if err := pv.unseal(v2); err != nil {
		t.Fatal(err)
	}
	c = v2.root()
	began := time.Now()
	// Vault's periodic tick comes within a minute even if the plugin were not initialized.
	eventually(t, 90*time.Second, func() error {
		st, err := c.Logical().Read(mountPath + "/status/" + a.name)
		if err != nil || st == nil {
			return fmt.Errorf("status: %v", err)
		}
		if st.Data["device_authorization"] != "approved" {
			return fmt.Errorf("device_authorization %v (last answer %v)", st.Data["device_authorization"], st.Data["device_last_poll_answer"])
		}
		return nil
	})
	t.Logf("approved %s after the unseal", time.Since(began).Round(100*time.Millisecond))
	cr := readCreds(t, c, a)
	a.expectAccepted(t, cr.accessToken)
	if got := a.counters(); got.DeviceGrants != 1 || got.DeviceSlowDowns != 0 {
		t.Fatalf("at the simulator: %+v", got)
	}
}
