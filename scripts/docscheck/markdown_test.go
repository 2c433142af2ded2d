package docscheck

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/hashicorp/vault/sdk/logical"
	"github.com/zoho-vault/vault-plugin-secrets-zoho/backend/zoho"
)

func ownedDoc(t *testing.T, name string) string {
	return readFile(t, filepath.Join(docsDir(t), name))
}

// TestReadmeLinksResolve: the README's guide links that point at these docs
// must find them.
func TestReadmeLinksResolve(t *testing.T) {
	readme := readFile(t, filepath.Join(repoRoot(t), "README.md"))
	for _, d := range ownedDocs {
		if !strings.Contains(readme, "docs/"+d) {
			continue
		}
		if _, err := os.Stat(filepath.Join(docsDir(t), d)); err != nil {
			t.Errorf("README.md links docs/%s: %v", d, err)
		}
	}
}

var linkRe = regexp.MustCompile(`\]\(([^)\s]+)\)`)

// TestDocLinks: relative links resolve to files, and anchors to headings.
func TestDocLinks(t *testing.T) {
	for _, d := range ownedDocs {
		md := ownedDoc(t, d)
		for _, m := range linkRe.FindAllStringSubmatch(md, -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			file, anchor, _ := strings.Cut(target, "#")
			full := filepath.Join(docsDir(t), d)
			if file != "" {
				full = filepath.Join(docsDir(t), filepath.FromSlash(file))
				if _, err := os.Stat(full); err != nil {
					t.Errorf("%s: link %s: %v", d, target, err)
					continue
				}
			}
			if anchor == "" {
				continue
			}
			if !strings.HasSuffix(full, ".md") {
				t.Errorf("%s: link %s: anchor into a non-markdown file", d, target)
				continue
			}
			if !anchors(readFile(t, full))[anchor] {
				t.Errorf("%s: link %s: no heading with anchor #%s in %s", d, target, anchor, rel(t, full))
			}
		}
	}
}

// vaultRefRe finds mentions of the mount in text; whether one is a Vault path
// is decided by what precedes it (see vaultPathsIn).
var (
	vaultRefRe  = regexp.MustCompile(mount + `/[A-Za-z0-9_.<>${}*+/-]*`)
	leaseCtxRe  = regexp.MustCompile(`sys/leases/[a-z-]+/$`)
	apiPrefixRe = regexp.MustCompile(`/v1/$`)
)

type vaultRef struct {
	path  string // relative to the mount, placeholders made concrete
	raw   string
	lease bool // inside a sys/leases/... path: only the first segment is the engine's
}

// vaultPathsIn returns the Vault paths under the mount that text mentions:
// "zoho/..." standing on its own (after white space, a quote, '=', '(' ...),
// after "/v1/", or inside sys/leases/.... A "zoho/" inside some other path,
// such as /run/zoho/token, is a file, not a Vault path.
func vaultPathsIn(text string) []vaultRef {
	var out []vaultRef
	for _, loc := range vaultRefRe.FindAllStringIndex(text, -1) {
		before := text[:loc[0]]
		raw := text[loc[0]:loc[1]]
		ref := vaultRef{raw: raw}
		switch {
		case leaseCtxRe.MatchString(before):
			ref.lease = true
		case apiPrefixRe.MatchString(before):
		case before == "":
		default:
			prev := before[len(before)-1]
			if prev == '/' || prev == '.' || prev == '-' || prev == '_' || prev == '~' ||
				(prev >= 'a' && prev <= 'z') || (prev >= 'A' && prev <= 'Z') || (prev >= '0' && prev <= '9') {
				continue
			}
		}
		p := strings.TrimPrefix(raw, mount+"/")
		p = strings.TrimRight(p, ".")
		ref.path = concrete(p)
		out = append(out, ref)
	}
	return out
}

