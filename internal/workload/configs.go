package workload

import (
	"context"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
	"github.com/pennant/pennant/internal/kubecache"
)

type configKind string

const (
	configMapKind configKind = "configmap"
	secretKind    configKind = "secret"
)

// trackedSecretTypes are the Secret types worth a rollout; registry credentials, service account
// tokens and the like are not the application's configuration.
var trackedSecretTypes = map[corev1.SecretType]bool{
	corev1.SecretTypeOpaque:    true,
	corev1.SecretTypeBasicAuth: true,
	corev1.SecretTypeSSHAuth:   true,
	corev1.SecretTypeTLS:       true,
}

type configRef struct {
	kind configKind
	name string
}

// key is how Flagger names a config in status.trackedConfigs.
func (r configRef) key() string { return string(r.kind) + "/" + r.name }

// trackedConfig is a ConfigMap or Secret that the target uses. object is read from the cache:
// never mutate it, and expect it without its data (kubecache.Stripped).
type trackedConfig struct {
	ref      configRef
	checksum string
	object   client.Object
}

// configCopyMode says what happens to existing <name>-primary copies.
type configCopyMode int

const (
	// createMissingCopies leaves existing copies alone: the primary must not see new data before promotion.
	createMissingCopies configCopyMode = iota
	// syncCopies creates or updates every copy (promotion).
	syncCopies
)

// configRefs lists the ConfigMaps and Secrets a pod spec references, each with whether every
// reference to it is optional.
func configRefs(spec *corev1.PodSpec) map[configRef]bool {
	refs := map[configRef]bool{}
	add := func(kind configKind, name string, optional *bool) {
		if name == "" {
			return
		}
		ref := configRef{kind: kind, name: name}
		prev, seen := refs[ref]
		refs[ref] = ptr.Deref(optional, false) && (!seen || prev)
	}
	for _, v := range spec.Volumes {
		addVolumeRefs(v, add)
	}
	for _, c := range allContainers(spec) {
		for _, e := range c.Env {
			if e.ValueFrom == nil {
				continue
			}
			if r := e.ValueFrom.ConfigMapKeyRef; r != nil {
				add(configMapKind, r.Name, r.Optional)
			}
			if r := e.ValueFrom.SecretKeyRef; r != nil {
				add(secretKind, r.Name, r.Optional)
			}
		}
		for _, e := range c.EnvFrom {
			if r := e.ConfigMapRef; r != nil {
				add(configMapKind, r.Name, r.Optional)
			}
			if r := e.SecretRef; r != nil {
				add(secretKind, r.Name, r.Optional)
			}
		}
	}
	return refs
}

func addVolumeRefs(v corev1.Volume, add func(configKind, string, *bool)) {
	if cm := v.ConfigMap; cm != nil {
		add(configMapKind, cm.Name, cm.Optional)
	}
	if s := v.Secret; s != nil {
		add(secretKind, s.SecretName, s.Optional)
	}
	if v.Projected == nil {
		return
	}
	for _, src := range v.Projected.Sources {
		if cm := src.ConfigMap; cm != nil {
			add(configMapKind, cm.Name, cm.Optional)
		}
		if s := src.Secret; s != nil {
			add(secretKind, s.Name, s.Optional)
		}
	}
}

// allContainers returns pointers to the init and regular containers of spec, so callers may rewrite them.
func allContainers(spec *corev1.PodSpec) []*corev1.Container {
	out := make([]*corev1.Container, 0, len(spec.InitContainers)+len(spec.Containers))
	for i := range spec.InitContainers {
		out = append(out, &spec.InitContainers[i])
	}
	for i := range spec.Containers {
		out = append(out, &spec.Containers[i])
	}
	return out
}

// trackedConfigs reads the configs a pod spec references and keeps those that are tracked.
// It is empty when config tracking is off.
func (f *Factory) trackedConfigs(ctx context.Context, namespace string, spec *corev1.PodSpec) ([]trackedConfig, error) {
	if !f.opts.EnableConfigTracking {
		return nil, nil
	}
	refs := configRefs(spec)
	out := make([]trackedConfig, 0, len(refs))
	for ref, optional := range refs {
		tc, err := f.readConfig(ctx, namespace, ref, optional)
		if err != nil {
			return nil, err
		}
		if tc != nil {
			out = append(out, *tc)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ref.key() < out[j].ref.key() })
	return out, nil
}

