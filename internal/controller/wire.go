package controller

import (
	"time"

	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/pennant/pennant/internal/notify"
	"github.com/pennant/pennant/internal/router"
	"github.com/pennant/pennant/internal/webhooks"
	"github.com/pennant/pennant/internal/workload"
)

// Config is everything NewCanaryReconciler needs besides the manager.
type Config struct {
	Options  Options
	Workload workload.Options
	// Notifier defaults to dropping alerts; Metrics to recording nothing; Analyzer to failing any
	// canary that declares metric checks.
	Notifier notify.Notifier
	Metrics  Recorder
	Analyzer Analyzer
}

// NewCanaryReconciler wires the canary controller with the manager's cached client and recorder.
func NewCanaryReconciler(mgr ctrl.Manager, cfg Config) *CanaryReconciler {
	c := mgr.GetClient()
	workloads := workload.NewFactory(c, cfg.Workload)
	r := &CanaryReconciler{
		Client:      c,
		Workloads:   workloads,
		KubeRouter:  router.NewKubernetesRouter(c, workloads.Selector, router.KubernetesOptions{FieldOwner: cfg.Workload.FieldOwner}),
		MeshRouters: router.Registry{"kubernetes": router.Nop{}},
		Hooks:       webhooks.NewCaller(),
		Analyzer:    cfg.Analyzer,
		Notifier:    cfg.Notifier,
		Announcer:   Announcer{Recorder: mgr.GetEventRecorderFor("flagger"), Log: ctrl.Log.WithName("canary")},
		Metrics:     cfg.Metrics,
		Options:     cfg.Options,
		Now:         time.Now,
	}
	if r.Analyzer == nil {
		r.Analyzer = NoMetricProviders{}
	}
	if r.Notifier == nil {
		r.Notifier = notify.Nop{}
	}
	if r.Metrics == nil {
		r.Metrics = NopRecorder{}
	}
	return r
}
