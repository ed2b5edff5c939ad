package controller

// Watches of objects whose kinds may not exist: the routing objects of every provider, the objects
// canaries reference (spec.ingressRef, spec.upstreamRef, spec.routeRef), Knative Services and KEDA
// ScaledObjects. A kind served by a CustomResourceDefinition is watched only while that CRD is
// Established and serves the version; a CRD installed after the controller started gets its watch
// then, without a restart, and one removed has its informer stopped (no error loop of a reflector
// listing a resource that is gone).

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	toolscache "k8s.io/client-go/tools/cache"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/controller-runtime/pkg/cluster"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/source"
)

var crdGVK = apiextensionsv1.SchemeGroupVersion.WithKind("CustomResourceDefinition")

// kindWatch is one kind to watch on a cluster and what its events wake.
type kindWatch struct {
	gvk     schema.GroupVersionKind
	handler handler.EventHandler
}

// optionalKinds watches, on one cluster, kinds served by CustomResourceDefinitions that may come
// and go. It follows the CRDs with a metadata-only informer and reads a CRD in full (one API
// request) only when one of the groups it watches changes, to see whether it is Established and
// which versions it serves.
type optionalKinds struct {
	cluster cluster.Cluster
	ctrl    controller.Controller
	watches []kindWatch
	absent  *absentKinds
	// installed is called when a kind becomes available: canaries waiting for it are woken.
	installed func(schema.GroupVersionKind)

	mu      sync.Mutex
	ctx     context.Context
	started map[schema.GroupVersionKind]bool
	// byCRD remembers the kinds watched of each CRD name, for its deletion (whose metadata does not
	// tell the kind).
	byCRD map[string][]schema.GroupVersionKind
}

func newOptionalKinds(cl cluster.Cluster, c controller.Controller, absent *absentKinds, installed func(schema.GroupVersionKind), watches []kindWatch) *optionalKinds {
	return &optionalKinds{
		cluster: cl, ctrl: c, watches: watches, absent: absent, installed: installed,
		started: map[schema.GroupVersionKind]bool{}, byCRD: map[string][]schema.GroupVersionKind{},
	}
}

// Start registers the CRD informer's handler and waits for the manager to stop.
func (w *optionalKinds) Start(ctx context.Context) error {
	w.mu.Lock()
	w.ctx = ctx
	w.mu.Unlock()
	crds := &metav1.PartialObjectMetadata{}
	crds.SetGroupVersionKind(crdGVK)
	inf, err := w.cluster.GetCache().GetInformer(ctx, crds)
	if err != nil {
		return err
	}
	reg, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { w.changed(o) },
		UpdateFunc: func(_, o any) { w.changed(o) },
		DeleteFunc: w.deleted,
	})
	if err != nil {
		return err
	}
	<-ctx.Done()
	return inf.RemoveEventHandler(reg)
}

// crdReadTimeout bounds the read of one changed CRD.
const crdReadTimeout = 30 * time.Second

// changed looks at a CRD that was added or changed, when it is of a group watched here.
func (w *optionalKinds) changed(o any) {
	obj, ok := o.(client.Object)
	if !ok || len(w.kindsOfCRD(obj.GetName())) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(w.context(), crdReadTimeout)
	defer cancel()
	crd := &unstructured.Unstructured{}
	crd.SetGroupVersionKind(crdGVK)
	err := w.cluster.GetAPIReader().Get(ctx, client.ObjectKey{Name: obj.GetName()}, crd)
	if apierrors.IsNotFound(err) {
		w.stopAll(obj.GetName())
		return
	}
	if err != nil {
		ctrl.Log.WithName("watches").Error(err, "reading a CustomResourceDefinition", "name", obj.GetName())
		return
	}
	group, _, _ := unstructured.NestedString(crd.Object, "spec", "group")
	kind, _, _ := unstructured.NestedString(crd.Object, "spec", "names", "kind")
	serving := servedKinds(crd)
	for _, gvk := range w.kindsOfCRD(obj.GetName()) {
		switch {
		case gvk.Group != group || gvk.Kind != kind:
		case serving[gvk]:
			w.start(obj.GetName(), gvk)
		default:
			w.stop(obj.GetName(), gvk)
		}
	}
}

func (w *optionalKinds) deleted(o any) {
	if d, ok := o.(toolscache.DeletedFinalStateUnknown); ok {
		o = d.Obj
	}
	if obj, ok := o.(client.Object); ok {
		w.stopAll(obj.GetName())
	}
}

// kindsOfCRD lists the watched kinds of the group of a CRD named "<plural>.<group>".
func (w *optionalKinds) kindsOfCRD(name string) []schema.GroupVersionKind {
	var out []schema.GroupVersionKind
	for _, kw := range w.watches {
		if strings.HasSuffix(name, "."+kw.gvk.Group) && !strings.Contains(strings.TrimSuffix(name, "."+kw.gvk.Group), ".") {
			out = append(out, kw.gvk)
		}
	}
	return out
}

