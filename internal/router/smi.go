package router

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

// SMI TrafficSplit versions the SMIRouter can write.
const (
	SMIv1alpha1 = "v1alpha1"
	SMIv1alpha2 = "v1alpha2"
	SMIv1alpha3 = "v1alpha3"
)

const (
	smiGroup = "split.smi-spec.io"
	// smiIstioGatewaysAnnotation carries spec.service.gateways to the Istio SMI adapter (mesh "istio").
	smiIstioGatewaysAnnotation = "VirtualService.v1alpha3.networking.istio.io/spec.gateways"
)

// SMIRouter splits traffic with an SMI TrafficSplit (split.smi-spec.io) named after the apex Service:
//
//	spec.service:  spec.service.hosts[0], else the apex <svc>
//	spec.backends: [{service: <svc>-canary, weight}, {service: <svc>-primary, weight}]
//
// It serves the providers linkerd (v1alpha1), osm (v1alpha2) and smi:v1alpha1|v1alpha2|v1alpha3[:<mesh>].
// v1alpha1 weights are written as quantity strings ("90"), the JSON form of the resource.Quantity
// Flagger uses; v1alpha2 and v1alpha3 weights are integers. Canary and blue/green (weights 0/100) are
// supported; there is no A/B routing, mirroring or session affinity (the split has no match).
type SMIRouter struct {
	client  client.Client
	owner   string
	version string
	mesh    string
}

var (
	_ Interface = (*SMIRouter)(nil)
	_ Validator = (*SMIRouter)(nil)
)

// NewSMI returns the TrafficSplit router of apiVersion "v1alpha1", "v1alpha2" or "v1alpha3",
// optionally followed by ":<mesh>" as in the provider smi:v1alpha2:<mesh> (pass the provider without
// its "smi:" prefix). linkerd is NewSMI(c, o, "v1alpha1") and osm is NewSMI(c, o, "v1alpha2"). The
// mesh only matters for "istio", whose TrafficSplits carry spec.service.gateways in an annotation.
// Any other version makes every call fail with an InvalidSpecError.
func NewSMI(c client.Client, o Options, apiVersion string) *SMIRouter {
	version, mesh, _ := strings.Cut(apiVersion, ":")
	return &SMIRouter{client: c, owner: o.FieldOwner, version: version, mesh: mesh}
}

// Validate rejects an SMI version the router cannot write.
func (r *SMIRouter) Validate(*flaggerv1.Canary) error {
	switch r.version {
	case SMIv1alpha1, SMIv1alpha2, SMIv1alpha3:
		return nil
	}
	return Invalidf("SMI TrafficSplit version %q is not supported (supported: %s, %s, %s)",
		r.version, SMIv1alpha1, SMIv1alpha2, SMIv1alpha3)
}

func (r *SMIRouter) trafficSplit(cd *flaggerv1.Canary) *unstructured.Unstructured {
	return meshObject(schema.GroupVersionKind{Group: smiGroup, Version: r.version, Kind: "TrafficSplit"},
		cd.Namespace, cd.GetServiceName())
}

// Reconcile creates or updates the TrafficSplit, keeping the weights of an existing split that
// routes to both the primary and the canary (a new one sends everything to the primary).
func (r *SMIRouter) Reconcile(ctx context.Context, cd *flaggerv1.Canary) error {
	if err := r.Validate(cd); err != nil {
		return err
	}
	_, primary, canary := cd.GetServiceNames()
	ts := r.trafficSplit(cd)
	return upsert(ctx, r.client, r.owner, cd, ts, func(existing bool) error {
		primaryWeight, canaryWeight := 100, 0
		if existing {
			if p, c, ok := smiWeights(ts, primary, canary); ok {
				primaryWeight, canaryWeight = p, c
			}
		}
		meshStampGenerated(ts, cd)
		if r.mesh == "istio" && len(cd.Spec.Service.Gateways) > 0 {
			g, err := json.Marshal(cd.Spec.Service.Gateways)
			if err != nil {
				return err
			}
			ts.SetAnnotations(merge(ts.GetAnnotations(), map[string]string{smiIstioGatewaysAnnotation: string(g)}))
		}
		if err := unstructured.SetNestedField(ts.Object, smiService(cd), "spec", "service"); err != nil {
			return err
		}
		return r.setBackends(ts, cd, primaryWeight, canaryWeight)
	})
}

