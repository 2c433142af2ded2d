package docscheck

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"text/template"

	"github.com/hashicorp/hcl"
	"github.com/hashicorp/hcl/hcl/ast"
	"github.com/hashicorp/hcl/hcl/token"
	"github.com/hashicorp/vault/sdk/logical"
)

// ---------------------------------------------------------------------------
// HCL v1 helpers (Vault parses policies and Agent configurations with it).

func parseHCL(t *testing.T, name, src string) *ast.ObjectList {
	t.Helper()
	f, err := hcl.Parse(src)
	if err != nil {
		t.Fatalf("%s does not parse as HCL: %v", name, err)
	}
	list, ok := f.Node.(*ast.ObjectList)
	if !ok {
		t.Fatalf("%s: top level is a %T", name, f.Node)
	}
	return list
}

// blocks returns the items of list named key (repeated blocks included).
func blocks(list *ast.ObjectList, key string) []*ast.ObjectItem {
	if list == nil {
		return nil
	}
	return list.Filter(key).Items
}

// body returns a block's contents, or nil for a non-block value.
func body(item *ast.ObjectItem) *ast.ObjectList {
	if o, ok := item.Val.(*ast.ObjectType); ok {
		return o.List
	}
	return nil
}

// label returns the first label of a block as filtered by blocks, e.g. the
// "zoho/creds/x" of `path "zoho/creds/x" {}` after Filter("path").
func label(item *ast.ObjectItem) string {
	if len(item.Keys) == 0 {
		return ""
	}
	return tokenString(item.Keys[0].Token)
}

func tokenString(tok token.Token) string {
	if s, ok := tok.Value().(string); ok {
		return s
	}
	return tok.Text
}

// attr returns a literal attribute of a block body as a string, and whether
// it is set.
func attr(list *ast.ObjectList, key string) (string, bool) {
	items := blocks(list, key)
	if len(items) == 0 {
		return "", false
	}
	if lit, ok := items[len(items)-1].Val.(*ast.LiteralType); ok {
		return fmt.Sprint(lit.Token.Value()), true
	}
	return "", true
}

// strList returns a list attribute's string elements.
func strList(list *ast.ObjectList, key string) ([]string, bool) {
	items := blocks(list, key)
	if len(items) == 0 {
		return nil, false
	}
	l, ok := items[len(items)-1].Val.(*ast.ListType)
	if !ok {
		return nil, false
	}
	var out []string
	for _, n := range l.List {
		lit, ok := n.(*ast.LiteralType)
		if !ok {
			return nil, false
		}
		out = append(out, tokenString(lit.Token))
	}
	return out, true
}

// ---------------------------------------------------------------------------
// Policies.

var capabilityOps = map[string][]logical.Operation{
	"read":   {logical.ReadOperation},
	"list":   {logical.ListOperation},
	"create": {logical.CreateOperation},
	"update": {logical.UpdateOperation},
	"delete": {logical.DeleteOperation},
	"patch":  {logical.PatchOperation},
}

var validCapabilities = map[string]bool{
	"create": true, "read": true, "update": true, "patch": true, "delete": true,
	"list": true, "sudo": true, "deny": true, "subscribe": true, "recover": true,
}

// checkPolicy parses a policy and checks every rule; with engineOnly, every
// path must be under the mount and every capability must be one some engine
// path matched by the rule can use.
func checkPolicy(t *testing.T, name, src string, engineOnly bool) {
	t.Helper()
	list := parseHCL(t, name, src)
	rules := blocks(list, "path")
	if len(rules) == 0 {
		t.Errorf("%s: no path rule", name)
	}
	for _, r := range rules {
		p := label(r)
		caps, ok := strList(body(r), "capabilities")
		if !ok || len(caps) == 0 {
			t.Errorf("%s: path %q has no capabilities list", name, p)
			continue
		}
		for _, c := range caps {
			if !validCapabilities[c] {
				t.Errorf("%s: path %q: %q is not a Vault capability", name, p, c)
			}
		}
		inEngine := strings.HasPrefix(p, mount+"/")
		if engineOnly && !inEngine {
			t.Errorf("%s: path %q is not under %s/", name, p, mount)
		}
		if !inEngine {
			continue
		}
		for _, c := range caps {
			ops := capabilityOps[c]
			if ops == nil {
				continue
			}
			if !policyAllowsSomething(t, strings.TrimPrefix(p, mount+"/"), ops) {
				t.Errorf("%s: path %q grants %q, but no engine path it matches supports that", name, p, c)
			}
		}
	}
}

