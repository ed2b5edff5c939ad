package main

import (
	"flag"
	"fmt"
	"regexp"
	"time"

	"github.com/pennant/pennant/internal/loadtester/server"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

// options are Flagger's load tester flags (same names and defaults) plus Pennant's own.
type options struct {
	port              string
	timeout           time.Duration
	namespaceRegexp   string
	logLevel          string
	zapEncoding       string
	zapReplaceGlobals bool

	allowExec          bool
	execAllow          string
	allowShell         bool
	gateTokenFile      string
	gatesConfigMap     string
	maxOutputBytes     int
	maxConcurrentTasks int
	showVersion        bool
}

func parseFlags(fs *flag.FlagSet, args []string) (options, error) {
	var o options
	fs.StringVar(&o.port, "port", "9090", "Port to listen on.")
	fs.DurationVar(&o.timeout, "timeout", time.Hour, "Load test exec timeout.")
	fs.StringVar(&o.namespaceRegexp, "namespace-regexp", "", "Restrict access to canaries in matching namespaces.")
	fs.StringVar(&o.logLevel, "log-level", "debug", "Log level can be: debug, info, warning, error.")
	fs.StringVar(&o.zapEncoding, "zap-encoding", "json", "Zap logger encoding.")
	fs.BoolVar(&o.zapReplaceGlobals, "zap-replace-globals", false, "Whether to change the logging level of the global zap logger.")
	fs.BoolVar(&o.allowExec, "allow-exec", false, "Pennant: run commands as processes (cmd and bash tasks other than hey and grpc_health_probe, helm, kubectl), only those starting with an -exec-allow prefix.")
	fs.StringVar(&o.execAllow, "exec-allow", "", `Pennant: comma-separated command prefixes that may run with -allow-exec, matched word by word, e.g. "curl,helm test,kubectl get,bats".`)
	fs.BoolVar(&o.allowShell, "allow-shell", false, "Pennant: let bash and cmd tasks whose command holds shell syntax (pipes, ;, &&, redirections, $(...), variables) run through bash -c / sh -c, as Flagger's do; only the first command is then checked against -exec-allow.")
	fs.StringVar(&o.gateTokenFile, "gate-token-file", "", "Pennant: file holding the bearer token that lets requests from outside the pod open and close gates (mounted from a Secret); without it only loopback may.")
	fs.StringVar(&o.gatesConfigMap, "gates-configmap", "flagger-loadtester-gates", `Pennant: ConfigMap in the load tester's namespace that keeps the gates (shared by replicas, kept across restarts); "" keeps them in memory as Flagger does.`)
	fs.IntVar(&o.maxOutputBytes, "max-output-bytes", server.DefaultMaxOutputBytes, "Pennant: the most of a command's output kept (its beginning and end) for logs and answers.")
	fs.IntVar(&o.maxConcurrentTasks, "max-concurrent-tasks", server.DefaultMaxConcurrentTasks, "Pennant: the most tasks running at once; beyond it tasks are answered 429.")
	fs.BoolVar(&o.showVersion, "version", false, "Print version")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if _, err := o.namespaceRe(); err != nil {
		return o, err
	}
	if o.allowExec && len(server.ParsePrefixes(o.execAllow)) == 0 {
		return o, fmt.Errorf("-allow-exec needs -exec-allow: the command prefixes that may run")
	}
	return o, nil
}

func (o options) namespaceRe() (*regexp.Regexp, error) {
	if o.namespaceRegexp == "" {
		return nil, nil
	}
	re, err := regexp.Compile(o.namespaceRegexp)
	if err != nil {
		return nil, fmt.Errorf("-namespace-regexp: %w", err)
	}
	return re, nil
}
