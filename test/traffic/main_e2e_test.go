//go:build e2e

// The real-traffic end-to-end tests: releases through Traefik with load, judged by Prometheus,
// with what users would see measured and asserted. Run by `make e2e` (hack/e2e.sh), inside
// hack/netns.sh's network namespace.
package traffic

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pennant/pennant/internal/testenv"
	"github.com/pennant/pennant/test/traffic/harness"
)

// stack is shared by the tests: each deploys its app in a namespace of its own.
var stack *harness.Stack

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if os.Getenv("PENNANT_NETNS") == "" {
		fmt.Fprintln(os.Stderr, "test/traffic needs the pods' network: run it through hack/netns.sh (make e2e does)")
		return 1
	}
	dir, err := os.MkdirTemp("", "pennant-traffic-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	opts, err := stackOptions(dir)
	if err == nil {
		stack, err = harness.Up(context.Background(), opts)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "starting the stack (logs in %s): %v\n", dir, err)
		return 1
	}
	code := m.Run()
	stack.Down()
	if code == 0 && os.Getenv("KEEP_LOGS") == "" {
		_ = os.RemoveAll(dir)
	} else {
		fmt.Fprintf(os.Stderr, "logs of Traefik, the pods, Prometheus and pennant are kept in %s\n", dir)
	}
	return code
}

// stackOptions builds pennant and the pods binary and finds Traefik (hack/traefik.sh builds it before
// the network namespace is entered), Prometheus and the Gateway API's CRDs.
func stackOptions(dir string) (harness.Options, error) {
	root, err := testenv.RepoRoot()
	if err != nil {
		return harness.Options{}, err
	}
	o := harness.Options{Dir: dir, Root: root, Kubeconfig: os.Getenv("KUBECONFIG"), Prometheus: "prometheus",
		Logf: func(format string, args ...any) { fmt.Fprintf(os.Stderr, "[stack] "+format+"\n", args...) }}
	if o.Prometheus, err = exec.LookPath("prometheus"); err != nil {
		return o, fmt.Errorf("prometheus (Debian package prometheus): %w", err)
	}
	for bin, pkg := range map[*string]string{&o.Pennant: "./cmd/pennant", &o.Pods: "./test/traffic/cmd/pods"} {
		*bin = filepath.Join(dir, filepath.Base(pkg))
		cmd := exec.Command("go", "build", "-o", *bin, pkg)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			return o, fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
		}
	}
	out, err := exec.Command(filepath.Join(root, "hack", "traefik.sh"), "path").Output()
	if err != nil {
		return o, fmt.Errorf("hack/traefik.sh path: %w", err)
	}
	o.Traefik = strings.TrimSpace(string(out))
	if _, err := os.Stat(o.Traefik); err != nil {
		return o, fmt.Errorf("Traefik is not built (hack/traefik.sh build): %w", err)
	}
	gw, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "sigs.k8s.io/gateway-api").Output()
	if err != nil {
		return o, fmt.Errorf("the sigs.k8s.io/gateway-api module: %w", err)
	}
	o.GatewayAPICRDs = filepath.Join(strings.TrimSpace(string(gw)), "config", "crd", "standard")
	return o, nil
}
