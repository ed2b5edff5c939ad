package cli

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/json"
	"k8s.io/utils/ptr"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

// A finished blue/green release through get and status, against golden files.
func TestGetAndStatusOfAFinishedRelease(t *testing.T) {
	f := newFixture(t)
	f.create(podinfo("podinfo"), blueGreen("podinfo", 2))
	f.waitPhase("podinfo", flaggerv1.CanaryPhaseInitialized)
	f.setImage("podinfo", "ghcr.io/stefanprodan/podinfo:6.0.1")
	f.waitPhase("podinfo", flaggerv1.CanaryPhaseSucceeded)

	ctx := context.Background()
	f.out.Reset()
	if err := f.env.Get(ctx, "", GetOptions{}); err != nil {
		t.Fatal(err)
	}
	golden(t, "get.golden", f.normalise(f.out.String()))

	f.env.AllNamespaces = true
	f.out.Reset()
	if err := f.env.Get(ctx, "podinfo", GetOptions{}); err != nil {
		t.Fatal(err)
	}
	f.env.AllNamespaces = false
	if got := f.normalise(f.out.String()); !strings.HasPrefix(got, "NAMESPACE") || !strings.Contains(got, "\nNS ") {
		t.Errorf("get -A has no namespace column:\n%s", got)
	}

	// The promotion's last events may come a moment after the phase.
	out := f.waitFor(func() error { return f.env.Status(ctx, "podinfo") },
		func(out string) bool { return strings.Contains(out, "Promotion completed!") })
	// A readiness wait is reported only when kwok is slower than the controller.
	golden(t, "status.golden", dropLines(f.normalise(out), regexp.MustCompile(`Warning\s+(.*not ready|Waiting for )`)))

	f.out.Reset()
	if err := f.env.Get(ctx, "podinfo", GetOptions{Output: "json"}); err != nil {
		t.Fatal(err)
	}
	var cd flaggerv1.Canary
	if err := json.Unmarshal(f.out.Bytes(), &cd); err != nil || cd.Kind != "Canary" || cd.Status.Phase != flaggerv1.CanaryPhaseSucceeded {
		t.Errorf("get -o json: kind %q phase %q (%v):\n%s", cd.Kind, cd.Status.Phase, err, f.out.String())
	}
}

// syncBuffer is a writer read while a command writes to it.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// get --watch through a pipe prints a line per change, not a redraw, and each phase of the release.
func TestGetWatchPrintsALinePerChange(t *testing.T) {
	f := newFixture(t)
	f.create(podinfo("podinfo"), blueGreen("podinfo", 2))
	f.waitPhase("podinfo", flaggerv1.CanaryPhaseInitialized)
	out := &syncBuffer{}
	f.env.Out = out
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.env.Get(ctx, "podinfo", GetOptions{Watch: true}) }()
	// The release starts only once the watch has printed the Initialized canary, or its first line could be later.
	for i := 0; i < 100 && !strings.Contains(out.String(), "Initialized"); i++ {
		time.Sleep(50 * time.Millisecond)
	}
	f.setImage("podinfo", "ghcr.io/stefanprodan/podinfo:6.0.1")
	f.waitPhase("podinfo", flaggerv1.CanaryPhaseSucceeded)
	time.Sleep(500 * time.Millisecond) // the watch event of the last status write
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("get --watch: %v", err)
	}
	got := out.String()
	if strings.Contains(got, clearScreen) {
		t.Errorf("a piped watch redraws the screen:\n%q", got)
	}
	lines := strings.Split(strings.TrimSpace(got), "\n")
	if !strings.HasPrefix(lines[0], "NAME") || strings.Count(got, "NAME") != 1 {
		t.Errorf("want the headings once, first:\n%s", got)
	}
	var phases []string
	for _, l := range lines[1:] {
		phases = append(phases, strings.Fields(l)[1])
	}
	joined := strings.Join(phases, " ")
	for _, want := range []string{"Initialized", "Progressing", "Succeeded"} {
		if !strings.Contains(joined, want) {
			t.Errorf("no line with phase %s; phases %s:\n%s", want, joined, got)
		}
	}
	for i := 2; i < len(lines); i++ {
		if stable(lines[i]) == stable(lines[i-1]) {
			t.Errorf("line %d repeats the previous one: %q", i, lines[i])
		}
	}
}

