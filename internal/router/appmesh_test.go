package router

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/intstr"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

func appMeshVirtualNodeSpec(name, ns, selector string) string {
	return fmt.Sprintf(`
listeners:
- portMapping: {port: 9898, protocol: http}
serviceDiscovery:
  dns: {hostname: %[1]s.%[2]s.svc.cluster.local.}
podSelector:
  matchLabels: {app: %[3]s}
`, name, ns, selector)
}

func appMeshRouterSpec(route string, primary, canary int) string {
	return fmt.Sprintf(`
listeners:
- portMapping: {port: 9898, protocol: http}
routes:
- name: %s
  httpRoute:
    match: {prefix: /}
    action:
      weightedTargets:
      - virtualNodeRef: {name: podinfo-canary}
        weight: %d
      - virtualNodeRef: {name: podinfo-primary}
        weight: %d
`, route, canary, primary)
}

const appMeshApexServiceSpec = `
provider:
  virtualRouter:
    virtualRouterRef: {name: podinfo}
`

const appMeshCanaryServiceSpec = `
provider:
  virtualRouter:
    virtualRouterRef: {name: podinfo-canary}
`

// TestAppMeshRouterCanary runs a canary on App Mesh's real v1beta2 CRDs: the six objects of the
// initial routing, every weight step, blue/green's switch, promotion back to the primary.
func TestAppMeshRouterCanary(t *testing.T) {
	e := newRouterEnv(t)
	ctx := context.Background()
	cd := testCanary("appmesh:v1beta2")
	cd.Spec.Service.Apex = &flaggerv1.CustomMetadata{Labels: map[string]string{"tier": "apex"}}
	cd = e.createCanary(t, cd)
	r := NewAppMeshV1beta2(e.c, Options{FieldOwner: "pennant"})
	if err := r.Validate(cd); err != nil {
		t.Fatal(err)
	}
	if err := r.Reconcile(ctx, cd); err != nil {
		t.Fatalf("Reconcile: %v", err)
	}
	for _, o := range []struct {
		kind, name, spec string
	}{
		{"VirtualNode", "podinfo-primary", appMeshVirtualNodeSpec("podinfo-primary", e.ns, "podinfo-primary")},
		{"VirtualNode", "podinfo-canary", appMeshVirtualNodeSpec("podinfo-canary", e.ns, "podinfo")},
		{"VirtualRouter", "podinfo", appMeshRouterSpec("podinfo", 100, 0)},
		{"VirtualRouter", "podinfo-canary", appMeshRouterSpec("podinfo-canary", 0, 100)},
		{"VirtualService", "podinfo", appMeshApexServiceSpec},
		{"VirtualService", "podinfo-canary", appMeshCanaryServiceSpec},
	} {
		u := meshGet(t, e.c, appMeshVirtualNodeGVK.GroupVersion().WithKind(o.kind), e.ns, o.name)
		meshAssertYAML(t, o.kind+" "+o.name, u.Object["spec"], o.spec)
		meshAssertYAML(t, o.kind+" "+o.name+" labels", u.GetLabels(), `tier: apex`)
		meshAssertYAML(t, o.kind+" "+o.name+" annotations", u.GetAnnotations(), meshGeneratedAnnotations)
		meshAssertController(t, u, cd)
	}
	meshAssertRoutes(t, r, cd, 100, 0)

	for _, w := range [][2]int{{90, 10}, {80, 20}, {70, 30}, {60, 40}, {50, 50}, {0, 100}, {100, 0}} {
		if err := r.SetRoutes(ctx, cd, w[0], w[1], false); err != nil {
			t.Fatalf("SetRoutes(%v): %v", w, err)
		}
		vr := meshGet(t, e.c, appMeshVirtualRouterGVK, e.ns, "podinfo")
		meshAssertYAML(t, "VirtualRouter podinfo", vr.Object["spec"], appMeshRouterSpec("podinfo", w[0], w[1]))
		meshAssertRoutes(t, r, cd, w[0], w[1])
	}
	// The canary's own router never moves.
	vr := meshGet(t, e.c, appMeshVirtualRouterGVK, e.ns, "podinfo-canary")
	meshAssertYAML(t, "VirtualRouter podinfo-canary", vr.Object["spec"], appMeshRouterSpec("podinfo-canary", 0, 100))

	// Reconcile keeps the weights; nothing unchanged is rewritten.
	if err := r.SetRoutes(ctx, cd, 80, 20, false); err != nil {
		t.Fatal(err)
	}
	versions := map[string]string{}
	for _, gvkName := range appMeshAll() {
		versions[gvkName.kind+gvkName.name] = meshGet(t, e.c, appMeshVirtualNodeGVK.GroupVersion().WithKind(gvkName.kind), e.ns, gvkName.name).GetResourceVersion()
	}
	if err := r.Reconcile(ctx, cd); err != nil {
		t.Fatal(err)
	}
	if err := r.SetRoutes(ctx, cd, 80, 20, false); err != nil {
		t.Fatal(err)
	}
	for _, gvkName := range appMeshAll() {
		u := meshGet(t, e.c, appMeshVirtualNodeGVK.GroupVersion().WithKind(gvkName.kind), e.ns, gvkName.name)
		if u.GetResourceVersion() != versions[gvkName.kind+gvkName.name] {
			t.Errorf("unchanged %s %s was rewritten", gvkName.kind, gvkName.name)
		}
	}
	meshAssertRoutes(t, r, cd, 80, 20)
	if err := r.Finalize(ctx, cd); err != nil {
		t.Fatal(err)
	}
}

