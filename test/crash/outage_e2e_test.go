//go:build e2e

package crash

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
	"github.com/pennant/pennant/internal/testenv"
)

// The outage tests stop the kube-apiserver of the private control plane of this run
// (hack/local-cluster.sh stop-apiserver: etcd keeps the state) while a release is in its analysis.
// They must not overlap any other test of the package: none of them calls t.Parallel(), so no other
// top-level test runs at the same time (the campaign's parallel subtests end before
// TestCrashCampaign returns).

const (
	// outage is how long the apiserver stays stopped.
	outage = 30 * time.Second
	// outageStepWeight and outageMaxWeight make five analysis steps (10..50), so that an outage
	// that starts at the first weight > 0 falls in the middle of the analysis.
	outageStepWeight = 10
	outageMaxWeight  = 50
	// resumeTimeout bounds the end of a release once the apiserver is back: client-go's reflectors
	// and controller-runtime's queue back off while the apiserver is away (up to tens of seconds).
	resumeTimeout = 4 * time.Minute
)

// TestAPIServerOutageMidAnalysis stops the apiserver for 30s in the middle of a release whose checks
// pass, starts it again, and checks that the release resumes and ends as it would have: Succeeded,
// the new image on the primary, all traffic there, the target at zero, no analysis step less than
// an interval after the previous one, and the canary weight never going backwards except at the
// promotion.
//
// Two ways of running pennant:
//   - without leader election (Flagger's default, the harness's way): nothing should make pennant
//     exit; an exit fails the test.
//   - with -enable-leader-election: pennant cannot renew its Lease for 30s (renew deadline 10s), so
//     it loses leadership and exits, as controller-runtime does. The test then restarts it as a
//     Deployment's kubelet would (the same flags, after a back-off of 2s doubling up to 10s, also
//     while the apiserver is still down, when it exits again: it cannot set up without the API).
//     Once the apiserver is back, the new process takes the Lease over after a lease duration
//     (15s: its predecessor's record looks held until then) and the release must end the same.
func TestAPIServerOutageMidAnalysis(t *testing.T) {
	bin := buildPennant(t)
	for _, v := range []struct {
		name           string
		leaderElection bool
	}{
		{"without-leader-election", false},
		{"with-leader-election", true},
	} {
		t.Run(v.name, func(t *testing.T) { apiServerOutage(t, bin, v.leaderElection) })
	}
}