// policyAllowsSomething reports whether a policy path glob matches an engine
// path that supports one of ops. '*' may end the glob; '+' stands for one
// segment.
func policyAllowsSomething(t *testing.T, glob string, ops []logical.Operation) bool {
	glob = strings.ReplaceAll(glob, "+", "acct1")
	candidates := []string{glob}
	if base, ok := strings.CutSuffix(glob, "*"); ok {
		candidates = []string{base, base + "acct1"}
	}
	for _, c := range candidates {
		for _, r := range match(t, c) {
			for _, op := range ops {
				if r.supports(op) {
					return true
				}
			}
		}
	}
	return false
}

func TestPolicyExamples(t *testing.T) {
	dir := filepath.Join(examplesDir(t), "policies")
	files := exampleFiles(t, ".hcl")
	n := 0
	for _, f := range files {
		if !strings.HasPrefix(f, dir+string(filepath.Separator)) {
			continue
		}
		n++
		checkPolicy(t, rel(t, f), readFile(t, f), true)
	}
	if n == 0 {
		t.Fatal("no policies under docs/examples/policies")
	}
}

// ---------------------------------------------------------------------------
// Consul Template (Vault Agent templates).

// fakeRead is what a read returning fields answers, with a stand-in value
// for each field and the same fake access token whatever the path.
func fakeRead(fields map[string]bool) map[string]interface{} {
	data := map[string]interface{}{}
	for f := range fields {
		data[f] = "value-of-" + f
	}
	data["access_token"] = "1000.0123456789abcdef0123456789abcdef.fedcba9876543210fedcba9876543210"
	return map[string]interface{}{"Data": data}
}

// What creds/ and static-creds/ reads return, for templates.
var credsForTemplates, staticCredsForTemplates map[string]interface{}

// renderCT renders a Consul Template text the way Vault Agent would, with a
// stand-in for the secret function that only knows the engine's creds/ and
// static-creds/ paths (each answering its own fields). Unknown keys under
// .Data are errors.
func renderCT(src string) (string, error) {
	funcs := template.FuncMap{
		"secret": func(path string, params ...string) (interface{}, error) {
			m := vaultCredsPath.FindStringSubmatch(path)
			if m == nil || !nameRe.MatchString(m[1]) {
				return nil, fmt.Errorf("secret %q is not %s/creds/<account> or %s/static-creds/<account>", path, mount, mount)
			}
			if len(params) > 0 {
				return nil, fmt.Errorf("secret %q: creds/ and static-creds/ are read, not written with parameters", path)
			}
			if strings.HasPrefix(path, mount+"/static-creds/") {
				return staticCredsForTemplates, nil
			}
			return credsForTemplates, nil
		},
	}
	tmpl, err := template.New("t").Funcs(funcs).Option("missingkey=error").Parse(src)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	if err := tmpl.Execute(&b, nil); err != nil {
		return "", err
	}
	return b.String(), nil
}

func setupTemplates(t *testing.T) {
	if credsForTemplates == nil {
		credsForTemplates = fakeRead(credsFields(t))
		staticCredsForTemplates = fakeRead(staticCredsFields(t))
	}
}

func TestAgentTemplateFiles(t *testing.T) {
	setupTemplates(t)
	files := exampleFiles(t, ".ctmpl")
	if len(files) == 0 {
		t.Fatal("no .ctmpl files under docs/examples")
	}
	for _, f := range files {
		src := readFile(t, f)
		if !templateReadsTokenRe.MatchString(src) {
			t.Errorf("%s reads neither %s/creds/ nor %s/static-creds/", rel(t, f), mount, mount)
		}
		if !strings.Contains(src, ".Data.access_token") {
			t.Errorf("%s does not contain .Data.access_token", rel(t, f))
		}
		out, err := renderCT(src)
		if err != nil {
			t.Errorf("%s: %v", rel(t, f), err)
			continue
		}
		if !strings.Contains(out, fakeToken()) {
			t.Errorf("%s renders %q, without the access token", rel(t, f), out)
		}
		// A file holding just the token must hold nothing else: no
		// newline for the application to strip.
		if strings.Contains(filepath.Base(f), "token") && out != fakeToken() {
			t.Errorf("%s renders %q, want exactly the access token", rel(t, f), out)
		}
	}
}

// templateReadsTokenRe finds a template's read of the engine's token paths.
var templateReadsTokenRe = regexp.MustCompile(`secret "` + mount + `/(static-)?creds/`)

func fakeToken() string {
	return credsForTemplates["Data"].(map[string]interface{})["access_token"].(string)
}

