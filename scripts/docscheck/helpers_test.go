// Package docscheck proves, offline, that the operator documentation in docs/
// and the example files under docs/examples/ agree with the engine: the
// manifests and configuration files parse, and every Vault path, field,
// metric and link they mention exists.
package docscheck

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"testing"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/zoho-vault/vault-plugin-secrets-zoho/paths"
)

// mount is the path every guide mounts the engine at.
const mount = "zoho"

// ownedDocs are the guides this package checks (docs/design.md and
// docs/benchmarks.md have other owners and other checks).
var ownedDocs = []string{
	"install.md",
	"quickstart-zoho.md",
	"agent.md",
	"kubernetes.md",
	"terraform.md",
	"policies.md",
	"operations.md",
	"products.md",
}

// repoRoot is the module root, found from this file's location.
func repoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate the test file")
	}
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

func docsDir(t testing.TB) string     { return filepath.Join(repoRoot(t), "docs") }
func examplesDir(t testing.TB) string { return filepath.Join(docsDir(t), "examples") }

func readFile(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading %s: %v", path, err)
	}
	return string(b)
}

// rel shortens a path for messages.
func rel(t testing.TB, path string) string {
	if r, err := filepath.Rel(repoRoot(t), path); err == nil {
		return r
	}
	return path
}

// exampleFiles lists the files under docs/examples whose names end in one of
// exts, sorted.
func exampleFiles(t testing.TB, exts ...string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(examplesDir(t), func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		for _, ext := range exts {
			if strings.HasSuffix(path, ext) {
				out = append(out, path)
				break
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walking docs/examples: %v", err)
	}
	sort.Strings(out)
	return out
}

// ---------------------------------------------------------------------------
// The engine's HTTP surface, taken from the paths package itself.

type route struct {
	pattern string
	re      *regexp.Regexp
	path    *framework.Path
}

func (r route) supports(op logical.Operation) bool {
	_, ok := r.path.Operations[op]
	return ok
}

var routesCache []route

// routes returns every path the engine serves. The handlers are closures
// over the engine, which is never called here, so a nil engine will do.
func routes(t testing.TB) []route {
	t.Helper()
	if routesCache != nil {
		return routesCache
	}
	for _, p := range paths.Paths(nil, nil) {
		pat := p.Pattern
		// framework.Backend anchors patterns the same way.
		if !strings.HasPrefix(pat, "^") {
			pat = "^" + pat
		}
		if !strings.HasSuffix(pat, "$") {
			pat += "$"
		}
		re, err := regexp.Compile(pat)
		if err != nil {
			t.Fatalf("pattern %q: %v", p.Pattern, err)
		}
		routesCache = append(routesCache, route{pattern: p.Pattern, re: re, path: p})
	}
	if len(routesCache) == 0 {
		t.Fatal("the paths package declares no path")
	}
	return routesCache
}

// topSegments are the first path segments the engine serves: config, creds,
// revoke, auth-url, callback, status, metrics.
func topSegments(t testing.TB) map[string]bool {
	out := map[string]bool{}
	seg := regexp.MustCompile(`^\^?([a-z][a-z-]*)`)
	for _, r := range routes(t) {
		if m := seg.FindStringSubmatch(r.pattern); m != nil {
			out[m[1]] = true
		}
	}
	return out
}

// match returns the routes whose pattern matches a path relative to the mount.
func match(t testing.TB, rel string) []route {
	var out []route
	for _, r := range routes(t) {
		if r.re.MatchString(rel) {
			out = append(out, r)
		}
	}
	return out
}

// nameRe is the account-name rule of the paths package (Vault's generic
// name pattern).
var nameRe = regexp.MustCompile(`^\w(([\w.-]+)?\w)?$`)

// placeholderRe matches what the guides use for "any account": <name>,
// $ACCOUNT, ${account}.
var placeholderRe = regexp.MustCompile(`<[^<>/]+>|\$\{[^}]+\}|\$[A-Za-z_][A-Za-z0-9_]*`)

// concrete replaces placeholders with a valid account name.
func concrete(p string) string { return placeholderRe.ReplaceAllString(p, "acct1") }

// ---------------------------------------------------------------------------
// Markdown.

type codeBlock struct {
	lang string
	line int // line of the opening fence
	text string
}

// codeBlocks returns the fenced code blocks of a markdown document, with the
// indentation of fences inside list items removed.
func codeBlocks(md string) []codeBlock {
	var out []codeBlock
	var cur *codeBlock
	var indent string
	var body []string
	sc := bufio.NewScanner(strings.NewReader(md))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		trimmed := strings.TrimLeft(line, " ")
		if strings.HasPrefix(trimmed, "```") {
			if cur == nil {
				indent = line[:len(line)-len(trimmed)]
				cur = &codeBlock{lang: strings.TrimSpace(strings.TrimPrefix(trimmed, "```")), line: n}
				body = nil
			} else {
				cur.text = strings.Join(body, "\n") + "\n"
				out = append(out, *cur)
				cur = nil
			}
			continue
		}
		if cur != nil {
			body = append(body, strings.TrimPrefix(line, indent))
		}
	}
	return out
}

// logicalLines joins shell continuation lines.
func logicalLines(text string) []string {
	var out []string
	var b strings.Builder
	for _, line := range strings.Split(text, "\n") {
		if strings.HasSuffix(line, "\\") {
			b.WriteString(strings.TrimSuffix(line, "\\"))
			b.WriteString(" ")
			continue
		}
		b.WriteString(line)
		out = append(out, b.String())
		b.Reset()
	}
	if b.Len() > 0 {
		out = append(out, b.String())
	}
	return out
}

// slug is GitHub's anchor for a heading.
func slug(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(heading)) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9'):
			b.WriteRune(r)
		case r > 127:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// anchors lists the heading anchors of a markdown document.
func anchors(md string) map[string]bool {
	out := map[string]bool{}
	inCode := false
	for _, line := range strings.Split(md, "\n") {
		if strings.HasPrefix(strings.TrimLeft(line, " "), "```") {
			inCode = !inCode
			continue
		}
		if inCode || !strings.HasPrefix(line, "#") {
			continue
		}
		h := strings.TrimLeft(line, "#")
		if !strings.HasPrefix(h, " ") {
			continue
		}
		out[slug(h)] = true
	}
	return out
}
