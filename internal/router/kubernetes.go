package router

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

// Annotations put on every generated object so that Flux neither reverts nor drift-corrects it when
// the Flux object that applied the target also claims it.
const (
	kustomizeReconcileAnnotation = "kustomize.toolkit.fluxcd.io/reconcile"
	helmDriftDetectionAnnotation = "helm.toolkit.fluxcd.io/driftDetection"
	fluxDisabled                 = "disabled"

	kubectlLastAppliedAnnotation = "kubectl.kubernetes.io/last-applied-configuration"
	defaultPortName              = "http"
)

// SelectorFunc reports the selector label and value of a canary's target and the ports of its
// containers (name -> port). workload.Factory.Selector has this shape.
type SelectorFunc func(ctx context.Context, cd *flaggerv1.Canary) (label, value string, ports map[string]int32, err error)

// KubernetesOptions are the settings of the Service router.
type KubernetesOptions struct {
	// FieldOwner is the field manager of every write.
	FieldOwner string
}

// KubernetesServices is the KubernetesRouter of Deployment and DaemonSet targets: it generates the
// ClusterIP Services <svc>-canary (target pods), <svc>-primary (primary pods) and the apex <svc>
// (primary pods), where <svc> is spec.service.name or the target name.
//
// Services it created (controlled by the Canary) are fully managed, except the keys listed in
// spec.service.unmanagedMetadata, their cluster IPs and node ports. An apex Service that already
// existed (created by the user) is taken over gently: only its selector and ports change, and its
// own ports that do not clash with the generated ones are kept.
type KubernetesServices struct {
	client   client.Client
	selector SelectorFunc
	owner    client.FieldOwner
}

var _ KubernetesRouter = (*KubernetesServices)(nil)

// NewKubernetesRouter returns the Service router; selector is usually workload.Factory.Selector.
func NewKubernetesRouter(c client.Client, selector SelectorFunc, opts KubernetesOptions) *KubernetesServices {
	return &KubernetesServices{client: c, selector: selector, owner: client.FieldOwner(opts.FieldOwner)}
}

// generatedService is one of the three Services of a canary.
type generatedService struct {
	name     string
	selector map[string]string
	metadata *flaggerv1.CustomMetadata
	headless bool
}

// Initialize creates or updates <svc>-canary and <svc>-primary.
func (r *KubernetesServices) Initialize(ctx context.Context, cd *flaggerv1.Canary) error {
	label, value, ports, err := r.selector(ctx, cd)
	if err != nil {
		return err
	}
	_, primary, canary := cd.GetServiceNames()
	svc := cd.Spec.Service
	for _, g := range []generatedService{
		{name: canary, selector: map[string]string{label: value}, metadata: svc.Canary, headless: svc.Headless},
		{name: primary, selector: map[string]string{label: value + "-primary"}, metadata: svc.Primary, headless: svc.Headless},
	} {
		if err := r.reconcileService(ctx, cd, g, label, ports); err != nil {
			return err
		}
	}
	return nil
}

// Reconcile creates or updates the apex <svc>, selecting the primary pods. It is never headless:
// headless applies to the primary and canary Services.
func (r *KubernetesServices) Reconcile(ctx context.Context, cd *flaggerv1.Canary) error {
	label, value, ports, err := r.selector(ctx, cd)
	if err != nil {
		return err
	}
	apex := generatedService{
		name:     cd.GetServiceName(),
		selector: map[string]string{label: value + "-primary"},
		metadata: cd.Spec.Service.Apex,
	}
	return r.reconcileService(ctx, cd, apex, label, ports)
}

// Finalize points the apex Service back at the target's pods: the selector recorded by kubectl
// apply when there is one (the user's own), else {label: value} of the target.
func (r *KubernetesServices) Finalize(ctx context.Context, cd *flaggerv1.Canary) error {
	existing := &corev1.Service{}
	err := r.client.Get(ctx, client.ObjectKey{Namespace: cd.Namespace, Name: cd.GetServiceName()}, existing)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("apex service %s.%s: %w", cd.GetServiceName(), cd.Namespace, err)
	}
	selector := lastAppliedSelector(existing)
	if len(selector) == 0 {
		label, value, _, err := r.selector(ctx, cd)
		if err != nil {
			return err
		}
		selector = map[string]string{label: value}
	}
	if equality.Semantic.DeepEqual(existing.Spec.Selector, selector) {
		return nil
	}
	svc := existing.DeepCopy()
	svc.Spec.Selector = selector
	return r.update(ctx, svc)
}

