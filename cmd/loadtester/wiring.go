package main

import (
	"context"
	"errors"
	"net"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/pennant/pennant/internal/loadtester/server"
)

// gateBackend is where gates are kept and who may change them.
// TODO(issue 10): the ConfigMap store and the token authorizer of internal/loadtester/gates.
func gateBackend(_ context.Context, o options, log *zap.Logger) (server.GateStore, server.RequestAuthorizer, error) {
	if o.gatesConfigMap != "" {
		log.Warn("gates are kept in memory: lost on restart and not shared by replicas")
	}
	return &server.MemoryGates{}, loopbackOnly{}, nil
}

// loopbackOnly lets only requests from the pod itself change gates.
type loopbackOnly struct{}

func (loopbackOnly) Allow(r *http.Request) error {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if ip := net.ParseIP(host); err == nil && ip != nil && ip.IsLoopback() {
		return nil
	}
	return errors.New("only requests from loopback may change gates")
}

// builtinEngines are the command lines run natively.
// TODO(issue 10): hey, from internal/loadtester/load.
func builtinEngines(_ prometheus.Registerer) ([]server.Engine, error) {
	return []server.Engine{server.GRPCHealthProbe{}}, nil
}
