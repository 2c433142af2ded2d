package zoho

import "testing"

func TestValidateAccountsURL(t *testing.T) {
	good := map[string]string{
		"https://accounts.zoho.eu":    "https://accounts.zoho.eu",
		"https://accounts.zoho.eu/":   "https://accounts.zoho.eu",
		"http://127.0.0.1:8090/us":    "http://127.0.0.1:8090/us",
		"http://localhost:9/eu/":      "http://localhost:9/eu",
		"http://[::1]:8090/us":        "http://[::1]:8090/us",
		"https://example.internal/zo": "https://example.internal/zo",
	}
	for in, want := range good {
		got, err := ValidateAccountsURL(in)
		if err != nil || got != want {
			t.Errorf("ValidateAccountsURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"http://accounts.zoho.eu", "ftp://x", "accounts.zoho.eu", "https://u:p@accounts.zoho.eu", "https://accounts.zoho.eu?x=1", "http://10.0.0.1/", "http://127.evil.com/", "::"} {
		if _, err := ValidateAccountsURL(bad); err == nil {
			t.Errorf("ValidateAccountsURL(%q) accepted", bad)
		}
	}
}

func TestIsKnownAccountsServer(t *testing.T) {
	for _, u := range []string{"https://accounts.zoho.com", "https://accounts.zoho.eu/", "https://accounts.zohocloud.ca", "https://ACCOUNTS.ZOHO.IN"} {
		if _, ok := IsKnownAccountsServer(u); !ok {
			t.Errorf("%q should be known", u)
		}
	}
	for _, u := range []string{"http://accounts.zoho.com", "https://accounts.zoho.com.evil.io", "https://accounts.zoho.com:8443", "https://accounts.zoho.com/x", "https://evil@accounts.zoho.com", "https://zoho.com"} {
		if _, ok := IsKnownAccountsServer(u); ok {
			t.Errorf("%q must not be known", u)
		}
	}
}

func TestDataCenters(t *testing.T) {
	codes := DataCenterCodes()
	if len(codes) != 9 {
		t.Fatalf("want 9 data centers, got %v", codes)
	}
	dc, ok := LookupDataCenter("EU")
	if !ok || dc.AccountsURL != "https://accounts.zoho.eu" || dc.APIDomain != "https://www.zohoapis.eu" {
		t.Fatalf("eu lookup: %+v %v", dc, ok)
	}
}
