package docscheck

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// aclRule is one path rule of a policy.
type aclRule struct {
	path string
	caps map[string]bool
}

// policyRules reads the path rules of an example policy file.
func policyRules(t *testing.T, file string) []aclRule {
	t.Helper()
	name := rel(t, file)
	var out []aclRule
	for _, r := range blocks(parseHCL(t, name, readFile(t, file)), "path") {
		caps, _ := strList(body(r), "capabilities")
		rule := aclRule{path: label(r), caps: map[string]bool{}}
		for _, c := range caps {
			rule.caps[c] = true
		}
		out = append(out, rule)
	}
	return out
}

// ruleMatches reports whether a policy path matches a request path the way
// Vault's ACL does: exactly, or with a trailing '*' as a prefix, and '+' as
// exactly one path segment.
func ruleMatches(rule, path string) bool {
	prefix, glob := strings.CutSuffix(rule, "*")
	rs, ps := strings.Split(prefix, "/"), strings.Split(path, "/")
	if len(ps) < len(rs) || (!glob && len(ps) != len(rs)) {
		return false
	}
	for i, seg := range rs {
		last := i == len(rs)-1
		switch {
		case seg == "+":
			if ps[i] == "" || strings.Contains(ps[i], "/") {
				return false
			}
		case last && glob:
			if !strings.HasPrefix(ps[i], seg) {
				return false
			}
		case seg != ps[i]:
			return false
		}
	}
	return true
}

// allows reports whether a policy grants capability on a request path. Vault
// applies the most specific matching rule only: an exact rule before any
// glob, and among globs the longest (the example policies have no rules whose
// order would need Vault's finer tie-breaks). A list request is checked
// against the path with a trailing slash, as Vault's HTTP layer adds one.
func allows(rules []aclRule, capability, path string) bool {
	if capability == "list" && !strings.HasSuffix(path, "/") {
		path += "/"
	}
	var best *aclRule
	for i := range rules {
		r := &rules[i]
		if !ruleMatches(r.path, path) {
			continue
		}
		if r.path == path {
			best = r
			break
		}
		if best == nil || len(r.path) > len(best.path) {
			best = r
		}
	}
	return best != nil && !best.caps["deny"] && best.caps[capability]
}

func TestRuleMatches(t *testing.T) {
	for _, tc := range []struct {
		rule, path string
		want       bool
	}{
		{"zoho/attention/", "zoho/attention/", true},
		{"zoho/attention/", "zoho/attention", false},
		{"zoho/status/*", "zoho/status/", true},
		{"zoho/status/*", "zoho/status/acct1", true},
		{"zoho/status/*", "zoho/statusx", false},
		{"zoho/status/sales-*", "zoho/status/sales-eu", true},
		{"zoho/status/sales-*", "zoho/status/crm", false},
		{"zoho/+/acct1", "zoho/creds/acct1", true},
		{"zoho/+/acct1", "zoho/creds/acct2", false},
		{"zoho/metrics", "zoho/metrics", true},
		{"zoho/metrics", "zoho/metrics/", false},
	} {
		if got := ruleMatches(tc.rule, tc.path); got != tc.want {
			t.Errorf("ruleMatches(%q, %q) = %v, want %v", tc.rule, tc.path, got, tc.want)
		}
	}
	rules := []aclRule{{"zoho/status/*", map[string]bool{"list": true, "read": true}}, {"zoho/status/secret", map[string]bool{"deny": true}}}
	if !allows(rules, "list", "zoho/status") || !allows(rules, "read", "zoho/status/x") || allows(rules, "update", "zoho/status/x") || allows(rules, "read", "zoho/status/secret") {
		t.Error("allows: wrong answer for the test rules")
	}
}

// vaultCLIRe finds `vault list` and `vault read` commands on the mount in
// prose and code (flags such as -detailed, -format=json and -field=x are
// skipped).
var vaultCLIRe = regexp.MustCompile(`vault (list|read)((?: +-[a-z-]+(?:=\S+)?)*) +(` + mount + `/[A-Za-z0-9_<>${}./-]*)`)

type cliCall struct {
	capability, path, text string
}

func vaultCLICalls(text string) []cliCall {
	var out []cliCall
	for _, m := range vaultCLIRe.FindAllStringSubmatch(text, -1) {
		p := strings.TrimRight(m[3], ".")
		out = append(out, cliCall{capability: m[1], path: concrete(p), text: m[0]})
	}
	return out
}

// TestPoliciesAllowWhatOperationsDoes: docs/operations.md is written for the
// people who hold the operator policy, and its monitoring sections for the
// monitoring token; every `vault list` or `vault read` it shows on the mount
// must be allowed by the example policy meant for it (a `vault list
// zoho/attention` that answers 403 sends an operator nowhere). The operator
// policy deliberately has no creds/; the monitoring policy covers the
// read-only health paths: status/, attention/ and metrics.
func TestPoliciesAllowWhatOperationsDoes(t *testing.T) {
	dir := filepath.Join(examplesDir(t), "policies")
	operator := policyRules(t, filepath.Join(dir, "zoho-operator.hcl"))
	monitoring := policyRules(t, filepath.Join(dir, "zoho-monitoring.hcl"))
	calls := vaultCLICalls(ownedDoc(t, "operations.md"))
	if len(calls) < 5 {
		t.Fatalf("found only %d vault list/read commands in operations.md: the check checks little", len(calls))
	}
	sawAttention := false
	for _, c := range calls {
		if strings.HasPrefix(c.path, mount+"/attention") {
			sawAttention = true
		}
		if !strings.HasPrefix(c.path, mount+"/creds/") && !allows(operator, c.capability, c.path) {
			t.Errorf("operations.md shows %q, but zoho-operator.hcl does not grant %s on %s", c.text, c.capability, c.path)
		}
		for _, health := range []string{"/status", "/attention", "/metrics"} {
			if strings.HasPrefix(c.path, mount+health) && !allows(monitoring, c.capability, c.path) {
				t.Errorf("operations.md shows %q, but zoho-monitoring.hcl does not grant %s on %s", c.text, c.capability, c.path)
			}
		}
	}
	if !sawAttention {
		t.Error("operations.md no longer shows vault list zoho/attention: update this test")
	}
	// The capability table of policies.md names the list path.
	if !strings.Contains(ownedDoc(t, "policies.md"), "| `"+mount+"/attention/` | `list` |") {
		t.Error("policies.md: the capability table has no row for attention/")
	}
}
