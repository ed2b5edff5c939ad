package main

import (
	"flag"
	"os"
	"strings"
	"time"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

// options are Flagger's flags (same names and defaults) plus Pennant's own.
type options struct {
	kubeconfig, master          string
	kubeconfigQPS               int
	kubeconfigBurst             int
	kubeconfigServiceMesh       string
	metricsServer               string
	controlLoopInterval         time.Duration
	logLevel, zapEncoding       string
	zapReplaceGlobals           bool
	port                        int
	slackURL, slackToken        string
	slackProxyURL, slackChannel string
	slackUser                   string
	msteamsURL, msteamsProxyURL string
	eventWebhook                string
	includeLabelPrefix          string
	threadiness                 int
	namespace                   string
	meshProvider                string
	selectorLabels              string
	ingressAnnotationsPrefix    string
	ingressClass                string
	enableLeaderElection        bool
	leaderElectionNamespace     string
	enableConfigTracking        bool
	showVersion                 bool
	checkFlags                  bool
	clusterName                 string
	noCrossNamespaceRefs        bool
	enableAmbientCredentials    bool
	minAnalysisInterval         time.Duration
	healthProbeBindAddress      string
	watchLabelSelector          string
	maxConcurrentReleases       int
}

// parseFlags reads Flagger-style single-dash flags (Go's flag package accepts -flag and --flag).
func parseFlags(fs *flag.FlagSet, args []string) (options, error) {
	var o options
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "Path to a kubeconfig. Only required if out-of-cluster.")
	fs.StringVar(&o.master, "master", "", "The address of the Kubernetes API server. Overrides any value in kubeconfig.")
	// Pennant's client and worker defaults are higher than Flagger's (100, 250, 2): measured by make
	// bench's BenchmarkScale, 1,000 canaries released at once ran their analysis steps 41s late (p99)
	// with Flagger's, 5.5s with these (README "Scaling").
	fs.IntVar(&o.kubeconfigQPS, "kubeconfig-qps", 500, "Set QPS for kubeconfig (Flagger's default: 100).")
	fs.IntVar(&o.kubeconfigBurst, "kubeconfig-burst", 1000, "Set Burst for kubeconfig (Flagger's default: 250).")
	fs.StringVar(&o.kubeconfigServiceMesh, "kubeconfig-service-mesh", "", "Path to a kubeconfig for the service mesh control plane.")
	fs.StringVar(&o.metricsServer, "metrics-server", "http://prometheus:9090", "Prometheus URL.")
	fs.DurationVar(&o.controlLoopInterval, "control-loop-interval", 10*time.Second, "Kept for compatibility: Pennant reacts to watch events instead of polling.")
	fs.StringVar(&o.logLevel, "log-level", "debug", "Log level can be: debug, info, warning, error.")
	fs.StringVar(&o.zapEncoding, "zap-encoding", "json", "Zap logger encoding: json or console.")
	fs.BoolVar(&o.zapReplaceGlobals, "zap-replace-globals", false, "Whether to change the logging level of the global zap logger.")
	fs.IntVar(&o.port, "port", 8080, "Port to listen on for /metrics and /healthz.")
	fs.StringVar(&o.slackURL, "slack-url", env("SLACK_URL"), "Slack hook URL.")
	fs.StringVar(&o.slackToken, "slack-token", env("SLACK_TOKEN"), "Slack bot token.")
	fs.StringVar(&o.slackProxyURL, "slack-proxy-url", env("SLACK_PROXY_URL"), "Slack proxy URL.")
	fs.StringVar(&o.slackChannel, "slack-channel", "", "Slack channel.")
	fs.StringVar(&o.slackUser, "slack-user", "flagger", "Slack user name.")
	fs.StringVar(&o.msteamsURL, "msteams-url", env("MSTEAMS_URL"), "MS Teams incoming webhook URL.")
	fs.StringVar(&o.msteamsProxyURL, "msteams-proxy-url", env("MSTEAMS_PROXY_URL"), "MS Teams proxy URL.")
	fs.StringVar(&o.eventWebhook, "event-webhook", env("EVENT_WEBHOOK_URL"), "Webhook for publishing flagger events.")
	fs.StringVar(&o.includeLabelPrefix, "include-label-prefix", "", "List of prefixes of labels that are copied when creating primary deployments or daemonsets. Use * to include all.")
	fs.IntVar(&o.threadiness, "threadiness", 100, "Worker concurrency (Flagger's default: 2).")
	fs.StringVar(&o.namespace, "namespace", "", "Namespace that flagger would watch canary object.")
	fs.StringVar(&o.meshProvider, "mesh-provider", "istio", "Service mesh provider.")
	fs.StringVar(&o.selectorLabels, "selector-labels", "app,name,app.kubernetes.io/name", "List of pod labels that Flagger uses to create pod selectors.")
	fs.StringVar(&o.ingressAnnotationsPrefix, "ingress-annotations-prefix", "nginx.ingress.kubernetes.io", "Annotations prefix for NGINX ingresses.")
	fs.StringVar(&o.ingressClass, "ingress-class", "", "Ingress class used for annotating HTTPProxy objects.")
	fs.BoolVar(&o.enableLeaderElection, "enable-leader-election", false, "Enable leader election.")
	fs.StringVar(&o.leaderElectionNamespace, "leader-election-namespace", "", "Namespace used to create the leader election config map (default: the controller's own namespace).")
	fs.BoolVar(&o.enableConfigTracking, "enable-config-tracking", true, "Enable secrets and configmaps tracking.")
	fs.BoolVar(&o.showVersion, "version", false, "Print version")
	fs.BoolVar(&o.checkFlags, "check-flags", false, "Pennant: check the other flags and exit (0: they would start the controller); for install tooling such as the Helm chart's tests.")
	fs.StringVar(&o.clusterName, "cluster-name", "", "Cluster name to be included in alert msgs.")
	fs.BoolVar(&o.noCrossNamespaceRefs, "no-cross-namespace-refs", false, "When set to true, Flagger can only refer to resources in the same namespace.")
	fs.BoolVar(&o.enableAmbientCredentials, "enable-ambient-cloud-credentials", false, "Pennant: let the Stackdriver and CloudWatch providers use the controller's own cloud identity (workload identity, IRSA, environment) for templates without a credentials secret, and only towards the vendor's API hosts.")
	fs.DurationVar(&o.minAnalysisInterval, "min-analysis-interval", 10*time.Second, "Pennant: the shortest analysis interval honoured; lower it only for tests.")
	fs.StringVar(&o.healthProbeBindAddress, "health-probe-bind-address", "", "Pennant: address of /healthz and /readyz when not served on -port.")
	fs.StringVar(&o.watchLabelSelector, "watch-label-selector", "", "Pennant: the canaries this controller owns, by label selector (Flux's sharding: sharding.fluxcd.io/key=shard1 on a shard, !sharding.fluxcd.io/key on the main controller); each selector elects its own leader.")
	fs.IntVar(&o.maxConcurrentReleases, "max-concurrent-releases", 0, "Pennant: the releases this controller runs at once (0: no limit); the others wait in Waiting, queued in the order they came.")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if o.leaderElectionNamespace == "" {
		o.leaderElectionNamespace = defaultLeaderElectionNamespace(os.Getenv("POD_NAMESPACE"), readFile(serviceAccountNamespaceFile), o.namespace)
	}
	return o, nil
}

// serviceAccountNamespaceFile holds the pod's namespace in every in-cluster pod.
const serviceAccountNamespaceFile = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

// defaultLeaderElectionNamespace is where the Lease lives when -leader-election-namespace is not set:
// the controller's own namespace, because the Role that grants Leases is bound there (not
// kube-system, Flagger's default, which would need cluster-wide Lease rights). Out of a cluster it
// falls back to the watched namespace, then kube-system.
func defaultLeaderElectionNamespace(podNamespace, serviceAccountNamespace, watchedNamespace string) string {
	for _, ns := range []string{podNamespace, serviceAccountNamespace, watchedNamespace} {
		if ns = strings.TrimSpace(ns); ns != "" {
			return ns
		}
	}
	return "kube-system"
}

// readFile is the content of a file, empty when it cannot be read.
func readFile(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return string(b)
}

func env(name string) string { return os.Getenv(name) }

// list splits a comma-separated flag value, dropping blanks.
func list(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}
