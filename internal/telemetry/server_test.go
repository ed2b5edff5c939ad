package telemetry

import (
	"context"
	// The production binary links both (controller-runtime's manager imports net/http/pprof,
	// client_golang imports expvar), so http.DefaultServeMux carries /debug/pprof/ and /debug/vars.
	// Importing them here makes the 404s below mean something.
	_ "expvar"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"net/http"
	"net/http/httptest"
	_ "net/http/pprof"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
	"github.com/pennant/pennant/internal/canary"
)

// debugPaths must never be served next to /metrics: they leak command lines, heap contents and
// goroutine stacks to whoever can scrape.
var debugPaths = []string{"/debug/pprof/", "/debug/pprof/cmdline", "/debug/pprof/goroutine", "/debug/vars"}

// TestMetricsServerServesFlaggerMetricsButNoDebugHandlers starts controller-runtime's metrics
// server the way cmd/pennant configures it (plain HTTP, the manager's metrics.Registry, one extra
// /healthz handler) and checks what it answers.
func TestMetricsServerServesFlaggerMetricsButNoDebugHandlers(t *testing.T) {
	log.SetLogger(logr.Discard())

	// Control: the handlers exist in the process, only a mux that is not the server's has them.
	for _, p := range []string{"/debug/pprof/", "/debug/vars"} {
		rec := httptest.NewRecorder()
		http.DefaultServeMux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, p, nil))
		if rec.Code != http.StatusOK {
			t.Fatalf("control: http.DefaultServeMux answers %s with %d, want 200", p, rec.Code)
		}
	}

	r, err := NewRecorder(metrics.Registry)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, c := range r.collectors() {
			metrics.Registry.Unregister(c)
		}
	})
	cd := newCanary("test", "podinfo-canary", "podinfo", progressive())
	r.SetInfo("0.1.0", "kubernetes")
	r.SetCanaryTotal("test", 1)
	r.Observe(cd, decision(flaggerv1.CanaryPhaseSucceeded, canary.OutcomeCompleted), "kubernetes")
	r.SetWeight(cd, 100, 0)

	healthz := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("OK")) })
	srv, err := metricsserver.NewServer(metricsserver.Options{
		BindAddress:   "127.0.0.1:0",
		ExtraHandlers: map[string]http.Handler{"/healthz": healthz},
	}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("metrics server: %v", err)
		}
	})
	base := "http://" + bindAddr(t, srv, done)

	code, body := get(t, base+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("GET /metrics: %d", code)
	}
	for _, want := range []string{
		`flagger_info{mesh_provider="kubernetes",version="0.1.0"} 1`,
		`flagger_canary_total{namespace="test"} 1`,
		`flagger_canary_status{name="podinfo",namespace="test"} 1`,
		`flagger_canary_weight{namespace="test",workload="podinfo-primary"} 100`,
		`flagger_canary_successes_total{analysis_status="completed",deployment_strategy="blue-green",name="podinfo",namespace="test"} 1`,
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("GET /metrics lacks %q", want)
		}
	}
	if err := testutil.ScrapeAndCompare(base+"/metrics", strings.NewReader(headStatus+
		`flagger_canary_status{name="podinfo",namespace="test"} 1
`), "flagger_canary_status"); err != nil {
		t.Error(err)
	}
	if code, body := get(t, base+"/healthz"); code != http.StatusOK || body != "OK" {
		t.Errorf("GET /healthz: %d %q", code, body)
	}
	for _, p := range debugPaths {
		if code, _ := get(t, base+p); code != http.StatusNotFound {
			t.Errorf("GET %s on the metrics server: %d, want 404", p, code)
		}
	}
}