type appMeshKindName struct{ kind, name string }

func appMeshAll() []appMeshKindName {
	return []appMeshKindName{
		{"VirtualNode", "podinfo-primary"}, {"VirtualNode", "podinfo-canary"},
		{"VirtualRouter", "podinfo"}, {"VirtualRouter", "podinfo-canary"},
		{"VirtualService", "podinfo"}, {"VirtualService", "podinfo-canary"},
	}
}

// TestAppMeshRouterABTesting routes the requests matching the analysis headers to the canary.
func TestAppMeshRouterABTesting(t *testing.T) {
	e := newRouterEnv(t)
	ctx := context.Background()
	cd := testCanary("appmesh:v1beta2")
	cd.Spec.Analysis = &flaggerv1.CanaryAnalysis{Interval: "1m", Threshold: 2, Iterations: 10, Match: []flaggerv1.ABMatch{
		{Headers: map[string]flaggerv1.StringMatch{"x-canary": {Exact: "insider"}, "cookie": {Regex: "^(.*?;)?(canary=always)(;.*)?$"}}},
		{Headers: map[string]flaggerv1.StringMatch{"user-agent": {Prefix: "Mozilla", Suffix: "Firefox"}}},
	}}
	cd = e.createCanary(t, cd)
	r := NewAppMeshV1beta2(e.c, Options{FieldOwner: "pennant"})
	if err := r.Reconcile(ctx, cd); err != nil {
		t.Fatalf("Reconcile: %v", err)
	}
	abSpec := func(primary, canary int) string {
		return fmt.Sprintf(`
listeners:
- portMapping: {port: 9898, protocol: http}
routes:
- name: podinfo-a
  priority: 10
  httpRoute:
    match:
      prefix: /
      headers:
      - name: cookie
        match: {regex: "^(.*?;)?(canary=always)(;.*)?$"}
      - name: x-canary
        match: {exact: insider}
      - name: user-agent
        match: {prefix: Mozilla, suffix: Firefox}
    action:
      weightedTargets:
      - virtualNodeRef: {name: podinfo-canary}
        weight: %d
      - virtualNodeRef: {name: podinfo-primary}
        weight: %d
- name: podinfo-b
  priority: 20
  httpRoute:
    match: {prefix: /}
    action:
      weightedTargets:
      - virtualNodeRef: {name: podinfo-primary}
        weight: 100
`, canary, primary)
	}
	vr := meshGet(t, e.c, appMeshVirtualRouterGVK, e.ns, "podinfo")
	meshAssertYAML(t, "A/B VirtualRouter", vr.Object["spec"], abSpec(100, 0))
	vr = meshGet(t, e.c, appMeshVirtualRouterGVK, e.ns, "podinfo-canary")
	meshAssertYAML(t, "canary VirtualRouter", vr.Object["spec"], appMeshRouterSpec("podinfo-canary", 0, 100))
	meshAssertRoutes(t, r, cd, 100, 0)

	// A/B: all matched traffic to the canary, then promotion.
	for _, w := range [][2]int{{0, 100}, {100, 0}} {
		if err := r.SetRoutes(ctx, cd, w[0], w[1], false); err != nil {
			t.Fatal(err)
		}
		vr = meshGet(t, e.c, appMeshVirtualRouterGVK, e.ns, "podinfo")
		meshAssertYAML(t, "A/B VirtualRouter", vr.Object["spec"], abSpec(w[0], w[1]))
		meshAssertRoutes(t, r, cd, w[0], w[1])
	}
	rv := vr.GetResourceVersion()
	if err := r.Reconcile(ctx, cd); err != nil {
		t.Fatal(err)
	}
	if meshGet(t, e.c, appMeshVirtualRouterGVK, e.ns, "podinfo").GetResourceVersion() != rv {
		t.Error("unchanged A/B VirtualRouter was rewritten")
	}
}

