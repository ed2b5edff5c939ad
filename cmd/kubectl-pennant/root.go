package main

import (
	"os"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/pennant/pennant/internal/cli"
)

// newRootCommand is `kubectl pennant` with its subcommands and kubectl's connection flags.
func newRootCommand(streams genericiooptions.IOStreams) *cobra.Command {
	flags := genericclioptions.NewConfigFlags(true)
	root := &cobra.Command{
		Use:   "kubectl-pennant",
		Short: "See, wait for, explain and lint Pennant (Flagger API) canary releases",
		Long: `kubectl pennant works with the canaries (flagger.app/v1beta1) that Pennant releases.

It reads the Canaries, their events and their targets with your kubeconfig's credentials;
get, status, wait and explain need only read access to Canaries, Events and Deployments.
promote, abort, retry, pause and resume write a request annotation on the Canary (patch on
canaries), which the controller carries out; lint needs no cluster at all.`,
		Example: `  kubectl pennant get -A
  kubectl pennant get podinfo --watch
  kubectl pennant status podinfo -n test
  kubectl pennant wait podinfo --for=succeeded --timeout=15m
  kubectl pennant explain podinfo
  kubectl pennant pause podinfo --reason "checking the dashboards"
  kubectl pennant promote podinfo --reason "approved in CHG-1234"
  kubectl pennant lint deploy/canary.yaml`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(streams.In)
	root.SetOut(streams.Out)
	root.SetErr(streams.ErrOut)
	flags.AddFlags(root.PersistentFlags())
	root.AddCommand(
		newGetCommand(flags, streams),
		newStatusCommand(flags, streams),
		newWaitCommand(flags, streams),
		newExplainCommand(flags, streams),
		newLintCommand(streams),
	)
	for _, f := range commandFactories {
		root.AddCommand(f(flags, streams))
	}
	return root
}

// envFor connects with kubectl's flags; allNamespaces is -A.
func envFor(flags *genericclioptions.ConfigFlags, streams genericiooptions.IOStreams, allNamespaces bool) (*cli.Env, error) {
	cfg, err := flags.ToRESTConfig()
	if err != nil {
		return nil, err
	}
	ns, _, err := flags.ToRawKubeConfigLoader().Namespace()
	if err != nil {
		return nil, err
	}
	env, err := cli.NewEnv(cfg, ns, streams.Out, streams.ErrOut)
	if err != nil {
		return nil, err
	}
	env.AllNamespaces = allNamespaces
	return env, nil
}

// canaryNames completes canary names in the selected namespace.
func canaryNames(flags *genericclioptions.ConfigFlags, streams genericiooptions.IOStreams) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		env, err := envFor(flags, streams, false)
		if err != nil {
			return nil, cobra.ShellCompDirectiveError
		}
		names, err := env.Names(cmd.Context())
		if err != nil {
			return nil, cobra.ShellCompDirectiveError
		}
		return names, cobra.ShellCompDirectiveNoFileComp
	}
}