func apiServerOutage(t *testing.T, bin string, leaderElection bool) {
	started := time.Now()
	api := localAPIServer(t)
	var args []string
	if leaderElection {
		args = append(args, "-enable-leader-election")
	}
	r, h := newFollowedRelease(t, bin, func(cd *flaggerv1.Canary) {
		cd.Spec.Analysis.StepWeight, cd.Spec.Analysis.MaxWeight = outageStepWeight, outageMaxWeight
		// Flagger's default deadline: the fixture's 60s is for the crash campaign's quick runs, and
		// a 30s outage (plus the clients' back-off) must not count as a stuck canary.
		cd.Spec.ProgressDeadlineSeconds = ptr.To[int32](600)
	}, args...)
	sup := &pennantSupervisor{t: t, ctl: r.ctl, restart: leaderElection, backoff: 2 * time.Second}

	r.setImage(newImage)
	var atStop flaggerv1.CanaryStatus
	sup.waitUntil(phaseTimeout, func() (bool, string) {
		cd := &flaggerv1.Canary{}
		if err := r.get("podinfo", cd); err != nil {
			return false, err.Error()
		}
		atStop = cd.Status
		w := cd.Status.CanaryWeight
		return cd.Status.Phase == flaggerv1.CanaryPhaseProgressing && w > 0 && w < outageMaxWeight,
			fmt.Sprintf("canary %s at weight %d, waiting for 0 < weight < %d", cd.Status.Phase, w, outageMaxWeight)
	})

	// The apiserver refuses requests as soon as it is told to stop, though it may take a while to
	// exit (stop-apiserver waits 10s before a SIGKILL): the outage counts from the stop's start.
	stoppedAt := time.Now()
	api.Stop()
	stopTook := time.Since(stoppedAt)
	before := h.lastCanary()
	t.Logf("apiserver stopped (in %s) at canary weight %d (%d when the stop began), phase %s",
		stopTook.Round(100*time.Millisecond), before.weight, atStop.CanaryWeight, before.phase)
	if before.phase != flaggerv1.CanaryPhaseProgressing || before.weight >= outageMaxWeight {
		t.Fatalf("the outage does not fall mid-analysis: when the apiserver went away the canary was %s at weight %d", before.phase, before.weight)
	}
	for time.Since(stoppedAt) < outage {
		sup.poll()
		time.Sleep(100 * time.Millisecond)
	}
	api.Start()
	backAt := time.Now()
	t.Logf("apiserver back after %s", backAt.Sub(stoppedAt).Round(100*time.Millisecond))

	var phase flaggerv1.CanaryPhase
	sup.waitUntil(resumeTimeout, func() (bool, string) {
		phase = r.phase()
		return phase == flaggerv1.CanaryPhaseSucceeded || phase == flaggerv1.CanaryPhaseFailed,
			fmt.Sprintf("canary phase %q after the outage, want Succeeded or Failed", phase)
	})
	endedAt := time.Now()
	if phase != flaggerv1.CanaryPhaseSucceeded {
		t.Errorf("after the outage the release ended %s; with checks that always pass it must succeed (canary events: %s)", phase, canaryEvents(r))
	}
	r.steps = h.stepRecorder()
	r.checkOutcome(phase)
	sup.poll()
	if !leaderElection && len(sup.exits) > 0 {
		t.Errorf("pennant exited during the test (%s)", sup.describe())
	}

	for _, bad := range h.weightsBackwards() {
		t.Errorf("canary weight went backwards: %s", bad)
	}
	for _, bad := range h.routesBackwards() {
		t.Errorf("VirtualService weight went backwards: %s", bad)
	}
	if h.continuous() {
		// Every stored version was seen: the analysis went through every weight, as without an
		// outage, and the routes too, back to the primary at the end.
		if got, want := h.analysisWeights(), []int{0, 10, 20, 30, 40, 50}; fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("canary weights during the analysis %v, want %v as without an outage", got, want)
		}
		if got, want := h.routeWeights(), []int{0, 10, 20, 30, 40, 50, 0}; fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("VirtualService canary weights %v, want %v as without an outage", got, want)
		}
	} else {
		t.Logf("a watch lost versions during the outage (%s): the weights' exact path is not checked", h.watchStats())
	}
	resume := "no analysis step recorded after the outage"
	if at, weight := h.firstProgressAfter(backAt, before); !at.IsZero() {
		resume = fmt.Sprintf("weight %d recorded %s after the apiserver was back", weight, at.Sub(backAt).Round(100*time.Millisecond))
	}
	t.Logf("hook calls %d; %s", r.hook.Calls(), h.watchStats())
	fmt.Printf("apiserver outage (%s): stopped %s at weight %d (the stop took %s), back after %s; %s; ended %s %s later (test %s); weights %v, routes %v; step gaps %s; pennant: %s\n",
		map[bool]string{false: "no leader election", true: "leader election"}[leaderElection],
		before.phase, before.weight, stopTook.Round(100*time.Millisecond), backAt.Sub(stoppedAt).Round(100*time.Millisecond), resume, phase,
		endedAt.Sub(backAt).Round(100*time.Millisecond), time.Since(started).Round(time.Second),
		h.analysisWeights(), h.routeWeights(), h.stepGaps(), sup.describe())
}

