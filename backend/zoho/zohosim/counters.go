package zohosim

// Counters count the requests the simulator answered, by outcome.
type Counters struct {
	AuthRequests     int64 `json:"auth_requests"`     // GET /oauth/v2/auth (consent pages shown, error pages, faults)
	ConsentsAccepted int64 `json:"consents_accepted"` // consent pages answered Accept (a code, or access_denied past the grant-code limit)
	ConsentsDenied   int64 `json:"consents_denied"`   // consent pages answered Deny
	ConsentsInvalid  int64 `json:"consents_invalid"`  // consent answers refused: unknown, used or expired consent id, bad form
	Exchanges        int64 `json:"exchanges"`         // successful authorization_code grants
	ExchangeFailures int64 `json:"exchange_failures"` // authorization_code grants answered with an error
	Refreshes        int64 `json:"refreshes"`         // successful refresh_token grants
	RefreshFailures  int64 `json:"refresh_failures"`  // refresh_token grants answered with an error (throttle included)
	Throttled        int64 `json:"throttled"`         // "Access Denied" answers
	// ClientCredentials and ClientCredentialsFailures count client_credentials
	// grants that minted a token and those answered with an error (throttle
	// included).
	ClientCredentials         int64 `json:"client_credentials"`
	ClientCredentialsFailures int64 `json:"client_credentials_failures"`
	TokenRequests             int64 `json:"token_requests"` // every POST /oauth/v2/token, faults included
	Revokes                   int64 `json:"revokes"`        // successful revocations
	RevokedRefresh            int64 `json:"revoked_refresh"`
	RevokedAccess             int64 `json:"revoked_access"`
	RevokeInvalid             int64 `json:"revoke_invalid"`   // revocations of unknown or dead tokens (HTTP 400 invalid_token)
	RevokeMalformed           int64 `json:"revoke_malformed"` // revocations naming no token in the query string (HTTP 400 invalid_request)
	Evictions                 int64 `json:"evictions"`        // access tokens silently invalidated by a cap
	ResourceOK                int64 `json:"resource_ok"`      // protected-resource calls accepted
	ResourceDenied            int64 `json:"resource_denied"`
	FaultsInjected            int64 `json:"faults_injected"`

	DeviceCodeRequests int64 `json:"device_code_requests"` // every POST /oauth/v3/device/code, faults included
	DeviceCodesIssued  int64 `json:"device_codes_issued"`  // device codes handed out
	DevicePolls        int64 `json:"device_polls"`         // every POST /oauth/v3/device/token, faults included
	DeviceSlowDowns    int64 `json:"device_slow_downs"`    // polls answered slow_down
	DeviceGrants       int64 `json:"device_grants"`        // polls answered with tokens
}

func (c *Counters) add(o *Counters) {
	c.AuthRequests += o.AuthRequests
	c.ConsentsAccepted += o.ConsentsAccepted
	c.ConsentsDenied += o.ConsentsDenied
	c.ConsentsInvalid += o.ConsentsInvalid
	c.Exchanges += o.Exchanges
	c.ExchangeFailures += o.ExchangeFailures
	c.Refreshes += o.Refreshes
	c.RefreshFailures += o.RefreshFailures
	c.Throttled += o.Throttled
	c.ClientCredentials += o.ClientCredentials
	c.ClientCredentialsFailures += o.ClientCredentialsFailures
	c.TokenRequests += o.TokenRequests
	c.Revokes += o.Revokes
	c.RevokedRefresh += o.RevokedRefresh
	c.RevokedAccess += o.RevokedAccess
	c.RevokeInvalid += o.RevokeInvalid
	c.RevokeMalformed += o.RevokeMalformed
	c.Evictions += o.Evictions
	c.ResourceOK += o.ResourceOK
	c.ResourceDenied += o.ResourceDenied
	c.FaultsInjected += o.FaultsInjected
	c.DeviceCodeRequests += o.DeviceCodeRequests
	c.DeviceCodesIssued += o.DeviceCodesIssued
	c.DevicePolls += o.DevicePolls
	c.DeviceSlowDowns += o.DeviceSlowDowns
	c.DeviceGrants += o.DeviceGrants
}

// countLocked returns the counters of a client. Requests naming no
// registered client share the "" entry, so the map stays bounded.
func (s *Server) countLocked(clientID string) *Counters {
	if s.st.clients[clientID] == nil {
		clientID = ""
	}
	c := s.counters[clientID]
	if c == nil {
		c = &Counters{}
		s.counters[clientID] = c
	}
	return c
}

// Counters returns the totals over all clients.
func (s *Server) Counters() Counters {
	s.mu.Lock()
	defer s.mu.Unlock()
	var total Counters
	for _, c := range s.counters {
		total.add(c)
	}
	return total
}

// ClientCounters returns the counters of one client.
func (s *Server) ClientCounters(clientID string) Counters {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.counters[clientID]; c != nil {
		return *c
	}
	return Counters{}
}

// ResetCounters zeroes every counter.
func (s *Server) ResetCounters() {
	s.mu.Lock()
	clear(s.counters)
	s.mu.Unlock()
}
