package docscheck

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// Terraform files are HCL2 (native syntax with expressions such as
// `type = string` and `vault_mount.zoho.path`), which the HCL v1 parser in
// go.sum cannot read. They get a structural scan here, plus
// `terraform fmt -check` (a full HCL2 parse, offline) when terraform is
// installed.

// scanHCL2 checks that brackets, strings, comments and heredocs of HCL2
// native syntax are balanced, starting at src[start]. With stopAtClose it
// returns the index just after the bracket that closes the one at
// src[start].
func scanHCL2(src string, start int, stopAtClose bool) (int, error) {
	var stack []byte // '{', '[', '(' brackets; '"' strings; 'i' ${ interpolations
	line := 1 + strings.Count(src[:start], "\n")
	pos := func() string { return fmt.Sprintf("line %d", line) }
	for i := start; i < len(src); i++ {
		c := src[i]
		next := byte(0)
		if i+1 < len(src) {
			next = src[i+1]
		}
		if c == '\n' {
			line++
		}
		top := byte(0)
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top == '"' {
			switch {
			case c == '\\':
				i++
			case c == '"':
				stack = stack[:len(stack)-1]
			case (c == '$' || c == '%') && next == '{':
				stack = append(stack, 'i')
				i++
			case c == '\n':
				return 0, fmt.Errorf("%s: string not closed", pos())
			}
			continue
		}
		switch {
		case c == '#' || (c == '/' && next == '/'):
			for i < len(src) && src[i] != '\n' {
				i++
			}
			i-- // let the newline be counted
		case c == '/' && next == '*':
			end := strings.Index(src[i+2:], "*/")
			if end < 0 {
				return 0, fmt.Errorf("%s: comment not closed", pos())
			}
			line += strings.Count(src[i:i+2+end], "\n")
			i += 2 + end + 1
		case c == '<' && next == '<':
			m := regexp.MustCompile(`^<<-?([A-Za-z_][A-Za-z0-9_]*)[ \t]*\n`).FindStringSubmatch(src[i:])
			if m == nil {
				return 0, fmt.Errorf("%s: malformed heredoc", pos())
			}
			rest := src[i+len(m[0]):]
			closing := regexp.MustCompile(`(?m)^[ \t]*` + m[1] + `[ \t]*$`).FindStringIndex(rest)
			if closing == nil {
				return 0, fmt.Errorf("%s: heredoc %s not closed", pos(), m[1])
			}
			line += strings.Count(src[i:i+len(m[0])+closing[1]], "\n")
			i += len(m[0]) + closing[1] - 1
		case c == '"':
			stack = append(stack, '"')
		case c == '{' || c == '[' || c == '(':
			stack = append(stack, c)
		case c == '}' || c == ']' || c == ')':
			want := map[byte]byte{'}': '{', ']': '[', ')': '('}[c]
			if top != want && !(c == '}' && top == 'i') {
				return 0, fmt.Errorf("%s: unexpected %q", pos(), c)
			}
			stack = stack[:len(stack)-1]
			if stopAtClose && len(stack) == 0 {
				return i + 1, nil
			}
		}
	}
	if len(stack) > 0 {
		return 0, fmt.Errorf("end of file with %q still open", string(stack))
	}
	return len(src), nil
}

// hclBlock returns the body of the first block whose header matches header
// (a regexp ending just before the opening brace or parenthesis).
func hclBlock(t *testing.T, src, header string) (string, bool) {
	t.Helper()
	loc := regexp.MustCompile(header + `\s*[{(]`).FindStringIndex(src)
	if loc == nil {
		return "", false
	}
	open := loc[1] - 1
	end, err := scanHCL2(src, open, true)
	if err != nil {
		t.Fatalf("block %s: %v", header, err)
	}
	return src[open+1 : end-1], true
}

var (
	assignRe = regexp.MustCompile(`(?m)(?:^|[{,])\s*([a-z_][a-z0-9_]*)\s*=[^=]`)
	fileRe   = regexp.MustCompile(`file\("\$\{path\.module\}/([^"]+)"\)`)
)

