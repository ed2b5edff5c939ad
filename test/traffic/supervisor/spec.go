package supervisor

import (
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Grace periods of a child's stop: the pod's terminationGracePeriodSeconds, this when unset, and
// never more than Options.MaxGracePeriod.
const (
	DefaultGracePeriod    = 30 * time.Second
	DefaultMaxGracePeriod = 60 * time.Second
)

// ChildSpec is what the supervisor runs for one pod: `BINARY serve -listen Addrs` with Env.
type ChildSpec struct {
	// Pod is namespace/name, UID the pod's uid (a pod recreated under its name is another pod).
	Pod string
	UID types.UID
	// IP is the pod's status.podIP and Addrs every IP:port the child listens on.
	IP    string
	Addrs []string
	// Version is the child's PODINFO_VERSION (or VERSION) as found in Env.
	Version string
	// Env is the child's whole environment as KEY=VALUE.
	Env []string
	// Grace is how long a SIGTERMed child may take before it is SIGKILLed.
	Grace time.Duration
}

// sameProcess reports whether a running child for old also serves new (pod specs are immutable
// where it matters; only the IP may change, e.g. when kwok reassigns it).
func (c ChildSpec) sameProcess(other ChildSpec) bool {
	return c.UID == other.UID && c.IP == other.IP && strings.Join(c.Addrs, ",") == strings.Join(other.Addrs, ",")
}

// Serving reports whether a container of pod would be running: it has an IP, phase Running and is
// not being deleted.
func Serving(pod *corev1.Pod) bool {
	return pod.Status.PodIP != "" && pod.Status.Phase == corev1.PodRunning && pod.DeletionTimestamp == nil
}

// ListenAddrs is podIP:port for every TCP containerPort of the pod's containers, in the order of the
// pod spec, without duplicates.
func ListenAddrs(pod *corev1.Pod) []string {
	var addrs []string
	seen := map[int32]bool{}
	for _, c := range pod.Spec.Containers {
		for _, p := range c.Ports {
			if (p.Protocol != "" && p.Protocol != corev1.ProtocolTCP) || seen[p.ContainerPort] {
				continue
			}
			seen[p.ContainerPort] = true
			addrs = append(addrs, net.JoinHostPort(pod.Status.PodIP, strconv.Itoa(int(p.ContainerPort))))
		}
	}
	return addrs
}

// ImageVersion is the tag of an image reference ("ghcr.io/stefanprodan/podinfo:6.0.1" -> "6.0.1"),
// "latest" without one, and the digest's first 12 hex digits for a digest-only reference.
func ImageVersion(image string) string {
	name, digest, _ := strings.Cut(image, "@")
	last := name[strings.LastIndex(name, "/")+1:] // a registry's :port is before the last slash
	if _, tag, ok := strings.Cut(last, ":"); ok && tag != "" {
		return tag
	}
	if _, hex, ok := strings.Cut(digest, ":"); ok && hex != "" {
		return hex[:min(12, len(hex))]
	}
	return "latest"
}

// Lookup reads the ConfigMaps and Secrets a pod's environment refers to. A missing object is an
// error for which apierrors.IsNotFound holds.
type Lookup interface {
	ConfigMap(namespace, name string) (*corev1.ConfigMap, error)
	Secret(namespace, name string) (*corev1.Secret, error)
}

// ResolveEnv is the environment of the pod's first container as its kubelet would set it: envFrom
// sources in order, then env entries (later ones win), with ConfigMap, Secret and field references
// resolved. The names referred to are those in the pod spec (Pennant points a primary's template at
// <name>-primary). $(VAR) references inside values are not expanded.
func ResolveEnv(pod *corev1.Pod, lookup Lookup) ([]corev1.EnvVar, error) {
	if len(pod.Spec.Containers) == 0 {
		return nil, nil
	}
	c := pod.Spec.Containers[0]
	env := &orderedEnv{index: map[string]int{}}
	for _, src := range c.EnvFrom {
		if err := addEnvFrom(env, pod.Namespace, src, lookup); err != nil {
			return nil, err
		}
	}
	for _, e := range c.Env {
		value, ok, err := envValue(pod, e, lookup)
		if err != nil {
			return nil, fmt.Errorf("env %s: %w", e.Name, err)
		}
		if ok {
			env.set(e.Name, value)
		}
	}
	return env.vars, nil
}

func addEnvFrom(env *orderedEnv, namespace string, src corev1.EnvFromSource, lookup Lookup) error {
	var data map[string]string
	switch {
	case src.ConfigMapRef != nil:
		cm, err := lookup.ConfigMap(namespace, src.ConfigMapRef.Name)
		if apierrors.IsNotFound(err) && isTrue(src.ConfigMapRef.Optional) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("envFrom ConfigMap %s: %w", src.ConfigMapRef.Name, err)
		}
		data = cm.Data
	case src.SecretRef != nil:
		s, err := lookup.Secret(namespace, src.SecretRef.Name)
		if apierrors.IsNotFound(err) && isTrue(src.SecretRef.Optional) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("envFrom Secret %s: %w", src.SecretRef.Name, err)
		}
		data = map[string]string{}
		for k, v := range s.Data {
			data[k] = string(v)
		}
		for k, v := range s.StringData { // only set on objects not yet written; harmless otherwise
			data[k] = v
		}
	default:
		return nil
	}
	for _, k := range sortedKeys(data) {
		name := src.Prefix + k
		if len(validation.IsEnvVarName(name)) > 0 {
			continue // the kubelet skips such keys too
		}
		env.set(name, data[k])
	}
	return nil
}

