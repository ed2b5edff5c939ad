//go:build e2e

package traffic

import (
	"context"
	"math"
	"net/http"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/pennant/pennant/test/traffic/harness"
)

const interval = 10 * time.Second // the analysis interval of examples/demo's canaries

func setImage(tag string) func(*appsv1.Deployment) {
	return func(d *appsv1.Deployment) {
		d.Spec.Template.Spec.Containers[0].Image = "ghcr.io/stefanprodan/podinfo:" + tag
	}
}

// badRelease is a new version that answers 30% of its requests with a 500.
func badRelease(tag string) func(*appsv1.Deployment) {
	return func(d *appsv1.Deployment) {
		setImage(tag)(d)
		c := &d.Spec.Template.Spec.Containers[0]
		c.Env = append(c.Env, corev1.EnvVar{Name: "ERROR_RATE", Value: "0.3"})
	}
}

func deployTraefikApp(t *testing.T, namespace string, manifests ...string) *harness.App {
	t.Helper()
	// Each namespace's app has a host of its own: Traefik gives a host that two routes claim to one.
	host := namespace + ".example.com"
	app, err := stack.DeployApp(context.Background(), harness.AppSpec{
		Namespace: namespace, Manifests: append([]string{"examples/demo/traefik/ingressroute.yaml"}, manifests...),
		Replace: map[string]string{"app.example.com": host, "preview.example.com": "preview." + host},
		Router:  harness.Traefik, Host: host, Rate: 250, Interval: interval,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(app.Stop)
	snapshotOnFailure(t, namespace)
	return app
}

// snapshotOnFailure keeps Traefik's view and the namespace's routing objects when t fails.
func snapshotOnFailure(t *testing.T, namespace string) {
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("Traefik's view and the routing objects: %s", stack.Snapshot(context.Background(), namespace))
		}
	})
}

func release(t *testing.T, app *harness.App, o harness.ReleaseOptions) harness.Report {
	t.Helper()
	rep, err := app.Run(context.Background(), o)
	t.Logf("%s\n%s\nkubectl describe canary %s (events):\n%s", o.Title, rep, app.Name, rep.Events)
	if err != nil {
		t.Fatalf("%v\nTraefik's view of the release: %s", err, app.View)
	}
	return rep
}

// checkShares: the canary served its weight's share of each step's requests, within 3 points over
// at least 2,000 requests, and every weight of the analysis was held.
func checkShares(t *testing.T, rep harness.Report, weights ...int) {
	t.Helper()
	seen := map[int]bool{}
	for _, s := range rep.Steps {
		if s.Weight == 0 {
			continue
		}
		seen[s.Weight] = true
		if s.Requests < 2000 {
			t.Errorf("weight %d%%: only %d requests, want at least 2,000 to measure the share", s.Weight, s.Requests)
			continue
		}
		if math.Abs(s.Share()-float64(s.Weight)) > 3 {
			t.Errorf("weight %d%%: the canary served %.1f%% of %d requests, want within 3 points", s.Weight, s.Share(), s.Requests)
		}
	}
	for _, w := range weights {
		if !seen[w] {
			t.Errorf("weight %d%% was never set; steps:\n%s", w, harness.FormatSteps(rep.Steps))
		}
	}
}

func checkNoFailures(t *testing.T, rep harness.Report) {
	t.Helper()
	if rep.Failed != 0 {
		t.Errorf("%d of %d requests failed or were dropped during the release, e.g. %+v", rep.Failed, rep.Total, rep.FailedSamples)
	}
	if rep.Total == 0 {
		t.Error("no request was sent during the release")
	}
}

func checkServed(t *testing.T, rep harness.Report, version string) {
	t.Helper()
	if len(rep.Served) != 1 || rep.Served[version] == 0 {
		t.Errorf("versions served at the end: %v, want only %s", rep.Served, version)
	}
}

// A canary release through Traefik under load: the weights step 10 → 50 with the canary serving its
// share, the promotion drops nothing; then a bad release is pulled within threshold + 1 intervals;
// then a change of the ConfigMap the pods read is released like a new image.
func TestCanaryThroughTraefik(t *testing.T) {
	app := deployTraefikApp(t, "canary", "examples/demo/traefik/canary.yaml")

	good := release(t, app, harness.ReleaseOptions{Title: "podinfo 6.0.1", Edit: setImage("6.0.1")})
	if good.Outcome != "Succeeded" {
		t.Fatalf("the good release ended %s", good.Outcome)
	}
	checkShares(t, good, 10, 20, 30, 40, 50)
	checkNoFailures(t, good)
	checkServed(t, good, "6.0.1")

	bad := release(t, app, harness.ReleaseOptions{Title: "podinfo 6.0.2 with 30% errors", Edit: badRelease("6.0.2")})
	if bad.Outcome != "Failed" {
		t.Fatalf("the bad release ended %s", bad.Outcome)
	}
	const threshold = 2
	if rb := bad.Rollback; rb.Intervals > threshold+1 {
		t.Errorf("traffic went back to the primary %.1f intervals after the canary's first 500, want at most threshold + 1 = %d", rb.Intervals, threshold+1)
	}
	if rb := bad.Rollback; rb.LastCanaryAfter > time.Second {
		t.Errorf("the canary still served a request sent %s after the rollback's route was written", rb.LastCanaryAfter)
	}
	checkServed(t, bad, "6.0.1")
}

var _ = http.Header{}