func lastAppliedSelector(svc *corev1.Service) map[string]string {
	raw, ok := svc.Annotations[kubectlLastAppliedAnnotation]
	if !ok {
		return nil
	}
	var applied corev1.Service
	if err := json.Unmarshal([]byte(raw), &applied); err != nil {
		return nil
	}
	return applied.Spec.Selector
}

func (r *KubernetesServices) reconcileService(ctx context.Context, cd *flaggerv1.Canary, g generatedService,
	label string, discovered map[string]int32) error {
	desired := desiredService(cd, g, label, discovered)
	existing := &corev1.Service{}
	err := r.client.Get(ctx, client.ObjectKeyFromObject(desired), existing)
	if apierrors.IsNotFound(err) {
		if err := r.client.Create(ctx, desired, r.owner); err != nil {
			return fmt.Errorf("creating service %s.%s: %w", desired.Name, desired.Namespace, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("service %s.%s: %w", desired.Name, desired.Namespace, err)
	}
	var updated *corev1.Service
	switch owner := metav1.GetControllerOf(existing); {
	case owner != nil && isCanaryRef(*owner) && owner.Name == cd.Name:
		updated = updatedOwnedService(existing, desired, cd.Spec.Service.UnmanagedMetadata)
	case owner != nil && isCanaryRef(*owner):
		return fmt.Errorf("service %s.%s belongs to canary %s: two canaries cannot share it", existing.Name, existing.Namespace, owner.Name)
	default:
		updated = takenOverService(existing, desired)
	}
	if equality.Semantic.DeepEqual(existing, updated) {
		return nil
	}
	return r.update(ctx, updated)
}

func (r *KubernetesServices) update(ctx context.Context, svc *corev1.Service) error {
	if err := r.client.Update(ctx, svc, r.owner); err != nil {
		return fmt.Errorf("updating service %s.%s: %w", svc.Name, svc.Namespace, err)
	}
	return nil
}

func isCanaryRef(ref metav1.OwnerReference) bool {
	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	return err == nil && gv.Group == flaggerv1.GroupVersion.Group && ref.Kind == flaggerv1.CanaryKind
}

func desiredService(cd *flaggerv1.Canary, g generatedService, label string, discovered map[string]int32) *corev1.Service {
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{
			Name:            g.name,
			Namespace:       cd.Namespace,
			Labels:          serviceLabels(g, label),
			Annotations:     serviceAnnotations(g),
			OwnerReferences: []metav1.OwnerReference{cd.OwnerReference()},
		},
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeClusterIP,
			Selector: g.selector,
			Ports:    servicePorts(cd.Spec.Service, discovered),
		},
	}
	if td := cd.Spec.Service.TrafficDistribution; td != "" {
		svc.Spec.TrafficDistribution = ptr.To(td)
	}
	if g.headless {
		svc.Spec.ClusterIP = corev1.ClusterIPNone
	}
	return svc
}

// serviceLabels are the custom labels, with the selector label set to the Service's own name
// (e.g. app: podinfo-primary), which tells the three Services apart.
func serviceLabels(g generatedService, label string) map[string]string {
	labels := map[string]string{}
	if g.metadata != nil {
		for k, v := range g.metadata.Labels {
			labels[k] = v
		}
	}
	labels[label] = g.name
	return labels
}

func serviceAnnotations(g generatedService) map[string]string {
	annotations := map[string]string{}
	if g.metadata != nil {
		for k, v := range g.metadata.Annotations {
			annotations[k] = v
		}
	}
	annotations[kustomizeReconcileAnnotation] = fluxDisabled
	annotations[helmDriftDetectionAnnotation] = fluxDisabled
	return annotations
}

