package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"

	"github.com/pennant/pennant/test/traffic/harness"
)

// pluginRelease drives a release from kubectl pennant, as an operator would: at 20% it is paused
// (the weight holds for two intervals and more), resumed, then promoted without the remaining
// steps, and `wait` is the CI gate that returns when it succeeded. Every command is the real
// binary against the control plane, its output printed as a person sees it.
func pluginRelease(ctx context.Context, app *harness.App, plugin, kubeconfig string) error {
	kubectl := func(args ...string) error {
		shown := make([]string, len(args))
		for i, a := range args {
			shown[i] = a
			if strings.Contains(a, " ") {
				shown[i] = strconv.Quote(a)
			}
		}
		fmt.Printf("\n$ kubectl pennant %s\n", strings.Join(shown, " "))
		cmd := exec.CommandContext(ctx, plugin, append(args, "--kubeconfig", kubeconfig)...)
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stdout
		return cmd.Run()
	}
	atWeight := func(w int) error {
		_, err := app.Route.Wait(ctx, app.Triggered, 2*time.Minute, fmt.Sprintf("canary weight %d", w), func(v string) bool {
			got, ok := harness.CanaryWeight(v, 0)
			return ok && got == w
		})
		return err
	}
	drive := func(ctx context.Context) error {
		// 6.0.3 fixes 6.0.2's errors.
		fixed := func(d *appsv1.Deployment) {
			image("6.0.3")(d)
			d.Spec.Template.Spec.Containers[0].Env = nil
		}
		if err := app.Trigger(ctx, fixed); err != nil {
			return err
		}
		if err := atWeight(20); err != nil {
			return err
		}
		steps := [][]string{
			{"get", "-n", "test"},
			{"pause", "podinfo", "-n", "test", "--reason", "looking at the dashboards first"},
		}
		for _, args := range steps {
			if err := kubectl(args...); err != nil {
				return err
			}
		}
		hold := 2*app.Interval + app.Interval/2
		say("Paused: the weight holds at 20%% while %s (%.1f analysis intervals) pass", hold, hold.Seconds()/app.Interval.Seconds())
		select {
		case <-time.After(hold):
		case <-ctx.Done():
			return ctx.Err()
		}
		for _, args := range [][]string{
			{"get", "-n", "test"},
			{"resume", "podinfo", "-n", "test"},
			{"promote", "podinfo", "-n", "test", "--reason", "dashboards look good"},
			{"wait", "podinfo", "-n", "test", "--for=succeeded", "--timeout=2m"},
		} {
			if err := kubectl(args...); err != nil {
				return err
			}
		}
		return nil
	}
	watching, done := make(chan struct{}), make(chan struct{})
	go func() { defer close(done); follow(app, watching) }()
	rep, err := app.Run(ctx, harness.ReleaseOptions{Title: "podinfo 6.0.3, driven from kubectl pennant", Trigger: drive})
	close(watching)
	<-done
	if err != nil {
		return err
	}
	if rep.Outcome != "Succeeded" {
		return fmt.Errorf("the release driven from the plugin ended %s\n%s", rep.Outcome, rep)
	}
	if err := kubectl("status", "podinfo", "-n", "test"); err != nil {
		return err
	}
	fmt.Printf("\n%s", rep)
	return nil
}