// envValue is the value of one env entry; ok is false for an optional reference that is missing.
func envValue(pod *corev1.Pod, e corev1.EnvVar, lookup Lookup) (value string, ok bool, err error) {
	from := e.ValueFrom
	switch {
	case from == nil:
		return e.Value, true, nil
	case from.ConfigMapKeyRef != nil:
		ref := from.ConfigMapKeyRef
		cm, err := lookup.ConfigMap(pod.Namespace, ref.Name)
		if err != nil {
			return missing(err, ref.Optional, "ConfigMap %s", ref.Name)
		}
		if v, found := cm.Data[ref.Key]; found {
			return v, true, nil
		}
		if v, found := cm.BinaryData[ref.Key]; found {
			return string(v), true, nil
		}
		return missing(nil, ref.Optional, "ConfigMap %s has no key %s", ref.Name, ref.Key)
	case from.SecretKeyRef != nil:
		ref := from.SecretKeyRef
		s, err := lookup.Secret(pod.Namespace, ref.Name)
		if err != nil {
			return missing(err, ref.Optional, "Secret %s", ref.Name)
		}
		if v, found := s.Data[ref.Key]; found {
			return string(v), true, nil
		}
		return missing(nil, ref.Optional, "Secret %s has no key %s", ref.Name, ref.Key)
	case from.FieldRef != nil:
		v, err := fieldValue(pod, from.FieldRef.FieldPath)
		return v, err == nil, err
	}
	return "", false, fmt.Errorf("unsupported valueFrom (only configMapKeyRef, secretKeyRef and fieldRef)")
}

// missing turns a failed reference into no value (optional, and the object or key is absent) or an error.
func missing(err error, optional *bool, format string, args ...any) (string, bool, error) {
	if isTrue(optional) && (err == nil || apierrors.IsNotFound(err)) {
		return "", false, nil
	}
	msg := fmt.Sprintf(format, args...)
	if err != nil {
		return "", false, fmt.Errorf("%s: %w", msg, err)
	}
	return "", false, fmt.Errorf("%s", msg)
}

func fieldValue(pod *corev1.Pod, path string) (string, error) {
	switch path {
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.uid":
		return string(pod.UID), nil
	case "spec.nodeName":
		return pod.Spec.NodeName, nil
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, nil
	case "status.podIP":
		return pod.Status.PodIP, nil
	case "status.hostIP":
		return pod.Status.HostIP, nil
	}
	for prefix, m := range map[string]map[string]string{"metadata.labels": pod.Labels, "metadata.annotations": pod.Annotations} {
		if key, ok := strings.CutPrefix(path, prefix+"['"); ok && strings.HasSuffix(key, "']") {
			return m[strings.TrimSuffix(key, "']")], nil
		}
	}
	return "", fmt.Errorf("unsupported fieldRef %q", path)
}

// ChildEnv is a child's whole environment: PATH (the only variable taken from the supervisor, so that
// its own ERROR_RATE or VERSION never leaks into a pod), POD_NAME, POD_NAMESPACE, POD_IP, the pod's
// resolved env (which wins), and PODINFO_VERSION from the first container's image tag unless that env
// sets PODINFO_VERSION or VERSION.
func ChildEnv(pod *corev1.Pod, lookup Lookup, path string) (env []string, version string, err error) {
	resolved, err := ResolveEnv(pod, lookup)
	if err != nil {
		return nil, "", err
	}
	e := &orderedEnv{index: map[string]int{}}
	if path != "" {
		e.set("PATH", path)
	}
	e.set("POD_NAME", pod.Name)
	e.set("POD_NAMESPACE", pod.Namespace)
	e.set("POD_IP", pod.Status.PodIP)
	for _, v := range resolved {
		e.set(v.Name, v.Value)
	}
	_, hasVersion := e.index["PODINFO_VERSION"]
	_, hasFallback := e.index["VERSION"]
	if !hasVersion && !hasFallback && len(pod.Spec.Containers) > 0 {
		e.set("PODINFO_VERSION", ImageVersion(pod.Spec.Containers[0].Image))
	}
	for _, name := range []string{"PODINFO_VERSION", "VERSION"} {
		if i, ok := e.index[name]; ok {
			version = e.vars[i].Value
			break
		}
	}
	out := make([]string, len(e.vars))
	for i, v := range e.vars {
		out[i] = v.Name + "=" + v.Value
	}
	return out, version, nil
}

// GracePeriod is the pod's terminationGracePeriodSeconds (DefaultGracePeriod when unset), at most limit.
func GracePeriod(pod *corev1.Pod, limit time.Duration) time.Duration {
	grace := DefaultGracePeriod
	if s := pod.Spec.TerminationGracePeriodSeconds; s != nil && *s >= 0 {
		grace = time.Duration(*s) * time.Second
	}
	return min(grace, limit)
}

// orderedEnv keeps variables in the order first set; a later set replaces the value in place.
type orderedEnv struct {
	vars  []corev1.EnvVar
	index map[string]int
}

func (e *orderedEnv) set(name, value string) {
	if i, ok := e.index[name]; ok {
		e.vars[i].Value = value
		return
	}
	e.index[name] = len(e.vars)
	e.vars = append(e.vars, corev1.EnvVar{Name: name, Value: value})
}

func isTrue(b *bool) bool { return b != nil && *b }

// sortedKeys makes the order of variables from one envFrom source deterministic.
func sortedKeys(m map[string]string) []string { return slices.Sorted(maps.Keys(m)) }
