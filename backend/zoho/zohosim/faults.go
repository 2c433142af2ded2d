package zohosim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"time"
)

// FaultKind is a way of answering badly.
type FaultKind string

const (
	FaultLatency   FaultKind = "latency"   // wait Latency (or until the client gives up), then answer normally
	FaultStatus    FaultKind = "status"    // answer Status (default 503) with a small HTML body
	FaultReset     FaultKind = "reset"     // close the connection without answering
	FaultGarbage   FaultKind = "garbage"   // HTTP 200 with bytes that are not JSON
	FaultTruncated FaultKind = "truncated" // HTTP 200 with a JSON token answer cut in half
	FaultError     FaultKind = "error"     // HTTP 200 {"error": ErrorCode}
	FaultThrottle  FaultKind = "throttle"  // the "Access Denied" answer, whatever the counters say
	// FaultLostAnswer carries the request out (a token grant mints, a
	// revocation revokes) and then closes the connection without answering,
	// after Latency or once the client gives up: Zoho did it, the caller never
	// hears. Token, revoke and device endpoints only.
	FaultLostAnswer FaultKind = "lost_answer"
)

var faultKinds = []FaultKind{FaultLatency, FaultStatus, FaultReset, FaultGarbage, FaultTruncated, FaultError, FaultThrottle, FaultLostAnswer}

var faultEndpoints = []string{"*", "token", "revoke", "resource", "auth", "device_code", "device_token"}

// Fault makes matching requests misbehave. Faults are tried in the order
// added; the first match applies. Faulted requests still count in
// TokenRequests (or AuthRequests, DeviceCodeRequests, DevicePolls) and in
// FaultsInjected.
type Fault struct {
	Endpoint  string        `json:"endpoint"`             // token, revoke, resource, auth (the consent page's GET, not its form), device_code, device_token or * ("" means *)
	GrantType string        `json:"grant_type,omitempty"` // token and device endpoints: authorization_code, refresh_token, device_token, …
	ClientID  string        `json:"client_id,omitempty"`  // only requests of this client
	Kind      FaultKind     `json:"kind"`
	Latency   time.Duration `json:"latency,omitempty"`    // JSON: a Go duration string such as "2s"
	Status    int           `json:"status,omitempty"`     // for status
	ErrorCode string        `json:"error_code,omitempty"` // for error; default "general_error"
	Times     int           `json:"times,omitempty"`      // matching requests it applies to; 0 = until cleared
}

type faultJSON Fault

// MarshalJSON writes Latency as a Go duration string.
func (f Fault) MarshalJSON() ([]byte, error) {
	type wire struct {
		faultJSON
		Latency string `json:"latency,omitempty"`
	}
	w := wire{faultJSON: faultJSON(f)}
	if f.Latency != 0 {
		w.Latency = f.Latency.String()
	}
	return json.Marshal(w)
}

// UnmarshalJSON reads Latency as a Go duration string ("250ms", "2s") or a
// number of nanoseconds.
func (f *Fault) UnmarshalJSON(data []byte) error {
	var w struct {
		faultJSON
		Latency json.RawMessage `json:"latency,omitempty"`
	}
	if err := json.Unmarshal(data, &w); err != nil {
		return err
	}
	*f = Fault(w.faultJSON)
	f.Latency = 0
	if len(w.Latency) == 0 || string(w.Latency) == "null" {
		return nil
	}
	var str string
	if json.Unmarshal(w.Latency, &str) == nil {
		d, err := time.ParseDuration(str)
		if err != nil {
			return fmt.Errorf("latency: %w", err)
		}
		f.Latency = d
		return nil
	}
	var ns int64
	if err := json.Unmarshal(w.Latency, &ns); err != nil {
		return fmt.Errorf("latency: want a duration such as \"2s\"")
	}
	f.Latency = time.Duration(ns)
	return nil
}

// Validate reports a fault that could never apply as meant.
func (f Fault) Validate() error {
	if !slices.Contains(faultKinds, f.Kind) {
		return fmt.Errorf("unknown fault kind %q (want one of %v)", f.Kind, faultKinds)
	}
	if f.Endpoint != "" && !slices.Contains(faultEndpoints, f.Endpoint) {
		return fmt.Errorf("unknown endpoint %q (want one of %v)", f.Endpoint, faultEndpoints)
	}
	if f.Times < 0 || f.Latency < 0 {
		return fmt.Errorf("times and latency must not be negative")
	}
	if f.Kind == FaultStatus && f.Status != 0 && (f.Status < 100 || f.Status > 599) {
		return fmt.Errorf("status %d is not an HTTP status", f.Status)
	}
	return nil
}

