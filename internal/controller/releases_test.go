package controller_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
	"github.com/pennant/pennant/internal/controller"
	"github.com/pennant/pennant/internal/testenv"
)

// A ConfigMap shared by 10 canaries starts their 10 releases; with -max-concurrent-releases=3 no
// more than 3 are ever in flight, the others wait in Waiting with the reason ReleaseQueued, and
// every release completes.
func TestConcurrentReleasesLimitHoldsASharedConfigMapsReleases(t *testing.T) {
	const canaries, limit = 10, 3
	f := newFixture(t, func(c *controller.Config) { c.Options.MaxConcurrentReleases = limit })
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "shared"}, Data: map[string]string{"color": "blue"}}
	f.create(cm)
	for i := range canaries {
		name := fmt.Sprintf("app%d", i)
		d := podinfoDeployment(name, 1)
		d.Spec.Template.Spec.Containers[0].EnvFrom = []corev1.EnvFromSource{{
			ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "shared"}},
		}}
		f.create(d, blueGreenCanary(name, "Deployment", 3))
	}
	for i := range canaries {
		f.waitPhase(fmt.Sprintf("app%d", i), flaggerv1.CanaryPhaseInitialized, phaseTimeout)
	}

	f.update("shared", cm, func() { cm.Data["color"] = "green" })
	maxInFlight, sawQueued, last := 0, false, ""
	testenv.Eventually(t, 3*phaseTimeout, 50*time.Millisecond, func() (bool, string) {
		var list flaggerv1.CanaryList
		if err := f.c.List(context.Background(), &list, client.InNamespace(f.ns)); err != nil {
			return false, err.Error()
		}
		inFlight, succeeded := 0, 0
		var phases []string
		for i := range list.Items {
			st := &list.Items[i].Status
			if st.ReleaseInFlight() {
				inFlight++
			}
			if st.ReleaseQueued() {
				sawQueued = true
			}
			if st.Phase == flaggerv1.CanaryPhaseSucceeded {
				succeeded++
			}
			phases = append(phases, string(st.Phase))
		}
		maxInFlight = max(maxInFlight, inFlight)
		if p := fmt.Sprint(phases); p != last {
			t.Logf("%s %s", time.Now().Format("15:04:05.000"), p)
			last = p
		}
		if inFlight > limit {
			t.Fatalf("%d releases in flight, limit %d: %v", inFlight, limit, phases)
		}
		return succeeded == canaries, fmt.Sprintf("phases %v", phases)
	})
	if maxInFlight != limit || !sawQueued {
		t.Errorf("at most %d releases in flight (want the limit, %d), queued ones seen: %v", maxInFlight, limit, sawQueued)
	}
	queuedEvents := 0
	for _, e := range f.events() {
		if strings.Contains(e, "queued: 3 releases in flight, the controller's limit (-max-concurrent-releases)") {
			queuedEvents++
		}
	}
	if queuedEvents < canaries-limit {
		t.Errorf("%d releases queued, want at least %d:\n%s", queuedEvents, canaries-limit, strings.Join(f.events(), "\n"))
	}
}
