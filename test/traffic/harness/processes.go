package harness

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// startTraefik runs Traefik with its Kubernetes CRD provider (IngressRoute, TraefikService: Pennant's
// traefik provider) and its Gateway API provider (HTTPRoute: Pennant's gatewayapi:v1 provider)
// against the local API server. It routes to the Services' endpoints, the pods' own IPs.
func (s *Stack) startTraefik(ctx context.Context) error {
	_, portText, _ := net.SplitHostPort(s.Web)
	port, _ := strconv.Atoi(portText)
	if err := s.gateway(ctx, port); err != nil {
		return err
	}
	args := []string{
		"--global.checkNewVersion=false", "--global.sendAnonymousUsage=false", "--log.level=INFO",
		// The entry point named traefik serves the API (Snapshot reads Traefik's view of the
		// routes and servers), /ping and /metrics.
		"--entryPoints.web.address=" + s.Web, "--entryPoints.traefik.address=" + s.Admin,
		"--api.insecure=true", "--api.dashboard=false", "--ping=true", "--metrics.prometheus=true",
		// Routes take effect within a fifth of a second of a change (Traefik's default is 2s).
		"--providers.providersThrottleDuration=200ms",
		"--providers.kubernetesCRD=true", "--providers.kubernetesGateway=true",
	}
	var err error
	// Outside a cluster, Traefik's providers read the API server's address and credentials from
	// $KUBECONFIG (the local control plane's admin).
	if s.Traefik, err = start(s.opts.Dir, "traefik", s.opts.Traefik, args, "KUBECONFIG="+s.opts.Kubeconfig); err != nil {
		return err
	}
	return s.waitHTTP(ctx, s.Traefik, "http://"+s.Admin+"/ping")
}

// startPods runs one supervisor per namespace (or one for all without PodNamespaces): each pod gets
// a real process on its IP.
func (s *Stack) startPods(context.Context) error {
	namespaces := s.opts.PodNamespaces
	if len(namespaces) == 0 {
		namespaces = []string{""}
	}
	for _, ns := range namespaces {
		args := []string{"supervise", "-kubeconfig", s.opts.Kubeconfig, "-selector", "app"}
		name := "pods"
		if ns != "" {
			args, name = append(args, "-namespace", ns), "pods-"+ns
		}
		p, err := start(s.opts.Dir, name, s.opts.Pods, args)
		if err != nil {
			return err
		}
		s.Pods = append(s.Pods, p)
	}
	return nil
}

// startPrometheus scrapes Traefik's metrics and the pods annotated prometheus.io/scrape (the app's
// own http_request_duration_seconds, which the kubernetes and gatewayapi builtin checks read) every
// second, with the labels Flagger's bundled Prometheus gives them (targets.go).
func (s *Stack) startPrometheus(ctx context.Context) error {
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	cfg, err := writeFile(s.opts.Dir, "prometheus.yml", fmt.Sprintf(`
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
- job_name: traefik
  static_configs:
  - targets: [%q]
- job_name: kubernetes-pods
  file_sd_configs:
  - files: [%q]
    refresh_interval: 1s
`, s.Admin, targetsFile(s.opts.Dir)))
	if err != nil {
		return err
	}
	if err := s.discoverPods(s.background, targetsFile(s.opts.Dir)); err != nil {
		return err
	}
	s.PrometheusURL = "http://" + addr
	if s.Prometheus, err = start(s.opts.Dir, "prometheus", s.opts.Prometheus, []string{
		"--config.file=" + cfg, "--storage.tsdb.path=" + s.opts.Dir + "/prometheus-data",
		"--web.listen-address=" + addr, "--storage.tsdb.retention.time=1h",
	}); err != nil {
		return err
	}
	return s.waitHTTP(ctx, s.Prometheus, s.PrometheusURL+"/-/ready")
}

// StartPennant starts the pennant binary reading this Prometheus, with 1s as its shortest analysis
// interval. It is also how a test restarts the controller after killing it.
func (s *Stack) StartPennant(ctx context.Context) error {
	if s.pennantArgs == nil {
		metrics, err := freeAddr()
		if err != nil {
			return err
		}
		health, err := freeAddr()
		if err != nil {
			return err
		}
		_, metricsPort, _ := net.SplitHostPort(metrics)
		s.pennantArgs = append([]string{
			"-kubeconfig=" + s.opts.Kubeconfig, "-metrics-server=" + s.PrometheusURL, "-mesh-provider=traefik",
			"-min-analysis-interval=1s", "-log-level=info", "-port=" + metricsPort,
			"-health-probe-bind-address=" + health,
		}, s.opts.PennantArgs...)
	}
	p, err := start(s.opts.Dir, "pennant", s.opts.Pennant, s.pennantArgs)
	s.pennantMu.Lock()
	s.pennant = p
	s.pennantMu.Unlock()
	return err
}

// KillPennant SIGKILLs the controller, as a crash or an evicted pod would (StartPennant restarts it).
func (s *Stack) KillPennant() {
	s.pennantMu.Lock()
	defer s.pennantMu.Unlock()
	s.pennant.Kill()
	s.pennant = nil
}

// waitHTTP waits until url answers 200 while p runs.
func (s *Stack) waitHTTP(ctx context.Context, p *Process, url string) error {
	return poll(ctx, time.Minute, 100*time.Millisecond, url, func() (bool, error) {
		if err := p.Alive(); err != nil {
			return false, fatal{err}
		}
		resp, err := http.Get(url)
		if err != nil {
			return false, err
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return false, fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(body)))
		}
		return true, nil
	})
}
