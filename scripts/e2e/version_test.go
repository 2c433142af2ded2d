package e2e

import (
	"fmt"
	"net/http"
	"testing"
	"time"
)

// TestPluginVersioning checks the catalog entry (version and sha256) and the
// version the mount runs.
func TestPluginVersioning(t *testing.T) {
	t.Parallel()
	v := devVault(t)

	// Registered by version, so the catalog entry is read by version.
	var info struct {
		Name    string `json:"name"`
		Command string `json:"command"`
		SHA256  string `json:"sha256"`
		Version string `json:"version"`
		Builtin bool   `json:"builtin"`
	}
	v.cliJSON(t, &info, "plugin", "info", "-format=json", "-version="+pluginVersion, "secret", pluginName)
	if info.Name != pluginName || info.Version != pluginVersion || info.SHA256 != pluginSHA ||
		info.Command != pluginCommand || info.Builtin {
		t.Fatalf("plugin info: %+v; want name %s, version %s, sha256 %s, command %s, not builtin",
			info, pluginName, pluginVersion, pluginSHA, pluginCommand)
	}

	// The catalog lists the version.
	var list struct {
		Details []struct {
			Name    string `json:"name"`
			Type    string `json:"type"`
			Version string `json:"version"`
			Builtin bool   `json:"builtin"`
		} `json:"details"`
	}
	v.cliJSON(t, &list, "plugin", "list", "-format=json", "-detailed", "secret")
	found := false
	for _, p := range list.Details {
		if p.Name == pluginName && !p.Builtin {
			found = true
			if p.Version != pluginVersion {
				t.Fatalf("plugin list: %s at version %q; want %s", p.Name, p.Version, pluginVersion)
			}
		}
	}
	if !found {
		t.Fatalf("plugin list -detailed secret does not list %s", pluginName)
	}

	// The mount runs that version and binary.
	var mounts map[string]struct {
		Type                 string `json:"type"`
		PluginVersion        string `json:"plugin_version"`
		RunningPluginVersion string `json:"running_plugin_version"`
		RunningSHA256        string `json:"running_sha256"`
	}
	v.cliJSON(t, &mounts, "secrets", "list", "-format=json", "-detailed")
	m, ok := mounts[mountPath+"/"]
	if !ok {
		t.Fatalf("secrets list has no %s/ mount", mountPath)
	}
	if m.Type != pluginName || m.RunningPluginVersion != pluginVersion || m.RunningSHA256 != pluginSHA {
		t.Fatalf("secrets list %s/: %+v; want type %s, running_plugin_version %s, running_sha256 %s", mountPath, m, pluginName, pluginVersion, pluginSHA)
	}

	mo, err := v.root().Sys().GetMount(mountPath)
	if err != nil {
		t.Fatalf("GET sys/mounts/%s: %v", mountPath, err)
	}
	if mo.RunningVersion != pluginVersion || mo.RunningSha256 != pluginSHA || mo.Type != pluginName {
		t.Fatalf("sys/mounts/%s: type %q running_plugin_version %q running_sha256 %q", mountPath, mo.Type, mo.RunningVersion, mo.RunningSha256)
	}

	// A catalog read over HTTP by version agrees.
	res := v.raw(t, v.Token, http.MethodGet, "sys/plugins/catalog/secret/"+pluginName+"?version="+pluginVersion, nil)
	if res.status != http.StatusOK {
		t.Fatalf("catalog read: %s", res)
	}
}

// TestReloadCommandsFromTheDocs runs the reload commands docs/install.md
// gives, on a server of its own: both reload the mount, and the account's
// token survives (it is in storage).
func TestReloadCommandsFromTheDocs(t *testing.T) {
	t.Parallel()
	v, err := startDevVault(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Stop)
	v.dumpLogOnFailure(t, "reload Vault")
	if err := v.enablePlugin(); err != nil {
		t.Fatal(err)
	}
	c := v.root()
	a := newAccount(t, sim, "reload")
	a.configure(t, c)
	before := readCreds(t, c, a)
	for _, args := range [][]string{
		{"plugin", "reload", "-type=secret", "-plugin=" + pluginName},
		{"write", "sys/plugins/reload/backend", "mounts=" + mountPath + "/"},
	} {
		v.mustCLI(t, args...)
		eventually(t, 30*time.Second, func() error {
			after, err := c.Logical().Read(mountPath + "/creds/" + a.name)
			if err != nil {
				return err
			}
			if got := parseCreds(t, after); got.accessToken != before.accessToken {
				return fmt.Errorf("after %v the token changed", args)
			}
			return nil
		})
	}
	a.expectCounters(t, 1, 0)
}
