package controller

import (
	"context"

	"k8s.io/apimachinery/pkg/runtime/schema"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/cluster"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
	"github.com/pennant/pennant/internal/router"
	"github.com/pennant/pennant/internal/workload"
)

// routingObjectKey is how routingIndex names an object: "<Kind>.<group>/<namespace>/<name>". The
// version is left out: an event of any version maps to the same canaries.
func routingObjectKey(gk schema.GroupKind, namespace, name string) string {
	return gk.String() + "/" + namespace + "/" + name
}

// routingObjectKeys indexes a canary by the objects its router reads and writes, and by its
// Knative Service target. The index is the only way from a routing object to its canaries: owner
// references would miss the objects that are only read (references), Kuma's cluster-scoped
// TrafficRoutes (which have none) and objects on the service mesh's cluster.
func (r *CanaryReconciler) routingObjectKeys(o client.Object) []string {
	cd := o.(*flaggerv1.Canary)
	var keys []string
	if rt, err := r.MeshRouters.For(r.provider(cd)); err == nil {
		if w, ok := rt.(router.Watched); ok {
			for _, ref := range w.WatchedObjects(cd) {
				keys = append(keys, routingObjectKey(ref.GroupKind, ref.Namespace, ref.Name))
			}
		}
	}
	if cd.IsKnativeTarget() {
		keys = append(keys, routingObjectKey(router.KnativeServiceGVK.GroupKind(), cd.Namespace, cd.Spec.TargetRef.Name))
	}
	return keys
}

// byRoutingObject maps an object of kind gk to the canaries whose router reads or writes it, in
// any namespace (a Gloo upstreamRef may point to another one; a Kuma TrafficRoute has none).
func (r *CanaryReconciler) byRoutingObject(gk schema.GroupKind) handler.EventHandler {
	return handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
		var list flaggerv1.CanaryList
		if err := r.Client.List(ctx, &list, client.MatchingFields{routingIndex: routingObjectKey(gk, o.GetNamespace(), o.GetName())}); err != nil {
			return nil
		}
		reqs := make([]reconcile.Request, 0, len(list.Items))
		for i := range list.Items {
			reqs = append(reqs, reconcile.Request{NamespacedName: key(&list.Items[i])})
		}
		return reqs
	})
}

// clusterWatches are the watches of one cluster: kinds every API server serves, watched from the
// start, and kinds served by CRDs, watched while their CRDs are installed.
type clusterWatches struct {
	cluster           cluster.Cluster
	builtIn, optional []kindWatch
}

// watchedKinds is implemented by router.Registry.
type watchedKinds interface {
	WatchedKinds() (kube, mesh []schema.GroupVersionKind)
}

// routingWatches lists the watches of the routers' kinds, on the main cluster and, with
// -kubeconfig-service-mesh, on the service mesh's cluster, plus KEDA ScaledObjects (autoscalerRef).
func (r *CanaryReconciler) routingWatches(mgr ctrl.Manager) []clusterWatches {
	var kube, mesh []schema.GroupVersionKind
	if reg, ok := r.MeshRouters.(watchedKinds); ok {
		kube, mesh = reg.WatchedKinds()
	}
	main := clusterWatches{cluster: mgr}
	other := clusterWatches{cluster: r.meshCluster}
	if r.meshCluster == nil {
		kube, mesh = append(kube, mesh...), nil
	}
	add := func(cw *clusterWatches, gvk schema.GroupVersionKind, h handler.EventHandler) {
		if router.IsBuiltIn(gvk) {
			cw.builtIn = append(cw.builtIn, kindWatch{gvk, h})
		} else {
			cw.optional = append(cw.optional, kindWatch{gvk, h})
		}
	}
	for _, gvk := range kube {
		add(&main, gvk, r.byRoutingObject(gvk.GroupKind()))
	}
	for _, gvk := range mesh {
		add(&other, gvk, r.byRoutingObject(gvk.GroupKind()))
	}
	add(&main, workload.ScaledObjectGVK, r.byIndex(autoscalerIndex, workload.KindScaledObject))
	if r.meshCluster == nil {
		return []clusterWatches{main}
	}
	return []clusterWatches{main, other}
}

// wakeKind wakes the canaries that use a kind which has just been installed: those whose objects
// do not exist yet get no watch event, and they may be waiting for the CRD with a long backoff.
func (r *CanaryReconciler) wakeKind(gvk schema.GroupVersionKind) {
	var list flaggerv1.CanaryList
	if err := r.Client.List(context.Background(), &list); err != nil {
		return
	}
	for i := range list.Items {
		if r.usesKind(&list.Items[i], gvk.GroupKind()) {
			r.wakeUp(key(&list.Items[i]))
		}
	}
}

func (r *CanaryReconciler) usesKind(cd *flaggerv1.Canary, gk schema.GroupKind) bool {
	if ref := cd.Spec.AutoscalerRef; ref != nil && gk == workload.ScaledObjectGVK.GroupKind() && ref.Kind == gk.Kind {
		return true
	}
	if cd.IsKnativeTarget() && gk == router.KnativeServiceGVK.GroupKind() {
		return true
	}
	rt, err := r.MeshRouters.For(r.provider(cd))
	if err != nil {
		return false
	}
	w, ok := rt.(router.Watched)
	if !ok {
		return false
	}
	for _, k := range w.WatchedKinds() {
		if k.GroupKind() == gk {
			return true
		}
	}
	return false
}
