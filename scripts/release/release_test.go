package main

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"debug/buildinfo"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/zoho-vault/vault-plugin-secrets-zoho/scripts/internal/filesum"
)

func repoRoot(t *testing.T) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate the test file")
	}
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// goCmd is the go command: on PATH, else in $GOROOT/bin (go test sets
// GOROOT for the test binary).
func goCmd() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	if root := os.Getenv("GOROOT"); root != "" {
		return filepath.Join(root, "bin", "go")
	}
	return "go"
}

func goEnvValue(t *testing.T, key string) string {
	t.Helper()
	out, err := exec.Command(goCmd(), "env", key).Output()
	if err != nil {
		t.Fatalf("go env %s: %v", key, err)
	}
	return strings.TrimSpace(string(out))
}

// TestReproducible builds the release twice from two copies of the source
// tree, in directories of different names and depths, each with its own
// GOPATH and an empty GOCACHE of its own (so nothing compiled by one build is
// reused by the other), and requires SHA256SUMS, and so every artifact, to be
// byte for byte the same. The module cache is shared, read-only in effect
// (GOPROXY=off, -mod=readonly): the modules are those of go.sum either way,
// and no test may reach the network.
//
// make test (through make unit) builds linux/amd64 only: two cold builds,
// 2.5 minutes alone on two busy cores, 5 beside the other unit tests (make
// unit's -timeout leaves room for a slower machine); make release-check sets
// RELEASE_CHECK_PLATFORMS=all and RELEASE_CHECK_SBOM=1 to build every
// platform and compare the SBOMs too (that run may fetch cyclonedx-gomod from
// the module proxy).
func TestReproducible(t *testing.T) {
	platforms, err := ParsePlatforms(envOr("RELEASE_CHECK_PLATFORMS", "linux/amd64"))
	if err != nil {
		t.Fatal(err)
	}
	sbomTool := ""
	if os.Getenv("RELEASE_CHECK_SBOM") == "1" {
		sbomTool = DefaultSBOMTool
	}
	root := repoRoot(t)
	modcache := goEnvValue(t, "GOMODCACHE")
	const version = "v9.8.7-repro.1"
	epoch := time.Unix(1700000000, 0).UTC()

	tmp := t.TempDir()
	srcA := filepath.Join(tmp, "a", "src")
	srcB := filepath.Join(tmp, "b", "deeper", "other-name")
	var sums [2]map[string]string
	var raw [2][]byte
	var outs [2]string
	for i, src := range []string{srcA, srcB} {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
		if err := CopySources(ctx, root, src); err != nil {
			cancel()
			t.Fatal(err)
		}
		gopath := filepath.Join(tmp, "gopath"+string(rune('A'+i)))
		env := []string{
			"GOPATH=" + gopath,
			"GOCACHE=" + filepath.Join(tmp, "gocache"+string(rune('A'+i))),
			"GOMODCACHE=" + modcache,
			"GOFLAGS=-modcacherw",
			"GOTOOLCHAIN=local",
		}
		if sbomTool == "" {
			env = append(env, "GOPROXY=off")
		}
		outs[i] = filepath.Join(tmp, "out"+string(rune('A'+i)))
		start := time.Now()
		sums[i], err = Release(ctx, Options{
			Root: src, Version: version, Out: outs[i], Platforms: platforms,
			Epoch: epoch, Go: goCmd(), Env: env, SBOMTool: sbomTool, NotesOptional: true,
		})
		cancel()
		if err != nil {
			t.Fatalf("release %d: %v", i+1, err)
		}
		t.Logf("release %d (%s, %v): %s", i+1, src, platforms, time.Since(start).Round(time.Second))
		if raw[i], err = os.ReadFile(filepath.Join(outs[i], "SHA256SUMS")); err != nil {
			t.Fatal(err)
		}
	}

	// Every artifact is there and listed, and its sum is right.
	for _, p := range platforms {
		want := []string{BinaryName(version, p), ArchiveName(version, p)}
		if sbomTool != "" {
			want = append(want, SBOMName(version, p))
		}
		for _, name := range want {
			if sums[0][name] == "" {
				t.Errorf("SHA256SUMS lists no %s", name)
			}
		}
	}
	parsed, err := ParseSums(raw[0])
	if err != nil {
		t.Fatal(err)
	}
	for name, sum := range parsed {
		got, err := filesum.SHA256(filepath.Join(outs[0], name))
		if err != nil || got != sum {
			t.Errorf("%s: sum %s in SHA256SUMS, %s on disk (%v)", name, sum, got, err)
		}
	}

	// The two builds agree.
	if !bytes.Equal(raw[0], raw[1]) {
		for name, a := range sums[0] {
			if b := sums[1][name]; a != b {
				t.Errorf("%s differs between the builds: %s vs %s", name, a, b)
			}
		}
		t.Fatalf("SHA256SUMS differ:\n%s\nvs\n%s", raw[0], raw[1])
	}

	for _, p := range platforms {
		checkBinary(t, filepath.Join(outs[0], BinaryName(version, p)), version, p,
			root, srcA, filepath.Join(tmp, "gopathA"), filepath.Join(tmp, "gocacheA"), modcache)
		checkArchive(t, outs[0], version, p, epoch)
	}
}