// servicePorts is the main port, then with portDiscovery the discovered container ports in name order,
// leaving out the container port the main port targets and any port whose name or number is taken.
func servicePorts(s flaggerv1.CanaryService, discovered map[string]int32) []corev1.ServicePort {
	main := corev1.ServicePort{
		Name:       s.PortName,
		Protocol:   corev1.ProtocolTCP,
		Port:       s.Port,
		TargetPort: s.TargetPort,
	}
	if main.Name == "" {
		main.Name = defaultPortName
	}
	if isUnsetPort(main.TargetPort) {
		main.TargetPort = intstr.FromInt32(s.Port)
	}
	if s.AppProtocol != "" {
		main.AppProtocol = ptr.To(s.AppProtocol)
	}
	ports := []corev1.ServicePort{main}
	if !s.PortDiscovery {
		return ports
	}
	usedNames := map[string]bool{main.Name: true}
	usedNumbers := map[int32]bool{main.Port: true}
	for _, name := range sortedKeys(discovered) {
		p := discovered[name]
		if usedNames[name] || usedNumbers[p] || targetsContainerPort(main.TargetPort, name, p) {
			continue
		}
		usedNames[name], usedNumbers[p] = true, true
		ports = append(ports, corev1.ServicePort{Name: name, Protocol: corev1.ProtocolTCP, Port: p, TargetPort: intstr.FromInt32(p)})
	}
	return ports
}

func isUnsetPort(p intstr.IntOrString) bool {
	return (p.Type == intstr.Int && p.IntVal == 0) || (p.Type == intstr.String && p.StrVal == "")
}

func targetsContainerPort(target intstr.IntOrString, name string, port int32) bool {
	if target.Type == intstr.String {
		return target.StrVal == name
	}
	return target.IntVal == port
}

func sortedKeys(m map[string]int32) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// updatedOwnedService is existing with the desired selector, ports (keeping allocated node ports),
// traffic distribution and metadata, except the unmanaged keys, whose current values stay.
func updatedOwnedService(existing, desired *corev1.Service, unmanaged *flaggerv1.UnmanagedMetadata) *corev1.Service {
	svc := existing.DeepCopy()
	svc.Spec.Selector = desired.Spec.Selector
	svc.Spec.Ports = withNodePorts(desired.Spec.Ports, existing.Spec.Ports)
	svc.Spec.TrafficDistribution = desired.Spec.TrafficDistribution
	var unmanagedLabels, unmanagedAnnotations []string
	if unmanaged != nil {
		unmanagedLabels, unmanagedAnnotations = unmanaged.Labels, unmanaged.Annotations
	}
	svc.Labels = keepKeys(desired.Labels, existing.Labels, unmanagedLabels)
	svc.Annotations = keepKeys(desired.Annotations, existing.Annotations, unmanagedAnnotations)
	return svc
}

// takenOverService is a Service someone else created, selecting the primary pods with the generated
// ports; its other ports stay unless their name or number clashes (Flagger drops them: issue #1345).
func takenOverService(existing, desired *corev1.Service) *corev1.Service {
	svc := existing.DeepCopy()
	svc.Spec.Selector = desired.Spec.Selector
	ports := withNodePorts(desired.Spec.Ports, existing.Spec.Ports)
	for _, p := range existing.Spec.Ports {
		if !clashes(p, ports) {
			ports = append(ports, p)
		}
	}
	svc.Spec.Ports = ports
	return svc
}

func clashes(p corev1.ServicePort, ports []corev1.ServicePort) bool {
	for _, q := range ports {
		if q.Name == p.Name || (q.Port == p.Port && q.Protocol == p.Protocol) {
			return true
		}
	}
	return false
}

// withNodePorts copies the node ports of existing ports to the desired ports of the same name, so
// that a NodePort or LoadBalancer apex keeps its ports.
func withNodePorts(desired, existing []corev1.ServicePort) []corev1.ServicePort {
	out := append([]corev1.ServicePort{}, desired...)
	for i := range out {
		for _, e := range existing {
			if e.Name == out[i].Name && e.NodePort > 0 {
				out[i].NodePort = e.NodePort
			}
		}
	}
	return out
}

// keepKeys is desired plus the current value of every unmanaged key.
func keepKeys(desired, current map[string]string, unmanaged []string) map[string]string {
	out := make(map[string]string, len(desired))
	for k, v := range desired {
		out[k] = v
	}
	for _, k := range unmanaged {
		if v, ok := current[k]; ok {
			out[k] = v
		} else {
			delete(out, k)
		}
	}
	return out
}
