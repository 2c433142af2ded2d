// Command release builds the plugin's release artifacts into one directory
// (make release runs it):
//
//   - a static binary per platform (CGO_ENABLED=0, -trimpath, no build id, no
//     VCS stamp, the version stamped through -X main.version), named
//     vault-plugin-secrets-zoho_<version>_<os>_<arch> (.exe on Windows);
//   - an archive per platform holding that binary (as vault-plugin-secrets-zoho),
//     LICENSE, README.md and CHANGELOG.md, every entry with the same fixed
//     time, owner 0 and mode 0755 or 0644: .tar.gz, or .zip for Windows;
//   - a CycloneDX SBOM per platform made by cyclonedx-gomod (-sbom);
//   - RELEASE_NOTES.md, the version's section of CHANGELOG.md;
//   - SHA256SUMS over all of the above, in the format of sha256sum.
//
// The same source, Go toolchain and -epoch give the same bytes in any
// directory with any GOPATH and GOCACHE (release_test.go checks it).
package main

import (
	"archive/tar"
	"archive/zip"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/zoho-vault/vault-plugin-secrets-zoho/scripts/internal/filesum"
)

// Plugin is the binary's name (and the catalog command operators use).
const Plugin = "vault-plugin-secrets-zoho"

// DefaultSBOMTool is the SBOM generator, run with `go run` from the module
// proxy at a pinned version.
const DefaultSBOMTool = "github.com/CycloneDX/cyclonedx-gomod/cmd/cyclonedx-gomod@v1.10.0"

// DefaultEpoch is the archive entries' time when neither -epoch nor
// SOURCE_DATE_EPOCH is given: 1980-01-01, the earliest time a zip holds.
const DefaultEpoch = 315532800

// Platform is a GOOS/GOARCH pair.
type Platform struct{ OS, Arch string }

func (p Platform) String() string { return p.OS + "/" + p.Arch }

// AllPlatforms are the platforms a release is built for. Vault runs external
// plugins on each (on Windows the catalog command names the .exe).
var AllPlatforms = []Platform{
	{"linux", "amd64"}, {"linux", "arm64"},
	{"darwin", "amd64"}, {"darwin", "arm64"},
	{"freebsd", "amd64"},
	{"windows", "amd64"},
}

// ParsePlatforms reads "all" or a comma-separated list of os/arch.
func ParsePlatforms(s string) ([]Platform, error) {
	if s == "" || s == "all" {
		return AllPlatforms, nil
	}
	var out []Platform
	for _, f := range strings.Split(s, ",") {
		goos, arch, ok := strings.Cut(strings.TrimSpace(f), "/")
		if !ok || goos == "" || arch == "" {
			return nil, fmt.Errorf("platform %q: want os/arch", f)
		}
		out = append(out, Platform{goos, arch})
	}
	return out, nil
}

var versionRe = regexp.MustCompile(`^v(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?$`)

// Options say what to build where.
type Options struct {
	Root      string     // module root (holds go.mod, LICENSE, README.md, CHANGELOG.md)
	Version   string     // semver with a leading v, stamped into the binaries
	Out       string     // output directory: created, must be empty if it exists
	Platforms []Platform // what to build
	Epoch     time.Time  // time of every archive entry
	Go        string     // the go command; "go" if empty
	Env       []string   // extra environment for the go command (GOPATH, GOCACHE, …)
	SBOMTool  string     // module@version of cyclonedx-gomod; "" makes no SBOM
	// NotesOptional lets a version without a CHANGELOG.md section through
	// (RELEASE_NOTES.md then says so); make release requires the section.
	NotesOptional bool
	Log           io.Writer // progress; nil discards it
}

// ArtifactName is the base name of a platform's artifacts.
func ArtifactName(version string, p Platform) string {
	return fmt.Sprintf("%s_%s_%s_%s", Plugin, version, p.OS, p.Arch)
}

// BinaryName is the bare binary's file name in the output directory.
func BinaryName(version string, p Platform) string {
	if p.OS == "windows" {
		return ArtifactName(version, p) + ".exe"
	}
	return ArtifactName(version, p)
}

// ArchiveName is the archive's file name in the output directory.
func ArchiveName(version string, p Platform) string {
	if p.OS == "windows" {
		return ArtifactName(version, p) + ".zip"
	}
	return ArtifactName(version, p) + ".tar.gz"
}

// SBOMName is the SBOM's file name in the output directory.
func SBOMName(version string, p Platform) string { return ArtifactName(version, p) + ".cdx.json" }

