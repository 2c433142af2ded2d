package paths

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/helper/consts"
	"github.com/hashicorp/vault/sdk/logical"
)

// route is one operation of the HTTP surface, with a request that reaches
// the engine.
type route struct {
	op      logical.Operation
	path    string
	data    map[string]interface{}
	method  string // the Engine method it calls
	openAPI string // its OpenAPI path
	forward bool   // runs on the active node only
}

func routes() []route {
	return []route{
		{logical.ListOperation, "config/", nil, "ListAccounts", "/config/", false},
		{logical.ReadOperation, "config/a", nil, "ReadAccount", "/config/{name}", false},
		{logical.CreateOperation, "config/a", validCreate(), "WriteAccount", "/config/{name}", true},
		{logical.UpdateOperation, "config/a", map[string]interface{}{FieldScopes: "a.b.C"}, "WriteAccount", "/config/{name}", true},
		{logical.DeleteOperation, "config/a", nil, "DeleteAccount", "/config/{name}", true},
		{logical.ReadOperation, "creds/a", nil, "IssueCreds", "/creds/{name}", true},
		{logical.ReadOperation, "creds/a", map[string]interface{}{FieldRejected: "0123456789abcdef01234567"}, "ReplaceRejectedCreds", "/creds/{name}", true},
		{logical.ReadOperation, "static-creds/a", nil, "IssueCreds", "/static-creds/{name}", true},
		{logical.ReadOperation, "static-creds/a", map[string]interface{}{FieldRejected: "0123456789abcdef01234567"}, "ReplaceRejectedCreds", "/static-creds/{name}", true},
		{logical.UpdateOperation, "revoke/a", nil, "RevokeAccount", "/revoke/{name}", true},
		{logical.ReadOperation, "auth-url/a", nil, "StartAuthorization", "/auth-url/{name}", true},
		{logical.ReadOperation, "callback", map[string]interface{}{"state": "s", "code": "c"}, "CompleteAuthorization", "/callback", true},
		{logical.ReadOperation, "metrics", nil, "Metrics", "/metrics", false},
		{logical.ListOperation, "status/", nil, "AccountStatuses", "/status/", false},
		{logical.ReadOperation, "status/a", nil, "ReadAccount", "/status/{name}", false},
		{logical.ListOperation, "attention/", nil, "AccountsNeedingAttention", "/attention/", false},
		{logical.UpdateOperation, "device/a", nil, "StartDeviceAuthorization", "/device/{name}", true},
		{logical.ReadOperation, "device/a", nil, "ReadDeviceAuthorization", "/device/{name}", false},
		{logical.DeleteOperation, "device/a", nil, "CancelDeviceAuthorization", "/device/{name}", true},
	}
}

// answering sets the fake engine up so that every route succeeds.
func answering(e *fakeEngine) {
	e.status = fullStatus()
	e.statuses = []*AccountStatus{fullStatus()}
	e.names = []string{"a"}
	e.creds = testCreds()
	e.auth = testAuthorization()
	e.cbResult = &CallbackResult{Account: "a"}
	e.metrics = []byte("# metrics\n")
	e.device = testDevice()
}

// Every route reaches its engine method; the table below is complete.
func TestRoutesReachTheEngine(t *testing.T) {
	te := newTestEnv(t)
	answering(te.e)
	for _, r := range routes() {
		te.e.reset()
		te.ok(r.op, r.path, r.data)
		te.wantCalls(r.method)
	}
	var patterns []string
	for _, p := range te.b.Paths {
		patterns = append(patterns, p.Pattern)
	}
	if len(patterns) != 12 {
		t.Errorf("paths changed (%v): extend routes()", patterns)
	}
}

