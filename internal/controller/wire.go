package controller

import (
	"context"
	"time"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/cluster"

	"github.com/pennant/pennant/internal/analysis"
	"github.com/pennant/pennant/internal/kubecache"
	"github.com/pennant/pennant/internal/notify"
	"github.com/pennant/pennant/internal/router"
	"github.com/pennant/pennant/internal/webhooks"
	"github.com/pennant/pennant/internal/workload"
)

// Config is everything NewCanaryReconciler needs besides the manager.
type Config struct {
	Options  Options
	Workload workload.Options
	// Routers are the router settings (-ingress-annotations-prefix, -ingress-class).
	Routers router.Options
	// MetricsServer is the Prometheus of the builtin checks (-metrics-server).
	MetricsServer string
	// GlobalAlerts are the -slack-* and -msteams-* flags: where alerts of canaries without
	// analysis.alerts go.
	GlobalAlerts notify.GlobalConfig
	// ClusterName is added to alerts (-cluster-name).
	ClusterName string
	// EventWebhook receives every event of canaries without event webhooks (-event-webhook).
	EventWebhook string
	// NotificationCounters count dropped and failed notifications (nil: not counted).
	NotificationCounters notify.Counters
	// EnableAmbientCredentials (-enable-ambient-cloud-credentials) lets the Stackdriver and
	// CloudWatch providers use the controller's own cloud identity, towards the vendor's API only.
	EnableAmbientCredentials bool
	// Notifier defaults to dropping alerts; Metrics to recording nothing; Analyzer to the metric
	// analysis of internal/analysis reading through the manager's cache (Secrets: kubecache.Reader).
	Notifier notify.Notifier
	Metrics  Recorder
	Analyzer Analyzer
	// MeshCluster, when set (-kubeconfig-service-mesh), is the cluster of the service mesh: the
	// routers of the mesh providers (all but nginx, skipper and knative, as Flagger's) read, write
	// and watch their objects there; workloads, Services and canaries stay on the manager's cluster.
	// NewCanaryReconciler adds it to the manager, which starts its cache.
	MeshCluster cluster.Cluster
}

// NewCanaryReconciler wires the canary controller with the manager's cached client and recorder,
// and adds the owner of its background tasks, the cache of ConfigMaps and Secrets and the alert
// dispatcher to the manager.
//
// ConfigMaps and Secrets are never read through the manager's cache: kubecache.Configs caches them,
// without their data, only in the namespaces where something reads them, and a kubecache.Reader
// over it reads them in full for config copies, metric providers and alert providers.
func NewCanaryReconciler(mgr ctrl.Manager, cfg Config) (*CanaryReconciler, error) {
	absent := newAbsentKinds()
	c := client.Client(absentClient{Client: mgr.GetClient(), absent: absent})
	mesh := c
	if cfg.MeshCluster != nil {
		if err := mgr.Add(cfg.MeshCluster); err != nil {
			return nil, err
		}
		mesh = meshClient(mgr, cfg.MeshCluster, absent)
	}
	configs := kubecache.NewConfigs(mgr)
	configs.Keep = func(ctx context.Context, namespace string) bool {
		var canaries flaggerv1.CanaryList
		err := c.List(ctx, &canaries, client.InNamespace(namespace))
		return err != nil || len(canaries.Items) > 0
	}
	if err := mgr.Add(configs); err != nil {
		return nil, err
	}
	configData := kubecache.NewReader(configs, mgr.GetAPIReader())
	workloads := workload.NewFactory(c, cfg.Workload)
	workloads.UseConfigCache(configs, configData)
	r := &CanaryReconciler{
		Client:      c,
		Workloads:   workloads,
		KubeRouter:  router.NewKubernetesRouter(c, workloads.Selector, router.KubernetesOptions{FieldOwner: cfg.Workload.FieldOwner}),
		MeshRouters: router.NewRegistryOn(c, mesh, cfg.Routers, workloads.Selector),
		Hooks:       webhooks.NewCaller(),
		Analyzer:    cfg.Analyzer,
		Notifier:    cfg.Notifier,
		// The core/v1 event recorder, deprecated in controller-runtime, on purpose: its events show
		// "From: flagger" in kubectl describe and aggregate as Flagger's do.
		Announcer: Announcer{Recorder: mgr.GetEventRecorderFor("flagger"), Log: ctrl.Log.WithName("canary")}, //nolint:staticcheck

		Metrics:  cfg.Metrics,
		Options:  cfg.Options,
		Now:      time.Now,
		tasks:    newCanaryTasks(),
		configs:  configs,
		releases: newReleaseSlots(cfg.Options.MaxConcurrentReleases, mgr.GetClient()),

		apiReader: mgr.GetAPIReader(),

		meshCluster: cfg.MeshCluster,
		absent:      absent,
	}
	// The manager's stop (shutdown, lost leadership) cancels the background tasks and waits for them.
	if err := mgr.Add(r.tasks); err != nil {
		return nil, err
	}
	if r.Metrics == nil {
		r.Metrics = NopRecorder{}
	}
	if r.Analyzer == nil {
		a := analysis.New(configData, cfg.MetricsServer, cfg.Options.MeshProvider)
		a.NoCrossNamespaceRefs = cfg.Options.NoCrossNamespaceRefs
		a.AllowAmbientCredentials = cfg.EnableAmbientCredentials
		a.Kube = c // the keptn metric provider's KeptnMetrics and Analyses
		if o, ok := r.Metrics.(analysis.Observer); ok {
			a.Observer = o
		}
		r.Analyzer = a
	}
	if r.Notifier == nil {
		global, err := notify.NewGlobalSender(cfg.GlobalAlerts)
		if err != nil {
			return nil, err
		}
		d := notify.NewDispatcher(notify.Options{
			Providers:    c,
			Secrets:      configData,
			Global:       global,
			ClusterName:  cfg.ClusterName,
			EventWebhook: cfg.EventWebhook,
			Counters:     cfg.NotificationCounters,
			Report:       func(cd *flaggerv1.Canary, err error) { r.Announcer.Warn(cd, err.Error()) },
		})
		if err := mgr.Add(d); err != nil {
			return nil, err
		}
		r.Notifier = d
		r.Announcer.Events = d
	}
	return r, nil
}