// Release builds everything and returns the sums it wrote to SHA256SUMS, by
// file name.
func Release(ctx context.Context, o Options) (map[string]string, error) {
	if !versionRe.MatchString(o.Version) {
		return nil, fmt.Errorf("version %q is not a semver with a leading v (v1.2.3)", o.Version)
	}
	if o.Go == "" {
		o.Go = "go"
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	if len(o.Platforms) == 0 {
		return nil, errors.New("no platform to build")
	}
	root, err := filepath.Abs(o.Root)
	if err != nil {
		return nil, err
	}
	o.Root = root
	if entries, err := os.ReadDir(o.Out); err == nil && len(entries) > 0 {
		return nil, fmt.Errorf("%s is not empty: remove it first (stale artifacts would end up in SHA256SUMS)", o.Out)
	}
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return nil, err
	}
	notes, err := ReleaseNotes(filepath.Join(root, "CHANGELOG.md"), o.Version)
	if err != nil {
		if !o.NotesOptional {
			return nil, err
		}
		notes = fmt.Sprintf("# %s\n\nCHANGELOG.md has no section for %s.\n", o.Version, o.Version)
	}
	if err := os.WriteFile(filepath.Join(o.Out, "RELEASE_NOTES.md"), []byte(notes), 0o644); err != nil {
		return nil, err
	}
	var docs []archiveFile
	for _, name := range []string{"LICENSE", "README.md", "CHANGELOG.md"} {
		data, err := os.ReadFile(filepath.Join(root, name))
		if err != nil {
			return nil, err
		}
		docs = append(docs, archiveFile{name: name, data: data, mode: 0o644})
	}
	for _, p := range o.Platforms {
		start := time.Now()
		bin := filepath.Join(o.Out, BinaryName(o.Version, p))
		if err := build(ctx, o, p, bin); err != nil {
			return nil, err
		}
		data, err := os.ReadFile(bin)
		if err != nil {
			return nil, err
		}
		entry := Plugin
		if p.OS == "windows" {
			entry += ".exe"
		}
		files := append([]archiveFile{{name: entry, data: data, mode: 0o755}}, docs...)
		archive := filepath.Join(o.Out, ArchiveName(o.Version, p))
		if p.OS == "windows" {
			err = writeZip(archive, files, o.Epoch)
		} else {
			err = writeTarGz(archive, files, o.Epoch)
		}
		if err != nil {
			return nil, err
		}
		if o.SBOMTool != "" {
			if err := sbom(ctx, o, p, filepath.Join(o.Out, SBOMName(o.Version, p))); err != nil {
				return nil, err
			}
		}
		fmt.Fprintf(o.Log, "release: %s built in %s\n", p, time.Since(start).Round(100*time.Millisecond))
	}
	return writeSums(o.Out)
}

// goEnv is the environment of a go command for platform p: the caller's,
// less whatever would change the output, plus o.Env.
func goEnv(o Options, p Platform) []string {
	drop := map[string]bool{
		"GOFLAGS": true, "GOOS": true, "GOARCH": true, "GOAMD64": true, "GOARM64": true,
		"GOARM": true, "GO386": true, "GOEXPERIMENT": true, "CGO_ENABLED": true,
		"CGO_CFLAGS": true, "CGO_LDFLAGS": true, "GOWORK": true,
	}
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if !drop[k] {
			env = append(env, kv)
		}
	}
	env = append(env, "CGO_ENABLED=0", "GOEXPERIMENT=", "GOWORK=off")
	if p.OS != "" { // the zero Platform: build for this machine
		env = append(env, "GOOS="+p.OS, "GOARCH="+p.Arch, "GOAMD64=v1", "GOARM64=v8.0")
	}
	return append(env, o.Env...)
}

func build(ctx context.Context, o Options, p Platform, out string) error {
	cmd := exec.CommandContext(ctx, o.Go, "build",
		"-trimpath", "-buildvcs=false", "-mod=readonly",
		"-ldflags", "-buildid= -s -w -X main.version="+o.Version,
		"-o", out, "./cmd/"+Plugin)
	cmd.Dir = o.Root
	cmd.Env = goEnv(o, p)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build for %s: %v\n%s", p, err, buf.String())
	}
	return os.Chmod(out, 0o755)
}