// TestAppMeshRouterServiceOptions covers the options Flagger carries over: target port, gRPC, timeout,
// retries, match prefix, backends, hosts (gateway annotations), the workload selector, and a
// VirtualNode's webhook-set fields.
func TestAppMeshRouterServiceOptions(t *testing.T) {
	e := newRouterEnv(t)
	ctx := context.Background()
	cd := testCanary("appmesh:v1beta2")
	cd.Spec.Service.TargetPort = intstr.FromInt32(8080)
	cd.Spec.Service.PortName = "grpc-api"
	cd.Spec.Service.Timeout = "15s"
	cd.Spec.Service.Retries = &flaggerv1.HTTPRetry{Attempts: 3, PerTryTimeout: "5s", RetryOn: "gateway-error,client-error"}
	cd.Spec.Service.Match = []flaggerv1.HTTPMatchRequest{{URI: &flaggerv1.StringMatch{Prefix: "/api"}}}
	cd.Spec.Service.Backends = []string{"backend1", "arn:aws:appmesh:eu-west-1:000000000000:mesh/m/virtualService/b2"}
	cd.Spec.Service.Hosts = []string{"podinfo.example.com", "app.example.com"}
	cd = e.createCanary(t, cd)
	meshCreate(t, e.c, `
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualNode
metadata: {name: podinfo-primary, namespace: `+e.ns+`}
spec:
  awsName: podinfo-primary_test
  meshRef: {name: global, uid: mesh-uid}
  listeners:
  - portMapping: {port: 1, protocol: tcp}
`, nil)
	selector := func(context.Context, *flaggerv1.Canary) (string, string, map[string]int32, error) {
		return "app.kubernetes.io/name", "podinfo-app", nil, nil
	}
	r := NewAppMeshV1beta2(e.c, Options{FieldOwner: "pennant"}).WithSelector(selector)
	if err := r.Reconcile(ctx, cd); err != nil {
		t.Fatalf("Reconcile: %v", err)
	}
	nodeSpec := func(name, selector string) string {
		return `
listeners:
- portMapping: {port: 8080, protocol: grpc}
  timeout:
    http:
      perRequest: {unit: ms, value: 15000}
serviceDiscovery:
  dns: {hostname: ` + name + `.` + e.ns + `.svc.cluster.local.}
podSelector:
  matchLabels: {app.kubernetes.io/name: ` + selector + `}
backends:
- virtualService:
    virtualServiceRef: {name: backend1}
- virtualService:
    virtualServiceARN: arn:aws:appmesh:eu-west-1:000000000000:mesh/m/virtualService/b2
`
	}
	vn := meshGet(t, e.c, appMeshVirtualNodeGVK, e.ns, "podinfo-primary")
	meshAssertYAML(t, "primary VirtualNode", vn.Object["spec"], `
awsName: podinfo-primary_test
meshRef: {name: global, uid: mesh-uid}`+nodeSpec("podinfo-primary", "podinfo-app-primary"))
	vn = meshGet(t, e.c, appMeshVirtualNodeGVK, e.ns, "podinfo-canary")
	meshAssertYAML(t, "canary VirtualNode", vn.Object["spec"], nodeSpec("podinfo-canary", "podinfo-app"))

	vr := meshGet(t, e.c, appMeshVirtualRouterGVK, e.ns, "podinfo")
	meshAssertYAML(t, "VirtualRouter", vr.Object["spec"], `
listeners:
- portMapping: {port: 8080, protocol: grpc}
routes:
- name: podinfo
  httpRoute:
    match: {prefix: /api}
    timeout:
      perRequest: {unit: ms, value: 15000}
    retryPolicy:
      maxRetries: 3
      perRetryTimeout: {unit: ms, value: 5000}
      httpRetryEvents: [gateway-error, client-error]
    action:
      weightedTargets:
      - virtualNodeRef: {name: podinfo-canary}
        weight: 0
      - virtualNodeRef: {name: podinfo-primary}
        weight: 100
`)
	vs := meshGet(t, e.c, appMeshVirtualServiceGVK, e.ns, "podinfo")
	meshAssertYAML(t, "apex VirtualService annotations", vs.GetAnnotations(), `
gateway.appmesh.k8s.aws/expose: "true"
gateway.appmesh.k8s.aws/domain: podinfo.example.com,app.example.com,
gateway.appmesh.k8s.aws/timeout: 15s
gateway.appmesh.k8s.aws/retries: "3"`+meshGeneratedAnnotations)
	vs = meshGet(t, e.c, appMeshVirtualServiceGVK, e.ns, "podinfo-canary")
	meshAssertYAML(t, "canary VirtualService annotations", vs.GetAnnotations(), meshGeneratedAnnotations)

	// Without hosts the gateway annotations go away.
	cd.Spec.Service.Hosts = nil
	if err := r.Reconcile(ctx, cd); err != nil {
		t.Fatal(err)
	}
	vs = meshGet(t, e.c, appMeshVirtualServiceGVK, e.ns, "podinfo")
	meshAssertYAML(t, "apex VirtualService annotations", vs.GetAnnotations(), meshGeneratedAnnotations)
}

