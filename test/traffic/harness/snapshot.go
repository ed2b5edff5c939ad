package harness

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"
)

// Snapshot writes what explains a failed test into Dir/<namespace>-snapshot.txt and returns its
// path: Traefik's own view of its routers and services (its API), and the namespace's canary,
// TraefikServices, HTTPRoutes and EndpointSlices.
func (s *Stack) Snapshot(ctx context.Context, namespace string) string {
	// Bounded: it explains a failure, which may be an API server that no longer answers.
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var b strings.Builder
	for _, path := range []string{"/api/http/routers", "/api/http/services"} {
		fmt.Fprintf(&b, "=== Traefik %s\n%s\n", path, s.traefikAPI(path))
	}
	for _, gvk := range [][2]string{{"flagger.app/v1beta1", "CanaryList"}, {"traefik.io/v1alpha1", "TraefikServiceList"},
		{"gateway.networking.k8s.io/v1", "HTTPRouteList"}} {
		list := &unstructured.UnstructuredList{}
		list.SetAPIVersion(gvk[0])
		list.SetKind(gvk[1])
		err := s.Client.List(ctx, list, client.InNamespace(namespace))
		dump(&b, gvk[1], list, err)
	}
	slices := &discoveryv1.EndpointSliceList{}
	err := s.Client.List(ctx, slices, client.InNamespace(namespace))
	dump(&b, "EndpointSliceList", slices, err)
	path := filepath.Join(s.opts.Dir, namespace+"-snapshot.txt")
	_ = os.WriteFile(path, []byte(b.String()), 0o644)
	return path
}

func dump(b *strings.Builder, what string, obj any, err error) {
	out, _ := yaml.Marshal(obj)
	fmt.Fprintf(b, "=== %s (%v)\n%s\n", what, err, out)
}

var apiClient = &http.Client{Timeout: 5 * time.Second}

func (s *Stack) traefikAPI(path string) string {
	resp, err := apiClient.Get("http://" + s.Admin + path)
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return string(body)
}

// TraefikView records Traefik's own view of a namespace's canary routing, read from its API every
// 200ms: the weights of its weighted services (the TraefikService <namespace>-<name>, an HTTPRoute's
// rules) and the servers of each Kubernetes service.
func (s *Stack) TraefikView(ctx context.Context, namespace, name string) *Timeline {
	ctx, cancel := context.WithCancel(ctx)
	tl := &Timeline{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(tl.done)
		for ctx.Err() == nil {
			v := s.traefikView(namespace, name)
			tl.mu.Lock()
			if n := len(tl.changes); n == 0 || tl.changes[n-1].Value != v {
				tl.changes = append(tl.changes, Change{At: time.Now(), Value: v})
			}
			tl.mu.Unlock()
			select {
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
	return tl
}

func (s *Stack) traefikView(namespace, name string) string {
	var services []struct {
		Name     string
		Weighted *struct {
			Services []struct {
				Name   string
				Weight int
			}
		}
		ServerStatus map[string]string
	}
	if err := json.Unmarshal([]byte(s.traefikAPI("/api/http/services")), &services); err != nil {
		return "error: " + err.Error()
	}
	var parts []string
	for _, svc := range services {
		if !strings.Contains(svc.Name, namespace+"-"+name) {
			continue
		}
		switch {
		case svc.Weighted != nil:
			parts = append(parts, fmt.Sprintf("%s=%v", svc.Name, svc.Weighted.Services))
		default:
			servers := make([]string, 0, len(svc.ServerStatus))
			for u, st := range svc.ServerStatus {
				servers = append(servers, u+":"+st)
			}
			sort.Strings(servers)
			parts = append(parts, fmt.Sprintf("%s=%v", svc.Name, servers))
		}
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}
