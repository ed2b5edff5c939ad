//go:build e2e

package traffic

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/pennant/pennant/test/traffic/harness"
)

// An A/B release through the Gateway API: while it is analysed, every request with the header goes
// to the new version and no other does; then it is promoted for everyone, without a failed request.
func TestABTestingThroughTheGatewayAPI(t *testing.T) {
	ctx := context.Background()
	app, err := stack.DeployApp(ctx, harness.AppSpec{
		Namespace: "ab", Manifests: []string{"examples/demo/gateway/canary-ab.yaml"},
		Router: harness.GatewayAPI, Host: "ab.example.com", Rate: 150, Interval: interval,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(app.Stop)
	snapshotOnFailure(t, "ab")
	insiders, err := stack.StartTraffic(ctx, harness.TrafficSpec{
		Host: "ab.example.com", Header: http.Header{"X-Canary": {"insider"}}, Rate: 100,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(insiders.Stop)

	rep := release(t, app, harness.ReleaseOptions{Title: "podinfo 6.0.1 for insiders", Edit: setImage("6.0.1"), NoSplit: true})
	if rep.Outcome != "Succeeded" {
		t.Fatalf("the A/B release ended %s", rep.Outcome)
	}
	checkNoFailures(t, rep)
	checkServed(t, rep, "6.0.1")
	// The route's first rule matches the header (its canary weight is 100 while analysed); the
	// second is everyone else's (always on the primary).
	end := app.Triggered.Add(rep.Took)
	header := harness.Steps(app.Route.Changes(), insiders, app.Name, 0, app.Triggered, end, time.Second)
	others := harness.Steps(app.Route.Changes(), app.Traffic, app.Name, 0, app.Triggered, end, time.Second)
	t.Logf("requests with x-canary: insider\n%s\nthe others\n%s", harness.FormatSteps(header), harness.FormatSteps(others))
	analysed := false
	for i, s := range header {
		if s.Weight != 100 {
			continue
		}
		analysed = true
		if s.Requests < 500 || s.Share() != 100 {
			t.Errorf("while analysed: the canary served %.1f%% of %d requests with the header, want all", s.Share(), s.Requests)
		}
		if o := others[i]; o.Canary != 0 {
			t.Errorf("while analysed: the canary served %d of %d requests without the header, want none", o.Canary, o.Requests)
		}
	}
	if !analysed {
		t.Errorf("the header's rule never sent all to the canary; route: %s", app.Route)
	}
	failed, total, samples := harness.Failures(insiders, app.Triggered, time.Now())
	if failed != 0 || total == 0 {
		t.Errorf("%d of %d requests with the header failed, e.g. %+v", failed, total, samples)
	}
}
