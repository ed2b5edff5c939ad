// Package server is the load tester's HTTP API, compatible with Flagger's (flagger-loadtester):
// task submission on /, manual gates on /gate/* and /rollback/*, /healthz and /metrics. Unlike
// Flagger's, it runs no process unless told to (-allow-exec), and then only allowlisted commands,
// without a shell unless -allow-shell; hey load tests and grpc_health_probe checks run built in.
package server

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"regexp"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/pennant/pennant/internal/loadtester/gates"
	"github.com/pennant/pennant/internal/webhooks"
)

// maxPayloadBytes bounds a request body: a webhook payload is a few hundred bytes.
const maxPayloadBytes = 1 << 20

// Config is what the load tester is started with.
type Config struct {
	// Log receives Flagger-shaped log lines (telemetry.NewLogger).
	Log *zap.Logger
	// Registry serves /metrics and holds the task metrics; nil: a new registry.
	Registry *prometheus.Registry
	// Gates keeps the gates (gates.ConfigMapStore: in the cluster, shared by replicas, kept across
	// restarts); GateAuthorizer decides who may change them. Both are required.
	Gates          gates.Store
	GateAuthorizer RequestAuthorizer
	// NamespaceRegexp, when set, refuses payloads whose namespace it does not match (-namespace-regexp).
	NamespaceRegexp *regexp.Regexp
	// Exec decides which commands may run as processes.
	Exec ExecPolicy
	// Engines run command lines natively (hey, grpc_health_probe), before Exec is asked.
	Engines []Engine
	// Timeout bounds every task (-timeout); a task's metadata timeout can only shorten it.
	Timeout time.Duration
	// MaxOutputBytes bounds what is kept of a process's output (-max-output-bytes).
	MaxOutputBytes int
	// MaxConcurrentTasks bounds the tasks running at once; beyond it tasks get 429 (-max-concurrent-tasks).
	MaxConcurrentTasks int
}

// Server is the load tester's HTTP handler and task runner.
type Server struct {
	cfg     Config
	log     *zap.Logger
	mux     *http.ServeMux
	metrics *taskMetrics

	// ctx is the parent of every task: Close cancels it and waits for the tasks on tasks.
	ctx    context.Context
	cancel context.CancelFunc
	tasks  sync.WaitGroup
	slots  chan struct{}

	mu      sync.Mutex
	closed  bool
	running map[string]bool // async tasks by canary and command, for deduplication
}

// New returns a load tester server; Close stops its tasks.
func New(cfg Config) (*Server, error) {
	if cfg.Gates == nil || cfg.GateAuthorizer == nil {
		return nil, errors.New("a gate store and a gate authorizer are required")
	}
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = time.Hour
	}
	if cfg.MaxOutputBytes <= 0 {
		cfg.MaxOutputBytes = DefaultMaxOutputBytes
	}
	if cfg.MaxConcurrentTasks <= 0 {
		cfg.MaxConcurrentTasks = DefaultMaxConcurrentTasks
	}
	m, err := newTaskMetrics(cfg.Registry)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		cfg: cfg, log: cfg.Log, metrics: m,
		ctx: ctx, cancel: cancel,
		slots:   make(chan struct{}, cfg.MaxConcurrentTasks),
		running: map[string]bool{},
	}
	s.routes()
	return s, nil
}

// DefaultMaxOutputBytes and DefaultMaxConcurrentTasks are the flags' defaults.
const (
	DefaultMaxOutputBytes     = 1 << 20
	DefaultMaxConcurrentTasks = 32
)

func (s *Server) routes() {
	s.mux = http.NewServeMux()
	s.mux.Handle("/metrics", promhttp.HandlerFor(s.cfg.Registry, promhttp.HandlerOpts{}))
	s.mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("OK")) })
	s.mux.HandleFunc("/gate/approve", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("OK")) })
	s.mux.HandleFunc("/gate/halt", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusForbidden)
		_, _ = w.Write([]byte("Forbidden"))
	})
	s.mux.HandleFunc("/gate/check", s.gateCheck(gates.Gate))
	s.mux.HandleFunc("/gate/open", s.gateChange(gates.Gate, true))
	s.mux.HandleFunc("/gate/close", s.gateChange(gates.Gate, false))
	s.mux.HandleFunc("/rollback/check", s.gateCheck(gates.Rollback))
	s.mux.HandleFunc("/rollback/open", s.gateChange(gates.Rollback, true))
	s.mux.HandleFunc("/rollback/close", s.gateChange(gates.Rollback, false))
	s.mux.HandleFunc("/{$}", s.newTask)
	s.mux.HandleFunc("/", http.NotFound)
}

// ServeHTTP serves the load tester's API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Close refuses new tasks, kills the running ones (with their process groups) and waits for them.
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.tasks.Wait()
}

// payload reads the Flagger webhook payload of a request and applies -namespace-regexp; on
// failure it has answered (400 with the reason, or 403 as Flagger's authorizer).
func (s *Server) payload(w http.ResponseWriter, r *http.Request) (webhooks.Payload, bool) {
	var p webhooks.Payload
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxPayloadBytes))
	if err != nil {
		http.Error(w, "reading the request body failed: "+err.Error(), http.StatusBadRequest)
		return p, false
	}
	if err := json.Unmarshal(body, &p); err != nil {
		s.log.Error("decoding the request body failed", errField(err))
		http.Error(w, "decoding the request body failed: the body must be a Flagger webhook payload "+
			`{"name": ..., "namespace": ..., "metadata": {...}}: `+err.Error(), http.StatusBadRequest)
		return p, false
	}
	if p.Name == "" || p.Namespace == "" {
		http.Error(w, "the payload needs the canary's name and namespace", http.StatusBadRequest)
		return p, false
	}
	if err := gates.AllowNamespace(s.cfg.NamespaceRegexp, p.Namespace); err != nil {
		s.log.Sugar().Warnf("refused a request for %s: %v", canaryKey(p), err)
		http.Error(w, err.Error(), gates.HTTPStatus(err))
		return p, false
	}
	return p, true
}

func canaryKey(p webhooks.Payload) string      { return p.Name + "." + p.Namespace }
func canaryField(p webhooks.Payload) zap.Field { return zap.String("canary", canaryKey(p)) }
func errField(err error) zap.Field             { return zap.Error(err) }
func taskLog(l *zap.Logger, canary string) *zap.SugaredLogger {
	return l.With(zap.String("canary", canary)).Sugar()
}
