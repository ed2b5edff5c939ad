//go:build e2e

package traffic

import (
	"context"
	"testing"

	"github.com/pennant/pennant/test/traffic/harness"
)

// A blue/green release through Traefik: users get none of the new version while it is tested on
// its preview host, then all of it, without a failed request.
func TestBlueGreenThroughTraefik(t *testing.T) {
	app := deployTraefikApp(t, "bluegreen", "examples/demo/traefik/canary-bluegreen.yaml", "examples/demo/traefik/preview.yaml")
	preview, err := stack.StartTraffic(context.Background(), harness.TrafficSpec{Host: "preview.bluegreen.example.com", Rate: 50})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(preview.Stop)

	rep := release(t, app, harness.ReleaseOptions{Title: "podinfo 6.0.1, blue/green", Edit: setImage("6.0.1")})
	if rep.Outcome != "Succeeded" {
		t.Fatalf("the blue/green release ended %s", rep.Outcome)
	}
	checkNoFailures(t, rep)
	checkServed(t, rep, "6.0.1")
	for _, s := range rep.Steps {
		if s.Weight == 0 && s.Canary != 0 {
			t.Errorf("users got the new version %d times of %d before the switch", s.Canary, s.Requests)
		}
	}
	// The new version was tested: the preview host reached it during the analysis.
	tested := 0
	for _, s := range preview.Samples(app.Triggered, app.Triggered.Add(rep.Took)) {
		if s.Version == "6.0.1" {
			tested++
		}
	}
	if tested < 100 {
		t.Errorf("the preview host reached the new version %d times during the analysis, want it tested", tested)
	}
}