// sbom runs cyclonedx-gomod on a copy of the source tree that is a git
// repository of one commit tagged with the version: cyclonedx-gomod takes the
// main module's version from git only, and a checkout between tags (or a git
// worktree, which it cannot read) would otherwise give another version.
func sbom(ctx context.Context, o Options, p Platform, out string) error {
	stage, err := os.MkdirTemp("", "zoho-release-sbom-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(stage)
	if err := CopySources(ctx, o.Root, stage); err != nil {
		return err
	}
	git := func(args ...string) error {
		cmd := exec.CommandContext(ctx, "git", args...)
		cmd.Dir = stage
		cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1",
			"GIT_AUTHOR_NAME=release", "GIT_AUTHOR_EMAIL=release@localhost",
			"GIT_COMMITTER_NAME=release", "GIT_COMMITTER_EMAIL=release@localhost",
			"GIT_AUTHOR_DATE=@"+strconv.FormatInt(o.Epoch.Unix(), 10)+" +0000",
			"GIT_COMMITTER_DATE=@"+strconv.FormatInt(o.Epoch.Unix(), 10)+" +0000")
		if b, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("git %s: %v\n%s", strings.Join(args, " "), err, b)
		}
		return nil
	}
	for _, args := range [][]string{
		{"init", "-q"},
		{"commit", "-q", "--allow-empty", "-m", "release " + o.Version},
		{"tag", o.Version},
	} {
		if err := git(args...); err != nil {
			return err
		}
	}
	abs, err := filepath.Abs(out)
	if err != nil {
		return err
	}
	// Built for this machine (go install), run with the target's GOOS and
	// GOARCH, which it reads as build constraints.
	gobin := filepath.Join(stage, ".tool")
	// The SBOM records the tool's own hashes: build it reproducibly too.
	install := exec.CommandContext(ctx, o.Go, "install", "-trimpath", "-ldflags=-buildid=", o.SBOMTool)
	install.Env = append(goEnv(o, Platform{}), "GOBIN="+gobin)
	if b, err := install.CombinedOutput(); err != nil {
		return fmt.Errorf("go install %s: %v\n%s", o.SBOMTool, err, b)
	}
	tool, _, _ := strings.Cut(filepath.Base(o.SBOMTool), "@")
	cmd := exec.CommandContext(ctx, filepath.Join(gobin, tool), "app",
		"-json", "-noserial", "-notimestamp", "-std", "-licenses",
		"-main", "cmd/"+Plugin, "-output", abs, ".")
	cmd.Dir = stage
	cmd.Env = append(goEnv(o, p), "CI=true") // CI: no colour in its log
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("SBOM for %s (%s): %v\n%s", p, o.SBOMTool, err, buf.String())
	}
	return nil
}

// CopySources copies the files git tracks or would track (not ignored) from
// root to dst; outside a git checkout (a source archive, or a copy made by
// this function), every file but the build outputs.
func CopySources(ctx context.Context, root, dst string) error {
	cmd := exec.CommandContext(ctx, "git", "ls-files", "-z", "--cached", "--others", "--exclude-standard")
	cmd.Dir = root
	var names []string
	if list, err := cmd.Output(); err == nil {
		names = strings.Split(strings.TrimRight(string(list), "\x00"), "\x00")
	} else if _, statErr := os.Stat(filepath.Join(root, ".git")); statErr == nil {
		return fmt.Errorf("git ls-files in %s: %w", root, err)
	} else if names, err = walkSources(root); err != nil {
		return err
	}
	for _, name := range names {
		if name == "" {
			continue
		}
		src := filepath.Join(root, filepath.FromSlash(name))
		info, err := os.Lstat(src)
		if errors.Is(err, os.ErrNotExist) {
			continue // deleted in the work tree, not yet in the index
		}
		if err != nil {
			return err
		}
		if !info.Mode().IsRegular() {
			continue
		}
		data, err := os.ReadFile(src)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(target, data, info.Mode().Perm()); err != nil {
			return err
		}
	}
	return nil
}

// skipTop are the top-level directories of build outputs and caches.
var skipTop = map[string]bool{".git": true, "bin": true, "dist": true, ".cache": true, "dev-data": true, ".e2e-artifacts": true}