// AddFault installs a fault.
func (s *Server) AddFault(f Fault) {
	s.mu.Lock()
	s.faults = append(s.faults, &f)
	s.mu.Unlock()
}

// ClearFaults removes every fault.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	s.faults = nil
	s.mu.Unlock()
}

// Faults lists the installed faults; Times is what is left of each.
func (s *Server) Faults() []Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Fault, len(s.faults))
	for i, f := range s.faults {
		out[i] = *f
	}
	return out
}

// pendingFault is a fault taken for one request.
type pendingFault struct {
	Fault
	throttleStatus int
}

// takeFaultLocked consumes one use of the first fault matching a request and
// counts it.
func (s *Server) takeFaultLocked(endpoint, grantType, clientID string) *pendingFault {
	for i, f := range s.faults {
		if (f.Endpoint != "" && f.Endpoint != "*" && f.Endpoint != endpoint) ||
			(f.GrantType != "" && f.GrantType != grantType) ||
			(f.ClientID != "" && f.ClientID != clientID) {
			continue
		}
		if f.Times > 0 {
			if f.Times--; f.Times == 0 {
				s.faults = slices.Delete(s.faults, i, i+1)
			}
		}
		c := s.countLocked(clientID)
		c.FaultsInjected++
		if f.Kind == FaultThrottle {
			c.Throttled++
		}
		return &pendingFault{Fault: *f, throttleStatus: s.cfg.ThrottleHTTPStatus}
	}
	return nil
}

// answersWithError says whether the fault answers with an OAuth error body.
func (f *pendingFault) answersWithError() bool {
	return f.Kind == FaultError || f.Kind == FaultThrottle
}

// apply answers the request according to the fault and reports whether it
// did; after a latency fault (false) the request is served normally, unless
// the client gave up meanwhile (true: nothing more to do).
func (f *pendingFault) apply(w http.ResponseWriter, r *http.Request) bool {
	switch f.Kind {
	case FaultLatency:
		t := time.NewTimer(f.Latency)
		defer t.Stop()
		select {
		case <-t.C:
			return false
		case <-r.Context().Done():
			return true
		}
	case FaultStatus:
		status := f.Status
		if status == 0 {
			status = http.StatusServiceUnavailable
		}
		w.Header().Set("Content-Type", "text/html;charset=UTF-8")
		w.WriteHeader(status)
		fmt.Fprintf(w, "<html><head><title>%d</title></head><body><h1>%d %s</h1></body></html>\n",
			status, status, http.StatusText(status))
	case FaultReset:
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				_ = conn.Close()
				return true
			}
		}
		panic(http.ErrAbortHandler) // HTTP/2 or a recorder: abort the stream
	case FaultGarbage:
		w.Header().Set("Content-Type", "application/json;charset=UTF-8")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte("<html>\x00\xfe\xff upstream said something that is not JSON }{"))
	case FaultTruncated:
		body := []byte(`{"access_token":"1000.00000000000000000000000000000000.00000000000000000000000000000000",` +
			`"api_domain":"https://www.zohoapis.com","token_type":"Bearer","expires_in":3600}`)
		w.Header().Set("Content-Type", "application/json;charset=UTF-8")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(body[:len(body)/2])
	case FaultError:
		code := f.ErrorCode
		if code == "" {
			code = "general_error"
		}
		oauthError(w, code)
	case FaultThrottle:
		throttled(w, f.throttleStatus)
	default:
		return false
	}
	return true
}

// deliver writes a, unless the fault loses the answer: then it waits Latency
// (or until the client gives up) and closes the connection instead.
func (f *pendingFault) deliver(w http.ResponseWriter, r *http.Request, a answer) {
	if f == nil || f.Kind != FaultLostAnswer {
		a.write(w)
		return
	}
	t := time.NewTimer(f.Latency)
	defer t.Stop()
	select {
	case <-t.C:
	case <-r.Context().Done():
	}
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			_ = conn.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}
