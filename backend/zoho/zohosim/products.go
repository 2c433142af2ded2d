package zohosim

import (
	"net/http"
	"regexp"
	"strings"
)

// The protected APIs of the Zoho products docs/products.md has recipes for.
// Each product lives on hosts of its own at Zoho (analyticsapi.zoho.<tld>,
// www.zohoapis.<tld>, connect.zoho.<tld>, an academy's TrainerCentral domain),
// only the last of them the api_domain a token answer names; the simulator
// serves each under /<dc>/<product> (CRM under the simulator's api_domain,
// /<dc>/api/crm), so that ProductURL is a product's base URL in the
// simulator and the rest of the path is the product's own. Only GET is served. A request is taken only in the form the product's
// documents give:
//
//   - every product: "Authorization: Zoho-oauthtoken <token>" (the scheme all
//     four documents name; no Bearer, no token in the query string), a live
//     access token of that data center, and among its scopes one of the
//     product's (else 401 OAUTH_SCOPE_MISMATCH, as Zoho CRM answers);
//   - Zoho Analytics (/restapi/v2/...): the ZANALYTICS-ORGID header, a
//     number, on every call but GET /restapi/v2/orgs, which lists the
//     organizations and so their ids;
//   - Zoho CRM (/crm/v2 ... /crm/v8 under the api_domain): nothing more;
//   - Zoho Connect (/nativeapi/v2/...) and TrainerCentral (/api/v4/...):
//     "Content-Type: application/json", which their OAuth pages list as a
//     mandatory header of every call; TrainerCentral's paths carry the
//     academy's numeric orgId (/api/v4/<orgId>/...), except
//     /api/v4/org/portals.json, which lists the academies, and end in .json.
//
// The bodies of the product-specific refusals are the simulator's own: Zoho's
// pages name the conditions, not the exact error bodies.
type product struct {
	name   string // the path segment under /<dc>
	scope  string // prefix one of the token's scopes must have (case-insensitive)
	check  func(r *http.Request) *answer
	result func(r *http.Request) map[string]any
}

// Products are the product names the simulator serves under /<dc>/.
var Products = []string{"analytics", "crm", "connect", "trainercentral"}

// ProductURL is the base URL of product in data center dc: what a recipe of
// docs/products.md uses in place of the product's real host. Zoho CRM is
// served at the api_domain tokens name, so its base is APIDomain(dc).
func (s *Server) ProductURL(dc, product string) string {
	if product == "crm" {
		return s.APIDomain(dc)
	}
	return s.AccountsURL(dc) + "/" + product
}

var (
	digitsRe     = regexp.MustCompile(`^[0-9]+$`)
	crmVersionRe = regexp.MustCompile(`^v[2-8]$`)
)

func productRefusal(status int, code, message string) *answer {
	return &answer{status, map[string]string{"status": "failure", "code": code, "message": message}}
}

func requireJSONContentType(r *http.Request) *answer {
	if ct := strings.TrimSpace(strings.Split(r.Header.Get("Content-Type"), ";")[0]); !strings.EqualFold(ct, "application/json") {
		return productRefusal(http.StatusBadRequest, "INVALID_CONTENT_TYPE", "the Content-Type header must be application/json")
	}
	return nil
}

