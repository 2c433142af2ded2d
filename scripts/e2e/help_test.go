package e2e

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"unicode"
)

var configFields = []string{"grant_type", "client_id", "client_secret", "data_center", "accounts_url", "redirect_uri",
	"scopes", "soid", "grant_code", "refresh_token", "live_token_cap"}

var credsFields = []string{"access_token", "api_domain", "token_type", "expires_at", "scopes", "token_id"}

// TestPathHelp checks `vault path-help` on every path.
func TestPathHelp(t *testing.T) {
	t.Parallel()
	v := devVault(t)

	r := v.mustCLI(t, "path-help", mountPath+"/config/x")
	for _, f := range append([]string{"name"}, configFields...) {
		if !strings.Contains(r.stdout, "\n    "+f+" (") {
			t.Errorf("path-help %s/config/x does not document %s:\n%s", mountPath, f, r.stdout)
		}
	}
	for _, w := range []string{"grant_code", "refresh token", "never returns the client secret"} {
		if !strings.Contains(r.stdout, w) {
			t.Errorf("path-help %s/config/x does not explain %q", mountPath, w)
		}
	}

	r = v.mustCLI(t, "path-help", mountPath+"/creds/x")
	for _, w := range []string{"min_ttl (", "rejected (", "token_id", "lease", "api_domain"} {
		if !strings.Contains(r.stdout, w) {
			t.Errorf("path-help %s/creds/x lacks %q:\n%s", mountPath, w, r.stdout)
		}
	}
	r = v.mustCLI(t, "path-help", mountPath+"/static-creds/x")
	for _, w := range []string{"min_ttl (", "rejected (", "without a", "ttl", "rotation_period", "held until it", "revoke/<name>"} {
		if !strings.Contains(r.stdout, w) {
			t.Errorf("path-help %s/static-creds/x lacks %q:\n%s", mountPath, w, r.stdout)
		}
	}
	r = v.mustCLI(t, "path-help", mountPath+"/revoke/x")
	if !strings.Contains(r.stdout, "refresh token") || !strings.Contains(r.stdout, "name (") {
		t.Errorf("path-help %s/revoke/x:\n%s", mountPath, r.stdout)
	}

	// The backend's own help lists its paths.
	r = v.mustCLI(t, "path-help", mountPath)
	for _, p := range []string{"config/", "creds/", "static-creds/", "revoke/"} {
		if !strings.Contains(r.stdout, p) {
			t.Errorf("path-help %s does not list %s:\n%s", mountPath, p, r.stdout)
		}
	}
}

// oas is the part of an OpenAPI document the test reads.
type oas struct {
	Paths      map[string]map[string]json.RawMessage `json:"paths"`
	Components struct {
		Schemas map[string]oasSchema `json:"schemas"`
	} `json:"components"`
}

type oasSchema struct {
	Ref         string               `json:"$ref"`
	Type        string               `json:"type"`
	Description string               `json:"description"`
	Properties  map[string]oasSchema `json:"properties"`
	Enum        []interface{}        `json:"enum"`
}

type oasParam struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	In          string `json:"in"`
	Required    bool   `json:"required"`
}

type oasOperation struct {
	OperationID string     `json:"operationId"`
	Summary     string     `json:"summary"`
	Parameters  []oasParam `json:"parameters"`
	RequestBody *struct {
		Content map[string]struct {
			Schema oasSchema `json:"schema"`
		} `json:"content"`
	} `json:"requestBody"`
	Responses map[string]struct {
		Content map[string]struct {
			Schema oasSchema `json:"schema"`
		} `json:"content"`
	} `json:"responses"`
}

// schemaName is the component a body refers to. External plugins' $ref is
// lost when Vault merges their document (hashicorp/vault#30714: the SDK
// decodes it with mapstructure, which does not match "$ref" to Ref), so the
// name Vault derives from the operation ID is used when it is empty.
func schemaName(s oasSchema, operationID, suffix string) string {
	if s.Ref != "" {
		return strings.TrimPrefix(s.Ref, "#/components/schemas/")
	}
	var b strings.Builder
	for _, part := range strings.Split(operationID, "-") {
		if part == "" {
			continue
		}
		rs := []rune(part)
		rs[0] = unicode.ToUpper(rs[0])
		b.WriteString(string(rs))
	}
	return b.String() + suffix
}

