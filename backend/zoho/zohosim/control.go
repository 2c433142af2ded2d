package zohosim

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"
)

// The control API under /sim/: plain JSON for scripts and `make dev`.
//
//	GET    /sim/health                   {"status":"ok"}
//	POST   /sim/clients                  {client_id?,client_secret?,dc?,redirect_uris?,multi_dc?,multi_org?} → the client
//	GET    /sim/clients/{id}             the client
//	POST   /sim/self-client              {client_id,scopes:[…]|"a,b",ttl_seconds?,user?} → {code,expires_in}
//	GET    /sim/counters[?client_id=…]   Counters
//	POST   /sim/counters/reset
//	GET    /sim/faults                   the installed faults
//	POST   /sim/faults                   a Fault (latency as "2s")
//	DELETE /sim/faults
//	POST   /sim/revoke-refresh-token     {token} → {"revoked":bool}
//	POST   /sim/evict-oldest-access-token {token: refresh token} → {"evicted":bool}
//	POST   /sim/connected-apps/remove    {client_id,user?} → {"refresh_tokens":n,"access_tokens":m}
//	                                     (the user removes the app under Connected Apps; 404 when
//	                                     the client is unknown or the user holds none of its tokens)
//	POST   /sim/device/approve           {user_code,user?,dc?} → {"status":"approved",…} (device.go)
//	POST   /sim/device/deny              {user_code} → {"status":"denied",…}
//	GET    /sim/device/pending[?client_id=…] {"user_codes":[…]} undecided, unexpired user codes
func (s *Server) controlRoutes(mux *http.ServeMux) {
	ok := func(w http.ResponseWriter) { writeJSON(w, http.StatusOK, map[string]string{"status": "ok"}) }

	mux.HandleFunc("GET /sim/health", func(w http.ResponseWriter, r *http.Request) { ok(w) })

	mux.HandleFunc("POST /sim/clients", func(w http.ResponseWriter, r *http.Request) {
		var c Client
		if !readJSON(w, r, &c) {
			return
		}
		for _, dc := range append([]string{c.DC}, c.MultiDC...) {
			if dc != "" && !knownDC(strings.ToLower(dc)) {
				badRequest(w, "unknown data center "+dc)
				return
			}
		}
		writeJSON(w, http.StatusOK, s.RegisterClient(c))
	})

	mux.HandleFunc("GET /sim/clients/{id}", func(w http.ResponseWriter, r *http.Request) {
		c, found := s.LookupClient(r.PathValue("id"))
		if !found {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "unknown client"})
			return
		}
		writeJSON(w, http.StatusOK, c)
	})

	mux.HandleFunc("POST /sim/self-client", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			ClientID   string          `json:"client_id"`
			Scopes     json.RawMessage `json:"scopes"`
			TTLSeconds int             `json:"ttl_seconds"`
			User       string          `json:"user"`
		}
		if !readJSON(w, r, &req) {
			return
		}
		scopes, err := scopeList(req.Scopes)
		if err != nil {
			badRequest(w, err.Error())
			return
		}
		ttl := time.Duration(req.TTLSeconds) * time.Second
		if ttl <= 0 {
			ttl = DefaultSelfClientCodeTTL
		}
		code, err := s.SelfClientCode(req.ClientID, req.User, scopes, ttl)
		if err != nil {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"code": code, "expires_in": int64(ttl / time.Second)})
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
		ok(w)
	})

	mux.HandleFunc("GET /sim/faults", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Faults())
	})

	mux.HandleFunc("POST /sim/faults", func(w http.ResponseWriter, r *http.Request) {
		var f Fault
		if !readJSON(w, r, &f) {
			return
		}
		if err := f.Validate(); err != nil {
			badRequest(w, err.Error())
			return
		}
		s.AddFault(f)
		ok(w)
	})

	mux.HandleFunc("DELETE /sim/faults", func(w http.ResponseWriter, r *http.Request) {
		s.ClearFaults()
		ok(w)
	})

	mux.HandleFunc("POST /sim/revoke-refresh-token", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Token string `json:"token"`
		}
		if readJSON(w, r, &req) {
			writeJSON(w, http.StatusOK, map[string]bool{"revoked": s.RevokeRefreshToken(req.Token)})
		}
	})

	mux.HandleFunc("POST /sim/evict-oldest-access-token", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Token string `json:"token"`
		}
		if readJSON(w, r, &req) {
			writeJSON(w, http.StatusOK, map[string]bool{"evicted": s.EvictOldestAccessToken(req.Token)})
		}
	})

	mux.HandleFunc("POST /sim/connected-apps/remove", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			ClientID string `json:"client_id"`
			User     string `json:"user"`
		}
		if !readJSON(w, r, &req) {
			return
		}
		if req.ClientID == "" {
			badRequest(w, "client_id is required")
			return
		}
		rts, ats, err := s.RemoveConnectedApp(req.ClientID, req.User)
		if err != nil {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]int{"refresh_tokens": rts, "access_tokens": ats})
	})
}

func badRequest(w http.ResponseWriter, msg string) {
	writeJSON(w, http.StatusBadRequest, map[string]string{"error": msg})
}

// readJSON decodes a request body of at most 1 MiB; an empty body is {}.
func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(v)
	if err != nil && !errors.Is(err, io.EOF) {
		badRequest(w, "invalid JSON: "+err.Error())
		return false
	}
	return true
}

// scopeList reads scopes given as ["a","b"] or "a,b".
func scopeList(raw json.RawMessage) ([]string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var list []string
	if json.Unmarshal(raw, &list) == nil {
		return list, nil
	}
	var str string
	if json.Unmarshal(raw, &str) == nil {
		return splitScopes(str), nil
	}
	return nil, errors.New(`scopes: want ["a","b"] or "a,b"`)
}
