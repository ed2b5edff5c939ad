package router

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

// contourTestProxy is the HTTPProxy of contourTestCanary with the given weights.
const contourTestProxy = `
ingressClassName: contour
routes:
- conditions: [{prefix: /}]
  timeoutPolicy: {response: 30s, idle: 5m}
  retryPolicy:
    count: 3
    perTryTimeout: 5s
    retryOn: [gateway-error, connect-failure, retriable-status-codes]
    retriableStatusCodes: [503]
  services:
  - name: podinfo-primary
    port: 9898
    weight: %d
    requestHeadersPolicy: {set: [{name: l5d-dst-override, value: podinfo-primary.$NS.svc.cluster.local:9898}]}
  - name: podinfo-canary
    port: 9898
    weight: %d
    requestHeadersPolicy: {set: [{name: l5d-dst-override, value: podinfo-canary.$NS.svc.cluster.local:9898}]}
`

func contourTestCanary(t *testing.T, e *routerEnv) *flaggerv1.Canary {
	t.Helper()
	cd := testCanary("contour")
	cd.Spec.Service.Timeout = "30s"
	cd.Spec.Service.Retries = &flaggerv1.HTTPRetry{Attempts: 3, PerTryTimeout: "5s", RetryOn: "gateway-error,connect-failure,503"}
	cd.Spec.Service.Apex = &flaggerv1.CustomMetadata{Labels: map[string]string{"tier": "edge"}}
	return e.createCanary(t, cd)
}

func TestContourRouterCanary(t *testing.T) {
	e := newRouterEnv(t)
	ctx := context.Background()
	cd := contourTestCanary(t, e)
	r := NewContour(e.c, Options{FieldOwner: "pennant", IngressClass: "contour"})

	if err := r.Reconcile(ctx, cd); err != nil {
		t.Fatal(err)
	}
	proxy := edgeTestGet(t, e, contourHTTPProxyGVK, "podinfo")
	edgeTestSpecOmitZero(t, e, proxy, fmt.Sprintf(contourTestProxy, 100, 0))
	edgeTestGenerated(t, proxy, cd)
	edgeTestLabels(t, proxy, cd.Spec.Service.Apex.Labels)
	edgeTestRoutes(t, r, cd, 100, 0)
	if err := r.Reconcile(ctx, cd); err != nil {
		t.Fatal(err)
	}
	edgeTestUnchanged(t, e, proxy)

	// testCanary steps by 10 up to 50.
	for w := 10; w <= 50; w += 10 {
		if err := r.SetRoutes(ctx, cd, 100-w, w, false); err != nil {
			t.Fatalf("weight %d: %v", w, err)
		}
		got := edgeTestGet(t, e, contourHTTPProxyGVK, "podinfo")
		edgeTestSpecOmitZero(t, e, got, fmt.Sprintf(contourTestProxy, 100-w, w))
		edgeTestRoutes(t, r, cd, 100-w, w)
		if w == 30 {
			if err := r.Reconcile(ctx, cd); err != nil {
				t.Fatal(err)
			}
			if err := r.SetRoutes(ctx, cd, 70, 30, false); err != nil {
				t.Fatal(err)
			}
			edgeTestUnchanged(t, e, got)
		}
	}

	// Promotion.
	if err := r.SetRoutes(ctx, cd, 100, 0, false); err != nil {
		t.Fatal(err)
	}
	edgeTestSpecOmitZero(t, e, edgeTestGet(t, e, contourHTTPProxyGVK, "podinfo"), fmt.Sprintf(contourTestProxy, 100, 0))
	edgeTestRoutes(t, r, cd, 100, 0)

	// A service port change is reconciled, weights kept.
	if err := r.SetRoutes(ctx, cd, 60, 40, false); err != nil {
		t.Fatal(err)
	}
	cd.Spec.Service.Port = 8080
	if err := r.Reconcile(ctx, cd); err != nil {
		t.Fatal(err)
	}
	want := strings.ReplaceAll(fmt.Sprintf(contourTestProxy, 60, 40), "9898", "8080")
	edgeTestSpecOmitZero(t, e, edgeTestGet(t, e, contourHTTPProxyGVK, "podinfo"), want)
}