// servedPath reports whether p (relative to the mount) is served by the
// engine, allowing a trailing '/' (list paths, or "the creds/ paths") and a
// trailing '*' glob.
func servedPath(t *testing.T, p string) bool {
	cands := []string{p}
	if base, ok := strings.CutSuffix(p, "*"); ok {
		cands = []string{base, base + "acct1"}
	} else if strings.HasSuffix(p, "/") {
		cands = append(cands, p+"acct1")
	}
	for _, c := range cands {
		if len(match(t, c)) > 0 {
			return true
		}
	}
	return false
}

func checkVaultRefs(t *testing.T, where, text string) int {
	segs := topSegments(t)
	n := 0
	for _, ref := range vaultPathsIn(text) {
		n++
		if ref.path == "" {
			continue // the mount itself: "vault secrets tune ... zoho/"
		}
		first, _, _ := strings.Cut(ref.path, "/")
		if !segs[first] {
			t.Errorf("%s: %s/%s: the engine serves no %q path (it serves %v)", where, mount, strings.TrimPrefix(ref.raw, mount+"/"), first, keys(segs))
			continue
		}
		if !ref.lease && !servedPath(t, ref.path) {
			t.Errorf("%s: %s matches no path the engine serves", where, ref.raw)
		}
	}
	return n
}

