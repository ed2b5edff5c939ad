package workload

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// meshProxyContainers are sidecars whose ports are not the application's.
var meshProxyContainers = map[string]bool{"istio-proxy": true, "envoy": true}

// selectorLabel returns the first of labels present in the target's spec.selector.matchLabels.
// Its absence is permanent: the target's selector is immutable, only a new target or flag fixes it.
func selectorLabel(sel *metav1.LabelSelector, labels []string, kind, name, namespace string) (string, string, error) {
	if sel != nil {
		for _, l := range labels {
			if v, ok := sel.MatchLabels[l]; ok && v != "" {
				return l, v, nil
			}
		}
	}
	return "", "", permanentf("selector label not found: %s %s.%s spec.selector.matchLabels must contain one of %v",
		kind, name, namespace, labels)
}

// containerPorts names every port of the application containers: the port's own name, or
// tcp-<container>-<index> when it has none.
func containerPorts(containers []corev1.Container) map[string]int32 {
	ports := map[string]int32{}
	for _, c := range containers {
		if meshProxyContainers[c.Name] {
			continue
		}
		for i, p := range c.Ports {
			name := p.Name
			if name == "" {
				name = fmt.Sprintf("tcp-%s-%d", c.Name, i)
			}
			ports[name] = p.ContainerPort
		}
	}
	return ports
}
