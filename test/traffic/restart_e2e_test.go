//go:build e2e

package traffic

import (
	"context"
	"encoding/json"
	"io"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/pennant/pennant/test/traffic/harness"
)

// A change of the ConfigMap that the pods read is released like a new image; the controller is
// SIGKILLed in the middle of the analysis and, restarted, finishes the release: the same outcome as
// without the crash, every weight served at its share, no request failed.
func TestConfigMapReleaseSurvivesAControllerKill(t *testing.T) {
	ctx := context.Background()
	app := deployTraefikApp(t, "restart", "examples/demo/traefik/canary.yaml")

	killed := make(chan error, 1)
	rep := release(t, app, harness.ReleaseOptions{
		Title: "podinfo-config's new message, pennant killed at 20%",
		Trigger: func(ctx context.Context) error {
			cm := &corev1.ConfigMap{}
			if err := stack.Client.Get(ctx, client.ObjectKey{Namespace: "restart", Name: "podinfo-config"}, cm); err != nil {
				return err
			}
			cm.Data["PODINFO_UI_MESSAGE"] = "released from a ConfigMap"
			if err := stack.Client.Update(ctx, cm); err != nil {
				return err
			}
			go func() { killed <- killAtWeight(ctx, app, 20) }()
			return nil
		},
	})
	if err := <-killed; err != nil {
		t.Fatal(err)
	}
	if rep.Outcome != "Succeeded" {
		t.Fatalf("the release ended %s", rep.Outcome)
	}
	checkShares(t, rep, 10, 20, 30, 40, 50)
	checkNoFailures(t, rep)
	// The primary's pods now read podinfo-config-primary, which carries the new message.
	resp, err := stack.Get(ctx, "restart.example.com", "/", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Hostname, Message string
	}
	data, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(data, &body); err != nil || body.Message != "released from a ConfigMap" {
		t.Errorf("after the release podinfo answers %s (%v), want the new message from the primary", data, err)
	}
}

// killAtWeight SIGKILLs pennant once the route gives the canary weight, and starts it again after
// a few seconds.
func killAtWeight(ctx context.Context, app *harness.App, weight int) error {
	if _, err := app.Route.Wait(ctx, app.Triggered, 2*time.Minute, "canary weight", func(v string) bool {
		w, ok := harness.CanaryWeight(v, 0)
		return ok && w == weight
	}); err != nil {
		return err
	}
	stack.KillPennant()
	time.Sleep(3 * time.Second)
	if err := stack.StartPennant(ctx); err != nil {
		return err
	}
	return nil
}
