package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
)

func testStreams() (genericiooptions.IOStreams, *bytes.Buffer) {
	out := &bytes.Buffer{}
	return genericiooptions.IOStreams{In: strings.NewReader(""), Out: out, ErrOut: out}, out
}

// Every command has a description and examples for --help, and kubectl's flags are there.
func TestEveryCommandHasHelpWithExamples(t *testing.T) {
	streams, _ := testStreams()
	root := newRootCommand(streams)
	for _, want := range []string{"namespace", "context", "kubeconfig"} {
		if root.PersistentFlags().Lookup(want) == nil {
			t.Errorf("no --%s flag", want)
		}
	}
	if f := root.PersistentFlags().ShorthandLookup("n"); f == nil || f.Name != "namespace" {
		t.Errorf("-n is not --namespace")
	}
	for _, c := range root.Commands() {
		if c.Name() == "help" || c.Name() == "completion" {
			continue
		}
		if c.Short == "" || c.Long == "" || c.Example == "" {
			t.Errorf("%s: short %q, long %d chars, example %q", c.Name(), c.Short, len(c.Long), c.Example)
		}
	}
}

// The other files' commands are added through commandFactories.
func TestRegisteredCommandsAreAdded(t *testing.T) {
	saved := commandFactories
	defer func() { commandFactories = saved }()
	var gotFlags *genericclioptions.ConfigFlags
	commandFactories = append(commandFactories, func(flags *genericclioptions.ConfigFlags, _ genericiooptions.IOStreams) *cobra.Command {
		gotFlags = flags
		return &cobra.Command{Use: "frobnicate"}
	})
	streams, _ := testStreams()
	root := newRootCommand(streams)
	if c, _, err := root.Find([]string{"frobnicate"}); err != nil || c.Name() != "frobnicate" || gotFlags == nil {
		t.Errorf("registered command not found: %v", err)
	}
}

// Shell completion scripts are generated for bash, zsh and fish.
func TestCompletion(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish"} {
		streams, out := testStreams()
		root := newRootCommand(streams)
		root.SetArgs([]string{"completion", shell})
		if err := root.ExecuteContext(context.Background()); err != nil || !strings.Contains(out.String(), "kubectl-pennant") {
			t.Errorf("completion %s: %v, %d bytes", shell, err, out.Len())
		}
	}
}

// lint exits 1 on errors and 0 on valid manifests; a usage error exits 1.
func TestLintExitCodes(t *testing.T) {
	for file, want := range map[string]int{
		"../../internal/cli/testdata/lint/broken.yaml":            1,
		"../../api/v1beta1/testdata/examples/istio-canary.yaml":   0,
		"../../api/v1beta1/testdata/examples/linkerd-canary.yaml": 0,
	} {
		streams, out := testStreams()
		root := newRootCommand(streams)
		root.SetArgs([]string{"lint", file})
		if got := exitCode(root.ExecuteContext(context.Background())); got != want {
			t.Errorf("lint %s: exit %d, want %d\n%s", file, got, want, out.String())
		}
	}
	streams, _ := testStreams()
	root := newRootCommand(streams)
	root.SetArgs([]string{"wait"})
	if got := exitCode(root.ExecuteContext(context.Background())); got != 1 {
		t.Errorf("wait without a name: exit %d, want 1", got)
	}
}

// simulate succeeds on a good release and fails on a rolled back one, printing the timeline.
func TestSimulateExitCodes(t *testing.T) {
	for scenario, wantErr := range map[string]bool{"healthy": false, "errors": true} {
		streams, out := testStreams()
		root := newRootCommand(streams)
		root.SetArgs([]string{"simulate", "-f", "../../examples/simulate/podinfo.yaml", "--scenario", "../../examples/simulate/" + scenario + ".yaml"})
		err := root.ExecuteContext(context.Background())
		if (err != nil) != wantErr || !strings.Contains(out.String(), "outcome: ") {
			t.Errorf("%s: error %v, output:\n%s", scenario, err, out.String())
		}
	}
}
