package e2e

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/zoho-vault/vault-plugin-secrets-zoho/scripts/internal/filesum"
	"github.com/zoho-vault/vault-plugin-secrets-zoho/scripts/internal/vaultproc"
)

// TestReleasedBinaryByPublishedSum does what docs/install.md tells an
// operator installing a release: it builds the release for this machine's
// platform (linux/amd64 in CI) with the release tool into a directory of its
// own, takes the bare binary's sum from SHA256SUMS, checks the binary against
// it, installs the binary in a plugin directory, registers it in a real Vault
// with that published sum and serves a creds/ read through it.
func TestReleasedBinaryByPublishedSum(t *testing.T) {
	t.Parallel()
	platform := runtime.GOOS + "_" + runtime.GOARCH
	dist := filepath.Join(t.TempDir(), "dist")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goTool(), "run", "./scripts/release",
		"-version", pluginVersion, "-out", dist, "-platforms", runtime.GOOS+"/"+runtime.GOARCH,
		"-sbom=", "-notes-optional")
	cmd.Dir = repoRoot
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("the release build failed: %v\n%s", err, out.String())
	}

	// The published sum of the bare binary.
	binName := pluginCommand + "_" + pluginVersion + "_" + platform
	sums, err := os.ReadFile(filepath.Join(dist, "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	published := ""
	sc := bufio.NewScanner(bytes.NewReader(sums))
	for sc.Scan() {
		if sum, name, ok := strings.Cut(sc.Text(), "  "); ok && name == binName {
			published = sum
		}
	}
	if len(published) != 64 {
		t.Fatalf("SHA256SUMS lists no %s:\n%s", binName, sums)
	}
	if published == pluginSHA {
		t.Fatalf("the release binary has the sum of the suite's plain build (%s): the test would not tell them apart", published)
	}

	// Installed as the operator does: under the command name, then checked.
	plugins := filepath.Join(t.TempDir(), "plugins")
	if err := os.MkdirAll(plugins, 0o755); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dist, binName))
	if err != nil {
		t.Fatal(err)
	}
	installed := filepath.Join(plugins, pluginCommand)
	if err := os.WriteFile(installed, data, 0o755); err != nil {
		t.Fatal(err)
	}
	if got, err := filesum.SHA256(installed); err != nil || got != published {
		t.Fatalf("the installed binary's sum %s (%v) is not the published %s", got, err, published)
	}

	s, err := vaultproc.StartDev(vaultproc.Config{Bin: vaultBin, Dir: t.TempDir(), PluginDir: plugins, LogLevel: "debug"})
	if err != nil {
		t.Fatal(err)
	}
	v := &vaultServer{s}
	t.Cleanup(v.Stop)
	v.dumpLogOnFailure(t, "release Vault")
	v.mustCLI(t, "plugin", "register", "-sha256="+published, "-version="+pluginVersion,
		"-command="+pluginCommand, "secret", pluginName)
	v.mustCLI(t, "secrets", "enable", "-path="+mountPath, "-plugin-version="+pluginVersion, pluginName)

	var mounts map[string]struct {
		RunningPluginVersion string `json:"running_plugin_version"`
		RunningSHA256        string `json:"running_sha256"`
	}
	v.cliJSON(t, &mounts, "secrets", "list", "-format=json", "-detailed")
	if m := mounts[mountPath+"/"]; m.RunningSHA256 != published || m.RunningPluginVersion != pluginVersion {
		t.Fatalf("%s/ runs %+v; want sha256 %s, version %s", mountPath, m, published, pluginVersion)
	}

	c := v.root()
	a := newAccount(t, sim, "released")
	a.configure(t, c)
	cr := readCreds(t, c, a)
	a.expectAccepted(t, cr.accessToken)
	a.expectCounters(t, 1, 0)
}
