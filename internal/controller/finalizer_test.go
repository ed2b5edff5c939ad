package controller

import (
	"slices"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

func TestSetFinalizers(t *testing.T) {
	const other = "example.com/keep-me"
	flagger, pennant := flaggerv1.Finalizer, flaggerv1.ScaleBackFinalizer
	cases := []struct {
		name        string
		kind, api   string
		revert      bool
		have, want  []string
		wantChanged bool
	}{
		{"deployment", "Deployment", "apps/v1", false, nil, []string{pennant}, true},
		{"daemonset", "DaemonSet", "apps/v1", false, nil, []string{pennant}, true},
		{"deployment with revert: both at once", "Deployment", "apps/v1", true, nil, []string{flagger, pennant}, true},
		{"in place: nothing to do", "Deployment", "apps/v1", true, []string{flagger, pennant}, []string{flagger, pennant}, false},
		{"in any order", "Deployment", "apps/v1", true, []string{pennant, flagger}, []string{pennant, flagger}, false},
		{"revert dropped: only Flagger's goes", "Deployment", "apps/v1", false, []string{flagger, pennant}, []string{pennant}, true},
		{"someone else's is kept", "Deployment", "apps/v1", false, []string{other}, []string{other, pennant}, true},
		{"service", "Service", "v1", false, nil, nil, false},
		{"service with revert", "Service", "v1", true, nil, []string{flagger}, true},
		{"knative service", "Service", "serving.knative.dev/v1", false, nil, nil, false},
		{"service target that was a deployment", "Service", "v1", false, []string{other, pennant}, []string{other}, true},
		{"unknown kind", "StatefulSet", "apps/v1", false, nil, nil, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cd := &flaggerv1.Canary{
				ObjectMeta: metav1.ObjectMeta{Finalizers: slices.Clone(c.have)},
				Spec: flaggerv1.CanarySpec{
					TargetRef:        flaggerv1.LocalObjectReference{APIVersion: c.api, Kind: c.kind, Name: "podinfo"},
					RevertOnDeletion: c.revert,
				},
			}
			if changed := setFinalizers(cd); changed != c.wantChanged {
				t.Errorf("changed = %v, want %v", changed, c.wantChanged)
			}
			if !slices.Equal(cd.Finalizers, c.want) {
				t.Errorf("finalizers = %v, want %v", cd.Finalizers, c.want)
			}
		})
	}
}

func TestReleaseWait(t *testing.T) {
	deleted := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	cd := &flaggerv1.Canary{ObjectMeta: metav1.ObjectMeta{DeletionTimestamp: &metav1.Time{Time: deleted}}}
	cd.Spec.ProgressDeadlineSeconds = ptr.To[int32](5)
	for _, c := range []struct {
		after, want time.Duration
	}{
		{0, finalizeRetry},
		{3 * time.Second, finalizeRetry},
		{4500 * time.Millisecond, 500 * time.Millisecond},
		{5 * time.Second, 0},
		{time.Hour, 0},
	} {
		if got := releaseWait(cd, deleted.Add(c.after)); got != c.want {
			t.Errorf("%v after the deletion: wait %v, want %v", c.after, got, c.want)
		}
	}
	// The default progress deadline: ten minutes.
	cd.Spec.ProgressDeadlineSeconds = nil
	if got := releaseWait(cd, deleted.Add(9*time.Minute+59*time.Second)); got != time.Second {
		t.Errorf("default deadline: wait %v 1s before it, want 1s", got)
	}
	if got := releaseWait(cd, deleted.Add(10*time.Minute)); got != 0 {
		t.Errorf("default deadline: wait %v at it, want 0", got)
	}
}
