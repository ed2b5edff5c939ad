package server

import (
	"net/http"

	"github.com/pennant/pennant/internal/loadtester/gates"
)

// RequestAuthorizer decides who may open and close gates (gates.Authorizer: loopback, or a bearer
// token). A nil error allows the request; the error's gates.HTTPStatus is the answer's status.
type RequestAuthorizer interface {
	Allow(r *http.Request) error
}

// gateCheck answers a gate check: 200 Approved when open, 403 Forbidden when closed (Flagger's
// answers), another status when the gate cannot be read (the webhook fails: nothing is let through).
func (s *Server) gateCheck(kind gates.Kind) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, ok := s.payload(w, r)
		if !ok {
			return
		}
		key := gates.Key{Namespace: p.Namespace, Name: p.Name}
		open, err := s.cfg.Gates.IsOpen(r.Context(), kind, key)
		if err != nil {
			s.log.Error("reading the gate failed", canaryField(p), errField(err))
			http.Error(w, "reading the "+string(kind)+" gate failed: "+err.Error(), gates.HTTPStatus(err))
			return
		}
		if kind == gates.Gate {
			s.log.Sugar().Infof("%s gate check: approved %v", key, open)
		} else {
			s.log.Sugar().Infof("rollback.%s rollback check: approved %v", key, open)
		}
		if !open {
			w.WriteHeader(http.StatusForbidden)
			_, _ = w.Write([]byte("Forbidden"))
			return
		}
		_, _ = w.Write([]byte("Approved"))
	}
}

// gateChange opens or closes a gate for a requester the gate authorizer allows: 202 as Flagger's.
func (s *Server) gateChange(kind gates.Kind, open bool) http.HandlerFunc {
	verb := map[bool]string{true: "opened", false: "closed"}[open]
	return func(w http.ResponseWriter, r *http.Request) {
		if err := s.cfg.GateAuthorizer.Allow(r); err != nil {
			s.log.Sugar().Warnf("refused to change a %s gate for %s: %v", kind, r.RemoteAddr, err)
			http.Error(w, "changing gates is not allowed: "+err.Error(), gates.HTTPStatus(err))
			return
		}
		p, ok := s.payload(w, r)
		if !ok {
			return
		}
		key := gates.Key{Namespace: p.Namespace, Name: p.Name}
		if err := s.cfg.Gates.Set(r.Context(), kind, key, open); err != nil {
			s.log.Error("changing the gate failed", canaryField(p), errField(err))
			http.Error(w, "changing the "+string(kind)+" gate failed: "+err.Error(), gates.HTTPStatus(err))
			return
		}
		if kind == gates.Gate {
			s.log.Sugar().Infof("%s gate %s", key, verb)
		} else {
			s.log.Sugar().Infof("rollback.%s rollback %s", key, verb)
		}
		w.WriteHeader(http.StatusAccepted)
	}
}
