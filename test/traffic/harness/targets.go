package harness

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sort"

	corev1 "k8s.io/api/core/v1"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
)

// Debian's Prometheus is built without Kubernetes service discovery, so the harness discovers the
// pods itself and hands Prometheus a file_sd target list with the labels that Flagger's Prometheus
// gives them by relabelling: every pod label, kubernetes_namespace and kubernetes_pod_name. Pods
// annotated prometheus.io/scrape=true are scraped on their prometheus.io/port.

// fileTarget is one group of Prometheus' file_sd format.
type fileTarget struct {
	Targets []string          `json:"targets"`
	Labels  map[string]string `json:"labels"`
}

var labelNameInvalid = regexp.MustCompile(`[^a-zA-Z0-9_]`)

// podTargets is the file_sd content for the pods (pure).
func podTargets(pods []corev1.Pod) []fileTarget {
	out := []fileTarget{}
	for _, p := range pods {
		port := p.Annotations["prometheus.io/port"]
		if p.Annotations["prometheus.io/scrape"] != "true" || port == "" || p.Status.PodIP == "" ||
			p.DeletionTimestamp != nil || p.Status.Phase != corev1.PodRunning {
			continue
		}
		labels := map[string]string{"kubernetes_namespace": p.Namespace, "kubernetes_pod_name": p.Name}
		for k, v := range p.Labels {
			labels[labelNameInvalid.ReplaceAllString(k, "_")] = v
		}
		out = append(out, fileTarget{Targets: []string{net.JoinHostPort(p.Status.PodIP, port)}, Labels: labels})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Targets[0] < out[j].Targets[0] })
	return out
}

// discoverPods keeps path up to date with the pods' targets until ctx ends.
func (s *Stack) discoverPods(ctx context.Context, path string) error {
	c, err := cache.New(s.Config, cache.Options{Scheme: s.Scheme})
	if err != nil {
		return err
	}
	inf, err := c.GetInformer(ctx, &corev1.Pod{})
	if err != nil {
		return err
	}
	changed := make(chan struct{}, 1)
	poke := func(any) {
		select {
		case changed <- struct{}{}:
		default:
		}
	}
	if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc: poke, UpdateFunc: func(_, o any) { poke(o) }, DeleteFunc: poke,
	}); err != nil {
		return err
	}
	go func() { _ = c.Start(ctx) }()
	if !c.WaitForCacheSync(ctx) {
		return ctx.Err()
	}
	write := func() {
		list := &corev1.PodList{}
		if err := c.List(ctx, list); err != nil {
			return
		}
		data, _ := json.Marshal(podTargets(list.Items))
		tmp := path + ".tmp"
		if os.WriteFile(tmp, data, 0o644) == nil {
			_ = os.Rename(tmp, path) // atomically: Prometheus never reads half a file
		}
	}
	write()
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-changed:
				write()
			}
		}
	}()
	return nil
}

func targetsFile(dir string) string { return filepath.Join(dir, "pod-targets.json") }