// checkBinary: static, trimmed, no VCS stamp, the version compiled in.
func checkBinary(t *testing.T, path, version string, p Platform, buildDirs ...string) {
	t.Helper()
	info, err := buildinfo.ReadFile(path)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	settings := map[string]string{}
	for _, s := range info.Settings {
		settings[s.Key] = s.Value
	}
	for k, want := range map[string]string{"CGO_ENABLED": "0", "-trimpath": "true", "GOOS": p.OS, "GOARCH": p.Arch} {
		if settings[k] != want {
			t.Errorf("%s: build setting %s=%q; want %q", filepath.Base(path), k, settings[k], want)
		}
	}
	for k := range settings {
		if strings.HasPrefix(k, "vcs") {
			t.Errorf("%s: build setting %s: the binary carries a VCS stamp", filepath.Base(path), k)
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(data, []byte(version)) {
		t.Errorf("%s: the version %s is not compiled in", filepath.Base(path), version)
	}
	for _, dir := range buildDirs {
		if bytes.Contains(data, []byte(dir)) {
			t.Errorf("%s: holds the build's directory %s", filepath.Base(path), dir)
		}
	}
}

// checkArchive: the archive holds the bare binary's exact bytes and the
// documents, every entry at the epoch with owner 0 and its mode.
func checkArchive(t *testing.T, dir, version string, p Platform, epoch time.Time) {
	t.Helper()
	bin, err := os.ReadFile(filepath.Join(dir, BinaryName(version, p)))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, ArchiveName(version, p))
	type entry struct {
		mode  os.FileMode
		mtime time.Time
		uid   int
		data  []byte
	}
	got := map[string]entry{}
	var order []string
	if p.OS == "windows" {
		zr, err := zip.OpenReader(path)
		if err != nil {
			t.Fatal(err)
		}
		defer zr.Close()
		for _, f := range zr.File {
			rc, err := f.Open()
			if err != nil {
				t.Fatal(err)
			}
			data, _ := io.ReadAll(rc)
			rc.Close()
			got[f.Name] = entry{mode: f.Mode().Perm(), mtime: f.Modified, data: data}
			order = append(order, f.Name)
		}
	} else {
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		gz, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		if !gz.ModTime.IsZero() || gz.Name != "" {
			t.Errorf("%s: the gzip header carries a time (%v) or a name (%q)", filepath.Base(path), gz.ModTime, gz.Name)
		}
		tr := tar.NewReader(gz)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			data, _ := io.ReadAll(tr)
			got[h.Name] = entry{mode: os.FileMode(h.Mode).Perm(), mtime: h.ModTime, uid: h.Uid + h.Gid, data: data}
			order = append(order, h.Name)
		}
	}
	exe := Plugin
	if p.OS == "windows" {
		exe += ".exe"
	}
	want := []string{exe, "LICENSE", "README.md", "CHANGELOG.md"}
	if strings.Join(order, ",") != strings.Join(want, ",") {
		t.Fatalf("%s holds %v; want %v", filepath.Base(path), order, want)
	}
	if !bytes.Equal(got[exe].data, bin) {
		t.Errorf("%s: %s is not the bare binary", filepath.Base(path), exe)
	}
	for name, e := range got {
		wantMode := os.FileMode(0o644)
		if name == exe {
			wantMode = 0o755
		}
		if e.mode != wantMode || !e.mtime.Equal(epoch) || e.uid != 0 {
			t.Errorf("%s: %s has mode %v, time %v, owner+group %d; want %v, %v, 0", filepath.Base(path), name, e.mode, e.mtime, e.uid, wantMode, epoch)
		}
	}
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func TestReleaseNotes(t *testing.T) {
	dir := t.TempDir()
	cl := filepath.Join(dir, "CHANGELOG.md")
	text := "# Changelog\n\n## Unreleased\n\n- next\n\n## [v1.2.0] - 2026-12-01\n\n- two\n\n## v1.1.0\n\n- one\n"
	if err := os.WriteFile(cl, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	for version, want := range map[string]string{
		"v1.2.0": "## [v1.2.0] - 2026-12-01\n\n- two\n",
		"v1.1.0": "## v1.1.0\n\n- one\n",
	} {
		got, err := ReleaseNotes(cl, version)
		if err != nil || got != want {
			t.Errorf("notes of %s: %q, %v; want %q", version, got, err, want)
		}
	}
	if _, err := ReleaseNotes(cl, "v1.1"); err == nil {
		t.Error("v1.1 matched the v1.1.0 section")
	}
	if _, err := ReleaseNotes(cl, "v3.0.0"); err == nil {
		t.Error("a version without a section has notes")
	}
}

func TestOptionsRefused(t *testing.T) {
	ctx := context.Background()
	for _, v := range []string{"", "1.2.3", "v1.2", "v01.2.3", "v1.2.3+meta"} {
		if _, err := Release(ctx, Options{Root: repoRoot(t), Version: v, Out: t.TempDir(), Platforms: AllPlatforms}); err == nil {
			t.Errorf("version %q accepted", v)
		}
	}
	out := t.TempDir()
	if err := os.WriteFile(filepath.Join(out, "stale"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Release(ctx, Options{Root: repoRoot(t), Version: "v1.0.0", Out: out, Platforms: AllPlatforms}); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("a non-empty output directory: %v", err)
	}
	if _, err := Release(ctx, Options{Root: repoRoot(t), Version: "v77.0.0", Out: t.TempDir(), Platforms: AllPlatforms}); err == nil || !strings.Contains(err.Error(), "CHANGELOG.md") {
		t.Errorf("a version without release notes: %v", err)
	}
	if ps, err := ParsePlatforms("linux/amd64, darwin/arm64"); err != nil || len(ps) != 2 || ps[1] != (Platform{"darwin", "arm64"}) {
		t.Errorf("ParsePlatforms: %v %v", ps, err)
	}
	if _, err := ParsePlatforms("linux"); err == nil {
		t.Error("ParsePlatforms accepted linux")
	}
}

func TestParseSums(t *testing.T) {
	sum := strings.Repeat("ab", 32)
	m, err := ParseSums([]byte(sum + "  a.tar.gz\n" + sum + "  b\n"))
	if err != nil || len(m) != 2 || m["b"] != sum {
		t.Fatalf("%v %v", m, err)
	}
	for _, bad := range []string{sum + " a\n", "zz  a\n", strings.Repeat("zz", 32) + "  a\n"} {
		if _, err := ParseSums([]byte(bad)); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

// TestCopySourcesOutsideGit: a copy without .git (what TestReproducible
// builds from) copies again, without build outputs.
func TestCopySourcesOutsideGit(t *testing.T) {
	src := t.TempDir()
	for name, data := range map[string]string{
		"go.mod": "module x\n", "cmd/a/main.go": "package main\n", "bin/old": "x", "dist/SHA256SUMS": "x", "docs/bin/keep.md": "k",
	} {
		p := filepath.Join(src, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dst := t.TempDir()
	if err := CopySources(context.Background(), src, dst); err != nil {
		t.Fatal(err)
	}
	got, err := walkSources(dst)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, ",") != "cmd/a/main.go,docs/bin/keep.md,go.mod" {
		t.Fatalf("copied %v", got)
	}
}
