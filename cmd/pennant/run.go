package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/cluster"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
	"github.com/pennant/pennant/internal/controller"
	"github.com/pennant/pennant/internal/kubecache"
	"github.com/pennant/pennant/internal/notify"
	"github.com/pennant/pennant/internal/router"
	"github.com/pennant/pennant/internal/telemetry"
	"github.com/pennant/pennant/internal/workload"
)

// fieldOwner is the field manager of every object Pennant writes.
const fieldOwner = "flagger"

func run(ctx context.Context, o options) error {
	log := setupLogging(o, os.Stderr)

	restConfig, err := clientcmd.BuildConfigFromFlags(o.master, o.kubeconfig)
	if err != nil {
		return fmt.Errorf("building kubeconfig: %w", err)
	}
	restConfig.QPS, restConfig.Burst = float32(o.kubeconfigQPS), o.kubeconfigBurst

	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return err
	}
	if err := flaggerv1.AddToScheme(scheme); err != nil {
		return err
	}
	if err := router.AddToScheme(scheme); err != nil {
		return err
	}
	// The manager's cache does not exist before the manager; the readiness check reaches it late.
	var mgr ctrl.Manager
	ready := func(req *http.Request) error {
		if mgr == nil {
			return fmt.Errorf("manager not created yet")
		}
		return cachesSynced(mgr.GetCache())(req)
	}
	mgrOpts := ctrl.Options{
		Scheme: scheme,
		Metrics: metricsserver.Options{BindAddress: ":" + strconv.Itoa(o.port), ExtraHandlers: map[string]http.Handler{
			"/healthz": healthHandler(), "/readyz": readyHandler(ready),
		}},
		HealthProbeBindAddress: o.healthProbeBindAddress,
		// Room for a release's events (client-go's defaults drop and combine them).
		EventBroadcaster: controller.NewEventBroadcaster(), //nolint:staticcheck // the process lives as long as the manager
		// KEDA ScaledObjects are read as unstructured objects: serve them from the cache too.
		// Secrets and ConfigMaps are not cached cluster-wide: NewCanaryReconciler reads them through
		// kubecache, which caches them without data in the namespaces it reads only. A read through
		// the manager's client goes to the API instead of filling a cache with every Secret.
		Client: client.Options{Cache: &client.CacheOptions{
			Unstructured: true,
			DisableFor:   []client.Object{&corev1.Secret{}, &corev1.ConfigMap{}},
		}},
	}
	// The controller never reads managedFields: keeping them out of the cache saves a large part of
	// every cached object's memory. Should a Secret or ConfigMap informer ever be started on the
	// manager's cache, it holds them without data.
	mgrOpts.Cache = cache.Options{
		DefaultTransform: cache.TransformStripManagedFields(),
		ByObject: map[client.Object]cache.ByObject{
			&corev1.Secret{}: {Transform: kubecache.Transform}, &corev1.ConfigMap{}: {Transform: kubecache.Transform},
		},
	}
	if err := controller.WatchShard(&mgrOpts.Cache, o.watchLabelSelector); err != nil {
		return err
	}
	withLeaderElection(&mgrOpts, o)
	if o.namespace != "" {
		mgrOpts.Cache.DefaultNamespaces = map[string]cache.Config{o.namespace: {}}
	}
	mgr, err = ctrl.NewManager(restConfig, mgrOpts)
	if err != nil {
		return fmt.Errorf("creating manager: %w", err)
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("caches", cachesSynced(mgr.GetCache())); err != nil {
		return err
	}
	meshCluster, err := newMeshCluster(o, scheme)
	if err != nil {
		return err
	}
	if meshCluster != nil {
		// NewCanaryReconciler adds the cluster to the manager; the readiness check waits for its cache too.
		if err := mgr.AddReadyzCheck("mesh-caches", cachesSynced(meshCluster.GetCache())); err != nil {
			return err
		}
	}
	recorder, err := telemetry.NewRecorder(metrics.Registry)
	if err != nil {
		return fmt.Errorf("registering metrics: %w", err)
	}
	recorder.SetInfo(version, o.meshProvider)
	if err := telemetry.RegisterPhaseCollector(metrics.Registry, mgr.GetClient()); err != nil {
		return fmt.Errorf("registering metrics: %w", err)
	}
	counters, err := telemetry.NewNotificationCounters(metrics.Registry)
	if err != nil {
		return fmt.Errorf("registering metrics: %w", err)
	}
	r, err := newReconciler(mgr, o, recorder, counters, meshCluster)
	if err != nil {
		return err
	}
	if err := r.SetupWithManager(ctx, mgr); err != nil {
		return fmt.Errorf("setting up the canary controller: %w", err)
	}
	log.Info("Starting Pennant", "version", version, "meshProvider", o.meshProvider)
	return mgr.Start(ctx)
}

