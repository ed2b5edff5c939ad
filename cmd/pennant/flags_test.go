package main

import (
	"flag"
	"reflect"
	"testing"
	"time"
)

func TestFlaggerDeploymentArgsParse(t *testing.T) {
	// The args of Flagger's Helm chart and kustomize manifests must keep working unchanged.
	args := []string{
		"-log-level=info", "-mesh-provider=kubernetes", "-metrics-server=http://prometheus:9090",
		"-include-label-prefix=app.kubernetes.io", "-selector-labels=app,name", "-enable-config-tracking=false",
		"-enable-leader-election=true", "-leader-election-namespace=flagger-system", "--threadiness=4",
		"-namespace=test", "-control-loop-interval=5s", "-kubeconfig-qps=50", "-kubeconfig-burst=75",
	}
	o, err := parseFlags(flag.NewFlagSet("test", flag.ContinueOnError), args)
	if err != nil {
		t.Fatal(err)
	}
	if o.meshProvider != "kubernetes" || o.logLevel != "info" || o.threadiness != 4 || o.namespace != "test" {
		t.Errorf("parsed %+v", o)
	}
	if o.enableConfigTracking || !o.enableLeaderElection || o.leaderElectionNamespace != "flagger-system" {
		t.Errorf("booleans/leader election parsed wrong: %+v", o)
	}
	if o.controlLoopInterval != 5*time.Second || o.kubeconfigQPS != 50 || o.kubeconfigBurst != 75 {
		t.Errorf("numbers parsed wrong: %+v", o)
	}
	if got := list(o.selectorLabels); !reflect.DeepEqual(got, []string{"app", "name"}) {
		t.Errorf("selector labels = %v", got)
	}
}

// The defaults are Flagger's, but for the client's rate and the workers, raised by measurement
// (README "Scaling").
func TestFlagDefaultsMatchFlagger(t *testing.T) {
	o, err := parseFlags(flag.NewFlagSet("test", flag.ContinueOnError), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := options{
		kubeconfigQPS: 500, kubeconfigBurst: 1000, metricsServer: "http://prometheus:9090",
		controlLoopInterval: 10 * time.Second, logLevel: "debug", zapEncoding: "json", port: 8080,
		slackUser: "flagger", threadiness: 100, meshProvider: "istio",
		selectorLabels: "app,name,app.kubernetes.io/name", ingressAnnotationsPrefix: "nginx.ingress.kubernetes.io",
		leaderElectionNamespace: "kube-system", enableConfigTracking: true, minAnalysisInterval: 10 * time.Second,
	}
	// Environment-backed defaults are empty in tests unless the variables are set.
	o.slackURL, o.slackToken, o.slackProxyURL, o.msteamsURL, o.msteamsProxyURL, o.eventWebhook = "", "", "", "", "", ""
	if !reflect.DeepEqual(o, want) {
		t.Errorf("defaults\n got %+v\nwant %+v", o, want)
	}
}

func TestLeaderElectionDefaultsToOwnNamespace(t *testing.T) {
	cases := []struct{ pod, serviceAccount, watched, want string }{
		{"flagger-system", "other", "apps", "flagger-system"},
		{"", "flagger-system\n", "apps", "flagger-system"},
		{"", "", "apps", "apps"},
		{"", "", "", "kube-system"},
	}
	for _, c := range cases {
		if got := defaultLeaderElectionNamespace(c.pod, c.serviceAccount, c.watched); got != c.want {
			t.Errorf("defaultLeaderElectionNamespace(%q, %q, %q) = %q, want %q", c.pod, c.serviceAccount, c.watched, got, c.want)
		}
	}
}

func TestPodNamespaceIsTheLeaderElectionDefault(t *testing.T) {
	t.Setenv("POD_NAMESPACE", "flagger-system")
	o, err := parseFlags(flag.NewFlagSet("test", flag.ContinueOnError), []string{"-namespace=apps"})
	if err != nil {
		t.Fatal(err)
	}
	if o.leaderElectionNamespace != "flagger-system" {
		t.Errorf("leader election namespace = %q, want the pod's namespace", o.leaderElectionNamespace)
	}
	// Flagger's flag, when given, still wins.
	o, err = parseFlags(flag.NewFlagSet("test", flag.ContinueOnError), []string{"-leader-election-namespace=kube-system"})
	if err != nil {
		t.Fatal(err)
	}
	if o.leaderElectionNamespace != "kube-system" {
		t.Errorf("explicit leader election namespace = %q, want kube-system", o.leaderElectionNamespace)
	}
}

func TestNamespaceScopesLeaderElection(t *testing.T) {
	t.Setenv("POD_NAMESPACE", "")
	o, err := parseFlags(flag.NewFlagSet("test", flag.ContinueOnError), []string{"-namespace=apps"})
	if err != nil {
		t.Fatal(err)
	}
	if o.leaderElectionNamespace != "apps" {
		t.Errorf("leader election namespace = %q, want the watched namespace", o.leaderElectionNamespace)
	}
}