// TestMetricsBackendDownFailsTheRelease runs a release whose only metric, the builtin
// request-success-rate, reads a Prometheus on a loopback port where nothing listens (with a password
// in its address, as -metrics-server allows). Every metric check fails, so the release must fail at
// the threshold and never promote: the primary never runs the new image, the canary ends Failed with
// failedChecks == threshold, all traffic on the primary, the target at zero; its events say why
// (the backend error), without the password.
func TestMetricsBackendDownFailsTheRelease(t *testing.T) {
	started := time.Now()
	bin := buildPennant(t)
	const threshold = 3
	const password = "pennant-e2e-s3cret"
	port := closedPort(t)
	address := fmt.Sprintf("http://pennant:%s@127.0.0.1:%d", password, port)
	r, h := newFollowedRelease(t, bin, func(cd *flaggerv1.Canary) {
		a := cd.Spec.Analysis
		a.Threshold, a.StepWeight, a.MaxWeight = threshold, outageStepWeight, outageMaxWeight
		a.Metrics = []flaggerv1.CanaryMetric{{
			Name: "request-success-rate", Interval: "1m",
			ThresholdRange: &flaggerv1.CanaryThresholdRange{Min: ptr.To(99.0)},
		}}
	}, "-metrics-server="+address)
	sup := &pennantSupervisor{t: t, ctl: r.ctl}

	r.setImage(newImage)
	var phase flaggerv1.CanaryPhase
	sup.waitUntil(phaseTimeout, func() (bool, string) {
		phase = r.phase()
		return phase == flaggerv1.CanaryPhaseSucceeded || phase == flaggerv1.CanaryPhaseFailed,
			fmt.Sprintf("canary phase %q, want Failed", phase)
	})
	if phase != flaggerv1.CanaryPhaseFailed {
		t.Fatalf("with its metrics backend down the release ended %s; it must fail (canary events: %s)", phase, canaryEvents(r))
	}
	r.steps = h.stepRecorder()
	r.checkOutcome(phase)

	cd := &flaggerv1.Canary{}
	if err := r.get("podinfo", cd); err != nil {
		t.Fatal(err)
	}
	if cd.Status.FailedChecks != threshold {
		t.Errorf("the release failed with failedChecks %d, want the threshold %d", cd.Status.FailedChecks, threshold)
	}
	if images := h.primaryImages(); len(images) == 0 {
		t.Errorf("no version of podinfo-primary was seen")
	} else {
		for _, img := range images {
			if img != oldImage {
				t.Errorf("the primary ran %s at some time (images seen %v): a failing metric must never promote", img, images)
				break
			}
		}
	}
	if w := h.maxWeight(); w > outageStepWeight {
		t.Errorf("the canary reached weight %d; only the first step (no metric check at weight 0) may advance, to %d", w, outageStepWeight)
	}

	// The events say why, without the password of the address.
	var backendErr string
	testenv.Eventually(t, 10*time.Second, 200*time.Millisecond, func() (bool, string) {
		for _, ev := range canaryEventList(r) {
			if ev.Type == corev1.EventTypeWarning && strings.Contains(ev.Message, "connection refused") &&
				strings.Contains(ev.Message, "Prometheus query failed") {
				backendErr = ev.Message
				return true, ""
			}
		}
		return false, "no Warning event of the canary tells of the failed Prometheus query (connection refused): " + canaryEvents(r)
	})
	for _, ev := range canaryEventList(r) {
		if strings.Contains(ev.Message, password) {
			t.Errorf("credential leak: a %s event of the canary shows the password of the -metrics-server address: %q", ev.Type, ev.Message)
		}
	}
	for _, c := range cd.Status.Conditions {
		if strings.Contains(c.Message, password) {
			t.Errorf("credential leak: status condition %s shows the password of the -metrics-server address: %q", c.Type, c.Message)
		}
	}
	if len(sup.exits) > 0 {
		t.Errorf("pennant exited during the test (%s)", sup.describe())
	}
	// The event quotes the whole PromQL query; the summary keeps the error's end.
	if i := strings.LastIndex(backendErr, "Post "); i >= 0 {
		backendErr = "..." + backendErr[i:]
	}
	fmt.Printf("metrics backend down: ended %s with failedChecks %d/%d, max weight %d, primary images %v, step gaps %s, hook calls %d, in %s; backend error event: %q\n",
		phase, cd.Status.FailedChecks, threshold, h.maxWeight(), dedupeAdjacent(h.primaryImages()), h.stepGaps(),
		r.hook.Calls(), time.Since(started).Round(time.Second), backendErr)
}