// readConfig returns nil for an object that is not tracked: missing but optional, tracking disabled
// by annotation, or a Secret type that is not tracked. It reads the cache only: the checksum of a
// cached object without its data is the one the cache keeps.
func (f *Factory) readConfig(ctx context.Context, namespace string, ref configRef, optional bool) (*trackedConfig, error) {
	obj := newConfigObject(ref.kind)
	err := f.configs.Get(ctx, client.ObjectKey{Namespace: namespace, Name: ref.name}, obj)
	if apierrors.IsNotFound(err) && optional {
		return nil, nil
	}
	if apierrors.IsNotFound(err) {
		// Not wrapped: a missing config must not read as a missing target (apierrors.IsNotFound).
		return nil, fmt.Errorf("%s %s.%s referenced by the target does not exist", ref.kind, ref.name, namespace)
	}
	if err != nil {
		return nil, fmt.Errorf("%s %s.%s referenced by the target: %w", ref.kind, ref.name, namespace, err)
	}
	if strings.HasPrefix(obj.GetAnnotations()[ConfigTrackingAnnotation], "disable") {
		return nil, nil
	}
	if s, ok := obj.(*corev1.Secret); ok && !trackedSecretTypes[s.Type] {
		return nil, nil
	}
	return &trackedConfig{ref: ref, checksum: kubecache.Checksum(obj), object: obj}, nil
}

func newConfigObject(kind configKind) client.Object {
	if kind == secretKind {
		return &corev1.Secret{}
	}
	return &corev1.ConfigMap{}
}

func checksums(configs []trackedConfig) map[string]string {
	out := make(map[string]string, len(configs))
	for _, c := range configs {
		out[c.ref.key()] = c.checksum
	}
	return out
}

// syncConfigCopies reads the tracked configs of a pod spec and creates (with syncCopies also updates)
// their <name>-primary copies.
func (f *Factory) syncConfigCopies(ctx context.Context, cd *flaggerv1.Canary, spec *corev1.PodSpec,
	mode configCopyMode) ([]trackedConfig, error) {
	configs, err := f.trackedConfigs(ctx, cd.Namespace, spec)
	if err != nil {
		return nil, err
	}
	return configs, f.copyConfigs(ctx, cd, configs, mode)
}

// copyConfigs creates (and with syncCopies updates) the <name>-primary copies of configs.
func (f *Factory) copyConfigs(ctx context.Context, cd *flaggerv1.Canary, configs []trackedConfig, mode configCopyMode) error {
	for _, c := range configs {
		if err := f.copyConfig(ctx, cd, c, mode); err != nil {
			return err
		}
	}
	return nil
}

// copyConfig creates or updates one copy. The copy is read from the cache (without its data); the
// source is read in full (one API request per new resourceVersion of it) only when the copy is to
// be created or may need an update.
func (f *Factory) copyConfig(ctx context.Context, cd *flaggerv1.Canary, c trackedConfig, mode configCopyMode) error {
	existing := newConfigObject(c.ref.kind)
	key := client.ObjectKey{Namespace: c.object.GetNamespace(), Name: primaryName(c.ref.name)}
	err := f.configs.Get(ctx, key, existing)
	missing := apierrors.IsNotFound(err)
	if err != nil && !missing {
		return fmt.Errorf("%s %s.%s: %w", c.ref.kind, key.Name, key.Namespace, err)
	}
	if !missing && mode == createMissingCopies {
		return nil
	}
	src := newConfigObject(c.ref.kind)
	if err := f.configData.Get(ctx, client.ObjectKeyFromObject(c.object), src); err != nil {
		return fmt.Errorf("%s %s.%s referenced by the target: %w", c.ref.kind, c.ref.name, key.Namespace, err)
	}
	desired := f.desiredConfigCopy(cd, src)
	if missing {
		return f.create(ctx, desired)
	}
	if mustRecreate(existing, desired) {
		if err := f.client.Delete(ctx, existing); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("deleting %s.%s to recreate it: %w", existing.GetName(), existing.GetNamespace(), err)
		}
		return f.create(ctx, desired)
	}
	updated, changed := withConfigContent(existing, desired, cd)
	if !changed {
		return nil
	}
	return f.update(ctx, updated)
}