var (
	analytics = product{
		name: "analytics", scope: "ZohoAnalytics.",
		check: func(r *http.Request) *answer {
			if r.PathValue("rest") == "orgs" {
				return nil
			}
			org := r.Header.Get("ZANALYTICS-ORGID")
			if org == "" {
				return productRefusal(http.StatusBadRequest, "MISSING_ORGID", "the ZANALYTICS-ORGID header is required")
			}
			if !digitsRe.MatchString(org) {
				return productRefusal(http.StatusBadRequest, "INVALID_ORGID", "ZANALYTICS-ORGID must be an organization id")
			}
			return nil
		},
		result: func(r *http.Request) map[string]any {
			return map[string]any{"org_id": r.Header.Get("ZANALYTICS-ORGID"), "path": "/restapi/v2/" + r.PathValue("rest")}
		},
	}
	crm = product{
		name: "crm", scope: "ZohoCRM.",
		check: func(r *http.Request) *answer {
			if !crmVersionRe.MatchString(r.PathValue("version")) || r.PathValue("rest") == "" {
				return productRefusal(http.StatusBadRequest, "INVALID_URL_PATTERN", "please check if the URL trying to access is a correct one")
			}
			return nil
		},
		result: func(r *http.Request) map[string]any {
			return map[string]any{"api_version": r.PathValue("version"), "path": "/crm/" + r.PathValue("version") + "/" + r.PathValue("rest")}
		},
	}
	connect = product{
		name: "connect", scope: "zohopulse.",
		check: func(r *http.Request) *answer {
			if r.PathValue("rest") == "" {
				return productRefusal(http.StatusNotFound, "INVALID_URL_PATTERN", "no such API")
			}
			return requireJSONContentType(r)
		},
		result: func(r *http.Request) map[string]any {
			return map[string]any{"path": "/nativeapi/v2/" + r.PathValue("rest")}
		},
	}
	trainerCentral = product{
		name: "trainercentral", scope: "TrainerCentral.",
		check: func(r *http.Request) *answer {
			rest := r.PathValue("rest")
			org, tail, _ := strings.Cut(rest, "/")
			if !strings.HasSuffix(rest, ".json") || tail == "" || !(digitsRe.MatchString(org) || rest == "org/portals.json") {
				return productRefusal(http.StatusNotFound, "INVALID_URL_PATTERN", "want /api/v4/<orgId>/<resource>.json or /api/v4/org/portals.json")
			}
			return requireJSONContentType(r)
		},
		result: func(r *http.Request) map[string]any {
			org, _, _ := strings.Cut(r.PathValue("rest"), "/")
			if org == "org" {
				org = ""
			}
			return map[string]any{"org_id": org, "path": "/api/v4/" + r.PathValue("rest")}
		},
	}
)

// productRoutes adds the products' APIs to mux.
func (s *Server) productRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /{dc}/analytics/restapi/v2/{rest...}", s.inDC(s.serveProduct(analytics)))
	mux.HandleFunc("GET /{dc}/api/crm/{version}/{rest...}", s.inDC(s.serveProduct(crm)))
	mux.HandleFunc("GET /{dc}/connect/nativeapi/v2/{rest...}", s.inDC(s.serveProduct(connect)))
	mux.HandleFunc("GET /{dc}/trainercentral/api/v4/{rest...}", s.inDC(s.serveProduct(trainerCentral)))
}

// zohoOAuthToken returns the token of an "Authorization: Zoho-oauthtoken
// <token>" header, the only form the products' documents give.
func zohoOAuthToken(r *http.Request) string {
	scheme, token, ok := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
	if !ok || !strings.EqualFold(scheme, "Zoho-oauthtoken") {
		return ""
	}
	return strings.TrimSpace(token)
}

func (s *Server) serveProduct(p product) func(http.ResponseWriter, *http.Request, string) {
	return func(w http.ResponseWriter, r *http.Request, dc string) {
		token := zohoOAuthToken(r)
		clientOf := func() string { return s.tokenClientLocked(token) }
		if s.admit(w, r, "resource", "", clientOf, nil) {
			return
		}
		s.mu.Lock()
		cnt := s.countLocked(clientOf())
		at := s.st.access[token]
		var a answer
		switch {
		case token == "" || at == nil || !at.liveAt(s.cfg.Now()) || at.dc != dc:
			a = answer{http.StatusUnauthorized, map[string]string{"code": "INVALID_OAUTHTOKEN", "message": "invalid oauth token"}}
		case !hasScopePrefix(at.scopes, p.scope):
			a = *productRefusal(http.StatusUnauthorized, "OAUTH_SCOPE_MISMATCH", "the token holds no "+p.scope+"* scope")
		default:
			if bad := p.check(r); bad != nil {
				a = *bad
				break
			}
			body := map[string]any{
				"product": p.name, "dc": dc, "Email": at.user, "ZUID": zuid(at.user),
				"client_id": at.clientID, "scope": strings.Join(at.scopes, ","),
			}
			for k, v := range p.result(r) {
				body[k] = v
			}
			a = answer{http.StatusOK, body}
		}
		if a.status == http.StatusOK {
			cnt.ResourceOK++
		} else {
			cnt.ResourceDenied++
		}
		s.mu.Unlock()
		a.write(w)
	}
}

func hasScopePrefix(scopes []string, prefix string) bool {
	for _, sc := range scopes {
		if len(sc) > len(prefix) && strings.EqualFold(sc[:len(prefix)], prefix) {
			return true
		}
	}
	return false
}