// stable is a watch line without its last column (the age).
func stable(line string) string { f := strings.Fields(line); return strings.Join(f[:len(f)-1], " ") }

// wait's exit codes: 0 when the release succeeds, 1 when it fails, 2 on timeout.
func TestWaitExitCodes(t *testing.T) {
	f := newFixture(t)
	good := blueGreen("good", 2)
	bad := blueGreen("bad", 3)
	bad.Spec.Analysis.Threshold = 1
	bad.Spec.Analysis.Webhooks = []flaggerv1.CanaryWebhook{{Name: "smoke-test", Type: flaggerv1.RolloutHook, URL: hookServer(t, 500)}}
	held := blueGreen("held", 2)
	held.Spec.Analysis.Webhooks = []flaggerv1.CanaryWebhook{{Name: "approve", Type: flaggerv1.ConfirmRolloutHook, URL: hookServer(t, 403)}}
	f.create(podinfo("good"), podinfo("bad"), podinfo("held"), good, bad, held)
	for _, n := range []string{"good", "bad", "held"} {
		f.waitPhase(n, flaggerv1.CanaryPhaseInitialized)
	}

	ctx := context.Background()
	if err := f.env.Wait(ctx, "good", "promoted", 10*time.Second); err != nil {
		t.Errorf("wait --for=promoted of an initialized canary: %v", err)
	}
	type result struct {
		name string
		err  error
	}
	results := make(chan result, 3)
	for _, w := range []struct{ name, target string }{{"good", "succeeded"}, {"bad", "succeeded"}, {"held", "succeeded"}} {
		go func() {
			timeout := 60 * time.Second
			if w.name == "held" {
				timeout = 4 * time.Second
			}
			results <- result{w.name, f.env.Wait(ctx, w.name, w.target, timeout)}
		}()
	}
	for _, n := range []string{"good", "bad", "held"} {
		f.setImage(n, "ghcr.io/stefanprodan/podinfo:6.0.1")
	}
	want := map[string]int{"good": ExitReached, "bad": ExitFailed, "held": ExitTimeout}
	for range 3 {
		r := <-results
		code := ExitReached
		var exit *ExitError
		if errors.As(r.err, &exit) {
			code = exit.Code
		} else if r.err != nil {
			t.Errorf("wait %s: %v", r.name, r.err)
			continue
		}
		if code != want[r.name] {
			t.Errorf("wait %s --for=succeeded: exit %d (%v), want %d", r.name, code, r.err, want[r.name])
		}
	}
	if err := f.env.Wait(ctx, "bad", "failed", 10*time.Second); err != nil {
		t.Errorf("wait --for=failed of a failed canary: %v", err)
	}
	var exit *ExitError
	if err := f.env.Wait(ctx, "good", "failed", 10*time.Second); !errors.As(err, &exit) || exit.Code != ExitFailed {
		t.Errorf("wait --for=failed of a succeeded canary: %v, want exit 1", err)
	}
	if err := f.env.Wait(ctx, "good", "soon", time.Second); err == nil || errors.As(err, &exit) {
		t.Errorf("wait --for=soon: %v, want a usage error", err)
	}
}

// Right after a new image, before the controller saw it, the previous release's Succeeded is no
// answer: wait waits for the release of the change (here, with the controller stopped, until the
// timeout).
func TestWaitIgnoresThePreviousReleasesStatus(t *testing.T) {
	f := newFixture(t)
	f.create(podinfo("podinfo"), blueGreen("podinfo", 1))
	f.waitPhase("podinfo", flaggerv1.CanaryPhaseInitialized)
	f.setImage("podinfo", "ghcr.io/stefanprodan/podinfo:6.0.1")
	f.waitPhase("podinfo", flaggerv1.CanaryPhaseSucceeded)
	ctx := context.Background()
	if err := f.env.Wait(ctx, "podinfo", "succeeded", 5*time.Second); err != nil {
		t.Fatalf("wait for the finished release: %v", err)
	}
	f.stopController()
	time.Sleep(1100 * time.Millisecond) // managed fields and transitions have whole seconds
	f.setImage("podinfo", "ghcr.io/stefanprodan/podinfo:6.0.2")
	var exit *ExitError
	if err := f.env.Wait(ctx, "podinfo", "succeeded", 3*time.Second); !errors.As(err, &exit) || exit.Code != ExitTimeout {
		t.Errorf("wait --for=succeeded after a new image the controller did not see: %v, want a timeout (exit 2)", err)
	}
	if !strings.Contains(f.out.String(), "its target changed at ") {
		t.Errorf("wait did not say why it waits:\n%s", f.out.String())
	}
}

