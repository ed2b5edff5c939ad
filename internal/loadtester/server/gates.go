package server

import (
	"context"
	"net/http"
	"sync"
)

// GateKind tells the two kinds of manual gates apart: the approval gate (/gate/*) and the
// rollback gate (/rollback/*).
type GateKind string

const (
	// ApprovalGate is the gate asked by confirm-* webhooks through /gate/check.
	ApprovalGate GateKind = "gate"
	// RollbackGate is the gate asked by rollback webhooks through /rollback/check.
	RollbackGate GateKind = "rollback"
)

// GateStore keeps whether each canary's gates are open. The load tester's store keeps them in the
// cluster (internal/loadtester/gates), so that they survive a restart and replicas share them.
type GateStore interface {
	IsOpen(ctx context.Context, kind GateKind, namespace, name string) (bool, error)
	Set(ctx context.Context, kind GateKind, namespace, name string, open bool) error
}

// RequestAuthorizer decides who may open and close gates (internal/loadtester/gates.Authorizer:
// loopback, or a bearer token). A nil error allows the request.
type RequestAuthorizer interface {
	Allow(r *http.Request) error
}

// MemoryGates is a GateStore in memory, as Flagger's load tester keeps its gates: lost on restart
// and not shared by replicas. For tests, and for -gates-configmap="".
type MemoryGates struct {
	mu   sync.Mutex
	open map[memoryGateKey]bool
}

type memoryGateKey struct {
	kind            GateKind
	namespace, name string
}

// IsOpen tells whether the gate is open; gates start closed.
func (m *MemoryGates) IsOpen(_ context.Context, kind GateKind, namespace, name string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.open[memoryGateKey{kind, namespace, name}], nil
}

// Set opens or closes the gate.
func (m *MemoryGates) Set(_ context.Context, kind GateKind, namespace, name string, open bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.open == nil {
		m.open = map[memoryGateKey]bool{}
	}
	m.open[memoryGateKey{kind, namespace, name}] = open
	return nil
}

// gateCheck answers a gate check: 200 Approved when open, 403 Forbidden when closed (Flagger's
// answers), 500 when the store cannot be read (the webhook fails; a release is not let through).
func (s *Server) gateCheck(kind GateKind) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, ok := s.payload(w, r)
		if !ok {
			return
		}
		open, err := s.cfg.Gates.IsOpen(r.Context(), kind, p.Namespace, p.Name)
		if err != nil {
			s.log.Error("reading the gate failed", canaryField(p), errField(err))
			http.Error(w, "reading the "+string(kind)+" gate failed: "+err.Error(), http.StatusInternalServerError)
			return
		}
		if kind == ApprovalGate {
			s.log.Sugar().Infof("%s gate check: approved %v", canaryKey(p), open)
		} else {
			s.log.Sugar().Infof("rollback.%s rollback check: approved %v", canaryKey(p), open)
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
func (s *Server) gateChange(kind GateKind, open bool) http.HandlerFunc {
	verb := map[bool]string{true: "opened", false: "closed"}[open]
	return func(w http.ResponseWriter, r *http.Request) {
		if err := s.cfg.GateAuthorizer.Allow(r); err != nil {
			s.log.Sugar().Warnf("refused to change the %s gate for %s: %v", kind, r.RemoteAddr, err)
			http.Error(w, "changing gates is not allowed: "+err.Error(), http.StatusForbidden)
			return
		}
		p, ok := s.payload(w, r)
		if !ok {
			return
		}
		if err := s.cfg.Gates.Set(r.Context(), kind, p.Namespace, p.Name, open); err != nil {
			s.log.Error("changing the gate failed", canaryField(p), errField(err))
			http.Error(w, "changing the "+string(kind)+" gate failed: "+err.Error(), http.StatusInternalServerError)
			return
		}
		if kind == ApprovalGate {
			s.log.Sugar().Infof("%s gate %s", canaryKey(p), verb)
		} else {
			s.log.Sugar().Infof("rollback.%s rollback %s", canaryKey(p), verb)
		}
		w.WriteHeader(http.StatusAccepted)
	}
}