// desiredConfigCopy is the <name>-primary copy of a tracked ConfigMap or Secret, read in full.
// immutable is not copied: the copy must be updatable on the next promotion.
func (f *Factory) desiredConfigCopy(cd *flaggerv1.Canary, src client.Object) client.Object {
	meta := metav1.ObjectMeta{
		Name:            primaryName(src.GetName()),
		Namespace:       src.GetNamespace(),
		Labels:          copiedMetadata(src.GetLabels(), f.opts.IncludeLabelPrefix),
		Annotations:     copiedMetadata(src.GetAnnotations(), f.opts.IncludeLabelPrefix),
		OwnerReferences: []metav1.OwnerReference{cd.OwnerReference()},
	}
	delete(meta.Annotations, kubecache.ChecksumAnnotation) // never on a full object; never written
	if s, ok := src.(*corev1.Secret); ok {
		return &corev1.Secret{ObjectMeta: meta, Type: s.Type, Data: s.Data}
	}
	cm := src.(*corev1.ConfigMap)
	return &corev1.ConfigMap{ObjectMeta: meta, Data: cm.Data, BinaryData: cm.BinaryData}
}

// mustRecreate is true when the existing copy cannot be updated in place: it is immutable, or a
// Secret whose (immutable) type changed.
func mustRecreate(existing, desired client.Object) bool {
	switch e := existing.(type) {
	case *corev1.ConfigMap:
		return ptr.Deref(e.Immutable, false)
	case *corev1.Secret:
		return ptr.Deref(e.Immutable, false) || e.Type != desired.(*corev1.Secret).Type
	}
	return false
}

// withConfigContent returns existing with desired's data, labels and annotations and the Canary among
// its owners, and whether anything changed. existing may come without its data (kubecache.Stripped):
// the data are compared by checksum.
func withConfigContent(existing, desired client.Object, cd *flaggerv1.Canary) (client.Object, bool) {
	out := existing.DeepCopyObject().(client.Object)
	out.SetLabels(desired.GetLabels())
	out.SetAnnotations(desired.GetAnnotations())
	out.SetOwnerReferences(withCanaryOwner(existing.GetOwnerReferences(), cd))
	switch o := out.(type) {
	case *corev1.ConfigMap:
		d := desired.(*corev1.ConfigMap)
		o.Data, o.BinaryData = d.Data, d.BinaryData
	case *corev1.Secret:
		o.Data = desired.(*corev1.Secret).Data
	}
	return out, !equality.Semantic.DeepEqual(kubecache.Strip(existing), kubecache.Strip(out))
}

// rewriteConfigRefs points every reference to a tracked config at its <name>-primary copy.
func rewriteConfigRefs(spec *corev1.PodSpec, configs []trackedConfig) {
	tracked := map[configRef]bool{}
	for _, c := range configs {
		tracked[c.ref] = true
	}
	rename := func(kind configKind, name *string) {
		if tracked[configRef{kind: kind, name: *name}] {
			*name = primaryName(*name)
		}
	}
	for i := range spec.Volumes {
		rewriteVolumeRefs(&spec.Volumes[i], rename)
	}
	for _, c := range allContainers(spec) {
		for i := range c.Env {
			if vf := c.Env[i].ValueFrom; vf != nil {
				if r := vf.ConfigMapKeyRef; r != nil {
					rename(configMapKind, &r.Name)
				}
				if r := vf.SecretKeyRef; r != nil {
					rename(secretKind, &r.Name)
				}
			}
		}
		for i := range c.EnvFrom {
			if r := c.EnvFrom[i].ConfigMapRef; r != nil {
				rename(configMapKind, &r.Name)
			}
			if r := c.EnvFrom[i].SecretRef; r != nil {
				rename(secretKind, &r.Name)
			}
		}
	}
}

func rewriteVolumeRefs(v *corev1.Volume, rename func(configKind, *string)) {
	if v.ConfigMap != nil {
		rename(configMapKind, &v.ConfigMap.Name)
	}
	if v.Secret != nil {
		rename(secretKind, &v.Secret.SecretName)
	}
	if v.Projected == nil {
		return
	}
	for i := range v.Projected.Sources {
		src := &v.Projected.Sources[i]
		if src.ConfigMap != nil {
			rename(configMapKind, &src.ConfigMap.Name)
		}
		if src.Secret != nil {
			rename(secretKind, &src.Secret.Name)
		}
	}
}

// trackedChecksums is TrackedConfigs for a pod spec: nil when config tracking is off.
func (f *Factory) trackedChecksums(ctx context.Context, cd *flaggerv1.Canary, spec *corev1.PodSpec) (map[string]string, error) {
	if !f.opts.EnableConfigTracking {
		return nil, nil
	}
	configs, err := f.trackedConfigs(ctx, cd.Namespace, spec)
	if err != nil {
		return nil, err
	}
	return checksums(configs), nil
}
