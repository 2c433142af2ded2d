package paths

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

// The README's API table names every field the read responses carry.
func TestReadmeDocumentsEveryResponseField(t *testing.T) {
	raw, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	row := func(path, op string) string {
		re := regexp.MustCompile("(?m)^\\| `" + regexp.QuoteMeta(path) + "` \\| " + op + " \\|(.*)$")
		m := re.FindStringSubmatch(string(raw))
		if m == nil {
			t.Fatalf("README has no %s row for %s", op, path)
		}
		return m[1]
	}
	st := fullStatus()
	schemaOf := func(p *framework.Path) map[string]interface{} {
		out := map[string]interface{}{}
		for k := range p.Operations[logical.ReadOperation].(*framework.PathOperation).Responses[200][0].Fields {
			out[k] = true
		}
		return out
	}
	e := newFakeEngine()
	for path, fields := range map[string]map[string]interface{}{
		"config/<name>":       statusData(st),
		"status/<name>":       healthData(st),
		"creds/<name>":        schemaOf(pathCreds(e, Secret(e))),
		"static-creds/<name>": schemaOf(pathStaticCreds(e)),
		"auth-url/<name>":     schemaOf(pathAuthURL(e)),
	} {
		if len(fields) == 0 {
			t.Fatalf("no fields known for %s", path)
		}
		doc := row(path, "read")
		for k := range fields {
			if !strings.Contains(doc, "`"+k+"`") {
				t.Errorf("README's read row for %s does not name the field %s", path, k)
			}
		}
	}
}