// TestDocVaultPaths: every zoho/<...> path in the guides' code blocks and in
// the example files is one the engine serves.
func TestDocVaultPaths(t *testing.T) {
	total := 0
	for _, d := range ownedDocs {
		for _, b := range codeBlocks(ownedDoc(t, d)) {
			total += checkVaultRefs(t, d+":"+itoa(b.line), b.text)
		}
	}
	for _, f := range exampleFiles(t, "") {
		total += checkVaultRefs(t, rel(t, f), readFile(t, f))
	}
	if total < 20 {
		t.Errorf("found only %d Vault paths in the docs; the scan is probably broken", total)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// vaultCmdRe finds `vault read|write|list|delete [flags] zoho/... [k=v ...]`.
var vaultCmdRe = regexp.MustCompile(`(?:^|[\s(;|&])vault\s+(read|write|list|delete)((?:\s+-[A-Za-z-]+(?:=\S*)?)*)\s+(` + mount + `/\S*)((?:\s+[A-Za-z_][A-Za-z0-9_-]*=\S*)*)`)

var cmdOps = map[string][]logical.Operation{
	"read":   {logical.ReadOperation},
	"write":  {logical.CreateOperation, logical.UpdateOperation},
	"list":   {logical.ListOperation},
	"delete": {logical.DeleteOperation},
}

// TestDocVaultCommands: every `vault read/write/list/delete` of the engine in
// the guides uses an operation the path supports, fields the path declares,
// valid account names and data centers.
func TestDocVaultCommands(t *testing.T) {
	dcs := map[string]bool{}
	for _, dc := range zoho.DataCenterCodes() {
		dcs[dc] = true
	}
	found := 0
	for _, d := range ownedDocs {
		for _, b := range codeBlocks(ownedDoc(t, d)) {
			for _, line := range logicalLines(b.text) {
				for _, m := range vaultCmdRe.FindAllStringSubmatch(line, -1) {
					found++
					where := d + ":" + itoa(b.line) + ": vault " + m[1] + " " + m[3]
					verb, raw := m[1], strings.Trim(m[3], `"')`)
					p := concrete(strings.TrimPrefix(raw, mount+"/"))
					if verb == "list" && !strings.HasSuffix(p, "/") {
						p += "/" // the CLI lists with a trailing slash
					}
					rs := match(t, p)
					if len(rs) == 0 {
						t.Errorf("%s: no engine path matches %q", where, p)
						continue
					}
					if n := accountName(p); n != "" && !nameRe.MatchString(n) {
						t.Errorf("%s: %q is not a valid account name", where, n)
					}
					var ok bool
					for _, r := range rs {
						for _, op := range cmdOps[verb] {
							ok = ok || r.supports(op)
						}
					}
					if !ok {
						t.Errorf("%s: %s does not support %s", where, p, verb)
					}
					for _, kv := range strings.Fields(m[4]) {
						k, v, _ := strings.Cut(kv, "=")
						declared := false
						for _, r := range rs {
							if _, has := r.path.Fields[k]; has && k != "name" {
								declared = true
							}
						}
						if !declared {
							t.Errorf("%s: field %q is not accepted by %s", where, k, p)
						}
						if k == "data_center" && !dcs[strings.Trim(v, `"'`)] {
							t.Errorf("%s: data_center=%s is not one of %v", where, v, zoho.DataCenterCodes())
						}
					}
				}
			}
		}
	}
	if found < 20 {
		t.Errorf("found only %d vault commands in the docs; the scan is probably broken", found)
	}
}

// accountName is the <name> part of config/<name>, creds/<name>, ...
func accountName(p string) string {
	first, rest, ok := strings.Cut(p, "/")
	if !ok || rest == "" || first == "metrics" || first == "callback" {
		return ""
	}
	return strings.TrimSuffix(rest, "/")
}

// TestDocCodeBlocksParse: HCL blocks parse as HCL (policies are checked like
// the policy files), Terraform blocks pass the structural scan, YAML blocks
// parse.
func TestDocCodeBlocksParse(t *testing.T) {
	setupTemplates(t)
	for _, d := range ownedDocs {
		for _, b := range codeBlocks(ownedDoc(t, d)) {
			where := d + ":" + itoa(b.line)
			switch b.lang {
			case "hcl":
				t.Run(where, func(t *testing.T) {
					list := parseHCL(t, where, b.text)
					if len(blocks(list, "path")) > 0 {
						checkPolicy(t, where, b.text, false)
					}
				})
			case "terraform", "tf":
				if _, err := scanHCL2(b.text, 0, false); err != nil {
					t.Errorf("%s: %v", where, err)
				}
			case "yaml", "yml":
				var v interface{}
				if err := yaml.Unmarshal([]byte(b.text), &v); err != nil {
					t.Errorf("%s: YAML does not parse: %v", where, err)
				}
				// Template annotations shown in the guides render like
				// the manifests' do.
				if strings.Contains(b.text, "with secret") {
					if m, ok := v.(map[string]interface{}); ok {
						for k, val := range m {
							s, _ := val.(string)
							if strings.Contains(s, "with secret") {
								if _, err := renderCT(s); err != nil {
									t.Errorf("%s: %s: %v", where, k, err)
								}
							}
						}
					}
				}
			}
		}
	}
}

// TestDocMetricNames: the metric names in the operations guide's tables are
// the engine's.
func TestDocMetricNames(t *testing.T) {
	names := metricNames(t)
	tick := regexp.MustCompile("`(zoho_[a-z0-9_]+)(\\*?)")
	seen := 0
	for _, line := range strings.Split(ownedDoc(t, "operations.md"), "\n") {
		if !strings.HasPrefix(line, "| `zoho_") {
			continue
		}
		cell, _, _ := strings.Cut(strings.TrimPrefix(line, "| "), " |")
		for _, m := range tick.FindAllStringSubmatch(cell, -1) {
			seen++
			if m[2] == "*" {
				prefixOK := false
				for n := range names {
					prefixOK = prefixOK || strings.HasPrefix(n, m[1])
				}
				if !prefixOK {
					t.Errorf("operations.md: no metric starts with %s", m[1])
				}
				continue
			}
			if !knownMetric(names, m[1]) {
				t.Errorf("operations.md: %s is not a metric of the engine", m[1])
			}
		}
	}
	if seen == 0 {
		t.Error("operations.md lists no metrics")
	}
	// And every metric the engine exports is documented.
	doc := ownedDoc(t, "operations.md")
	for n := range names {
		if strings.HasPrefix(n, "zoho_account_") {
			continue // covered by the zoho_account_* row
		}
		if !strings.Contains(doc, "`"+n+"`") && !strings.Contains(doc, "`"+n+"{") {
			t.Errorf("operations.md does not document the metric %s", n)
		}
	}
}
