package docscheck

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/zoho-vault/vault-plugin-secrets-zoho/backend/zoho"
)

type yamlDoc struct {
	file  string
	index int
	obj   map[string]interface{}
}

// yamlDocs parses every document of a (possibly multi-document) YAML file.
func yamlDocs(t *testing.T, path string) []yamlDoc {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := yaml.NewDecoder(f)
	var out []yamlDoc
	for i := 0; ; i++ {
		var v interface{}
		err := dec.Decode(&v)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: document %d does not parse: %v", rel(t, path), i+1, err)
		}
		if v == nil {
			continue // an empty document, e.g. after a trailing ---
		}
		m, ok := v.(map[string]interface{})
		if !ok {
			t.Fatalf("%s: document %d is a %T, not a mapping", rel(t, path), i+1, v)
		}
		out = append(out, yamlDoc{file: path, index: i + 1, obj: m})
	}
	if len(out) == 0 {
		t.Fatalf("%s: no YAML document", rel(t, path))
	}
	return out
}

// dig walks nested mappings.
func dig(v interface{}, keys ...string) (interface{}, bool) {
	for _, k := range keys {
		m, ok := v.(map[string]interface{})
		if !ok {
			return nil, false
		}
		if v, ok = m[k]; !ok {
			return nil, false
		}
	}
	return v, true
}

func digString(v interface{}, keys ...string) string {
	x, _ := dig(v, keys...)
	s, _ := x.(string)
	return s
}

func (d yamlDoc) where() string {
	return fmt.Sprintf("%s (document %d, %s %s)", filepath.Base(d.file), d.index, digString(d.obj, "kind"), digString(d.obj, "metadata", "name"))
}

// readFields are the fields a read of rel (creds/<name> or
// static-creds/<name>) returns, from its OpenAPI response.
func readFields(t *testing.T, rel string) map[string]bool {
	t.Helper()
	for _, r := range match(t, rel) {
		op, ok := r.path.Operations[logical.ReadOperation].(*framework.PathOperation)
		if !ok {
			continue
		}
		out := map[string]bool{}
		for _, resp := range op.Responses[200] {
			for f := range resp.Fields {
				out[f] = true
			}
		}
		if len(out) > 0 {
			return out
		}
	}
	t.Fatalf("%s declares no response fields", rel)
	return nil
}

// credsFields are the fields a creds/ read returns.
func credsFields(t *testing.T) map[string]bool { return readFields(t, "creds/acct1") }

// staticCredsFields are the fields a static-creds/ read returns.
func staticCredsFields(t *testing.T) map[string]bool { return readFields(t, "static-creds/acct1") }

// vaultCredsPath matches the engine's token paths, leased (creds/) or not
// (static-creds/); the submatch is the account.
var vaultCredsPath = regexp.MustCompile(`^` + mount + `/(?:static-)?creds/(.+)$`)

func TestExampleYAMLParses(t *testing.T) {
	files := exampleFiles(t, ".yaml", ".yml")
	if len(files) == 0 {
		t.Fatal("no YAML files under docs/examples")
	}
	for _, f := range files {
		t.Run(rel(t, f), func(t *testing.T) { yamlDocs(t, f) })
	}
}

