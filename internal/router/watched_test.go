package router

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

// TestEveryRouterNamesWhatItWatches keeps the list of watched objects with the routers: every
// router that writes objects tells their kinds and names, and each object is of a kind it lists,
// so the controller has a watch for it.
func TestEveryRouterNamesWhatItWatches(t *testing.T) {
	cd := &flaggerv1.Canary{ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: "test"}, Spec: flaggerv1.CanarySpec{
		TargetRef:   flaggerv1.LocalObjectReference{Kind: "Deployment", Name: "podinfo"},
		Service:     flaggerv1.CanaryService{Port: 9898},
		IngressRef:  &flaggerv1.IngressReference{Name: "podinfo"},
		RouteRef:    &flaggerv1.RouteReference{Name: "podinfo"},
		UpstreamRef: &flaggerv1.CrossNamespaceObjectReference{Name: "shared", Namespace: "gloo-system"},
	}}
	for provider, rt := range NewRegistry(nil, Options{}, nil) {
		w, ok := rt.(Watched)
		if !ok {
			if _, nop := rt.(Nop); !nop {
				t.Errorf("%s: router %T does not implement Watched", provider, rt)
			}
			continue
		}
		kinds := map[string]bool{}
		for _, gvk := range w.WatchedKinds() {
			kinds[gvk.GroupKind().String()] = true
		}
		objects := w.WatchedObjects(cd)
		if provider != "appmesh" && len(objects) == 0 {
			t.Errorf("%s: no watched objects", provider)
		}
		for _, o := range objects {
			if !kinds[o.GroupKind.String()] {
				t.Errorf("%s: object %v of a kind not in WatchedKinds %v", provider, o, kinds)
			}
		}
	}
}

func TestWatchedReferences(t *testing.T) {
	cd := &flaggerv1.Canary{ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: "test"}, Spec: flaggerv1.CanarySpec{
		TargetRef:   flaggerv1.LocalObjectReference{Kind: "Deployment", Name: "podinfo"},
		Service:     flaggerv1.CanaryService{Port: 9898},
		IngressRef:  &flaggerv1.IngressReference{Name: "web"},
		RouteRef:    &flaggerv1.RouteReference{Name: "route"},
		UpstreamRef: &flaggerv1.CrossNamespaceObjectReference{Name: "shared", Namespace: "gloo-system"},
	}}
	has := func(refs []ObjectRef, want ObjectRef) bool {
		for _, r := range refs {
			if r == want {
				return true
			}
		}
		return false
	}
	for _, tc := range []struct {
		rt   Watched
		want ObjectRef
	}{
		{NewNginx(nil, Options{}), ObjectRef{GroupKind: ingressGVK.GroupKind(), Namespace: "test", Name: "web"}},
		{NewNginx(nil, Options{}), ObjectRef{GroupKind: ingressGVK.GroupKind(), Namespace: "test", Name: "web-canary"}},
		{NewAPISIX(nil, Options{}), ObjectRef{GroupKind: ApisixRouteGVK.GroupKind(), Namespace: "test", Name: "route"}},
		{NewGloo(nil, Options{}), ObjectRef{GroupKind: glooUpstreamGVK.GroupKind(), Namespace: "gloo-system", Name: "shared"}},
		{NewKuma(nil, Options{}), ObjectRef{GroupKind: kumaTrafficRouteGVK.GroupKind(), Name: "podinfo"}},
	} {
		if got := tc.rt.WatchedObjects(cd); !has(got, tc.want) {
			t.Errorf("%T: %v lacks %v", tc.rt, got, tc.want)
		}
	}
}
