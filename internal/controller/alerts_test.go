package controller_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

func TestAlertsReachTheirProviderAndBadProvidersAreReported(t *testing.T) {
	f := newFixture(t)
	body := make(chan string, 16)
	slack := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		select {
		case body <- string(b):
		default:
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(slack.Close)
	good := &flaggerv1.AlertProvider{
		ObjectMeta: metav1.ObjectMeta{Name: "on-call"},
		Spec:       flaggerv1.AlertProviderSpec{Type: "slack", Channel: "deploys", Address: slack.URL},
	}
	broken := &flaggerv1.AlertProvider{
		ObjectMeta: metav1.ObjectMeta{Name: "broken"},
		Spec:       flaggerv1.AlertProviderSpec{Type: "slack", SecretRef: &flaggerv1.SecretReference{Name: "no-such-secret"}},
	}
	cd := blueGreenCanary("podinfo", "Deployment", 1)
	cd.Spec.Analysis.Alerts = []flaggerv1.CanaryAlert{
		{Name: "on-call", Severity: flaggerv1.SeverityInfo, ProviderRef: flaggerv1.CrossNamespaceRef{Name: "on-call"}},
		{Name: "broken", Severity: flaggerv1.SeverityInfo, ProviderRef: flaggerv1.CrossNamespaceRef{Name: "broken"}},
	}
	f.create(good, broken, podinfoDeployment("podinfo", 1), cd)
	f.waitPhase("podinfo", flaggerv1.CanaryPhaseInitialized, phaseTimeout)
	f.setImage("podinfo", "ghcr.io/stefanprodan/podinfo:6.0.1")
	f.waitPhase("podinfo", flaggerv1.CanaryPhaseSucceeded, phaseTimeout)

	deadline := time.After(10 * time.Second)
	for seen := false; !seen; {
		select {
		case b := <-body:
			seen = strings.Contains(b, "Canary analysis completed successfully, promotion finished.") && strings.Contains(b, "deploys")
		case <-deadline:
			t.Fatal("the slack provider did not receive the promotion alert")
		}
	}
	f.waitEvent("Warning alert provider broken."+f.ns, 10*time.Second)
	f.waitEvent("no-such-secret", 10*time.Second)
}
