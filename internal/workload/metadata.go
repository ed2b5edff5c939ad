package workload

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

// Annotations, labels and node selectors of Flagger's contract, plus Pennant's own revision record.
const (
	// FlaggerIDAnnotation on the primary pod template gets a fresh UUID on every promotion, which
	// forces a rollout of the primary even when only ConfigMaps or Secrets changed.
	FlaggerIDAnnotation = "flagger-id"
	// ConfigTrackingAnnotation with a value starting with "disable" excludes a ConfigMap or Secret
	// from tracking: it is neither checksummed nor copied to <name>-primary.
	ConfigTrackingAnnotation = "flagger.app/config-tracking"
	// ScaleToZeroNodeSelector, set to "true" in a DaemonSet's pod template, matches no node.
	ScaleToZeroNodeSelector = "flagger.app/scale-to-zero"
	// KEDAPausedReplicasAnnotation holds a ScaledObject's target at the given replica count.
	KEDAPausedReplicasAnnotation = "autoscaling.keda.sh/paused-replicas"
	// PromotedRevisionAnnotation records, on the primary object (not its pod template), the target
	// revision the primary was last created or promoted from.
	PromotedRevisionAnnotation = "pennant.dev/revision"

	kedaPausedAnnotation         = "autoscaling.keda.sh/paused"
	kubectlLastAppliedAnnotation = "kubectl.kubernetes.io/last-applied-configuration"
	// fluxMarker is part of every key Flux uses to claim ownership of an object; a copy made by
	// Pennant must not be claimed (and pruned or reverted) by the Flux object that owns the source.
	fluxMarker = "toolkit.fluxcd.io"

	primarySuffix = "-primary"
	canarySuffix  = "-canary"
)

// controllerOwnedPrefixes are metadata keys that Kubernetes controllers write on the object itself:
// never copied from the target, and kept when the primary is updated.
var controllerOwnedPrefixes = []string{"deployment.kubernetes.io/", "deprecated.daemonset.template.generation"}

func primaryName(name string) string { return name + primarySuffix }

func canaryName(name string) string { return name + canarySuffix }

// withoutFluxKeys copies m without Flux ownership keys and kubectl's last-applied configuration
// (which describes the source, not the copy).
func withoutFluxKeys(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		if strings.Contains(k, fluxMarker) || k == kubectlLastAppliedAnnotation {
			continue
		}
		out[k] = v
	}
	return out
}

// copiedMetadata is what of a target's object labels or annotations is copied to a generated object:
// keys matching one of the -include-label-prefix prefixes ("*" matches all), minus Flux keys and
// controller-owned keys.
func copiedMetadata(m map[string]string, prefixes []string) map[string]string {
	out := map[string]string{}
	for k, v := range withoutFluxKeys(m) {
		if hasAnyPrefix(k, prefixes) && !isControllerOwned(k) {
			out[k] = v
		}
	}
	return out
}

func hasAnyPrefix(key string, prefixes []string) bool {
	for _, p := range prefixes {
		if p == "*" || (p != "" && strings.HasPrefix(key, p)) {
			return true
		}
	}
	return false
}

func isControllerOwned(key string) bool {
	for _, p := range controllerOwnedPrefixes {
		if strings.HasPrefix(key, p) {
			return true
		}
	}
	return false
}

// mergeInto returns dst with every entry of src set; dst is not modified.
func mergeInto(dst, src map[string]string) map[string]string {
	out := make(map[string]string, len(dst)+len(src))
	for k, v := range dst {
		out[k] = v
	}
	for k, v := range src {
		out[k] = v
	}
	return out
}

// withCanaryOwner adds the Canary to the owners of an object shared between canaries (ConfigMap and
// Secret copies). The first owner controls it; later canaries are added as plain owners.
func withCanaryOwner(refs []metav1.OwnerReference, cd *flaggerv1.Canary) []metav1.OwnerReference {
	for _, r := range refs {
		if isCanaryRef(r, cd) {
			return refs
		}
	}
	ref := cd.OwnerReference()
	for _, r := range refs {
		if ptr.Deref(r.Controller, false) {
			ref.Controller = ptr.To(false)
		}
	}
	return append(append([]metav1.OwnerReference{}, refs...), ref)
}

func isCanaryRef(r metav1.OwnerReference, cd *flaggerv1.Canary) bool {
	return r.Kind == flaggerv1.CanaryKind && r.Name == cd.Name &&
		strings.HasPrefix(r.APIVersion, flaggerv1.GroupVersion.Group+"/")
}

// PromotedMarker is what PromotedRevisionAnnotation records of a promotion: the target's revision,
// followed, when the target references tracked ConfigMaps or Secrets, by a digest of their
// checksums. A change of configs alone is then visible on the primary too, so that a promotion
// can be told done (or still to do, after a crash) from the primary alone.
func PromotedMarker(revision string, configs map[string]string) string {
	if len(configs) == 0 {
		return revision
	}
	keys := make([]string, 0, len(configs))
	for k := range configs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	h := sha256.New()
	for _, k := range keys {
		fmt.Fprintf(h, "%s=%s\n", k, configs[k])
	}
	return revision + "/" + hex.EncodeToString(h.Sum(nil))[:16]
}
