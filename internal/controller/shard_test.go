package controller_test

import (
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
	"github.com/pennant/pennant/internal/controller"
	"github.com/pennant/pennant/internal/testenv"
)

// Two controllers sharded the way Flux shards (the main one without the shard label, a shard with
// it) on one API server each touch only their own canaries; a canary relabelled from one to the
// other is taken over without a release, and its next release is the new owner's.
func TestShardsOwnDisjointCanariesAndTakeOverARelabelledOne(t *testing.T) {
	env := testenv.Start(t)
	env.RequireCluster(t)
	ns := env.NewNamespace(t)
	f := &fixture{t: t, env: env, ns: ns, c: env.Client}
	_, mainPaths, _ := startController(t, env, ns, "!"+controller.ShardKeyLabel)
	_, shardPaths, _ := startController(t, env, ns, controller.ShardKeyLabel+"=shard1")
	f.ctx = t.Context()

	alpha, beta := blueGreenCanary("alpha", "Deployment", 5), blueGreenCanary("beta", "Deployment", 2)
	beta.Labels = map[string]string{controller.ShardKeyLabel: "shard1"}
	f.create(podinfoDeployment("alpha", 1), podinfoDeployment("beta", 1), alpha, beta)
	f.waitPhase("alpha", flaggerv1.CanaryPhaseInitialized, phaseTimeout)
	f.waitPhase("beta", flaggerv1.CanaryPhaseInitialized, phaseTimeout)
	if got := canaryRequests(mainPaths, "beta"); len(got) > 0 {
		t.Errorf("the main controller touched the shard's canary: %v", got)
	}
	if got := canaryRequests(shardPaths, "alpha"); len(got) > 0 {
		t.Errorf("the shard touched the main controller's canary: %v", got)
	}

	before := f.canary("alpha")
	moved := &flaggerv1.Canary{}
	f.update("alpha", moved, func() { moved.Labels = map[string]string{controller.ShardKeyLabel: "shard1"} })
	time.Sleep(2 * time.Second) // both controllers have seen the relabel
	mainBefore := len(canaryRequests(mainPaths, "alpha"))
	after := f.canary("alpha")
	if after.Status.Phase != flaggerv1.CanaryPhaseInitialized || after.Status.LastAppliedSpec != before.Status.LastAppliedSpec {
		t.Errorf("taking over changed the canary: phase %s, revision %s (was %s)", after.Status.Phase, after.Status.LastAppliedSpec, before.Status.LastAppliedSpec)
	}
	for _, e := range f.events() {
		if strings.Contains(e, "New revision detected! Scaling up "+f.key("alpha")) {
			t.Errorf("taking over started a release: %s", e)
		}
	}

	f.setImage("alpha", "ghcr.io/stefanprodan/podinfo:6.0.1")
	f.waitPhase("alpha", flaggerv1.CanaryPhaseSucceeded, phaseTimeout)
	if got := canaryRequests(mainPaths, "alpha"); len(got) != mainBefore {
		t.Errorf("the main controller went on touching the canary it gave away: %v", got[mainBefore:])
	}
	if got := canaryRequests(shardPaths, "alpha"); len(got) == 0 {
		t.Error("the shard released the canary without a request of its own")
	}

	// Moved back in the middle of a release, the canary goes on with it: no new release.
	f.setImage("alpha", "ghcr.io/stefanprodan/podinfo:6.0.2")
	f.waitPhase("alpha", flaggerv1.CanaryPhaseProgressing, phaseTimeout)
	f.update("alpha", moved, func() { delete(moved.Labels, controller.ShardKeyLabel) })
	f.waitPhase("alpha", flaggerv1.CanaryPhaseSucceeded, phaseTimeout)
	if got := canaryRequests(mainPaths, "alpha"); len(got) == mainBefore {
		t.Error("the main controller finished the release without a request of its own")
	}
	// Repeated events are one Event counted.
	var evs corev1.EventList
	if err := f.c.List(f.ctx, &evs, client.InNamespace(f.ns)); err != nil {
		t.Fatal(err)
	}
	started := 0
	for _, e := range evs.Items {
		if strings.Contains(e.Message, "New revision detected") && strings.Contains(e.Message, f.key("alpha")) {
			started += int(max(e.Count, 1))
		}
	}
	if started != 2 {
		t.Errorf("%d releases of alpha started, want 2 (one per image change):\n%s", started, strings.Join(f.events(), "\n"))
	}
	primary := &appsv1.Deployment{}
	f.get("alpha-primary", primary)
	if got := image(primary.Spec.Template.Spec); got != "ghcr.io/stefanprodan/podinfo:6.0.2" {
		t.Errorf("primary image %s, want the release's 6.0.2", got)
	}
}

// canaryRequests are the recorded requests that write canary name or its generated objects.
func canaryRequests(p *pathRecorder, name string) []string {
	var out []string
	for _, path := range p.matching("/" + name) {
		if !strings.HasPrefix(path, "GET ") {
			out = append(out, path)
		}
	}
	return out
}