func TestTerraformExample(t *testing.T) {
	path := filepath.Join(examplesDir(t), "terraform", "main.tf")
	src := readFile(t, path)
	if _, err := scanHCL2(src, 0, false); err != nil {
		t.Fatalf("%s: %v", rel(t, path), err)
	}

	for _, r := range []string{"vault_plugin", "vault_mount", "vault_generic_endpoint", "vault_policy"} {
		if !regexp.MustCompile(`(?m)^resource\s+"` + r + `"\s+"[a-z0-9_]+"\s*\{`).MatchString(src) {
			t.Errorf("main.tf has no %s resource", r)
		}
	}
	if plugin, ok := hclBlock(t, src, `resource\s+"vault_plugin"\s+"[a-z0-9_]+"`); ok {
		for _, want := range []string{`type\s*=\s*"secret"`, `name\s*=\s*"` + mount + `"`, `command\s*=\s*"vault-plugin-secrets-zoho`, `sha256\s*=`, `version\s*=`} {
			if !regexp.MustCompile(want).MatchString(plugin) {
				t.Errorf("vault_plugin: no %s", want)
			}
		}
	}
	if m, ok := hclBlock(t, src, `resource\s+"vault_mount"\s+"[a-z0-9_]+"`); ok {
		if !regexp.MustCompile(`path\s*=\s*"` + mount + `"`).MatchString(m) {
			t.Errorf("vault_mount does not mount at %s/", mount)
		}
	}

	ep, ok := hclBlock(t, src, `resource\s+"vault_generic_endpoint"\s+"[a-z0-9_]+"`)
	if !ok {
		t.Fatal("no vault_generic_endpoint block")
	}
	if !regexp.MustCompile(`path\s*=\s*"[^"\n]*/config/[a-z0-9_.-]+"`).MatchString(ep) {
		t.Error("vault_generic_endpoint does not write .../config/<account>")
	}
	for _, want := range []string{`disable_read\s*=\s*true`, `ignore_absent_fields\s*=\s*true`, `prevent_destroy\s*=\s*true`} {
		if !regexp.MustCompile(want).MatchString(ep) {
			t.Errorf("vault_generic_endpoint: no %s", want)
		}
	}
	if regexp.MustCompile(`grant_code`).MatchString(ep) {
		t.Error("vault_generic_endpoint writes a grant_code: codes expire in minutes, import a refresh_token or use auth-url")
	}
	data, ok := hclBlock(t, ep, `data_json\s*=\s*jsonencode`)
	if !ok {
		t.Fatal("vault_generic_endpoint: data_json is not a jsonencode(...) expression")
	}
	fields := map[string]bool{}
	for _, r := range match(t, "config/acct1") {
		for f := range r.path.Fields {
			fields[f] = f != "name"
		}
	}
	written := 0
	for _, m := range assignRe.FindAllStringSubmatch(data, -1) {
		written++
		if !fields[m[1]] {
			t.Errorf("data_json writes %q, which config/<name> does not accept", m[1])
		}
	}
	if written == 0 {
		t.Error("data_json writes no field")
	}

	// Secret inputs are sensitive variables, never literals.
	for _, m := range regexp.MustCompile(`(?m)^variable\s+"([a-z0-9_]+)"`).FindAllStringSubmatch(src, -1) {
		if !strings.Contains(m[1], "secret") && !strings.Contains(m[1], "token") {
			continue
		}
		b, _ := hclBlock(t, src, `variable\s+"`+m[1]+`"`)
		if !regexp.MustCompile(`sensitive\s*=\s*true`).MatchString(b) {
			t.Errorf("variable %s holds a secret but is not sensitive", m[1])
		}
	}
	if regexp.MustCompile(`1000\.[0-9a-f]{32}`).MatchString(src) {
		t.Error("main.tf contains what looks like a literal Zoho token")
	}
	for _, m := range fileRe.FindAllStringSubmatch(src, -1) {
		if _, err := os.Stat(filepath.Join(filepath.Dir(path), m[1])); err != nil {
			t.Errorf("file(%q): %v", m[1], err)
		}
	}

	// With terraform installed (it is not on CI), also let it parse the file;
	// without it, the structural scan above is the check: no skipped test.
	bin, err := exec.LookPath("terraform")
	if err != nil {
		return
	}
	t.Run("terraform fmt", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, "fmt", "-check", "-diff", "-no-color", path)
		cmd.Env = append(os.Environ(), "CHECKPOINT_DISABLE=1", "TF_IN_AUTOMATION=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("terraform fmt -check %s: %v\n%s", rel(t, path), err, out)
		}
	})
}