// newFollowedRelease is newRelease with the canary changed by edit and extra pennant flags; the
// canary, its VirtualService and the Deployments are followed (across apiserver outages) from
// before pennant starts. It returns once the canary is Initialized.
func newFollowedRelease(t *testing.T, bin string, edit func(*flaggerv1.Canary), args ...string) (*release, *releaseHistory) {
	t.Helper()
	env := testenv.Start(t)
	env.RequireCluster(t)
	r := &release{t: t, env: env, ns: env.NewNamespace(t), hook: newRolloutHook(t, -1), ctx: context.Background()}
	cd := r.canary()
	edit(cd)
	h := followRelease(t, env, r.ns)
	r.create(podinfo(), cd)
	r.ctl = newController(t, bin, r.ns, append([]string{"-min-analysis-interval=1s"}, args...)...)
	r.ctl.Start()
	r.waitPhase(flaggerv1.CanaryPhaseInitialized)
	return r, h
}

// closedPort returns a loopback port where nothing listens (it was listened on, then closed).
func closedPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return port
}

func canaryEventList(r *release) []corev1.Event {
	list := &corev1.EventList{}
	if err := r.env.Client.List(r.ctx, list, client.InNamespace(r.ns)); err != nil {
		r.t.Logf("listing events: %v", err)
		return nil
	}
	var out []corev1.Event
	for _, ev := range list.Items {
		if ev.InvolvedObject.Kind == "Canary" && ev.InvolvedObject.Name == "podinfo" {
			out = append(out, ev)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].FirstTimestamp.Before(&out[j].FirstTimestamp) })
	return out
}

func canaryEvents(r *release) string {
	var msgs []string
	for _, ev := range canaryEventList(r) {
		msgs = append(msgs, fmt.Sprintf("[%s x%d] %s", ev.Type, ev.Count, ev.Message))
	}
	return strings.Join(msgs, "; ")
}

func dedupeAdjacent(s []string) []string {
	var out []string
	for _, v := range s {
		if len(out) == 0 || out[len(out)-1] != v {
			out = append(out, v)
		}
	}
	return out
}

// --- the apiserver ------------------------------------------------------------------------------

// localAPI stops and starts the kube-apiserver of the control plane hack/test.sh started for this
// run: the one of $LOCAL_CLUSTER_DIR, whose kubeconfig the tests use.
type localAPI struct {
	t       *testing.T
	root    string
	cfg     *rest.Config
	stopped bool
}

// localAPIServer fails t unless the tests run on hack/local-cluster.sh's control plane of
// $LOCAL_CLUSTER_DIR (never another cluster's apiserver): make e2e always provides one, and an
// outage test that quietly skips would prove nothing.
func localAPIServer(t *testing.T) *localAPI {
	t.Helper()
	dir := os.Getenv("LOCAL_CLUSTER_DIR")
	if dir == "" || os.Getenv("API_PORT") == "" {
		t.Fatal("needs the private control plane of hack/e2e.sh (LOCAL_CLUSTER_DIR and API_PORT unset): run make e2e")
	}
	kc, err := filepath.Abs(os.Getenv("KUBECONFIG"))
	if err != nil || kc != filepath.Join(dir, "kubeconfig") {
		t.Fatalf("KUBECONFIG %q is not the kubeconfig of $LOCAL_CLUSTER_DIR %s: not stopping that apiserver", os.Getenv("KUBECONFIG"), dir)
	}
	env := testenv.Start(t)
	env.RequireCluster(t)
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	a := &localAPI{t: t, root: root, cfg: rest.CopyConfig(env.Config)}
	a.cfg.Timeout = 2 * time.Second
	return a
}

func (a *localAPI) script(cmd string) {
	a.t.Helper()
	c := exec.Command(filepath.Join(a.root, "hack", "local-cluster.sh"), cmd)
	c.Dir = a.root
	out, err := c.CombinedOutput()
	a.t.Logf("hack/local-cluster.sh %s: %s", cmd, strings.TrimSpace(string(out)))
	if err != nil {
		a.t.Errorf("hack/local-cluster.sh %s: %v", cmd, err)
	}
}

func (a *localAPI) readyz() error {
	cs, err := kubernetes.NewForConfig(a.cfg)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_, err = cs.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
	return err
}