// TestAppMeshRouterForeignOwner refuses to reconcile when the last object it would write is
// controlled by something else, and writes nothing at all.
func TestAppMeshRouterForeignOwner(t *testing.T) {
	e := newRouterEnv(t)
	ctx := context.Background()
	cd := e.createCanary(t, testCanary("appmesh:v1beta2"))
	owner := meshForeignOwner(t, e.c, e.ns)
	before := meshCreate(t, e.c, `
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualService
metadata: {name: podinfo-canary, namespace: `+e.ns+`}
spec:
  provider:
    virtualNode:
      virtualNodeRef: {name: something-else}
`, &owner)
	r := NewAppMeshV1beta2(e.c, Options{FieldOwner: "pennant"})
	err := r.Reconcile(ctx, cd)
	if !IsInvalidSpec(err) || !strings.Contains(err.Error(), "ConfigMap other-owner") {
		t.Fatalf("Reconcile = %v, want an InvalidSpecError naming the owner", err)
	}
	for _, o := range appMeshAll()[:5] {
		meshAbsent(t, e.c, appMeshVirtualNodeGVK.GroupVersion().WithKind(o.kind), e.ns, o.name)
	}
	if meshGet(t, e.c, appMeshVirtualServiceGVK, e.ns, "podinfo-canary").GetResourceVersion() != before.GetResourceVersion() {
		t.Error("foreign VirtualService was written")
	}

	// The apex router controlled by someone else: SetRoutes refuses it too.
	meshCreate(t, e.c, `
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualRouter
metadata: {name: podinfo, namespace: `+e.ns+`}
spec:
  listeners:
  - portMapping: {port: 80, protocol: http}
`, &owner)
	if err := r.SetRoutes(ctx, cd, 50, 50, false); !IsInvalidSpec(err) {
		t.Errorf("SetRoutes = %v, want an InvalidSpecError", err)
	}
}