// openAPIOf asks for the help of one path and returns its OpenAPI document.
func openAPIOf(t *testing.T, te *testEnv, path string) *framework.OASDocument {
	t.Helper()
	resp, err := te.do(logical.HelpOperation, path, nil)
	if err != nil || resp == nil {
		t.Fatalf("help %s: %v", path, err)
	}
	if help, _ := resp.Data["help"].(string); strings.TrimSpace(help) == "" {
		t.Errorf("help %s: no help text", path)
	}
	doc, ok := resp.Data["openapi"].(*framework.OASDocument)
	if !ok || doc == nil {
		t.Fatalf("help %s: no OpenAPI document in %v", path, resp.Data)
	}
	return doc
}

func oasOperation(item *framework.OASPathItem, op logical.Operation) *framework.OASOperation {
	switch op {
	case logical.ReadOperation, logical.ListOperation:
		return item.Get
	case logical.CreateOperation, logical.UpdateOperation:
		return item.Post
	case logical.DeleteOperation:
		return item.Delete
	}
	return nil
}

// Every path answers help with its synopsis and description, and an OpenAPI
// document describing each of its operations.
func TestHelpAndOpenAPIForEveryPath(t *testing.T) {
	te := newTestEnv(t)
	for _, r := range routes() {
		resp, err := te.do(logical.HelpOperation, r.path, nil)
		if err != nil {
			t.Fatalf("help %s: %v", r.path, err)
		}
		p := te.b.Route(r.path)
		if strings.TrimSpace(p.Operations[r.op].Properties().Summary) == "" {
			t.Errorf("%s %s has no summary", r.op, r.path)
		}
		help, _ := resp.Data["help"].(string)
		for _, want := range []string{strings.TrimSpace(p.HelpSynopsis), strings.TrimSpace(p.HelpDescription)} {
			if want == "" || !strings.Contains(help, want) {
				t.Errorf("help %s lacks %q", r.path, want)
			}
		}
		for name, f := range p.Fields {
			if strings.TrimSpace(f.Description) == "" {
				t.Errorf("%s: field %s has no description", r.path, name)
			}
		}
		doc := openAPIOf(t, te, r.path)
		item := doc.Paths[r.openAPI]
		if item == nil {
			t.Errorf("help %s: OpenAPI has no %s (has %v)", r.path, r.openAPI, keysOf(doc.Paths))
			continue
		}
		if strings.TrimSpace(item.Description) == "" {
			t.Errorf("OpenAPI %s has no description", r.openAPI)
		}
		op := oasOperation(item, r.op)
		if op == nil || strings.TrimSpace(op.Summary) == "" || op.OperationID == "" {
			t.Errorf("OpenAPI %s %s: no summarised operation: %+v", r.openAPI, r.op, op)
		}
	}
}