// explain for a closed gate, a failing metric, an unready canary and an invalid spec.
func TestExplain(t *testing.T) {
	f := newFixture(t)
	gate := hookServer(t, 403)
	held := blueGreen("held", 2)
	held.Spec.Analysis.Webhooks = []flaggerv1.CanaryWebhook{{Name: "approve", Type: flaggerv1.ConfirmRolloutHook, URL: gate}}

	prom := prometheusAnswering(t, "12")
	tmpl := &flaggerv1.MetricTemplate{
		ObjectMeta: metav1.ObjectMeta{Name: "error-rate"},
		Spec: flaggerv1.MetricTemplateSpec{
			Provider: flaggerv1.MetricTemplateProvider{Type: "prometheus", Address: prom},
			Query:    `sum(rate(http_requests_total{status=~"5.."}[1m]))`,
		},
	}
	failing := blueGreen("failing", 5)
	failing.Spec.Analysis.Threshold = 20
	failing.Spec.Analysis.Metrics = []flaggerv1.CanaryMetric{{Name: "error-rate", Interval: "1m",
		TemplateRef: &flaggerv1.CrossNamespaceRef{Name: "error-rate"}, ThresholdRange: &flaggerv1.CanaryThresholdRange{Max: ptr.To(5.0)}}}

	unready := blueGreen("unready", 2)
	invalid := blueGreen("invalid", 0)
	invalid.Spec.Analysis = &flaggerv1.CanaryAnalysis{Interval: "1s", Threshold: 2, StepWeights: []int{20, 10}}

	f.create(tmpl, podinfo("held"), podinfo("failing"), podinfo("unready"), podinfo("invalid"), held, failing, unready, invalid)
	for _, n := range []string{"held", "failing", "unready"} {
		f.waitPhase(n, flaggerv1.CanaryPhaseInitialized)
	}
	for _, n := range []string{"held", "failing"} {
		f.setImage(n, "ghcr.io/stefanprodan/podinfo:6.0.1")
	}
	d := &appsv1.Deployment{}
	f.update("unready", d, func() {
		d.Spec.Template.Spec.Containers[0].Image = "ghcr.io/stefanprodan/podinfo:6.0.1"
		d.Spec.Template.Spec.NodeSelector = map[string]string{"pennant.dev/no-such-node": "true"} // pods stay Pending
	})

	ctx := context.Background()
	explainOf := func(name string, wants ...string) {
		t.Helper()
		out := f.waitFor(func() error { return f.env.Explain(ctx, name) }, func(out string) bool {
			for _, w := range wants {
				if !strings.Contains(out, w) {
					return false
				}
			}
			return true
		})
		t.Logf("explain %s:\n%s", name, f.normalise(out))
	}
	explainOf("held",
		`The confirm-rollout gate "approve" is closed`,
		"Halt held."+f.ns+" advancement waiting for approval approve",
		"It opens when "+gate+" answers 200 OK")
	explainOf("failing",
		"Canary failing."+f.ns+" is Progressing",
		`The metric "error-rate" failed AGE ago: 12.00 > 5, threshold ≤ 5.`,
		`Query: sum(rate(http_requests_total{status=~"5.."}[1m])) (MetricTemplate `+f.ns+`/error-rate, provider prometheus)`)
	explainOf("unready",
		"Deployment unready is not ready: 0 of 1 replicas ready",
		"is not scheduled (Unschedulable)",
		"The progress deadline (60s after the last change) rolls the release back in")
	explainOf("invalid",
		"It is stalled (InvalidSpec): analysis.stepWeights must be positive and increasing, got [20 10]",
		"Correct the spec as the message says")
}