// TestOpenAPI checks the engine's paths, fields and descriptions in Vault's
// generated OpenAPI document.
func TestOpenAPI(t *testing.T) {
	t.Parallel()
	v := devVault(t)

	res := v.raw(t, v.Token, http.MethodGet, "sys/internal/specs/openapi", nil)
	if res.status != http.StatusOK {
		t.Fatalf("GET sys/internal/specs/openapi: %s", res)
	}
	var doc oas
	if err := json.Unmarshal(res.body, &doc); err != nil {
		t.Fatalf("decoding the OpenAPI document: %v", err)
	}
	op := func(path, method string) oasOperation {
		t.Helper()
		item, ok := doc.Paths[path]
		if !ok {
			t.Fatalf("OpenAPI document has no path %s", path)
		}
		raw, ok := item[method]
		if !ok {
			t.Fatalf("OpenAPI path %s has no %s operation", path, method)
		}
		var o oasOperation
		if err := json.Unmarshal(raw, &o); err != nil {
			t.Fatalf("decoding %s %s: %v", method, path, err)
		}
		if o.OperationID == "" || o.Summary == "" {
			t.Errorf("%s %s has operationId %q, summary %q", method, path, o.OperationID, o.Summary)
		}
		return o
	}
	schema := func(name string) oasSchema {
		t.Helper()
		s, ok := doc.Components.Schemas[name]
		if !ok {
			t.Fatalf("OpenAPI document has no schema %s", name)
		}
		return s
	}
	described := func(where string, s oasSchema, fields []string) {
		t.Helper()
		for _, f := range fields {
			p, ok := s.Properties[f]
			if !ok {
				t.Errorf("%s has no field %s", where, f)
				continue
			}
			if strings.TrimSpace(p.Description) == "" {
				t.Errorf("%s field %s has no description", where, f)
			}
		}
	}
	nameParam := func(path string) {
		t.Helper()
		var params struct {
			Parameters []oasParam `json:"parameters"`
		}
		item := doc.Paths[path]
		raw, _ := json.Marshal(item)
		_ = json.Unmarshal(raw, &params)
		for _, p := range params.Parameters {
			if p.Name == "name" && p.In == "path" && p.Required && p.Description != "" {
				return
			}
		}
		t.Errorf("%s does not describe its name parameter: %+v", path, params.Parameters)
	}

	base := "/" + mountPath

	// config/ (list)
	op(base+"/config/", "get")

	// config/{name}: read, write (with every field described), delete.
	cfgPath := base + "/config/{name}"
	nameParam(cfgPath)
	op(cfgPath, "get")
	op(cfgPath, "delete")
	write := op(cfgPath, "post")
	if write.RequestBody == nil {
		t.Fatalf("POST %s has no request body", cfgPath)
	}
	body := write.RequestBody.Content["application/json"].Schema
	req := schema(schemaName(body, write.OperationID, "Request"))
	described("POST "+cfgPath+" request", req, configFields)
	dc := req.Properties["data_center"]
	for _, want := range []string{"us", "eu", "in", "au", "jp", "cn", "ca", "sa", "uk"} {
		found := false
		for _, e := range dc.Enum {
			if e == want {
				found = true
			}
		}
		if !found {
			t.Errorf("data_center enum %v lacks %s", dc.Enum, want)
		}
	}
	if req.Properties["live_token_cap"].Type != "integer" || req.Properties["scopes"].Type != "array" {
		t.Errorf("field types: live_token_cap %q, scopes %q; want integer, array",
			req.Properties["live_token_cap"].Type, req.Properties["scopes"].Type)
	}

	// creds/{name}: read with min_ttl, response fields described.
	credsPath := base + "/creds/{name}"
	nameParam(credsPath)
	read := op(credsPath, "get")
	for _, want := range []string{"min_ttl", "rejected"} {
		found := false
		for _, p := range read.Parameters {
			if p.Name == want && p.In == "query" && p.Description != "" {
				found = true
			}
		}
		if !found {
			t.Errorf("GET %s does not describe %s: %+v", credsPath, want, read.Parameters)
		}
	}
	ok, found := read.Responses["200"]
	if !found {
		t.Fatalf("GET %s has no 200 response", credsPath)
	}
	resp := schema(schemaName(ok.Content["application/json"].Schema, read.OperationID, "Response"))
	described("GET "+credsPath+" response", resp, credsFields)

	// static-creds/{name}: the same parameters; the answer also says how long
	// to use the token.
	staticPath := base + "/static-creds/{name}"
	nameParam(staticPath)
	sread := op(staticPath, "get")
	for _, want := range []string{"min_ttl", "rejected"} {
		found := false
		for _, p := range sread.Parameters {
			if p.Name == want && p.In == "query" && p.Description != "" {
				found = true
			}
		}
		if !found {
			t.Errorf("GET %s does not describe %s: %+v", staticPath, want, sread.Parameters)
		}
	}
	if sok, found := sread.Responses["200"]; !found {
		t.Errorf("GET %s has no 200 response", staticPath)
	} else {
		sresp := schema(schemaName(sok.Content["application/json"].Schema, sread.OperationID, "Response"))
		described("GET "+staticPath+" response", sresp, append(append([]string(nil), credsFields...), "ttl", "rotation_period", "last_vault_rotation"))
	}

	// revoke/{name}
	revokePath := base + "/revoke/{name}"
	nameParam(revokePath)
	op(revokePath, "post")

	// The CLI reads the same document.
	var cliDoc struct {
		Data oas `json:"data"`
	}
	v.cliJSON(t, &cliDoc, "read", "-format=json", "sys/internal/specs/openapi")
	if _, ok := cliDoc.Data.Paths[cfgPath]; !ok {
		t.Errorf("vault read sys/internal/specs/openapi has no %s", cfgPath)
	}
}
