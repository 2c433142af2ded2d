package paths

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"
)

const hostile = `x"><script>alert(document.cookie)</script><img src=x onerror=alert(1)>`

// page checks a callback response is an HTML page with the status and
// returns its body.
func page(t *testing.T, resp *logical.Response, err error, status int) string {
	t.Helper()
	if err != nil {
		t.Fatalf("callback: %v", err)
	}
	if resp == nil {
		t.Fatal("callback: no response")
	}
	if got := resp.Data[logical.HTTPStatusCode]; got != status {
		t.Errorf("status %v, want %d", got, status)
	}
	if ct := resp.Data[logical.HTTPContentType]; ct != "text/html; charset=utf-8" {
		t.Errorf("content type %v", ct)
	}
	body, ok := resp.Data[logical.HTTPRawBody].([]byte)
	if !ok || !strings.HasPrefix(string(body), "<!doctype html>") {
		t.Fatalf("body %q", body)
	}
	for _, tag := range []string{"<script", "<img", "onerror=alert(1)>"} {
		if strings.Contains(strings.ToLower(string(body)), tag) {
			t.Errorf("unescaped %q in %s", tag, body)
		}
	}
	return string(body)
}

func TestCallbackPassesZohosParameters(t *testing.T) {
	te := newTestEnv(t)
	te.e.cbResult = &CallbackResult{Account: "crm"}
	te.ok(logical.ReadOperation, CallbackPath, map[string]interface{}{
		"code":              "1000.code",
		"state":             "st4te",
		"location":          "eu",
		"accounts-server":   "https://accounts.zoho.eu",
		"error":             "access_denied",
		"error_description": "no",
		"scope":             "ZohoCRM.modules.ALL", // Zoho may add parameters of its own
	})
	want := Callback{Code: "1000.code", State: "st4te", Location: "eu", AccountsURL: "https://accounts.zoho.eu", Error: "access_denied", ErrorDetails: "no"}
	if te.e.callback != want {
		t.Errorf("engine got %+v, want %+v", te.e.callback, want)
	}

	te.e.reset()
	te.ok(logical.ReadOperation, CallbackPath, nil)
	if te.e.callback != (Callback{}) {
		t.Errorf("engine got %+v for no parameters", te.e.callback)
	}
	te.wantCalls("CompleteAuthorization")
}

func TestCallbackSuccessPageEscapes(t *testing.T) {
	te := newTestEnv(t)
	te.e.cbResult = &CallbackResult{Account: hostile}
	resp, err := te.do(logical.ReadOperation, CallbackPath, map[string]interface{}{"state": "s", "code": "c"})
	body := page(t, resp, err, http.StatusOK)
	if !strings.Contains(body, "&lt;script&gt;") || !strings.Contains(body, "<title>Authorized</title>") {
		t.Errorf("body %s", body)
	}
}

func TestCallbackErrorPages(t *testing.T) {
	cases := []struct {
		name   string
		err    error
		status int
	}{
		{"consent refused", &InputError{Field: "error", Msg: `Zoho reported "` + hostile + `"; nothing was stored`}, http.StatusBadRequest},
		{"unknown state", &InputError{Field: "state", Msg: "no pending authorization " + hostile}, http.StatusBadRequest},
		{"wrapped input error", errors.Join(errors.New("exchange"), &InputError{Field: "code", Msg: hostile}), http.StatusBadRequest},
		{"Zoho failed", logical.CodedError(http.StatusBadGateway, "Zoho answered "+hostile), http.StatusBadGateway},
		{"throttled", logical.CodedError(http.StatusTooManyRequests, "throttled "+hostile), http.StatusTooManyRequests},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			te := newTestEnv(t)
			te.e.setErr("CompleteAuthorization", c.err)
			resp, err := te.do(logical.ReadOperation, CallbackPath, map[string]interface{}{"state": "s", "error": hostile})
			body := page(t, resp, err, c.status)
			if !strings.Contains(body, "<title>Authorization failed</title>") || !strings.Contains(body, "&lt;script&gt;alert(document.cookie)&lt;/script&gt;") {
				t.Errorf("body %s", body)
			}
			if te.e.callback.Error != hostile {
				t.Errorf("engine got error %q", te.e.callback.Error)
			}
		})
	}
}

// An internal failure is Vault's 500, not a page blaming Zoho.
func TestCallbackInternalError(t *testing.T) {
	te := newTestEnv(t)
	te.e.setErr("CompleteAuthorization", errors.New("storage down"))
	req := te.request(logical.ReadOperation, CallbackPath, map[string]interface{}{"state": "s"})
	resp, err := te.b.HandleRequest(context.Background(), req)
	if status, msg := statusOf(t, req, resp, err); status != http.StatusInternalServerError || msg != "storage down" {
		t.Errorf("status %d %q", status, msg)
	}
}

func TestHTMLPageEscapesTitleAndMessage(t *testing.T) {
	resp := htmlPage(http.StatusTeapot, "<b>t</b>", `a & "b" <i>`)
	body := string(resp.Data[logical.HTTPRawBody].([]byte))
	for _, want := range []string{"<title>&lt;b&gt;t&lt;/b&gt;</title>", `<h1 class="failed">&lt;b&gt;t&lt;/b&gt;</h1>`, "<p>a &amp; &#34;b&#34; &lt;i&gt;</p>"} {
		if !strings.Contains(body, want) {
			t.Errorf("body %s lacks %s", body, want)
		}
	}
	if resp.Data[logical.HTTPStatusCode] != http.StatusTeapot {
		t.Errorf("status %v", resp.Data[logical.HTTPStatusCode])
	}
}