// newReconciler wires the canary controller from the flags.
func newReconciler(mgr ctrl.Manager, o options, recorder *telemetry.Recorder, counters notify.Counters, mesh cluster.Cluster) (*controller.CanaryReconciler, error) {
	return controller.NewCanaryReconciler(mgr, controller.Config{
		MeshCluster:          mesh,
		Metrics:              recorder,
		NotificationCounters: counters,
		MetricsServer:        o.metricsServer,
		ClusterName:          o.clusterName,
		Routers: router.Options{
			FieldOwner:               fieldOwner,
			IngressAnnotationsPrefix: o.ingressAnnotationsPrefix,
			IngressClass:             o.ingressClass,
		},
		EventWebhook:             o.eventWebhook,
		EnableAmbientCredentials: o.enableAmbientCredentials,
		GlobalAlerts: notify.GlobalConfig{
			SlackURL: o.slackURL, SlackToken: o.slackToken, SlackProxyURL: o.slackProxyURL,
			SlackChannel: o.slackChannel, SlackUser: o.slackUser,
			MSTeamsURL: o.msteamsURL, MSTeamsProxyURL: o.msteamsProxyURL,
		},
		Options: controller.Options{
			MeshProvider:            o.meshProvider,
			MinInterval:             o.minAnalysisInterval,
			MaxConcurrentReconciles: o.threadiness,
			NoCrossNamespaceRefs:    o.noCrossNamespaceRefs,
			MaxConcurrentReleases:   o.maxConcurrentReleases,
		},
		Workload: workload.Options{
			SelectorLabels:       list(o.selectorLabels),
			IncludeLabelPrefix:   list(o.includeLabelPrefix),
			EnableConfigTracking: o.enableConfigTracking,
			FieldOwner:           fieldOwner,
		},
	})
}

// newMeshCluster connects to the service mesh's cluster of -kubeconfig-service-mesh (nil without
// it): the mesh providers' routing objects are read, written and watched there, as Flagger does.
// The manager starts its cache (NewCanaryReconciler adds it).
func newMeshCluster(o options, scheme *runtime.Scheme) (cluster.Cluster, error) {
	if o.kubeconfigServiceMesh == "" {
		return nil, nil
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", o.kubeconfigServiceMesh)
	if err != nil {
		return nil, fmt.Errorf("building -kubeconfig-service-mesh: %w", err)
	}
	cfg.QPS, cfg.Burst = float32(o.kubeconfigQPS), o.kubeconfigBurst
	cacheOpts := cache.Options{DefaultTransform: cache.TransformStripManagedFields()}
	if o.namespace != "" {
		cacheOpts.DefaultNamespaces = map[string]cache.Config{o.namespace: {}}
	}
	c, err := cluster.New(cfg, func(co *cluster.Options) {
		co.Scheme = scheme
		co.Cache = cacheOpts
		co.Client = client.Options{Cache: &client.CacheOptions{Unstructured: true}}
	})
	if err != nil {
		return nil, fmt.Errorf("connecting to the service mesh cluster: %w", err)
	}
	return c, nil
}

func healthHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("OK")) })
}