// smiService is the service the split applies to: the first host, else the apex Service.
func smiService(cd *flaggerv1.Canary) string {
	if len(cd.Spec.Service.Hosts) > 0 {
		return cd.Spec.Service.Hosts[0]
	}
	return cd.GetServiceName()
}

// SetRoutes writes the weights of the primary and canary backends when they differ from the
// current ones. mirrored is ignored: SMI has no mirroring.
func (r *SMIRouter) SetRoutes(ctx context.Context, cd *flaggerv1.Canary, primaryWeight, canaryWeight int, _ bool) error {
	if err := r.Validate(cd); err != nil {
		return err
	}
	ts := r.trafficSplit(cd)
	return upsert(ctx, r.client, r.owner, cd, ts, func(existing bool) error {
		if !existing {
			return fmt.Errorf("TrafficSplit %s.%s not found: Reconcile creates it", ts.GetName(), ts.GetNamespace())
		}
		return r.setBackends(ts, cd, primaryWeight, canaryWeight)
	})
}

// GetRoutes reads the weights of the primary and canary backends.
func (r *SMIRouter) GetRoutes(ctx context.Context, cd *flaggerv1.Canary) (primaryWeight, canaryWeight int, mirrored bool, err error) {
	if err := r.Validate(cd); err != nil {
		return 0, 0, false, err
	}
	_, primary, canary := cd.GetServiceNames()
	ts := r.trafficSplit(cd)
	if err := r.client.Get(ctx, client.ObjectKeyFromObject(ts), ts); err != nil {
		return 0, 0, false, fmt.Errorf("TrafficSplit %s.%s: %w", ts.GetName(), ts.GetNamespace(), err)
	}
	primaryWeight, canaryWeight, _ = smiWeights(ts, primary, canary)
	if primaryWeight == 0 && canaryWeight == 0 {
		return 0, 0, false, fmt.Errorf("TrafficSplit %s.%s does not contain routes for %s and %s",
			ts.GetName(), ts.GetNamespace(), primary, canary)
	}
	return primaryWeight, canaryWeight, false, nil
}

// Finalize does nothing: like Flagger, the TrafficSplit is left to garbage collection.
func (r *SMIRouter) Finalize(context.Context, *flaggerv1.Canary) error { return nil }

// setBackends sets spec.backends to the canary and the primary with the given weights, leaving
// the list untouched when it already says exactly that (whatever the weights' JSON form).
func (r *SMIRouter) setBackends(ts *unstructured.Unstructured, cd *flaggerv1.Canary, primaryWeight, canaryWeight int) error {
	_, primary, canary := cd.GetServiceNames()
	if current, ok := smiBackendList(ts); ok && len(current) == 2 &&
		current[0].service == canary && current[0].weight == canaryWeight &&
		current[1].service == primary && current[1].weight == primaryWeight {
		return nil
	}
	return unstructured.SetNestedSlice(ts.Object, []any{
		map[string]any{"service": canary, "weight": r.weight(canaryWeight)},
		map[string]any{"service": primary, "weight": r.weight(primaryWeight)},
	}, "spec", "backends")
}

// weight is the JSON value of a backend weight: a quantity string in v1alpha1 (int-or-string in the
// CRD, resource.Quantity in Flagger's types), a number in later versions.
func (r *SMIRouter) weight(w int) any {
	if r.version == SMIv1alpha1 {
		return strconv.Itoa(w)
	}
	return int64(w)
}

type smiBackend struct {
	service string
	weight  int
}