// TestContourRouterABTesting routes two A/B matches (header exact, header regex and query
// parameter) under a service path, the rest to the primary.
func TestContourRouterABTesting(t *testing.T) {
	e := newRouterEnv(t)
	ctx := context.Background()
	cd := testCanary("contour")
	cd.Spec.Service.Match = []flaggerv1.HTTPMatchRequest{{URI: &flaggerv1.StringMatch{Prefix: "/api"}}}
	cd.Spec.Analysis = &flaggerv1.CanaryAnalysis{Interval: "1m", Threshold: 5, Iterations: 10, Match: []flaggerv1.ABMatch{
		{Headers: map[string]flaggerv1.StringMatch{"x-canary": {Exact: "insider"}}},
		{
			Headers:        map[string]flaggerv1.StringMatch{"user-agent": {Regex: ".*Firefox.*"}, "cookie": {Prefix: "canary="}},
			QueryParams:    map[string]flaggerv1.StringMatch{"beta": {Exact: "1"}},
			WithoutHeaders: map[string]flaggerv1.StringMatch{"x-internal": {}},
		},
	}}
	cd = e.createCanary(t, cd)
	r := NewContour(e.c, Options{FieldOwner: "pennant"})
	if err := r.Reconcile(ctx, cd); err != nil {
		t.Fatal(err)
	}
	const services = `
  services:
  - name: podinfo-primary
    port: 9898
    weight: %d
    requestHeadersPolicy: {set: [{name: l5d-dst-override, value: podinfo-primary.$NS.svc.cluster.local:9898}]}
  - name: podinfo-canary
    port: 9898
    weight: %d
    requestHeadersPolicy: {set: [{name: l5d-dst-override, value: podinfo-canary.$NS.svc.cluster.local:9898}]}`
	want := func(p, c int) string {
		return `
routes:
- conditions: [{prefix: /api}, {header: {name: x-canary, exact: insider}}]` + fmt.Sprintf(services, p, c) + `
- conditions:
  - prefix: /api
  - header: {name: cookie, regex: 'canary=.*'}
  - header: {name: user-agent, regex: .*Firefox.*}
  - header: {name: x-internal, notpresent: true}
  - queryParameter: {name: beta, exact: "1"}` + fmt.Sprintf(services, p, c) + `
- conditions: [{prefix: /api}]` + fmt.Sprintf(services, 100, 0)
	}
	edgeTestSpecOmitZero(t, e, edgeTestGet(t, e, contourHTTPProxyGVK, "podinfo"), want(100, 0))
	edgeTestRoutes(t, r, cd, 100, 0)

	if err := r.SetRoutes(ctx, cd, 0, 100, false); err != nil {
		t.Fatal(err)
	}
	edgeTestSpecOmitZero(t, e, edgeTestGet(t, e, contourHTTPProxyGVK, "podinfo"), want(0, 100))
	edgeTestRoutes(t, r, cd, 0, 100)

	if err := r.SetRoutes(ctx, cd, 100, 0, false); err != nil {
		t.Fatal(err)
	}
	edgeTestSpecOmitZero(t, e, edgeTestGet(t, e, contourHTTPProxyGVK, "podinfo"), want(100, 0))
}

