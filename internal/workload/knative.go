package workload

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

var knativeServiceGVK = schema.GroupVersionKind{Group: knativeServingGroup, Version: "v1", Kind: "Service"}

// knativeController manages a Knative Service target. Knative keeps every revision: the latest
// created revision is the canary, the one named by the primary-revision annotation is the primary.
// There is nothing to create, scale or copy.
type knativeController struct {
	f *Factory
}

var _ Controller = (*knativeController)(nil)

func (c *knativeController) get(ctx context.Context, cd *flaggerv1.Canary) (*unstructured.Unstructured, error) {
	ksvc := &unstructured.Unstructured{}
	ksvc.SetGroupVersionKind(knativeServiceGVK)
	if err := c.f.getTarget(ctx, cd, ksvc); err != nil {
		return nil, err
	}
	return ksvc, nil
}

func knativeStatus(ksvc *unstructured.Unstructured, field string) string {
	v, _, _ := unstructured.NestedString(ksvc.Object, "status", field)
	return v
}

// knativeReady reports the Knative Service's Ready condition and its message.
func knativeReady(ksvc *unstructured.Unstructured) (bool, string) {
	conditions, _, _ := unstructured.NestedSlice(ksvc.Object, "status", "conditions")
	for _, c := range conditions {
		m, _ := c.(map[string]any)
		if m["type"] == "Ready" {
			msg, _ := m["message"].(string)
			return m["status"] == "True", msg
		}
	}
	return false, "no Ready condition yet"
}

func (c *knativeController) Initialize(ctx context.Context, cd *flaggerv1.Canary) error {
	_, err := c.get(ctx, cd)
	return err
}

// Promote makes the latest created revision the primary.
func (c *knativeController) Promote(ctx context.Context, cd *flaggerv1.Canary) error {
	ksvc, err := c.get(ctx, cd)
	if err != nil {
		return err
	}
	latest, err := latestRevision(ksvc)
	if err != nil {
		return err
	}
	patch := fmt.Appendf(nil, `{"metadata":{"annotations":{%q:%q}}}`, flaggerv1.KnativePrimaryRevisionAnnotation, latest)
	return c.f.client.Patch(ctx, ksvc, client.RawPatch(types.MergePatchType, patch), client.FieldOwner(c.f.opts.FieldOwner))
}

// Revision is the latest created revision's name: Knative already names each release.
func (c *knativeController) Revision(ctx context.Context, cd *flaggerv1.Canary) (string, error) {
	ksvc, err := c.get(ctx, cd)
	if err != nil {
		return "", err
	}
	return latestRevision(ksvc)
}

// latestRevision is the Knative Service's latest created revision: the release under analysis.
func latestRevision(ksvc *unstructured.Unstructured) (string, error) {
	latest := knativeStatus(ksvc, "latestCreatedRevisionName")
	if latest == "" {
		return "", fmt.Errorf("knative service %s.%s has no revision yet", ksvc.GetName(), ksvc.GetNamespace())
	}
	return latest, nil
}

// KnativeLatestRevision reads a canary's Knative Service target through reader (in production the
// manager's cache) and returns its latest created revision, the release under analysis; the
// builtin Knative metric queries select its Envoy cluster ({{ route }}).
func KnativeLatestRevision(ctx context.Context, reader client.Reader, cd *flaggerv1.Canary) (string, error) {
	ksvc := &unstructured.Unstructured{}
	ksvc.SetGroupVersionKind(knativeServiceGVK)
	if err := reader.Get(ctx, types.NamespacedName{Namespace: cd.Namespace, Name: cd.Spec.TargetRef.Name}, ksvc); err != nil {
		return "", err
	}
	return latestRevision(ksvc)
}

func (c *knativeController) TrackedConfigs(context.Context, *flaggerv1.Canary) (map[string]string, error) {
	return nil, nil
}

// PrimaryReady is the Knative Service's readiness; the promoted revision is the annotation's.
func (c *knativeController) PrimaryReady(ctx context.Context, cd *flaggerv1.Canary) (Readiness, error) {
	ksvc, err := c.get(ctx, cd)
	if err != nil {
		return Readiness{}, err
	}
	ready, msg := knativeReady(ksvc)
	r := Readiness{Ready: ready, PromotedRevision: ksvc.GetAnnotations()[flaggerv1.KnativePrimaryRevisionAnnotation]}
	if !ready {
		r.Message = fmt.Sprintf("Waiting for %s.%s to be ready: %s", ksvc.GetName(), ksvc.GetNamespace(), msg)
	}
	return r, nil
}

// CanaryReady requires the latest created revision to be the latest ready one.
func (c *knativeController) CanaryReady(ctx context.Context, cd *flaggerv1.Canary) (Readiness, error) {
	ksvc, err := c.get(ctx, cd)
	if err != nil {
		return Readiness{}, err
	}
	created, ready := knativeStatus(ksvc, "latestCreatedRevisionName"), knativeStatus(ksvc, "latestReadyRevisionName")
	if created != "" && created == ready {
		return Readiness{Ready: true}, nil
	}
	return Readiness{Message: fmt.Sprintf("Waiting for %s.%s revision %s to be ready (latest ready: %s)",
		ksvc.GetName(), ksvc.GetNamespace(), created, ready)}, nil
}

func (c *knativeController) ScaleToZero(context.Context, *flaggerv1.Canary) error   { return nil }
func (c *knativeController) ScaleFromZero(context.Context, *flaggerv1.Canary) error { return nil }
func (c *knativeController) Finalize(context.Context, *flaggerv1.Canary) error      { return nil }

// Selector: a Knative Service has no pods of its own to select, and no Services are generated.
func (c *knativeController) Selector(ctx context.Context, cd *flaggerv1.Canary) (string, string, map[string]int32, error) {
	_, err := c.get(ctx, cd)
	return "", "", nil, err
}

func (c *knativeController) PrimaryRunsTarget(context.Context, *flaggerv1.Canary) (bool, error) {
	return false, nil
}
