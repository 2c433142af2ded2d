package zoho

import (
	"net"
	"net/url"
	"sort"
	"strings"
)

// DataCenter is one of Zoho's regional deployments. The accounts server issues
// and revokes tokens; APIDomain is the usual API host, although the engine always
// prefers the api_domain Zoho returns with a token.
type DataCenter struct {
	Code        string
	AccountsURL string
	APIDomain   string
}

// DefaultDataCenter is used when an account names none.
const DefaultDataCenter = "us"

var dataCenters = map[string]DataCenter{
	"us": {"us", "https://accounts.zoho.com", "https://www.zohoapis.com"},
	"eu": {"eu", "https://accounts.zoho.eu", "https://www.zohoapis.eu"},
	"in": {"in", "https://accounts.zoho.in", "https://www.zohoapis.in"},
	"au": {"au", "https://accounts.zoho.com.au", "https://www.zohoapis.com.au"},
	"jp": {"jp", "https://accounts.zoho.jp", "https://www.zohoapis.jp"},
	"cn": {"cn", "https://accounts.zoho.com.cn", "https://www.zohoapis.com.cn"},
	"ca": {"ca", "https://accounts.zohocloud.ca", "https://www.zohoapis.ca"},
	"sa": {"sa", "https://accounts.zoho.sa", "https://www.zohoapis.sa"},
	"uk": {"uk", "https://accounts.zoho.uk", "https://www.zohoapis.uk"},
}

// LookupDataCenter returns the data center with the given code (case-insensitive).
func LookupDataCenter(code string) (DataCenter, bool) {
	dc, ok := dataCenters[strings.ToLower(strings.TrimSpace(code))]
	return dc, ok
}

// DataCenterCodes lists the supported data-center codes in a stable order.
func DataCenterCodes() []string {
	out := make([]string, 0, len(dataCenters))
	for code := range dataCenters {
		out = append(out, code)
	}
	sort.Strings(out)
	return out
}

// IsKnownAccountsServer reports whether u is exactly one of Zoho's accounts
// servers (scheme https, no path beyond "/", no credentials, no port). It is the
// check a redirect's accounts-server value must pass before any secret is sent.
func IsKnownAccountsServer(u string) (DataCenter, bool) {
	parsed, err := url.Parse(strings.TrimSpace(u))
	if err != nil || parsed.Scheme != "https" || parsed.User != nil || parsed.RawQuery != "" || parsed.Fragment != "" {
		return DataCenter{}, false
	}
	if parsed.Path != "" && parsed.Path != "/" {
		return DataCenter{}, false
	}
	if parsed.Port() != "" {
		return DataCenter{}, false
	}
	host := strings.ToLower(parsed.Hostname())
	for _, dc := range dataCenters {
		if strings.TrimPrefix(dc.AccountsURL, "https://") == host {
			return dc, true
		}
	}
	return DataCenter{}, false
}

// IsLoopbackHost reports whether host (without port) names the loopback
// interface: "localhost", 127.0.0.0/8 or ::1.
func IsLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// ValidateAccountsURL checks an operator-supplied accounts server override:
// https anywhere, plain http only to loopback hosts (the simulator). It returns
// the URL normalised without a trailing slash.
func ValidateAccountsURL(raw string) (string, error) {
	parsed, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return "", errInvalidURL("is not a valid URL")
	}
	if parsed.Host == "" {
		return "", errInvalidURL("must be an absolute URL such as https://accounts.zoho.eu")
	}
	if parsed.User != nil {
		return "", errInvalidURL("must not contain credentials")
	}
	if parsed.RawQuery != "" || parsed.Fragment != "" {
		return "", errInvalidURL("must not contain a query or fragment")
	}
	switch parsed.Scheme {
	case "https":
	case "http":
		if !IsLoopbackHost(parsed.Hostname()) {
			return "", errInvalidURL("must use https (plain http is allowed only to loopback hosts such as the simulator)")
		}
	default:
		return "", errInvalidURL("must use https")
	}
	return strings.TrimRight(parsed.Scheme+"://"+parsed.Host+parsed.EscapedPath(), "/"), nil
}

type urlError string

func (e urlError) Error() string { return string(e) }

func errInvalidURL(msg string) error { return urlError(msg) }
