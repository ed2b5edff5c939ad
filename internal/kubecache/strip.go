// Package kubecache keeps the Secrets and ConfigMaps of the cluster out of the controller's memory
// except for what it reads.
//
// Configs caches them namespace by namespace, starting a namespace's informers the first time
// something in it is read (the namespaces of canaries that track configs, of metric templates' and
// alert providers' Secrets): objects in other namespaces cost nothing. Its caches hold them without
// their data: Transform replaces the data by its checksum (ChecksumAnnotation), which is all config
// tracking needs to see a change, so idle canaries cost no API requests.
//
// Reader reads Secrets and ConfigMaps in full when their data is needed (a copy to <name>-primary,
// a metric provider's or alert provider's credentials): it GETs the object from the API once per
// resourceVersion the cache reports and serves repeated reads from memory.
package kubecache

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// ChecksumAnnotation holds, on a Secret or ConfigMap in the cache only, the checksum of the data
// the cache dropped. The key is not a valid annotation key (':' is not allowed in its name part):
// no object in the API has it, and the API refuses to write an object that carries it, so a cached
// object without its data can never be written back by mistake.
const ChecksumAnnotation = "pennant.dev/cache:data-checksum"

// lastAppliedAnnotation is kubectl's copy of what was applied: for a Secret or ConfigMap, its data.
const lastAppliedAnnotation = "kubectl.kubernetes.io/last-applied-configuration"

// Transform is the cache transform of Secrets and ConfigMaps: it replaces data, binaryData and
// stringData by their checksum in ChecksumAnnotation and drops managed fields and kubectl's
// last-applied configuration. Type, labels and other annotations are kept. It is idempotent.
// Other objects only lose their managed fields.
func Transform(in any) (any, error) {
	if obj, ok := in.(client.Object); ok {
		strip(obj)
	}
	return in, nil
}

// Strip returns a copy of a Secret or ConfigMap as the cache holds it (see Transform).
func Strip(obj client.Object) client.Object {
	out := obj.DeepCopyObject().(client.Object)
	strip(out)
	return out
}

func strip(obj client.Object) {
	if obj.GetManagedFields() != nil {
		obj.SetManagedFields(nil)
	}
	switch o := obj.(type) {
	case *corev1.Secret:
		if !Stripped(o) || len(o.Data) > 0 || len(o.StringData) > 0 {
			setChecksum(o, DataChecksum(o))
		}
		o.Data, o.StringData = nil, nil
	case *corev1.ConfigMap:
		if !Stripped(o) || len(o.Data) > 0 || len(o.BinaryData) > 0 {
			setChecksum(o, DataChecksum(o))
		}
		o.Data, o.BinaryData = nil, nil
	}
}

func setChecksum(obj client.Object, sum string) {
	annotations := obj.GetAnnotations()
	delete(annotations, lastAppliedAnnotation)
	if annotations == nil {
		annotations = make(map[string]string, 1)
	}
	annotations[ChecksumAnnotation] = sum
	obj.SetAnnotations(annotations)
}

// Stripped reports whether obj is a Secret or ConfigMap as the cache holds it: without its data.
func Stripped(obj client.Object) bool {
	_, ok := obj.GetAnnotations()[ChecksumAnnotation]
	return ok
}

// Checksum is the checksum of a Secret's or ConfigMap's data, whether obj holds the data or is
// Stripped. It is "" for other objects.
func Checksum(obj client.Object) string {
	if sum, ok := obj.GetAnnotations()[ChecksumAnnotation]; ok {
		return sum
	}
	return DataChecksum(obj)
}

// DataChecksum computes the checksum of a Secret's or ConfigMap's data as Flagger records it in
// status.trackedConfigs: the first 8 bytes of the SHA-256 of the JSON of data, in hex. A
// ConfigMap's binaryData joins the hash only when present, so that Flagger's checksums stay valid.
func DataChecksum(obj client.Object) string {
	switch o := obj.(type) {
	case *corev1.Secret:
		return checksum(o.Data)
	case *corev1.ConfigMap:
		if len(o.BinaryData) == 0 {
			return checksum(o.Data)
		}
		return checksum(struct {
			Data       map[string]string `json:"data"`
			BinaryData map[string][]byte `json:"binaryData"`
		}{o.Data, o.BinaryData})
	}
	return ""
}

func checksum(data any) string {
	raw, _ := json.Marshal(data) // maps of strings or bytes always marshal
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:8])
}

// kind names the kinds this package handles: "Secret", "ConfigMap", or "" for any other object.
func kind(obj runtime.Object) string {
	switch obj.(type) {
	case *corev1.Secret, *corev1.SecretList:
		return "Secret"
	case *corev1.ConfigMap, *corev1.ConfigMapList:
		return "ConfigMap"
	}
	return ""
}

// newObject is an empty object of a kind this package handles.
func newObject(kind string) client.Object {
	if kind == "Secret" {
		return &corev1.Secret{}
	}
	return &corev1.ConfigMap{}
}
