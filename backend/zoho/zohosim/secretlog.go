package zohosim

import "net/url"

// The secret log: which accounts server each request carrying a
// client_secret reached. Tests use it to prove a client secret is sent only
// to the accounts server an account names (a data-center change must not
// leave a poller or a refresh sending it to the old one). Every request to an
// OAuth endpoint (token, device_code, device_token, revoke) that carries a
// non-empty client_secret parameter, in the query string or the form body,
// is recorded before faults apply: the secret was sent whatever the answer.
// The log keeps the latest maxSecretLog entries; older ones are dropped and
// counted.

// SecretRequest is one request that carried a client_secret.
type SecretRequest struct {
	DC       string `json:"dc"`       // the data center whose accounts server it reached
	Endpoint string `json:"endpoint"` // token, device_code, device_token or revoke (the fault endpoints' names)
	ClientID string `json:"client_id"`
}

const maxSecretLog = 4096

type secretLog struct {
	entries []SecretRequest
	dropped int
}

// noteSecret records a request of endpoint at dc if p carries a client
// secret.
func (s *Server) noteSecret(dc, endpoint string, p url.Values) {
	if p.Get("client_secret") == "" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.secrets.entries) >= maxSecretLog {
		s.secrets.entries = s.secrets.entries[1:]
		s.secrets.dropped++
	}
	s.secrets.entries = append(s.secrets.entries, SecretRequest{DC: dc, Endpoint: endpoint, ClientID: p.Get("client_id")})
}

// TakeSecretRequests returns, oldest first, the requests carrying a
// client_secret recorded since the last call, and how many were dropped
// because the log was full; it empties the log.
func (s *Server) TakeSecretRequests() (reqs []SecretRequest, dropped int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	reqs, dropped = s.secrets.entries, s.secrets.dropped
	s.secrets = secretLog{}
	return reqs, dropped
}
