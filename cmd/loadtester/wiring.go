package main

import (
	"context"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"k8s.io/client-go/kubernetes"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/pennant/pennant/internal/loadtester/gates"
	"github.com/pennant/pennant/internal/loadtester/load"
	"github.com/pennant/pennant/internal/loadtester/server"
)

// gateBackend is where gates are kept (the ConfigMap -gates-configmap in the load tester's own
// namespace, or memory when it is "") and who may change them (loopback, or -gate-token-file's token).
func gateBackend(ctx context.Context, o options, log *zap.Logger) (gates.Store, server.RequestAuthorizer, error) {
	authorizer := gates.NewAuthorizer(o.gateTokenFile)
	if o.gatesConfigMap == "" {
		log.Warn("gates are kept in memory (-gates-configmap=\"\"): lost on restart and not shared by replicas")
		return gates.NewMemoryStore(0), authorizer, nil
	}
	ns, err := gates.OwnNamespace()
	if err != nil {
		return nil, nil, err
	}
	cfg, err := ctrl.GetConfig() // in the cluster, or $KUBECONFIG
	if err != nil {
		return nil, nil, fmt.Errorf("gates are kept in ConfigMap %s (-gates-configmap): %w", o.gatesConfigMap, err)
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, nil, err
	}
	store, err := gates.NewConfigMapStore(ctx, client, gates.ConfigMapOptions{Namespace: ns, Name: o.gatesConfigMap})
	if err != nil {
		return nil, nil, err
	}
	log.Sugar().Infof("gates are kept in ConfigMap %s/%s", ns, o.gatesConfigMap)
	return store, authorizer, nil
}

// builtinEngines run hey and grpc_health_probe lines natively: they need no -allow-exec.
func builtinEngines(reg prometheus.Registerer) ([]server.Engine, error) {
	return []server.Engine{server.HeyEngine{Metrics: load.NewMetrics(reg)}, server.GRPCHealthProbe{}}, nil
}