// TestAppMeshRouterValidate refuses, before writing, what App Mesh cannot route.
func TestAppMeshRouterValidate(t *testing.T) {
	e := newRouterEnv(t)
	ctx := context.Background()
	r := NewAppMeshV1beta2(e.c, Options{FieldOwner: "pennant"})
	for name, mutate := range map[string]func(cd *flaggerv1.Canary){
		"A/B without headers": func(cd *flaggerv1.Canary) {
			cd.Spec.Analysis.Match = []flaggerv1.ABMatch{{QueryParams: map[string]flaggerv1.StringMatch{"canary": {Exact: "1"}}}}
		},
		"header name too long": func(cd *flaggerv1.Canary) {
			cd.Spec.Analysis.Match = []flaggerv1.ABMatch{{Headers: map[string]flaggerv1.StringMatch{strings.Repeat("x", 51): {Exact: "1"}}}}
		},
		"Istio retry events": func(cd *flaggerv1.Canary) {
			cd.Spec.Service.Retries = &flaggerv1.HTTPRetry{Attempts: 2, RetryOn: "5xx,connect-failure"}
		},
	} {
		t.Run(name, func(t *testing.T) {
			cd := testCanary("appmesh:v1beta2")
			cd.Namespace = e.ns
			mutate(cd)
			if err := r.Validate(cd); !IsInvalidSpec(err) {
				t.Errorf("Validate = %v, want an InvalidSpecError", err)
			}
			if err := r.Reconcile(ctx, cd); !IsInvalidSpec(err) {
				t.Errorf("Reconcile = %v, want an InvalidSpecError", err)
			}
		})
	}
	for _, o := range appMeshAll() {
		meshAbsent(t, e.c, appMeshVirtualNodeGVK.GroupVersion().WithKind(o.kind), e.ns, o.name)
	}
}

// TestAppMeshV1beta1Unsupported: provider appmesh (v1beta1) has no CRD upstream; every call but
// Finalize is an InvalidSpecError pointing to appmesh:v1beta2.
func TestAppMeshV1beta1Unsupported(t *testing.T) {
	ctx := context.Background()
	cd := testCanary("appmesh")
	cd.Spec.Service.MeshName = "global"
	r := NewAppMeshV1beta1(nil, Options{FieldOwner: "pennant"})
	checks := map[string]error{
		"Validate":  r.Validate(cd),
		"Reconcile": r.Reconcile(ctx, cd),
		"SetRoutes": r.SetRoutes(ctx, cd, 50, 50, false),
	}
	_, _, _, checks["GetRoutes"] = r.GetRoutes(ctx, cd)
	for name, err := range checks {
		if !IsInvalidSpec(err) || !strings.Contains(err.Error(), `"appmesh:v1beta2"`) {
			t.Errorf("%s = %v, want an InvalidSpecError pointing to appmesh:v1beta2", name, err)
		}
	}
	if err := r.Finalize(ctx, cd); err != nil {
		t.Errorf("Finalize = %v, want nil", err)
	}
}
