package controller

import (
	"context"

	"k8s.io/apimachinery/pkg/types"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

// Field indexes on canaries, so that a change of a workload or config finds its canaries in the cache.
const (
	targetIndex     = "pennant.targetRef"
	configIndex     = "pennant.trackedConfigs"
	autoscalerIndex = "pennant.autoscalerRef"
	// routingIndex holds the objects each canary's router reads and writes (routingObjectKey).
	routingIndex = "pennant.routingObjects"
)

// SetupWithManager registers the indexes and watches: canaries (spec changes), their targets,
// primaries, Services, autoscalers, tracked ConfigMaps/Secrets, and the routing objects each
// canary's router reads and writes (those of kinds served by CRDs while their CRDs are installed).
func (r *CanaryReconciler) SetupWithManager(ctx context.Context, mgr ctrl.Manager) error {
	r.wakeups = make(chan event.GenericEvent, wakeupBuffer)
	r.checks = newBackgroundChecks(r.Hooks, r.Analyzer, r.wakeUp, r.tasks)
	idx := mgr.GetFieldIndexer()
	if err := idx.IndexField(ctx, &flaggerv1.Canary{}, targetIndex, func(o client.Object) []string {
		cd := o.(*flaggerv1.Canary)
		return []string{cd.Spec.TargetRef.Kind + "/" + cd.Spec.TargetRef.Name}
	}); err != nil {
		return err
	}
	if err := idx.IndexField(ctx, &flaggerv1.Canary{}, configIndex, trackedConfigKeys); err != nil {
		return err
	}
	if err := idx.IndexField(ctx, &flaggerv1.Canary{}, autoscalerIndex, func(o client.Object) []string {
		if ref := o.(*flaggerv1.Canary).Spec.AutoscalerRef; ref != nil {
			return []string{ref.Kind + "/" + ref.Name}
		}
		return nil
	}); err != nil {
		return err
	}
	if err := idx.IndexField(ctx, &flaggerv1.Canary{}, routingIndex, r.routingObjectKeys); err != nil {
		return err
	}
	b := ctrl.NewControllerManagedBy(mgr).
		For(&flaggerv1.Canary{}, builder.WithPredicates(predicate.Or(
			predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		Owns(&appsv1.Deployment{}).
		Owns(&appsv1.DaemonSet{}).
		Owns(&corev1.Service{}).
		Watches(&appsv1.Deployment{}, r.byIndex(targetIndex, "Deployment")).
		Watches(&appsv1.DaemonSet{}, r.byIndex(targetIndex, "DaemonSet")).
		Watches(&corev1.Service{}, r.byIndex(targetIndex, "Service")).
		WatchesRawSource(r.configs.Source(&corev1.ConfigMap{}, r.byIndex(configIndex, "configmap"))).
		WatchesRawSource(r.configs.Source(&corev1.Secret{}, r.byIndex(configIndex, "secret"))).
		Watches(&autoscalingv2.HorizontalPodAutoscaler{}, r.byIndex(autoscalerIndex, "HorizontalPodAutoscaler")).
		WatchesRawSource(source.Channel(r.wakeups, &handler.EnqueueRequestForObject{})).
		WithOptions(controller.Options{MaxConcurrentReconciles: max(1, r.Options.MaxConcurrentReconciles)}).
		Named("canary")
	clusters := r.routingWatches(mgr)
	for _, cw := range clusters {
		for _, w := range cw.builtIn {
			b = b.WatchesRawSource(source.Kind(cw.cluster.GetCache(), newObject(cw.cluster.GetScheme(), w.gvk), w.handler))
		}
	}
	c, err := b.Build(r)
	if err != nil {
		return err
	}
	for _, cw := range clusters {
		if err := mgr.Add(newOptionalKinds(cw.cluster, c, r.absent, r.wakeKind, cw.optional)); err != nil {
			return err
		}
	}
	return nil
}

func trackedConfigKeys(o client.Object) []string {
	cd := o.(*flaggerv1.Canary)
	if cd.Status.TrackedConfigs == nil {
		return nil
	}
	keys := make([]string, 0, len(*cd.Status.TrackedConfigs))
	for k := range *cd.Status.TrackedConfigs {
		keys = append(keys, k)
	}
	return keys
}

// byIndex maps an object to the canaries whose index holds "<prefix>/<name>" in its namespace.
func (r *CanaryReconciler) byIndex(index, prefix string) handler.EventHandler {
	return handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
		var list flaggerv1.CanaryList
		if err := r.Client.List(ctx, &list, client.InNamespace(o.GetNamespace()),
			client.MatchingFields{index: prefix + "/" + o.GetName()}); err != nil {
			return nil
		}
		reqs := make([]reconcile.Request, 0, len(list.Items))
		for i := range list.Items {
			reqs = append(reqs, reconcile.Request{NamespacedName: key(&list.Items[i])})
		}
		return reqs
	})
}

// wakeupBuffer bounds the background results waiting to wake their canaries; when it is full the
// machine's fallback requeue picks the result up instead.
const wakeupBuffer = 1024

// wakeUp enqueues a canary whose background check has finished, without ever blocking.
func (r *CanaryReconciler) wakeUp(k types.NamespacedName) {
	cd := &flaggerv1.Canary{}
	cd.Name, cd.Namespace = k.Name, k.Namespace
	select {
	case r.wakeups <- event.GenericEvent{Object: cd}:
	default:
	}
}