// smiBackendList reads spec.backends; ok is false when it is missing or malformed.
func smiBackendList(ts *unstructured.Unstructured) ([]smiBackend, bool) {
	items, found, err := unstructured.NestedSlice(ts.Object, "spec", "backends")
	if err != nil || !found {
		return nil, false
	}
	out := make([]smiBackend, 0, len(items))
	for _, item := range items {
		m, ok := item.(map[string]any)
		if !ok {
			return nil, false
		}
		service, _ := m["service"].(string)
		w, ok := smiWeight(m["weight"])
		if !ok {
			return nil, false
		}
		out = append(out, smiBackend{service: service, weight: w})
	}
	return out, true
}

// smiWeights returns the weights of the primary and canary backends; ok says both were found.
func smiWeights(ts *unstructured.Unstructured, primary, canary string) (primaryWeight, canaryWeight int, ok bool) {
	backends, _ := smiBackendList(ts)
	var foundPrimary, foundCanary bool
	for _, b := range backends {
		switch b.service {
		case primary:
			primaryWeight, foundPrimary = b.weight, true
		case canary:
			canaryWeight, foundCanary = b.weight, true
		}
	}
	return primaryWeight, canaryWeight, foundPrimary && foundCanary
}

// smiWeight parses a backend weight: a JSON number, or a quantity string ("90", "500m"), which is
// rounded up to a whole number as resource.Quantity.Value does.
func smiWeight(v any) (int, bool) {
	switch w := v.(type) {
	case string:
		q, err := resource.ParseQuantity(w)
		if err != nil {
			return 0, false
		}
		return int(q.Value()), true
	default:
		return meshInt(v)
	}
}

// The helpers below are shared by the SMI, Kuma and App Mesh routers, which write their objects as
// unstructured.Unstructured (no Go module of those APIs is imported).

// meshObject is an empty object of the kind, to Get into or to fill and Create.
func meshObject(gvk schema.GroupVersionKind, namespace, name string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(gvk)
	u.SetNamespace(namespace)
	u.SetName(name)
	return u
}

// meshStampGenerated is setGenerated for unstructured objects: an empty label map is removed so that an
// object read back from the API server (which drops it) compares equal and is not rewritten.
func meshStampGenerated(u *unstructured.Unstructured, cd *flaggerv1.Canary) {
	setGenerated(u, cd)
	meshDropEmptyMetadata(u)
}

func meshDropEmptyMetadata(u *unstructured.Unstructured) {
	if len(u.GetLabels()) == 0 {
		u.SetLabels(nil)
	}
	if len(u.GetAnnotations()) == 0 {
		u.SetAnnotations(nil)
	}
}

// meshInt reads a JSON number of an unstructured object (int64 when decoded by the API machinery,
// float64 or int when built by hand).
func meshInt(v any) (int, bool) {
	switch n := v.(type) {
	case int64:
		return int(n), true
	case int:
		return n, true
	case int32:
		return int(n), true
	case float64:
		if n != math.Trunc(n) {
			return 0, false
		}
		return int(n), true
	}
	return 0, false
}

// meshCheckNotForeign fails with an InvalidSpecError, before anything is written, when one of the objects
// exists and is controlled by something other than the canary; upsert would refuse it too, but only
// after the objects before it had been written.
func meshCheckNotForeign(ctx context.Context, c client.Client, cd *flaggerv1.Canary, objs ...*unstructured.Unstructured) error {
	for _, o := range objs {
		cur := meshObject(o.GroupVersionKind(), o.GetNamespace(), o.GetName())
		err := c.Get(ctx, client.ObjectKeyFromObject(cur), cur)
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return err
		}
		if ref := foreignController(cur, cd); ref != nil {
			return Invalidf("%s %s.%s is controlled by %s %s, not by canary %s",
				cur.GetKind(), cur.GetName(), cur.GetNamespace(), ref.Kind, ref.Name, cd.Key())
		}
	}
	return nil
}