// Stop stops the apiserver and checks that it no longer answers. However the test ends, the
// apiserver is started again (and ready) before the cleanups registered earlier run: deleting the
// test's namespace needs it.
func (a *localAPI) Stop() {
	a.t.Helper()
	a.stopped = true
	a.t.Cleanup(func() {
		if a.stopped {
			a.t.Logf("cleanup: starting the apiserver again")
			a.Start()
		}
	})
	a.script("stop-apiserver")
	if err := a.readyz(); err == nil {
		a.t.Fatalf("the apiserver still answers /readyz after stop-apiserver")
	}
}

// Start starts the apiserver again and waits until it answers /readyz.
func (a *localAPI) Start() {
	a.t.Helper()
	a.script("start-apiserver")
	deadline := time.Now().Add(2 * time.Minute)
	for {
		err := a.readyz()
		if err == nil {
			a.stopped = false
			return
		}
		if time.Now().After(deadline) {
			a.t.Errorf("the apiserver does not answer /readyz 2m after start-apiserver: %v", err)
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// --- the pennant process ------------------------------------------------------------------------

// pennantSupervisor watches the pennant process from the test goroutine. Without restart, an exit
// fails the test at once. With restart, it starts pennant again with the same flags after a
// back-off (2s doubling, at most 10s), as a Deployment's kubelet would.
type pennantSupervisor struct {
	t       *testing.T
	ctl     *controller
	restart bool
	backoff time.Duration

	exits    []string
	down     bool
	next     time.Time
	restarts int
}

func (s *pennantSupervisor) poll() {
	s.t.Helper()
	if s.down {
		if time.Now().After(s.next) {
			s.t.Logf("restarting pennant (restart %d)", s.restarts+1)
			s.ctl.Start()
			s.down = false
			s.restarts++
		}
		return
	}
	select {
	case <-s.ctl.Exited():
	default:
		return
	}
	code := -1
	if s.ctl.cmd != nil && s.ctl.cmd.ProcessState != nil {
		code = s.ctl.cmd.ProcessState.ExitCode()
	}
	s.exits = append(s.exits, fmt.Sprintf("exit %d at %s", code, time.Now().Format("15:04:05.000")))
	if !s.restart {
		s.t.Fatalf("pennant exited (code %d); it runs without leader election and nothing should make it exit: see its log above", code)
	}
	s.t.Logf("pennant exited (code %d); restarting it in %s, as a Deployment would", code, s.backoff)
	s.down, s.next = true, time.Now().Add(s.backoff)
	s.backoff = min(2*s.backoff, 10*time.Second)
}

// waitUntil polls cond (and the process) until it holds, failing t after timeout.
func (s *pennantSupervisor) waitUntil(timeout time.Duration, cond func() (bool, string)) {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		s.poll()
		ok, msg := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("not true after %v: %s", timeout, msg)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (s *pennantSupervisor) describe() string {
	if len(s.exits) == 0 {
		return "never exited"
	}
	return fmt.Sprintf("%s; restarted %d times", strings.Join(s.exits, ", "), s.restarts)
}

// --- what the apiserver stored --------------------------------------------------------------------

type canaryVersion struct {
	at           time.Time // when it was first received
	phase        flaggerv1.CanaryPhase
	weight       int
	failedChecks int
	step         time.Time // zero when status.lastStepTime is unset
}

type routeVersion struct {
	at     time.Time
	canary int // weight of podinfo-canary (the largest over the HTTP routes)
}

type imageVersion struct {
	at    time.Time
	image string
}

// releaseHistory holds the versions of the canary, its VirtualService and podinfo-primary that the
// apiserver stored, keyed and ordered by resourceVersion (an etcd revision on this control plane,
// so versions of one object compare as integers). Watches that resume after an outage feed it, and
// so does a poller (a GET of each object every 100ms): a restarted apiserver's watch cache does not
// serve the versions from before its start, and accepts writes before it serves watches, so the
// versions written right after an outage reach the history through the poller (each analysis step's
// version lasts at least one interval).
type releaseHistory struct {
	mu       sync.Mutex
	canaries map[uint64]canaryVersion
	routes   map[uint64]routeVersion
	primary  map[uint64]imageVersion
	watchers []*rewatcher
}

func followRelease(t *testing.T, env *testenv.Env, ns string) *releaseHistory {
	t.Helper()
	h := &releaseHistory{canaries: map[uint64]canaryVersion{}, routes: map[uint64]routeVersion{}, primary: map[uint64]imageVersion{}}
	h.watchers = []*rewatcher{
		rewatch(t, env, ns, "canaries", func() client.ObjectList { return &flaggerv1.CanaryList{} }, h),
		rewatch(t, env, ns, "virtualservices", func() client.ObjectList { return &networkingv1.VirtualServiceList{} }, h),
		rewatch(t, env, ns, "deployments", func() client.ObjectList { return &appsv1.DeploymentList{} }, h),
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			for _, g := range []struct {
				obj  client.Object
				name string
			}{{&flaggerv1.Canary{}, "podinfo"}, {&networkingv1.VirtualService{}, "podinfo"}, {&appsv1.Deployment{}, "podinfo-primary"}} {
				get, stop := context.WithTimeout(ctx, time.Second)
				if err := env.Client.Get(get, client.ObjectKey{Namespace: ns, Name: g.name}, g.obj); err == nil {
					h.observe(g.obj)
				}
				stop()
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return h
}

func revisionOf(o client.Object) (uint64, bool) {
	rv, err := strconv.ParseUint(o.GetResourceVersion(), 10, 64)
	return rv, err == nil
}

// observe records one version of an object the history follows (others are ignored).
func (h *releaseHistory) observe(o client.Object) {
	rv, ok := revisionOf(o)
	if !ok {
		return
	}
	now := time.Now()
	h.mu.Lock()
	defer h.mu.Unlock()
	switch o := o.(type) {
	case *flaggerv1.Canary:
		if _, seen := h.canaries[rv]; seen || o.Name != "podinfo" {
			return
		}
		v := canaryVersion{at: now, phase: o.Status.Phase, weight: o.Status.CanaryWeight, failedChecks: o.Status.FailedChecks}
		if o.Status.LastStepTime != nil {
			v.step = o.Status.LastStepTime.Time
		}
		h.canaries[rv] = v
	case *networkingv1.VirtualService:
		if _, seen := h.routes[rv]; seen || o.Name != "podinfo" {
			return
		}
		v := routeVersion{at: now}
		for _, route := range o.Spec.Http {
			for _, dst := range route.Route {
				if dst.GetDestination().GetHost() == "podinfo-canary" && int(dst.Weight) > v.canary {
					v.canary = int(dst.Weight)
				}
			}
		}
		h.routes[rv] = v
	case *appsv1.Deployment:
		if _, seen := h.primary[rv]; seen || o.Name != "podinfo-primary" || len(o.Spec.Template.Spec.Containers) == 0 {
			return
		}
		h.primary[rv] = imageVersion{at: now, image: o.Spec.Template.Spec.Containers[0].Image}
	}
}

// recorded tells whether this version of a followed object is in the history.
func (h *releaseHistory) recorded(o client.Object) bool {
	rv, ok := revisionOf(o)
	if !ok {
		return false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	switch o.(type) {
	case *flaggerv1.Canary:
		_, seen := h.canaries[rv]
		return seen || o.GetName() != "podinfo"
	case *networkingv1.VirtualService:
		_, seen := h.routes[rv]
		return seen || o.GetName() != "podinfo"
	case *appsv1.Deployment:
		_, seen := h.primary[rv]
		return seen || o.GetName() != "podinfo-primary"
	}
	return true
}

func sortedRevisions[V any](m map[uint64]V) []uint64 {
	keys := make([]uint64, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	return keys
}

// canaryVersions returns the canary's versions in order.
func (h *releaseHistory) canaryVersions() []canaryVersion {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []canaryVersion
	for _, rv := range sortedRevisions(h.canaries) {
		out = append(out, h.canaries[rv])
	}
	return out
}

func (h *releaseHistory) lastCanary() canaryVersion {
	vs := h.canaryVersions()
	if len(vs) == 0 {
		return canaryVersion{}
	}
	return vs[len(vs)-1]
}

// steps returns the distinct analysis step times, in order.
func (h *releaseHistory) steps() []time.Time {
	var steps []time.Time
	for _, v := range h.canaryVersions() {
		if v.step.IsZero() {
			continue
		}
		if n := len(steps); n == 0 || !steps[n-1].Equal(v.step) {
			steps = append(steps, v.step)
		}
	}
	return steps
}

// stepRecorder gives checkOutcome the steps seen here (its own recorder's watch does not survive
// an outage).
func (h *releaseHistory) stepRecorder() *stepRecorder {
	return &stepRecorder{steps: h.steps(), stop: func() {}, done: make(chan struct{})}
}

func (h *releaseHistory) stepGaps() string {
	steps := h.steps()
	var gaps []string
	for i := 1; i < len(steps); i++ {
		gaps = append(gaps, steps[i].Sub(steps[i-1]).Round(10*time.Millisecond).String())
	}
	return fmt.Sprintf("%d steps [%s]", len(steps), strings.Join(gaps, " "))
}

// firstProgressAfter returns when the first canary version after before with another weight or
// phase was received (if after t), and its weight.
func (h *releaseHistory) firstProgressAfter(t time.Time, before canaryVersion) (time.Time, int) {
	for _, v := range h.canaryVersions() {
		if v.weight != before.weight || v.phase != before.phase {
			if v.at.After(t) {
				return v.at, v.weight
			}
		}
	}
	return time.Time{}, 0
}

// weightsBackwards lists the versions whose canary weight is lower than the previous one's in a
// phase other than the promotion's (Promoting, Finalising, Succeeded).
func (h *releaseHistory) weightsBackwards() []string {
	vs := h.canaryVersions()
	var bad []string
	for i := 1; i < len(vs); i++ {
		prev, cur := vs[i-1], vs[i]
		if cur.weight >= prev.weight {
			continue
		}
		switch cur.phase {
		case flaggerv1.CanaryPhasePromoting, flaggerv1.CanaryPhaseFinalising, flaggerv1.CanaryPhaseSucceeded:
			continue
		}
		bad = append(bad, fmt.Sprintf("%d (%s) then %d (%s)", prev.weight, prev.phase, cur.weight, cur.phase))
	}
	return bad
}

// routeWeights are the successive canary weights of the VirtualService.
func (h *releaseHistory) routeWeights() []int {
	h.mu.Lock()
	defer h.mu.Unlock()
	var changes []int
	for _, rv := range sortedRevisions(h.routes) {
		w := h.routes[rv].canary
		if n := len(changes); n == 0 || changes[n-1] != w {
			changes = append(changes, w)
		}
	}
	return changes
}

// routesBackwards lists the decreases of the VirtualService's canary weight but one: the last
// change, to 0, when the promotion routes all traffic back to the primary.
func (h *releaseHistory) routesBackwards() []string {
	changes := h.routeWeights()
	var bad []string
	for i := 1; i < len(changes); i++ {
		if changes[i] >= changes[i-1] {
			continue
		}
		if i == len(changes)-1 && changes[i] == 0 {
			continue
		}
		bad = append(bad, fmt.Sprintf("%d then %d (VirtualService canary weights %v)", changes[i-1], changes[i], changes))
	}
	return bad
}

// analysisWeights are the distinct canary weights of the Progressing versions, in order.
func (h *releaseHistory) analysisWeights() []int {
	var ws []int
	for _, v := range h.canaryVersions() {
		if v.phase != flaggerv1.CanaryPhaseProgressing {
			continue
		}
		if n := len(ws); n == 0 || ws[n-1] != v.weight {
			ws = append(ws, v.weight)
		}
	}
	return ws
}

func (h *releaseHistory) maxWeight() int {
	m := 0
	for _, v := range h.canaryVersions() {
		m = max(m, v.weight)
	}
	return m
}

func (h *releaseHistory) primaryImages() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, rv := range sortedRevisions(h.primary) {
		out = append(out, h.primary[rv].image)
	}
	return out
}

// continuous tells whether no stored version can have been missed: every watch resumed where it
// broke off or, started afresh, found each object at a version already in the history.
func (h *releaseHistory) continuous() bool {
	for _, w := range h.watchers {
		if w.stats().missed > 0 {
			return false
		}
	}
	return true
}

func (h *releaseHistory) watchStats() string {
	var s []string
	for _, w := range h.watchers {
		st := w.stats()
		s = append(s, fmt.Sprintf("%s: %d watches (%d resumed from their resourceVersion, %d afresh after 410 Gone; objects found at a version not recorded: %d), %d failed attempts",
			w.what, st.watches, st.resumed, st.restartedFresh, st.missed, st.failedAttempts))
	}
	return strings.Join(s, "; ")
}

// rewatcher follows one kind in a namespace across apiserver outages into a history: when its
// watch ends, it watches again from the last resourceVersion it saw. A restarted apiserver's watch
// cache only knows versions from its start on (410 Gone for older ones): the watch then starts
// afresh from the current state, and an object whose first version there is not yet in the history
// counts as missed (versions before it may be lost).
type rewatcher struct {
	what   string
	h      *releaseHistory
	cancel context.CancelFunc
	done   chan struct{}
	// unverified are the objects (by name) whose first version in a fresh watch is still to be
	// checked against the history (owned by the watching goroutine).
	unverified map[string]bool

	mu sync.Mutex
	st rewatchStats
}

type rewatchStats struct {
	watches, resumed, restartedFresh, missed, failedAttempts int
}

func (w *rewatcher) stats() rewatchStats {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.st
}

func (w *rewatcher) count(f func(*rewatchStats)) {
	w.mu.Lock()
	f(&w.st)
	w.mu.Unlock()
}

func rewatch(t *testing.T, env *testenv.Env, ns, what string, newList func() client.ObjectList, h *releaseHistory) *rewatcher {
	t.Helper()
	wc, err := client.NewWithWatch(rest.CopyConfig(env.Config), client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &rewatcher{what: what, h: h, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		rv := ""
		for ctx.Err() == nil {
			wi, err := wc.Watch(ctx, newList(), client.InNamespace(ns),
				&client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: rv, AllowWatchBookmarks: true}})
			if err != nil {
				if apierrors.IsGone(err) || apierrors.IsResourceExpired(err) {
					rv = w.afresh()
					continue
				}
				w.count(func(s *rewatchStats) { s.failedAttempts++ })
				select {
				case <-ctx.Done():
				case <-time.After(200 * time.Millisecond):
				}
				continue
			}
			w.count(func(s *rewatchStats) {
				s.watches++
				if rv != "" {
					s.resumed++
				}
			})
			rv = w.consume(wi, rv)
		}
	}()
	t.Cleanup(func() { cancel(); <-w.done })
	return w
}

// afresh prepares a watch from the current state and returns its resourceVersion ("").
func (w *rewatcher) afresh() string {
	w.count(func(s *rewatchStats) { s.restartedFresh++ })
	w.unverified = map[string]bool{"podinfo": true, "podinfo-primary": true}
	return ""
}

// consume reads one watch to its end and returns the resourceVersion to resume from.
func (w *rewatcher) consume(wi watch.Interface, rv string) string {
	defer wi.Stop()
	for ev := range wi.ResultChan() {
		switch ev.Type {
		case watch.Error:
			// A watch from a resourceVersion the apiserver no longer has: start afresh.
			if err := apierrors.FromObject(ev.Object); apierrors.IsGone(err) || apierrors.IsResourceExpired(err) {
				return w.afresh()
			}
			return rv
		case watch.Bookmark:
			if o, ok := ev.Object.(client.Object); ok {
				rv = o.GetResourceVersion()
			}
		default:
			o, ok := ev.Object.(client.Object)
			if !ok {
				continue
			}
			rv = o.GetResourceVersion()
			if w.unverified[o.GetName()] {
				delete(w.unverified, o.GetName())
				if !w.h.recorded(o) {
					w.count(func(s *rewatchStats) { s.missed++ })
				}
			}
			if ev.Type != watch.Deleted {
				w.h.observe(o)
			}
		}
	}
	return rv
}
