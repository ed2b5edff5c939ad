package workload

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

// DefaultSelectorLabels are the labels looked for in a target's selector, in order (-selector-labels).
var DefaultSelectorLabels = []string{"app", "name", "app.kubernetes.io/name"}

// Target and autoscaler kinds.
const (
	KindDeployment              = "Deployment"
	KindDaemonSet               = "DaemonSet"
	KindService                 = "Service"
	KindHorizontalPodAutoscaler = "HorizontalPodAutoscaler"
	KindScaledObject            = "ScaledObject"

	knativeServingGroup = "serving.knative.dev"
)

// Options are the controller-wide settings of workload handling.
type Options struct {
	// SelectorLabels are the candidate selector labels (-selector-labels); DefaultSelectorLabels if empty.
	SelectorLabels []string
	// IncludeLabelPrefix lists the prefixes of the target's labels and annotations copied to the
	// primary and to config copies (-include-label-prefix): "*" copies all, empty copies none.
	IncludeLabelPrefix []string
	// EnableConfigTracking turns on ConfigMap/Secret tracking and their -primary copies.
	EnableConfigTracking bool
	// FieldOwner is the field manager of every write.
	FieldOwner string
}

// Factory hands out the Controller of a canary's target and the Scaler of its autoscaler.
// Every read goes through the client given, which in the manager reads from the informer cache:
// objects are only ever read by name. ConfigMaps and Secrets of config tracking are read through
// the readers of UseConfigCache when it was called.
type Factory struct {
	client client.Client
	opts   Options
	now    func() time.Time
	// configs reads tracked ConfigMaps and Secrets and their copies, possibly without their data
	// (kubecache.Stripped); configData reads them in full. Both are client by default.
	configs, configData client.Reader
}

// NewFactory returns a Factory reading and writing through c.
func NewFactory(c client.Client, opts Options) *Factory {
	if len(opts.SelectorLabels) == 0 {
		opts.SelectorLabels = DefaultSelectorLabels
	}
	return &Factory{client: c, opts: opts, now: time.Now, configs: c, configData: c}
}

// UseConfigCache makes config tracking read ConfigMaps and Secrets from configs, where they may have
// no data (a kubecache.Configs), and read them in full (to copy them) through data, e.g. a
// kubecache.Reader over configs.
func (f *Factory) UseConfigCache(configs, data client.Reader) {
	f.configs, f.configData = configs, data
}

// Controller returns the controller of the canary's target kind. An unknown kind is a permanent error.
func (f *Factory) Controller(cd *flaggerv1.Canary) (Controller, error) {
	ref := cd.Spec.TargetRef
	switch ref.Kind {
	case KindDeployment:
		return &deploymentController{f: f}, nil
	case KindDaemonSet:
		return &daemonSetController{f: f}, nil
	case KindService:
		// A Knative Service is also kind Service: never mistake it for the core Service that Knative
		// creates under the same name. Any other apiVersion (v1, core/v1, ...) means a core Service.
		if strings.HasPrefix(ref.APIVersion, knativeServingGroup+"/") {
			if cd.Spec.AutoscalerRef != nil {
				return nil, permanentf("canary %s: autoscalerRef cannot be used with a Knative Service target", cd.Key())
			}
			return &knativeController{f: f}, nil
		}
		return &serviceController{f: f}, nil
	}
	return nil, permanentf("targetRef kind %q of %s is not supported: use Deployment, DaemonSet or Service", ref.Kind, cd.Key())
}

// Scaler returns the scaler of the canary's autoscalerRef, or one that does nothing when it has none.
func (f *Factory) Scaler(cd *flaggerv1.Canary) (Scaler, error) {
	ref := cd.Spec.AutoscalerRef
	if ref == nil {
		return nopScaler{}, nil
	}
	switch ref.Kind {
	case KindHorizontalPodAutoscaler:
		return &hpaScaler{f: f}, nil
	case KindScaledObject:
		return &scaledObjectScaler{f: f}, nil
	}
	return nil, permanentf("autoscalerRef kind %q of %s is not supported: use HorizontalPodAutoscaler or ScaledObject", ref.Kind, cd.Key())
}

// Selector is Controller(cd).Selector: the selector label and value of the target and its container
// ports. It has the shape router.NewKubernetesRouter takes.
func (f *Factory) Selector(ctx context.Context, cd *flaggerv1.Canary) (label, value string, ports map[string]int32, err error) {
	c, err := f.Controller(cd)
	if err != nil {
		return "", "", nil, err
	}
	return c.Selector(ctx, cd)
}

func (f *Factory) get(ctx context.Context, namespace, name string, obj client.Object) error {
	return f.client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, obj)
}

// getTarget reads the target; a missing target satisfies both IsTargetNotFound and apierrors.IsNotFound.
func (f *Factory) getTarget(ctx context.Context, cd *flaggerv1.Canary, obj client.Object) error {
	if err := f.get(ctx, cd.Namespace, cd.Spec.TargetRef.Name, obj); err != nil {
		return &targetError{err: fmt.Errorf("target %s %s.%s: %w", cd.Spec.TargetRef.Kind, cd.Spec.TargetRef.Name, cd.Namespace, err)}
	}
	return nil
}

func (f *Factory) getPrimary(ctx context.Context, cd *flaggerv1.Canary, obj client.Object) error {
	name := primaryName(cd.Spec.TargetRef.Name)
	if err := f.get(ctx, cd.Namespace, name, obj); err != nil {
		return fmt.Errorf("primary %s %s.%s: %w", cd.Spec.TargetRef.Kind, name, cd.Namespace, err)
	}
	return nil
}

func (f *Factory) create(ctx context.Context, obj client.Object) error {
	if err := f.client.Create(ctx, obj, client.FieldOwner(f.opts.FieldOwner)); err != nil {
		return fmt.Errorf("creating %s %s.%s: %w", kindOf(obj), obj.GetName(), obj.GetNamespace(), err)
	}
	return nil
}

func (f *Factory) update(ctx context.Context, obj client.Object) error {
	if err := f.client.Update(ctx, obj, client.FieldOwner(f.opts.FieldOwner)); err != nil {
		return fmt.Errorf("updating %s %s.%s: %w", kindOf(obj), obj.GetName(), obj.GetNamespace(), err)
	}
	return nil
}

// mergePatch applies a JSON merge patch to obj, which gives the name and namespace and receives the result.
func (f *Factory) mergePatch(ctx context.Context, obj client.Object, patch []byte) error {
	err := f.client.Patch(ctx, obj, client.RawPatch(types.MergePatchType, patch), client.FieldOwner(f.opts.FieldOwner))
	if err != nil {
		return fmt.Errorf("patching %s %s.%s: %w", kindOf(obj), obj.GetName(), obj.GetNamespace(), err)
	}
	return nil
}

// kindOf names obj's kind for messages: typed objects read through a client carry no TypeMeta.
func kindOf(obj client.Object) string {
	if kind := obj.GetObjectKind().GroupVersionKind().Kind; kind != "" {
		return kind
	}
	return reflect.TypeOf(obj).Elem().Name()
}