func bindAddr(t *testing.T, srv metricsserver.Server, done <-chan error) string {
	t.Helper()
	s, ok := srv.(interface{ GetBindAddr() string })
	if !ok {
		t.Fatalf("%T does not report its address", srv)
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if a := s.GetBindAddr(); a != "" {
			return a
		}
		select {
		case err := <-done:
			t.Fatalf("metrics server stopped: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	t.Fatal("metrics server did not listen")
	return ""
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// TestPennantDoesNotExposeDebugHandlers reads cmd/pennant's sources, which a test cannot import
// (package main), and fails on anything that would put pprof or expvar on a served mux: a pprof
// server on the manager, a /debug extra handler on the metrics server, or http.DefaultServeMux
// (which carries both) handed to any server.
func TestPennantDoesNotExposeDebugHandlers(t *testing.T) {
	dir := filepath.Join("..", "..", "cmd", "pennant")
	findings, extraHandlers, err := debugExposures(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range findings {
		t.Error(f)
	}
	if extraHandlers == 0 {
		t.Fatalf("no ExtraHandlers in %s: the test no longer sees cmd/pennant's metrics server options", dir)
	}
}

func TestDebugExposuresFindsTheUsualMistakes(t *testing.T) {
	dir := t.TempDir()
	src := `package main

import (
	"net/http"
	_ "net/http/pprof"

	ctrl "sigs.k8s.io/controller-runtime"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
)

func setup(mgr ctrl.Manager, h http.Handler, path string) {
	_ = ctrl.Options{
		PprofBindAddress: ":6060",
		Metrics: metricsserver.Options{ExtraHandlers: map[string]http.Handler{"/healthz": h, "/debug/pprof/": h}},
	}
	_ = mgr.AddMetricsServerExtraHandler("/debug/vars", http.DefaultServeMux)
	_ = mgr.AddMetricsServerExtraHandler(path, h)
}
`
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	findings, extraHandlers, err := debugExposures(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"imports net/http/pprof", "PprofBindAddress", "serves /debug/pprof/", "adds handler /debug/vars", "http.DefaultServeMux", "adds handler  "}
	if len(findings) != len(want) || extraHandlers != 1 {
		t.Fatalf("findings %q (ExtraHandlers %d), want %d findings", findings, extraHandlers, len(want))
	}
	for _, w := range want {
		if !slices.ContainsFunc(findings, func(f string) bool { return strings.Contains(f, w) }) {
			t.Errorf("no finding mentions %q in %q", w, findings)
		}
	}
}

// debugExposures lists what in the Go files of dir would serve pprof or expvar, and counts the
// ExtraHandlers options it checked.
func debugExposures(dir string) (findings []string, extraHandlers int, err error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return nil, 0, err
	}
	fset := token.NewFileSet()
	report := func(pos token.Pos, format string, args ...any) {
		findings = append(findings, fset.Position(pos).String()+": "+fmt.Sprintf(format, args...))
	}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, parser.SkipObjectResolution)
		if err != nil {
			return nil, 0, err
		}
		for _, imp := range file.Imports {
			if p, _ := strconv.Unquote(imp.Path.Value); p == "net/http/pprof" || p == "expvar" {
				report(imp.Pos(), "imports %s", p)
			}
		}
		ast.Inspect(file, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.SelectorExpr:
				if id, ok := n.X.(*ast.Ident); ok && id.Name == "http" && n.Sel.Name == "DefaultServeMux" {
					report(n.Pos(), "uses http.DefaultServeMux, which carries pprof and expvar")
				}
			case *ast.KeyValueExpr:
				key, ok := n.Key.(*ast.Ident)
				if !ok {
					return true
				}
				switch key.Name {
				case "PprofBindAddress":
					report(n.Pos(), "sets the manager's PprofBindAddress")
				case "ExtraHandlers":
					extraHandlers++
					lit, ok := n.Value.(*ast.CompositeLit)
					if !ok {
						report(n.Pos(), "ExtraHandlers is not a map literal; extend this test")
						return true
					}
					for _, e := range lit.Elts {
						kv, ok := e.(*ast.KeyValueExpr)
						if !ok {
							continue
						}
						if p, ok := stringLit(kv.Key); !ok || strings.HasPrefix(p, "/debug") {
							report(kv.Pos(), "serves %s on the metrics server", p)
						}
					}
				}
			case *ast.CallExpr:
				sel, ok := n.Fun.(*ast.SelectorExpr)
				if !ok || (sel.Sel.Name != "AddMetricsServerExtraHandler" && sel.Sel.Name != "AddExtraHandler") || len(n.Args) == 0 {
					return true
				}
				if p, ok := stringLit(n.Args[0]); !ok || strings.HasPrefix(p, "/debug") {
					report(n.Pos(), "adds handler %s to the metrics server", p)
				}
			}
			return true
		})
	}
	return findings, extraHandlers, nil
}

func stringLit(e ast.Expr) (string, bool) {
	b, ok := e.(*ast.BasicLit)
	if !ok || b.Kind != token.STRING {
		return "", false
	}
	s, err := strconv.Unquote(b.Value)
	return s, err == nil
}