// servedKinds are the kinds and versions an Established CRD serves (none when it is not).
func servedKinds(crd *unstructured.Unstructured) map[schema.GroupVersionKind]bool {
	var typed apiextensionsv1.CustomResourceDefinition
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(crd.Object, &typed); err != nil {
		return nil
	}
	established := false
	for _, c := range typed.Status.Conditions {
		if c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue {
			established = true
		}
	}
	if !established || typed.DeletionTimestamp != nil {
		return nil
	}
	out := map[schema.GroupVersionKind]bool{}
	for _, v := range typed.Spec.Versions {
		if v.Served {
			out[schema.GroupVersionKind{Group: typed.Spec.Group, Version: v.Name, Kind: typed.Spec.Names.Kind}] = true
		}
	}
	return out
}

func (w *optionalKinds) context() context.Context {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.ctx
}

// start adds the watch of a kind to the running controller, once.
func (w *optionalKinds) start(crdName string, gvk schema.GroupVersionKind) {
	w.mu.Lock()
	if w.started[gvk] {
		w.mu.Unlock()
		return
	}
	var h handler.EventHandler
	for _, kw := range w.watches {
		if kw.gvk == gvk {
			h = kw.handler
		}
	}
	obj := newObject(w.cluster.GetScheme(), gvk)
	if err := w.ctrl.Watch(source.Kind(w.cluster.GetCache(), obj, h)); err != nil {
		w.mu.Unlock()
		ctrl.Log.WithName("watches").Error(err, "watching", "kind", gvk.String())
		return
	}
	w.started[gvk] = true
	w.byCRD[crdName] = append(w.byCRD[crdName], gvk)
	w.absent.set(gvk.GroupKind(), false)
	w.mu.Unlock()
	ctrl.Log.WithName("watches").V(1).Info("watching", "kind", gvk.String())
	w.installed(gvk)
}

// stop removes the informer of a kind whose CRD is gone or no longer serves it: its reflector would
// otherwise list a missing resource again and again. Reads of the kind fail as not installed
// (absentKinds) instead of starting an informer that never syncs.
func (w *optionalKinds) stop(crdName string, gvk schema.GroupVersionKind) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.absent.set(gvk.GroupKind(), true)
	if !w.started[gvk] {
		return
	}
	delete(w.started, gvk)
	w.byCRD[crdName] = removeKind(w.byCRD[crdName], gvk)
	if err := w.cluster.GetCache().RemoveInformer(w.ctx, newObject(w.cluster.GetScheme(), gvk)); err != nil {
		ctrl.Log.WithName("watches").Error(err, "removing the informer", "kind", gvk.String())
	}
	ctrl.Log.WithName("watches").V(1).Info("stopped watching: CustomResourceDefinition removed", "kind", gvk.String())
}

// stopAll stops the watches of the kinds a deleted CRD served.
func (w *optionalKinds) stopAll(crdName string) {
	w.mu.Lock()
	kinds := append([]schema.GroupVersionKind(nil), w.byCRD[crdName]...)
	w.mu.Unlock()
	for _, gvk := range kinds {
		w.stop(crdName, gvk)
	}
}

func removeKind(kinds []schema.GroupVersionKind, gvk schema.GroupVersionKind) []schema.GroupVersionKind {
	out := kinds[:0]
	for _, k := range kinds {
		if k != gvk {
			out = append(out, k)
		}
	}
	return out
}

// newObject is an empty object of a kind: typed when the scheme knows it (the routers read Istio and
// Gateway API objects typed: the watch then shares their informer), unstructured otherwise.
func newObject(s *runtime.Scheme, gvk schema.GroupVersionKind) client.Object {
	if s.Recognizes(gvk) {
		if o, err := s.New(gvk); err == nil {
			if obj, ok := o.(client.Object); ok {
				return obj
			}
		}
	}
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(gvk)
	return u
}

// absentKinds are the kinds whose CRD was removed while they were watched. Their informers are
// stopped, so a read must not start a new one: the REST mapper still knows the kind, the informer
// would never sync and the read would block. absentClient fails such reads at once instead.
type absentKinds struct {
	mu    sync.RWMutex
	kinds map[schema.GroupKind]bool
	n     atomic.Int32
}

func newAbsentKinds() *absentKinds { return &absentKinds{kinds: map[schema.GroupKind]bool{}} }

func (a *absentKinds) set(gk schema.GroupKind, absent bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if absent {
		a.kinds[gk] = true
	} else {
		delete(a.kinds, gk)
	}
	a.n.Store(int32(len(a.kinds)))
}

// check returns a NoKindMatchError for an object of an absent kind.
func (a *absentKinds) check(s *runtime.Scheme, obj runtime.Object) error {
	if a.n.Load() == 0 {
		return nil
	}
	gvk, err := apiutil.GVKForObject(obj, s)
	if err != nil {
		return nil
	}
	gvk.Kind = strings.TrimSuffix(gvk.Kind, "List")
	a.mu.RLock()
	absent := a.kinds[gvk.GroupKind()]
	a.mu.RUnlock()
	if absent {
		return &meta.NoKindMatchError{GroupKind: gvk.GroupKind(), SearchedVersions: []string{gvk.Version}}
	}
	return nil
}

// absentClient is a client whose reads of absent kinds fail as not installed.
type absentClient struct {
	client.Client
	absent *absentKinds
}

func (c absentClient) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if err := c.absent.check(c.Scheme(), obj); err != nil {
		return err
	}
	return c.Client.Get(ctx, key, obj, opts...)
}

func (c absentClient) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	if err := c.absent.check(c.Scheme(), list); err != nil {
		return err
	}
	return c.Client.List(ctx, list, opts...)
}