// walkSources lists the regular files under root (slash-separated, relative),
// less skipTop and any .git.
func walkSources(root string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		if d.IsDir() {
			if d.Name() == ".git" || (!strings.Contains(rel, string(filepath.Separator)) && skipTop[rel]) {
				return filepath.SkipDir
			}
			return nil
		}
		if d.Type().IsRegular() {
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	return out, err
}

type archiveFile struct {
	name string
	data []byte
	mode int64
}

// writeTarGz writes a gzip'd ustar archive: entries in the given order, each
// with mtime epoch, owner and group 0 with no names, and no gzip name or time.
func writeTarGz(path string, files []archiveFile, epoch time.Time) error {
	var buf bytes.Buffer
	gz, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(gz)
	for _, f := range files {
		hdr := &tar.Header{
			Typeflag: tar.TypeReg,
			Name:     f.name,
			Mode:     f.mode,
			Size:     int64(len(f.data)),
			ModTime:  epoch.UTC(),
			Format:   tar.FormatUSTAR,
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := tw.Write(f.data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := gz.Close(); err != nil {
		return err
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}

// writeZip writes a zip archive with the same fixed times and modes.
func writeZip(path string, files []archiveFile, epoch time.Time) error {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, f := range files {
		hdr := &zip.FileHeader{Name: f.name, Method: zip.Deflate, Modified: epoch.UTC()}
		hdr.SetMode(os.FileMode(f.mode))
		w, err := zw.CreateHeader(hdr)
		if err != nil {
			return err
		}
		if _, err := w.Write(f.data); err != nil {
			return err
		}
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}

// writeSums writes SHA256SUMS over every other file of dir, sorted by name,
// and returns the sums.
func writeSums(dir string) (map[string]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	sums := map[string]string{}
	var names []string
	for _, e := range entries {
		if e.IsDir() || e.Name() == "SHA256SUMS" {
			continue
		}
		sum, err := filesum.SHA256(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		sums[e.Name()] = sum
		names = append(names, e.Name())
	}
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		fmt.Fprintf(&b, "%s  %s\n", sums[n], n)
	}
	return sums, os.WriteFile(filepath.Join(dir, "SHA256SUMS"), []byte(b.String()), 0o644)
}

// ParseSums reads a SHA256SUMS file: file name → hex sum.
func ParseSums(data []byte) (map[string]string, error) {
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		sum, name, ok := strings.Cut(sc.Text(), "  ")
		if !ok || len(sum) != 64 || name == "" {
			return nil, fmt.Errorf("SHA256SUMS line %d: %q is not '<sha256>  <file>'", n, sc.Text())
		}
		if _, err := hex.DecodeString(sum); err != nil {
			return nil, fmt.Errorf("SHA256SUMS line %d: %v", n, err)
		}
		out[name] = sum
	}
	return out, sc.Err()
}

// ReleaseNotes returns the section of the changelog headed "## <version>"
// (optionally "## [<version>]", a date may follow), heading included.
func ReleaseNotes(changelog, version string) (string, error) {
	data, err := os.ReadFile(changelog)
	if err != nil {
		return "", err
	}
	head := regexp.MustCompile(`^## \[?` + regexp.QuoteMeta(version) + `\]?(\s|$)`)
	var out []string
	in := false
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "## ") {
			if in {
				break
			}
			in = head.MatchString(line)
		}
		if in {
			out = append(out, line)
		}
	}
	if len(out) == 0 {
		return "", fmt.Errorf("%s has no section headed \"## %s\": write the release's notes there first", filepath.Base(changelog), version)
	}
	return strings.TrimRight(strings.Join(out, "\n"), "\n") + "\n", nil
}

// epochFromEnv is SOURCE_DATE_EPOCH, else DefaultEpoch.
func epochFromEnv() (int64, error) {
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		return strconv.ParseInt(s, 10, 64)
	}
	return DefaultEpoch, nil
}

func main() {
	defEpoch, err := epochFromEnv()
	if err != nil {
		fmt.Fprintln(os.Stderr, "release: SOURCE_DATE_EPOCH:", err)
		os.Exit(2)
	}
	var (
		version   = flag.String("version", "", "version to stamp, a semver with a leading v (required)")
		out       = flag.String("out", "dist", "output directory (must be empty or absent)")
		platforms = flag.String("platforms", "all", "comma-separated os/arch list, or all")
		epoch     = flag.Int64("epoch", defEpoch, "archive entries' time, seconds since 1970 (default: SOURCE_DATE_EPOCH, else 1980-01-01)")
		sbomTool  = flag.String("sbom", DefaultSBOMTool, "cyclonedx-gomod module@version to make the SBOMs with; empty for none")
		optional  = flag.Bool("notes-optional", false, "allow a version with no CHANGELOG.md section")
	)
	flag.Parse()
	ps, err := ParsePlatforms(*platforms)
	if err != nil {
		fmt.Fprintln(os.Stderr, "release:", err)
		os.Exit(2)
	}
	sums, err := Release(context.Background(), Options{
		Root: ".", Version: *version, Out: *out, Platforms: ps,
		Epoch: time.Unix(*epoch, 0).UTC(), SBOMTool: *sbomTool,
		NotesOptional: *optional, Log: os.Stderr,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "release:", err)
		os.Exit(1)
	}
	fmt.Printf("release %s: %d files in %s, listed in %s\n", *version, len(sums), *out, filepath.Join(*out, "SHA256SUMS"))
}
