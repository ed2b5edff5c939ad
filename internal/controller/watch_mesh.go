package controller

import (
	"context"
	"encoding/json"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/cluster"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

// CanaryOwnerAnnotation holds, on the service mesh's cluster, the owner references to canaries
// that the routers set: the canaries live on another cluster, whose garbage collector alone knows
// them. On the mesh cluster an owner reference to a canary would be dangling, and its garbage
// collector would delete the object (or retry forever when it does not know the Canary kind).
// Flagger leaves the owner references out there; Pennant keeps them in this annotation, so that the
// routers still tell their objects from someone else's.
const CanaryOwnerAnnotation = "pennant.dev/canary-owners"

// meshClient is the routers' client of the service mesh's cluster. When it is the main cluster
// under another kubeconfig (same API server), owner references work as usual.
func meshClient(mgr ctrl.Manager, mesh cluster.Cluster, absent *absentKinds) client.Client {
	c := client.Client(absentClient{Client: mesh.GetClient(), absent: absent})
	if mesh.GetConfig().Host == mgr.GetConfig().Host {
		return c
	}
	return remoteOwnersClient{c}
}

// remoteOwnersClient keeps owner references to canaries in CanaryOwnerAnnotation on the server,
// and gives them back as owner references on every object it reads or writes.
type remoteOwnersClient struct{ client.Client }

func (c remoteOwnersClient) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	err := c.Client.Get(ctx, key, obj, opts...)
	if err == nil {
		ownersFromAnnotation(obj)
	}
	return err
}

func (c remoteOwnersClient) Create(ctx context.Context, obj client.Object, opts ...client.CreateOption) error {
	ownersToAnnotation(obj)
	defer ownersFromAnnotation(obj)
	return c.Client.Create(ctx, obj, opts...)
}

func (c remoteOwnersClient) Update(ctx context.Context, obj client.Object, opts ...client.UpdateOption) error {
	ownersToAnnotation(obj)
	defer ownersFromAnnotation(obj)
	return c.Client.Update(ctx, obj, opts...)
}

// Patch sends the patch as given: the routers patch only the Knative Service, which is on the main
// cluster.
func (c remoteOwnersClient) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
	defer ownersFromAnnotation(obj)
	return c.Client.Patch(ctx, obj, patch, opts...)
}

func isCanaryOwner(r metav1.OwnerReference) bool {
	return r.Kind == flaggerv1.CanaryKind && r.APIVersion == flaggerv1.GroupVersion.String()
}

// ownersToAnnotation moves the owner references to canaries into CanaryOwnerAnnotation.
func ownersToAnnotation(obj client.Object) {
	var canaries, others []metav1.OwnerReference
	for _, r := range obj.GetOwnerReferences() {
		if isCanaryOwner(r) {
			canaries = append(canaries, r)
		} else {
			others = append(others, r)
		}
	}
	annotations := obj.GetAnnotations()
	delete(annotations, CanaryOwnerAnnotation)
	if len(canaries) > 0 {
		raw, err := json.Marshal(canaries)
		if err != nil {
			return
		}
		if annotations == nil {
			annotations = map[string]string{}
		}
		annotations[CanaryOwnerAnnotation] = string(raw)
	}
	obj.SetAnnotations(annotations)
	obj.SetOwnerReferences(others)
}

// ownersFromAnnotation is the reverse of ownersToAnnotation.
func ownersFromAnnotation(obj client.Object) {
	annotations := obj.GetAnnotations()
	raw, ok := annotations[CanaryOwnerAnnotation]
	if !ok {
		return
	}
	var canaries []metav1.OwnerReference
	if err := json.Unmarshal([]byte(raw), &canaries); err != nil {
		return
	}
	delete(annotations, CanaryOwnerAnnotation)
	if len(annotations) == 0 {
		annotations = nil
	}
	obj.SetAnnotations(annotations)
	obj.SetOwnerReferences(append(canaries, obj.GetOwnerReferences()...))
}