// TestContourRouterTakeOver checks that an HTTPProxy created by hand is taken over (its virtual
// host kept) and given back as it was by Finalize.
func TestContourRouterTakeOver(t *testing.T) {
	e := newRouterEnv(t)
	ctx := context.Background()
	cd := e.createCanary(t, testCanary("contour"))
	const original = `
virtualhost: {fqdn: app.example.com}
routes:
- conditions: [{prefix: /}]
  services: [{name: podinfo, port: 9898}]
`
	edgeTestCreate(t, e, contourHTTPProxyGVK, e.ns, "podinfo", original, nil)
	r := NewContour(e.c, Options{FieldOwner: "pennant"})
	if err := r.Reconcile(ctx, cd); err != nil {
		t.Fatal(err)
	}
	if err := r.SetRoutes(ctx, cd, 50, 50, false); err != nil {
		t.Fatal(err)
	}
	proxy := edgeTestGet(t, e, contourHTTPProxyGVK, "podinfo")
	edgeTestSpecOmitZero(t, e, proxy, `
virtualhost: {fqdn: app.example.com}
routes:
- conditions: [{prefix: /}]
  services:
  - name: podinfo-primary
    port: 9898
    weight: 50
    requestHeadersPolicy: {set: [{name: l5d-dst-override, value: podinfo-primary.$NS.svc.cluster.local:9898}]}
  - name: podinfo-canary
    port: 9898
    weight: 50
    requestHeadersPolicy: {set: [{name: l5d-dst-override, value: podinfo-canary.$NS.svc.cluster.local:9898}]}
`)
	// The annotation holds the JSON of the original spec.
	var recorded, want any
	if err := json.Unmarshal([]byte(proxy.GetAnnotations()[OriginalConfigAnnotation]), &recorded); err != nil {
		t.Fatalf("%s: %v", OriginalConfigAnnotation, err)
	}
	if err := yaml.Unmarshal([]byte(original), &want); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(recorded, want) {
		t.Errorf("%s = %v, want %v", OriginalConfigAnnotation, recorded, want)
	}
	if ref := metav1.GetControllerOf(proxy); ref == nil || ref.UID != cd.UID {
		t.Errorf("controller of the taken over proxy = %v, want the canary", ref)
	}

	if err := r.Finalize(ctx, cd); err != nil {
		t.Fatal(err)
	}
	restored := edgeTestGet(t, e, contourHTTPProxyGVK, "podinfo")
	edgeTestSpecOmitZero(t, e, restored, original)
	if refs := restored.GetOwnerReferences(); len(refs) != 0 {
		t.Errorf("owner references after Finalize: %v", refs)
	}
	for _, k := range []string{OriginalConfigAnnotation, FluxReconcileAnnotation, HelmDriftDetectionAnnotation} {
		if _, ok := restored.GetAnnotations()[k]; ok {
			t.Errorf("annotation %s left after Finalize", k)
		}
	}
}

func TestContourRouterForeignOwner(t *testing.T) {
	e := newRouterEnv(t)
	cd := e.createCanary(t, testCanary("contour"))
	proxy := edgeTestCreate(t, e, contourHTTPProxyGVK, e.ns, "podinfo", `routes: [{services: [{name: other, port: 80}]}]`, edgeTestForeignOwner(t, e))
	err := NewContour(e.c, Options{FieldOwner: "pennant"}).Reconcile(context.Background(), cd)
	if !IsInvalidSpec(err) || !strings.Contains(err.Error(), "controlled by ConfigMap someone-else") {
		t.Fatalf("Reconcile = %v, want an InvalidSpecError naming the owner", err)
	}
	edgeTestUnchanged(t, e, proxy)
}

func TestContourRouterValidate(t *testing.T) {
	r := NewContour(nil, Options{})
	for name, mutate := range map[string]func(*flaggerv1.Canary){
		"method": func(cd *flaggerv1.Canary) {
			cd.Spec.Analysis.Match = []flaggerv1.ABMatch{{Method: &flaggerv1.StringMatch{Exact: "GET"}}}
		},
		"bad timeout": func(cd *flaggerv1.Canary) { cd.Spec.Service.Timeout = "thirty seconds" },
		"bad retryOn": func(cd *flaggerv1.Canary) {
			cd.Spec.Service.Retries = &flaggerv1.HTTPRetry{Attempts: 2, RetryOn: "5xx,bogus"}
		},
		"ignoreUriCase": func(cd *flaggerv1.Canary) {
			cd.Spec.Service.Match = []flaggerv1.HTTPMatchRequest{{URI: &flaggerv1.StringMatch{Prefix: "/a"}, IgnoreURICase: true}}
		},
		"regex withoutHdr": func(cd *flaggerv1.Canary) {
			cd.Spec.Analysis.Match = []flaggerv1.ABMatch{{WithoutHeaders: map[string]flaggerv1.StringMatch{"x": {Regex: "a.*"}}}}
		},
	} {
		cd := testCanary("contour")
		mutate(cd)
		if err := r.Validate(cd); !IsInvalidSpec(err) {
			t.Errorf("%s: Validate = %v, want an InvalidSpecError", name, err)
		}
	}
	if err := r.Validate(testCanary("contour")); err != nil {
		t.Errorf("Validate = %v, want nil", err)
	}
}