// ---------------------------------------------------------------------------
// Vault Agent configurations.

func TestAgentConfigs(t *testing.T) {
	setupTemplates(t)
	dir := filepath.Join(examplesDir(t), "agent")
	n := 0
	for _, f := range exampleFiles(t, ".hcl") {
		if !strings.HasPrefix(f, dir+string(filepath.Separator)) {
			continue
		}
		n++
		t.Run(filepath.Base(f), func(t *testing.T) { checkAgentConfig(t, f, readFile(t, f)) })
	}
	if n == 0 {
		t.Fatal("no Agent configurations under docs/examples/agent")
	}
}

// checkAgentConfig mirrors the checks Vault Agent makes when it loads a
// configuration, plus what this engine needs: templates read creds/ of a
// valid account and use only fields creds/ returns.
func checkAgentConfig(t *testing.T, path, src string) {
	name := rel(t, path)
	list := parseHCL(t, name, src)

	vault := blocks(list, "vault")
	if len(vault) == 0 {
		t.Errorf("%s: no vault block", name)
	} else if addr, _ := attr(body(vault[0]), "address"); !strings.HasPrefix(addr, "https://") {
		t.Errorf("%s: vault.address %q should be an https URL", name, addr)
	}
	aa := blocks(list, "auto_auth")
	sinks := 0
	if len(aa) == 0 {
		t.Errorf("%s: no auto_auth block", name)
	} else {
		methods := blocks(body(aa[0]), "method")
		if len(methods) != 1 {
			t.Errorf("%s: auto_auth needs exactly one method", name)
		}
		// By default the Agent deletes AppRole's secret ID after the first
		// login; after a restart it then loops on "no known secret ID".
		for _, m := range methods {
			if label(m) != "approle" {
				continue
			}
			cfg := blocks(body(m), "config")
			if len(cfg) == 0 {
				continue
			}
			if v, set := attr(body(cfg[0]), "remove_secret_id_file_after_reading"); !set || v != "false" {
				t.Errorf("%s: the approle method needs remove_secret_id_file_after_reading = false (else the Agent deletes the secret ID and cannot log in after a restart)", name)
			}
		}
		sinks = len(blocks(body(aa[0]), "sink"))
	}

	templates := blocks(list, "template")
	envTemplates := blocks(list, "env_template")
	execs := blocks(list, "exec")
	listeners := blocks(list, "listener")
	if len(blocks(list, "cache")) > 0 && len(listeners) == 0 && len(templates) == 0 && len(envTemplates) == 0 {
		t.Errorf("%s: a cache needs a listener or a template", name)
	}
	if len(blocks(list, "api_proxy")) > 0 && len(listeners) == 0 {
		t.Errorf("%s: api_proxy needs a listener", name)
	}
	if len(envTemplates) > 0 || len(execs) > 0 {
		switch {
		case len(execs) != 1:
			t.Errorf("%s: env_template needs exactly one exec block", name)
		case len(envTemplates) == 0:
			t.Errorf("%s: exec needs at least one env_template", name)
		case len(templates) > 0:
			t.Errorf("%s: Vault refuses template blocks next to env_template", name)
		case len(blocks(list, "api_proxy")) > 0:
			t.Errorf("%s: Vault refuses api_proxy next to env_template", name)
		}
		if len(execs) == 1 {
			cmd, ok := strList(body(execs[0]), "command")
			if !ok || len(cmd) == 0 {
				t.Errorf("%s: exec.command must be a non-empty list", name)
			}
			if r, set := attr(body(execs[0]), "restart_on_secret_changes"); set && r != "always" && r != "never" {
				t.Errorf("%s: exec.restart_on_secret_changes %q, want always or never", name, r)
			}
		}
		vars := map[string]bool{}
		for _, e := range envTemplates {
			v := label(e)
			if v == "" || vars[v] {
				t.Errorf("%s: env_template needs a unique variable name, got %q", name, v)
			}
			vars[v] = true
			b := body(e)
			for _, forbidden := range []string{"destination", "perms", "command", "backup", "create_dest_dirs", "wait"} {
				if _, set := attr(b, forbidden); set {
					t.Errorf("%s: env_template %s: %q is not allowed", name, v, forbidden)
				}
			}
			checkTemplateSource(t, name, "env_template "+v, b, filepath.Dir(path))
		}
		for _, want := range []string{"ZOHO_ACCESS_TOKEN", "ZOHO_API_DOMAIN"} {
			if !vars[want] {
				t.Errorf("%s: no env_template %s", name, want)
			}
		}
		return
	}
	caching := len(blocks(list, "cache")) > 0 && len(blocks(list, "api_proxy")) > 0 && len(listeners) > 0
	if len(templates) == 0 && !caching && sinks == 0 {
		t.Errorf("%s: neither templates, nor a cache with api_proxy and a listener, nor a token sink", name)
	}
	for i, tb := range templates {
		b := body(tb)
		if d, _ := attr(b, "destination"); d == "" {
			t.Errorf("%s: template %d has no destination", name, i+1)
		}
		checkTemplateSource(t, name, fmt.Sprintf("template %d", i+1), b, filepath.Dir(path))
	}
}

