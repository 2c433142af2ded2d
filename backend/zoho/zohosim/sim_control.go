package zohosim

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"
)

// controlRoutes add the plain-JSON control API used by scripts and `make dev`.
func (s *Server) controlRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /sim/health", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("POST /sim/clients", func(w http.ResponseWriter, r *http.Request) {
		var c Client
		if !decode(w, r, &c) {
			return
		}
		writeJSON(w, http.StatusOK, s.RegisterClient(c))
	})
	mux.HandleFunc("POST /sim/self-client", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			ClientID   string          `json:"client_id"`
			Scopes     json.RawMessage `json:"scopes"`
			TTLSeconds int             `json:"ttl_seconds"`
			User       string          `json:"user"`
		}
		if !decode(w, r, &req) {
			return
		}
		scopes := scopeList(req.Scopes)
		ttl := time.Duration(req.TTLSeconds) * time.Second
		code, err := s.SelfClientCode(req.ClientID, req.User, scopes, ttl)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		if ttl <= 0 {
			ttl = 3 * time.Minute
		}
		writeJSON(w, http.StatusOK, map[string]interface{}{"code": code, "expires_in": int(ttl / time.Second)})
	})
	mux.HandleFunc("GET /sim/counters", func(w http.ResponseWriter, r *http.Request) {
		if id := r.URL.Query().Get("client_id"); id != "" {
			writeJSON(w, http.StatusOK, s.ClientCounters(id))
			return
		}
		writeJSON(w, http.StatusOK, s.Counters())
	})
	mux.HandleFunc("POST /sim/counters/reset", func(w http.ResponseWriter, r *http.Request) {
		s.ResetCounters()
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("POST /sim/faults", func(w http.ResponseWriter, r *http.Request) {
		var f struct {
			Fault
			Latency string `json:"latency"`
		}
		if !decode(w, r, &f) {
			return
		}
		if f.Latency != "" {
			d, err := time.ParseDuration(f.Latency)
			if err != nil {
				writeJSON(w, http.StatusBadRequest, map[string]string{"error": "latency: " + err.Error()})
				return
			}
			f.Fault.Latency = d
		}
		s.AddFault(f.Fault)
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("DELETE /sim/faults", func(w http.ResponseWriter, r *http.Request) {
		s.ClearFaults()
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("POST /sim/revoke-refresh-token", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Token string `json:"token"`
		}
		if !decode(w, r, &req) {
			return
		}
		writeJSON(w, http.StatusOK, map[string]bool{"revoked": s.RevokeRefreshToken(req.Token)})
	})
}

func decode(w http.ResponseWriter, r *http.Request, v interface{}) bool {
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(v); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid JSON: " + err.Error()})
		return false
	}
	return true
}

// scopeList accepts "a,b" or ["a","b"].
func scopeList(raw json.RawMessage) []string {
	var list []string
	if json.Unmarshal(raw, &list) == nil {
		return list
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return splitScopes(strings.TrimSpace(s))
	}
	return nil
}