func TestKubernetesManifests(t *testing.T) {
	setupTemplates(t)
	dir := filepath.Join(examplesDir(t), "kubernetes")
	files := exampleFiles(t, ".yaml", ".yml")
	var docs []yamlDoc
	for _, f := range files {
		if strings.HasPrefix(f, dir+string(filepath.Separator)) {
			docs = append(docs, yamlDocs(t, f)...)
		}
	}
	if len(docs) == 0 {
		t.Fatal("no manifests under docs/examples/kubernetes")
	}

	byKind := map[string][]yamlDoc{}
	named := map[string]bool{} // kind/namespace/name
	for _, d := range docs {
		for _, k := range []string{"apiVersion", "kind"} {
			if digString(d.obj, k) == "" {
				t.Errorf("%s: no %s", d.where(), k)
			}
		}
		if digString(d.obj, "metadata", "name") == "" {
			t.Errorf("%s: no metadata.name", d.where())
		}
		kind := digString(d.obj, "kind")
		byKind[kind] = append(byKind[kind], d)
		named[kind+"/"+digString(d.obj, "metadata", "namespace")+"/"+digString(d.obj, "metadata", "name")] = true
		if strings.HasPrefix(kind, "Vault") && digString(d.obj, "apiVersion") != "secrets.hashicorp.com/v1beta1" {
			t.Errorf("%s: apiVersion %q, want secrets.hashicorp.com/v1beta1", d.where(), digString(d.obj, "apiVersion"))
		}
	}
	has := func(kind, ns, name string) bool { return named[kind+"/"+ns+"/"+name] }

	t.Run("injector", func(t *testing.T) {
		found := 0
		for _, d := range byKind["Deployment"] {
			ann, ok := dig(d.obj, "spec", "template", "metadata", "annotations")
			if !ok {
				continue
			}
			annotations, _ := ann.(map[string]interface{})
			if _, ok := annotations["vault.hashicorp.com/agent-inject"]; !ok {
				continue
			}
			found++
			checkInjectorAnnotations(t, d, annotations)
			ns := digString(d.obj, "metadata", "namespace")
			if sa := digString(d.obj, "spec", "template", "spec", "serviceAccountName"); sa == "" {
				t.Errorf("%s: no serviceAccountName for the injector's Kubernetes auth", d.where())
			} else if !has("ServiceAccount", ns, sa) {
				t.Errorf("%s: service account %q is not defined in the examples", d.where(), sa)
			}
		}
		if found == 0 {
			t.Error("no Deployment carries vault.hashicorp.com/agent-inject in its pod template")
		}
	})

	t.Run("vso", func(t *testing.T) {
		vds := byKind["VaultDynamicSecret"]
		if len(vds) == 0 {
			t.Fatal("no VaultDynamicSecret")
		}
		for _, d := range vds {
			ns := digString(d.obj, "metadata", "namespace")
			if m := digString(d.obj, "spec", "mount"); m != mount {
				t.Errorf("%s: spec.mount %q, want %q", d.where(), m, mount)
			}
			p := digString(d.obj, "spec", "path")
			static := strings.HasPrefix(p, "static-creds/")
			name, ok := strings.CutPrefix(strings.TrimPrefix(p, "static-"), "creds/")
			if !ok || !nameRe.MatchString(name) {
				t.Errorf("%s: spec.path %q, want creds/<account> or static-creds/<account> relative to the mount", d.where(), p)
			}
			fields := credsFields(t)
			// VSO takes an answer without a lease for static credentials
			// only with allowStaticCreds; it would otherwise treat it as
			// a lease of no duration. A leased answer with it set is not
			// what the flag is for.
			allow, _ := dig(d.obj, "spec", "allowStaticCreds")
			if static {
				fields = staticCredsFields(t)
				if allow != true {
					t.Errorf("%s: spec.path %q needs allowStaticCreds: true", d.where(), p)
				}
				if _, ok := dig(d.obj, "spec", "renewalPercent"); ok {
					t.Errorf("%s: renewalPercent is not used for static credentials (static-creds/ has no lease); leave it out", d.where())
				}
			} else if allow == true {
				t.Errorf("%s: allowStaticCreds on %q, which answers with a lease; use static-creds/", d.where(), p)
			}
			if rp, ok := dig(d.obj, "spec", "renewalPercent"); ok {
				n, isInt := rp.(int)
				if !isInt || n < 0 || n > 90 {
					t.Errorf("%s: renewalPercent %v, want an integer from 0 to 90", d.where(), rp)
				}
			}
			dest := digString(d.obj, "spec", "destination", "name")
			if dest == "" {
				t.Errorf("%s: no spec.destination.name", d.where())
			}
			auth := digString(d.obj, "spec", "vaultAuthRef")
			if auth == "" || !has("VaultAuth", ns, auth) {
				t.Errorf("%s: vaultAuthRef %q names no VaultAuth in the examples", d.where(), auth)
			}
			// Whatever mounts the destination Secret may only pick keys
			// the engine returns.
			for _, dep := range byKind["Deployment"] {
				vols, _ := dig(dep.obj, "spec", "template", "spec", "volumes")
				list, _ := vols.([]interface{})
				for _, v := range list {
					if digString(v, "secret", "secretName") != dest {
						continue
					}
					items, _ := dig(v, "secret", "items")
					itemList, _ := items.([]interface{})
					for _, it := range itemList {
						if k := digString(it, "key"); !fields[k] {
							t.Errorf("%s: mounts key %q of Secret %s; %s returns %v", dep.where(), k, dest, p, keys(fields))
						}
					}
				}
			}
		}
		for _, d := range byKind["VaultAuth"] {
			ns := digString(d.obj, "metadata", "namespace")
			if c := digString(d.obj, "spec", "vaultConnectionRef"); c != "" && !has("VaultConnection", ns, c) {
				t.Errorf("%s: vaultConnectionRef %q names no VaultConnection in the examples", d.where(), c)
			}
			if digString(d.obj, "spec", "method") == "kubernetes" {
				if digString(d.obj, "spec", "kubernetes", "role") == "" {
					t.Errorf("%s: no spec.kubernetes.role", d.where())
				}
				if sa := digString(d.obj, "spec", "kubernetes", "serviceAccount"); !has("ServiceAccount", ns, sa) {
					t.Errorf("%s: service account %q is not defined in the examples", d.where(), sa)
				}
			}
		}
		for _, d := range byKind["VaultConnection"] {
			if a := digString(d.obj, "spec", "address"); !strings.HasPrefix(a, "https://") && !strings.HasPrefix(a, "http://") {
				t.Errorf("%s: spec.address %q is not a URL", d.where(), a)
			}
		}
	})
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func checkInjectorAnnotations(t *testing.T, d yamlDoc, ann map[string]interface{}) {
	t.Helper()
	for k, v := range ann {
		if _, ok := v.(string); !ok {
			t.Errorf("%s: annotation %s is a %T (%v); Kubernetes annotations are strings: quote it", d.where(), k, v, v)
		}
	}
	if ann["vault.hashicorp.com/agent-inject"] != "true" {
		t.Errorf("%s: vault.hashicorp.com/agent-inject is %v, want \"true\"", d.where(), ann["vault.hashicorp.com/agent-inject"])
	}
	if s, _ := ann["vault.hashicorp.com/role"].(string); s == "" {
		t.Errorf("%s: no vault.hashicorp.com/role", d.where())
	}
	const secretPrefix = "vault.hashicorp.com/agent-inject-secret-"
	const templatePrefix = "vault.hashicorp.com/agent-inject-template-"
	secrets := 0
	for k, v := range ann {
		name, ok := strings.CutPrefix(k, secretPrefix)
		if !ok {
			continue
		}
		secrets++
		path, _ := v.(string)
		m := vaultCredsPath.FindStringSubmatch(path)
		if m == nil || !nameRe.MatchString(m[1]) {
			t.Errorf("%s: %s = %q, want %s/creds/<account> or %s/static-creds/<account>", d.where(), k, path, mount, mount)
			continue
		}
		tmpl, _ := ann[templatePrefix+name].(string)
		if tmpl == "" {
			t.Errorf("%s: %s has no %s%s; the injector's generic template would dump the whole response", d.where(), k, templatePrefix, name)
			continue
		}
		if !strings.Contains(tmpl, `secret "`+path+`"`) {
			t.Errorf("%s: template %s does not read %q", d.where(), name, path)
		}
		out, err := renderCT(tmpl)
		if err != nil {
			t.Errorf("%s: template %s: %v", d.where(), name, err)
			continue
		}
		if strings.TrimSpace(out) != out || out == "" {
			t.Errorf("%s: template %s renders %q: surrounding white space would end up in the file", d.where(), name, out)
		}
	}
	if secrets == 0 {
		t.Errorf("%s: no %s* annotation", d.where(), secretPrefix)
	}
	tok, _ := ann[templatePrefix+"zoho-token"].(string)
	if !strings.Contains(tok, ".Data.access_token") {
		t.Errorf("%s: %szoho-token does not render .Data.access_token", d.where(), templatePrefix)
	}
}

// metricNames are the series the engine exports, read from its source.
func metricNames(t *testing.T) map[string]bool {
	t.Helper()
	src := readFile(t, filepath.Join(repoRoot(t), "backend", "metrics.go"))
	out := map[string]bool{}
	for _, m := range regexp.MustCompile(`Name:\s*"(zoho_[a-z0-9_]+)"`).FindAllStringSubmatch(src, -1) {
		out[m[1]] = true
	}
	if len(out) == 0 {
		t.Fatal("no metric names found in backend/metrics.go")
	}
	return out
}

// knownMetric accepts a series name, including a histogram's derived series.
func knownMetric(names map[string]bool, s string) bool {
	if names[s] {
		return true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if names[strings.TrimSuffix(s, suffix)] && strings.HasSuffix(s, suffix) {
			return true
		}
	}
	return false
}

// labelValues are the values the engine gives its op and code labels.
func labelValues() map[string]map[string]bool {
	codes := map[string]bool{"other": true}
	for _, c := range []string{zoho.CodeInvalidCode, zoho.CodeInvalidClient, zoho.CodeInvalidClientSecret,
		zoho.CodeInvalidRedirectURI, zoho.CodeAccessDenied, zoho.CodeThrottled, zoho.CodeInvalidToken, zoho.CodeMissingOrgInfo} {
		codes[c] = true
	}
	for k := zoho.KindRejected; k <= zoho.KindMalformed; k++ {
		codes[k.String()] = true
	}
	return map[string]map[string]bool{
		"op":   {zoho.OpExchange: true, zoho.OpRefresh: true, zoho.OpRevoke: true},
		"code": codes,
		"kind": {"access": true, "refresh": true},
	}
}

var (
	metricRe = regexp.MustCompile(`\bzoho_[a-z0-9_]+`)
	labelRe  = regexp.MustCompile(`\b(op|code|kind)\s*(=~|=|!=|!~)\s*"([^"]*)"`)
)

func TestPrometheusExamples(t *testing.T) {
	dir := filepath.Join(examplesDir(t), "prometheus")
	names := metricNames(t)
	values := labelValues()
	var scrape, rules int
	for _, f := range exampleFiles(t, ".yaml", ".yml") {
		if !strings.HasPrefix(f, dir+string(filepath.Separator)) {
			continue
		}
		for _, d := range yamlDocs(t, f) {
			if sc, ok := d.obj["scrape_configs"].([]interface{}); ok {
				for _, job := range sc {
					scrape++
					if p := digString(job, "metrics_path"); p != "/v1/"+mount+"/metrics" {
						t.Errorf("%s: metrics_path %q, want /v1/%s/metrics", rel(t, f), p, mount)
					}
					if params, ok := dig(job, "params"); ok {
						pm, _ := params.(map[string]interface{})
						for k := range pm {
							if !routeHasField(t, "metrics", k) {
								t.Errorf("%s: parameter %q is not a field of %s/metrics", rel(t, f), k, mount)
							}
						}
					}
				}
				if rf, ok := d.obj["rule_files"].([]interface{}); ok {
					for _, r := range rf {
						s, _ := r.(string)
						if _, err := os.Stat(filepath.Join(dir, s)); err != nil {
							t.Errorf("%s: rule file %q is not in docs/examples/prometheus", rel(t, f), s)
						}
					}
				}
			}
			groups, _ := d.obj["groups"].([]interface{})
			for _, g := range groups {
				rs, _ := dig(g, "rules")
				list, _ := rs.([]interface{})
				for _, r := range list {
					rules++
					expr := digString(r, "expr")
					if expr == "" || digString(r, "alert") == "" {
						t.Errorf("%s: rule without alert or expr: %v", rel(t, f), r)
					}
					for _, m := range metricRe.FindAllString(expr, -1) {
						if !knownMetric(names, m) {
							t.Errorf("%s: alert %s uses %s, which the engine does not export", rel(t, f), digString(r, "alert"), m)
						}
					}
					for _, m := range labelRe.FindAllStringSubmatch(expr, -1) {
						for _, v := range strings.Split(m[3], "|") {
							if !values[m[1]][v] {
								t.Errorf("%s: alert %s matches %s=%q, which the engine never sets", rel(t, f), digString(r, "alert"), m[1], v)
							}
						}
					}
				}
			}
		}
	}
	if scrape == 0 || rules == 0 {
		t.Errorf("found %d scrape jobs and %d alert rules under docs/examples/prometheus; want both", scrape, rules)
	}
}

// routeHasField reports whether the route serving rel declares field.
func routeHasField(t *testing.T, rel, field string) bool {
	for _, r := range match(t, rel) {
		if _, ok := r.path.Fields[field]; ok {
			return true
		}
	}
	return false
}

// roleCmdRe finds the Kubernetes auth roles the guide creates, with their
// policies: `vault write auth/kubernetes/role/<role> ... token_policies=a,b`.
var (
	roleCmdRe      = regexp.MustCompile(`vault\s+write\s+auth/kubernetes/role/([A-Za-z0-9_-]+)\s`)
	rolePoliciesRe = regexp.MustCompile(`\btoken_policies=(\S+)`)
)

// TestKubernetesRolesGrantTheirPaths: every Vault path an example manifest
// reads (an injector's secret annotation, a VaultDynamicSecret's path) is
// granted "read" by the policies of the Kubernetes auth role it logs in with,
// as docs/kubernetes.md creates that role. Policies that are files under
// docs/examples/policies are read from there; a manifest that read a path its
// role's policies do not grant would get 403.
func TestKubernetesRolesGrantTheirPaths(t *testing.T) {
	roles := map[string][]string{}
	for _, b := range codeBlocks(ownedDoc(t, "kubernetes.md")) {
		for _, line := range logicalLines(b.text) {
			m := roleCmdRe.FindStringSubmatch(line)
			if m == nil {
				continue
			}
			if p := rolePoliciesRe.FindStringSubmatch(line); p != nil {
				roles[m[1]] = strings.Split(strings.Trim(p[1], `"'`), ",")
			}
		}
	}
	if len(roles) == 0 {
		t.Fatal("kubernetes.md creates no Kubernetes auth role with token_policies: the check checks nothing")
	}
	rulesOf := func(role string) ([]aclRule, bool) {
		pols, ok := roles[role]
		if !ok {
			return nil, false
		}
		var out []aclRule
		for _, p := range pols {
			f := filepath.Join(examplesDir(t), "policies", p+".hcl")
			if _, err := os.Stat(f); err != nil {
				continue // shown inline in the guide (zoho-vso-revoke)
			}
			out = append(out, policyRules(t, f)...)
		}
		return out, true
	}

	dir := filepath.Join(examplesDir(t), "kubernetes")
	var docs []yamlDoc
	for _, f := range exampleFiles(t, ".yaml", ".yml") {
		if strings.HasPrefix(f, dir+string(filepath.Separator)) {
			docs = append(docs, yamlDocs(t, f)...)
		}
	}
	authRole := map[string]string{} // namespace/VaultAuth name -> role
	for _, d := range docs {
		if digString(d.obj, "kind") == "VaultAuth" {
			authRole[digString(d.obj, "metadata", "namespace")+"/"+digString(d.obj, "metadata", "name")] = digString(d.obj, "spec", "kubernetes", "role")
		}
	}
	checked := 0
	check := func(d yamlDoc, role, path string) {
		rules, ok := rulesOf(role)
		if !ok {
			t.Errorf("%s: logs in with role %q, which kubernetes.md does not create", d.where(), role)
			return
		}
		checked++
		if !allows(rules, "read", path) {
			t.Errorf("%s: reads %s, but the policies of role %q (%v) do not grant read on it", d.where(), path, role, roles[role])
		}
	}
	for _, d := range docs {
		switch digString(d.obj, "kind") {
		case "VaultDynamicSecret":
			role := authRole[digString(d.obj, "metadata", "namespace")+"/"+digString(d.obj, "spec", "vaultAuthRef")]
			check(d, role, digString(d.obj, "spec", "mount")+"/"+digString(d.obj, "spec", "path"))
		case "Deployment":
			ann, _ := dig(d.obj, "spec", "template", "metadata", "annotations")
			annotations, _ := ann.(map[string]interface{})
			role, _ := annotations["vault.hashicorp.com/role"].(string)
			for k, v := range annotations {
				if path, _ := v.(string); strings.HasPrefix(k, "vault.hashicorp.com/agent-inject-secret-") {
					check(d, role, path)
				}
			}
		}
	}
	if checked < 2 {
		t.Errorf("only %d reads of the manifests checked against their role's policies: the check checks little", checked)
	}
}