// The whole backend's OpenAPI document covers every path, with unique
// operation IDs and no generation warnings; the callback is marked
// unauthenticated.
func TestRootHelpOpenAPI(t *testing.T) {
	te := newTestEnv(t)
	resp, err := te.do(logical.HelpOperation, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if help, _ := resp.Data["help"].(string); !strings.Contains(help, "The Zoho secrets engine keeps") {
		t.Errorf("root help lacks the engine's help: %q", help)
	}
	doc, ok := resp.Data["openapi"].(*framework.OASDocument)
	if !ok {
		t.Fatalf("no OpenAPI document: %v", resp.Data)
	}
	ids := map[string]string{}
	for _, r := range routes() {
		item := doc.Paths[r.openAPI]
		if item == nil {
			t.Errorf("OpenAPI lacks %s", r.openAPI)
			continue
		}
		op := oasOperation(item, r.op)
		if op == nil {
			t.Errorf("OpenAPI %s lacks %s", r.openAPI, r.op)
			continue
		}
		key := r.openAPI + " " + string(r.op)
		if prev, dup := ids[op.OperationID]; dup && prev != r.openAPI {
			t.Errorf("operation ID %q used by %s and %s", op.OperationID, prev, key)
		}
		ids[op.OperationID] = r.openAPI
		if got := item.Unauthenticated; got != (r.path == CallbackPath) {
			t.Errorf("%s: unauthenticated %v", r.openAPI, got)
		}
	}
	if len(doc.Paths) != len(te.b.Paths) {
		t.Errorf("OpenAPI documents %d paths, the backend has %d: %v", len(doc.Paths), len(te.b.Paths), keysOf(doc.Paths))
	}
	if strings.Contains(te.logs.String(), "OpenAPI") {
		t.Errorf("OpenAPI generation warned: %s", te.logs.String())
	}
}

func keysOf(m map[string]*framework.OASPathItem) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// Paths that write storage or count leases are forwarded from performance
// standbys and secondaries; the rest are served locally.
func TestForwarding(t *testing.T) {
	for _, state := range []struct {
		name string
		sys  *logical.StaticSystemView
	}{
		{"performance standby", func() *logical.StaticSystemView {
			s := testSystemView()
			s.ReplicationStateVal = consts.ReplicationPerformanceStandby
			return s
		}()},
		{"performance secondary", func() *logical.StaticSystemView {
			s := testSystemView()
			s.ReplicationStateVal = consts.ReplicationPerformanceSecondary
			return s
		}()},
	} {
		t.Run(state.name, func(t *testing.T) {
			te := newTestEnvWithSystem(t, state.sys)
			answering(te.e)
			for _, r := range routes() {
				te.e.reset()
				_, err := te.do(r.op, r.path, r.data)
				if r.forward {
					if !errors.Is(err, logical.ErrReadOnly) {
						t.Errorf("%s %s: %v, want it forwarded (ErrReadOnly)", r.op, r.path, err)
					}
					te.wantCalls()
				} else {
					if err != nil {
						t.Errorf("%s %s: %v, want it served locally", r.op, r.path, err)
					}
					te.wantCalls(r.method)
				}
			}
		})
	}

	// A local mount on a performance secondary serves everything itself.
	sys := testSystemView()
	sys.ReplicationStateVal = consts.ReplicationPerformanceSecondary
	sys.LocalMountVal = true
	te := newTestEnvWithSystem(t, sys)
	answering(te.e)
	for _, r := range routes() {
		te.e.reset()
		te.ok(r.op, r.path, r.data)
		te.wantCalls(r.method)
	}
}

// The forwarding flags themselves, both set on every writing operation.
func TestForwardingFlags(t *testing.T) {
	te := newTestEnv(t)
	for _, r := range routes() {
		op := te.b.Route(r.path).Operations[r.op]
		props := op.Properties()
		if props.ForwardPerformanceStandby != r.forward || props.ForwardPerformanceSecondary != r.forward {
			t.Errorf("%s %s: forward standby %v secondary %v, want %v", r.op, r.path,
				props.ForwardPerformanceStandby, props.ForwardPerformanceSecondary, r.forward)
		}
	}
}

func TestSpecialPaths(t *testing.T) {
	te := newTestEnv(t)
	if len(Unauthenticated) != 1 || Unauthenticated[0] != CallbackPath || te.b.Route(CallbackPath) == nil {
		t.Errorf("unauthenticated %v", Unauthenticated)
	}
	if te.b.Route(CallbackPath+"/x") != nil {
		t.Error("the unauthenticated path matches more than the callback")
	}
	want := map[string]bool{"config/": true, "token/": true, "wal/": true, "pending/": true}
	for _, p := range SealWrapStorage {
		delete(want, p)
	}
	if len(want) != 0 {
		t.Errorf("not seal-wrapped: %v", want)
	}
	// The engine must not be asked anything before a request arrives.
	if _, err := te.b.HandleRequest(context.Background(), te.request(logical.ReadOperation, "nope/a", nil)); !errors.Is(err, logical.ErrUnsupportedPath) {
		t.Errorf("unknown path: %v", err)
	}
	te.wantCalls()
}