// checkTemplateSource renders a template's contents, or the example file its
// source names (looked up by base name next to the configuration).
func checkTemplateSource(t *testing.T, name, what string, b *ast.ObjectList, dir string) {
	contents, hasContents := attr(b, "contents")
	source, hasSource := attr(b, "source")
	switch {
	case hasContents == hasSource:
		t.Errorf("%s: %s needs exactly one of contents and source", name, what)
		return
	case hasSource:
		f := filepath.Join(dir, filepath.Base(source))
		data, err := os.ReadFile(f)
		if err != nil {
			t.Errorf("%s: %s reads %s, which is not among the examples (%v)", name, what, source, err)
			return
		}
		contents = string(data)
	}
	if !templateReadsTokenRe.MatchString(contents) {
		t.Errorf("%s: %s reads neither %s/creds/ nor %s/static-creds/", name, what, mount, mount)
	}
	if _, err := renderCT(contents); err != nil {
		t.Errorf("%s: %s: %v", name, what, err)
	}
}

// TestDocAgentSnippetsComeFromExamples: an Agent configuration shown in the
// guides is an excerpt of one of the example files under docs/examples/agent
// (which TestAgentConfigs checks), so a snippet cannot drift from a working
// configuration.
func TestDocAgentSnippetsComeFromExamples(t *testing.T) {
	dir := filepath.Join(examplesDir(t), "agent")
	var files []string
	for _, f := range exampleFiles(t, ".hcl") {
		if strings.HasPrefix(f, dir+string(filepath.Separator)) {
			files = append(files, f)
		}
	}
	agentish := regexp.MustCompile(`(?m)^\s*(auto_auth|api_proxy|cache|listener|template|template_config|env_template)\b|sink "`)
	n := 0
	for _, d := range ownedDocs {
		for _, b := range codeBlocks(ownedDoc(t, d)) {
			if b.lang != "hcl" || !agentish.MatchString(b.text) {
				continue
			}
			n++
			found := false
			for _, f := range files {
				if isExcerpt(b.text, readFile(t, f)) {
					found = true
					break
				}
			}
			if !found {
				t.Errorf("%s:%d: this Agent configuration is not an excerpt of any file under docs/examples/agent", d, b.line)
			}
		}
	}
	if n == 0 {
		t.Fatal("no Agent configuration found in the guides: the check checks nothing")
	}
}

// isExcerpt reports whether every non-blank line of snippet appears in file,
// in order (indentation aside).
func isExcerpt(snippet, file string) bool {
	lines := strings.Split(file, "\n")
	i := 0
	for _, want := range strings.Split(snippet, "\n") {
		want = strings.TrimSpace(want)
		if want == "" {
			continue
		}
		for i < len(lines) && strings.TrimSpace(lines[i]) != want {
			i++
		}
		if i == len(lines) {
			return false
		}
		i++
	}
	return true
}

// TestDocSnippetsMatchTheirFiles: a code block introduced by a link to an
// example file (within the three lines before it) is an excerpt of that file.
func TestDocSnippetsMatchTheirFiles(t *testing.T) {
	link := regexp.MustCompile(`\((examples/[^)#\s]+)\)`)
	n := 0
	for _, d := range ownedDocs {
		md := ownedDoc(t, d)
		lines := strings.Split(md, "\n")
		for _, b := range codeBlocks(md) {
			var target string
			for i := b.line - 2; i >= 0 && i >= b.line-4; i-- {
				if m := link.FindStringSubmatch(lines[i]); m != nil {
					target = m[1]
					break
				}
			}
			if target == "" {
				continue
			}
			n++
			file := readFile(t, filepath.Join(docsDir(t), target))
			if !isExcerpt(b.text, file) {
				t.Errorf("%s:%d: the snippet is not an excerpt of %s", d, b.line, target)
			}
		}
	}
	if n < 5 {
		t.Fatalf("only %d snippets introduced by an example file: the check checks little", n)
	}
}