func newGetCommand(flags *genericclioptions.ConfigFlags, streams genericiooptions.IOStreams) *cobra.Command {
	var o cli.GetOptions
	var all bool
	cmd := &cobra.Command{
		Use:   "get [NAME]",
		Short: "List canaries with their phase, weight, step and next step",
		Long: `List the canaries of the namespace (all with -A), or the one named: phase, canary weight,
step n/m (weights or iterations), time until the next analysis step, failed checks against the
threshold, the revision being released and the time since the last change.

--watch follows them: on a terminal the table is redrawn in place, through a pipe a line is
printed per change.`,
		Example: `  kubectl pennant get
  kubectl pennant get -A
  kubectl pennant get podinfo -n test --watch
  kubectl pennant get podinfo -o yaml`,
		Args:              cobra.MaximumNArgs(1),
		ValidArgsFunction: canaryNames(flags, streams),
		RunE: func(cmd *cobra.Command, args []string) error {
			env, err := envFor(flags, streams, all)
			if err != nil {
				return err
			}
			name := ""
			if len(args) == 1 {
				name = args[0]
			}
			o.Redraw = isTerminal(streams.Out)
			return env.Get(cmd.Context(), name, o)
		},
	}
	cmd.Flags().BoolVarP(&all, "all-namespaces", "A", false, "list the canaries of all namespaces")
	cmd.Flags().BoolVarP(&o.Watch, "watch", "w", false, "follow the canaries until interrupted")
	cmd.Flags().StringVarP(&o.Output, "output", "o", "", "output format: json or yaml (default: a table)")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"json", "yaml"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

func newStatusCommand(flags *genericclioptions.ConfigFlags, streams genericiooptions.IOStreams) *cobra.Command {
	return &cobra.Command{
		Use:   "status NAME",
		Short: "Show a canary's release as a timeline: steps, metrics, webhooks, gates, events",
		Long: `Show the release of a canary: each step with its weight (or iteration) and when it was
reached, every metric with its threshold and its last value, each webhook's last
result (gates: open or closed), and the canary's events.`,
		Example:           `  kubectl pennant status podinfo -n test`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: canaryNames(flags, streams),
		RunE: func(cmd *cobra.Command, args []string) error {
			env, err := envFor(flags, streams, false)
			if err != nil {
				return err
			}
			return env.Status(cmd.Context(), args[0])
		},
	}
}

func newWaitCommand(flags *genericclioptions.ConfigFlags, streams genericiooptions.IOStreams) *cobra.Command {
	var target string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "wait NAME --for=promoted|succeeded|failed",
		Short: "Wait for a release to be promoted, succeed or fail (a CI gate)",
		Long: `Watch a canary until its release reaches the state given by --for:

  promoted   the primary runs the canary's revision (Initialized or Succeeded)
  succeeded  a release finished with its promotion (Succeeded)
  failed     the release was rolled back (Failed)

Exit codes: 0 when the state is reached; 1 when the release ended the other way (failed while
waiting for promoted/succeeded, succeeded while waiting for failed); 2 when --timeout passed first.
A status that does not describe the canary's current spec yet (status.observedGeneration) is not
taken for an answer.`,
		Example: `  kubectl apply -f podinfo.yaml && kubectl pennant wait podinfo --for=succeeded --timeout=20m
  flux reconcile kustomization apps && kubectl pennant wait podinfo -n prod --for=promoted`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: canaryNames(flags, streams),
		RunE: func(cmd *cobra.Command, args []string) error {
			env, err := envFor(flags, streams, false)
			if err != nil {
				return err
			}
			return env.Wait(cmd.Context(), args[0], target, timeout)
		},
	}
	cmd.Flags().StringVar(&target, "for", "succeeded", "the state to wait for: promoted, succeeded or failed")
	cmd.Flags().DurationVar(&timeout, "timeout", 0, "give up after this long with exit code 2 (0: wait forever)")
	_ = cmd.RegisterFlagCompletionFunc("for", cobra.FixedCompletions(cli.WaitTargets, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

func newExplainCommand(flags *genericclioptions.ConfigFlags, streams genericiooptions.IOStreams) *cobra.Command {
	return &cobra.Command{
		Use:   "explain NAME",
		Short: "Say in words why a canary is where it is and what moves it on",
		Long: `Explain a canary's state: which gate is closed and what opens it, which metric failed with
its value, threshold and query, which Deployment is not ready and why, how long until the progress
deadline rolls the release back, and what a stalled or invalid spec lacks.`,
		Example:           `  kubectl pennant explain podinfo -n test`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: canaryNames(flags, streams),
		RunE: func(cmd *cobra.Command, args []string) error {
			env, err := envFor(flags, streams, false)
			if err != nil {
				return err
			}
			return env.Explain(cmd.Context(), args[0])
		},
	}
}

func newLintCommand(streams genericiooptions.IOStreams) *cobra.Command {
	var meshProvider string
	cmd := &cobra.Command{
		Use:   "lint FILE...",
		Short: "Check Canary manifests offline against the CRD schema and Pennant's validation",
		Long: `Check the Canary documents of YAML or JSON files ("-" reads standard input) without a
cluster: against the Canary CRD's schema built into this binary (types, required fields, unknown
fields, enums, patterns and the CEL rules, as the API server checks them) and against the
controller's own validation (what would make the canary Stalled with InvalidSpec). Other kinds
are skipped. Every error names its file, document, canary and field path; the exit code is 1 when
there is one.`,
		Example: `  kubectl pennant lint apps/podinfo/canary.yaml
  kustomize build apps/ | kubectl pennant lint -
  kubectl pennant lint --mesh-provider=istio apps/*/canary.yaml`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := cli.NewLinter(meshProvider)
			if err != nil {
				return err
			}
			return l.LintFiles(cmd.Context(), args, streams.In, streams.Out)
		},
	}
	cmd.Flags().StringVar(&meshProvider, "mesh-provider", "", "the controller's -mesh-provider, for canaries without spec.provider")
	return cmd
}

// isTerminal is true when w is a terminal (a watch then redraws in place).
func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
