package main

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"sigs.k8s.io/yaml"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
	"github.com/pennant/pennant/internal/simulate"
)

func init() {
	commandFactories = append(commandFactories, func(_ *genericclioptions.ConfigFlags, streams genericiooptions.IOStreams) *cobra.Command {
		return newSimulateCommand(streams)
	})
}

func newSimulateCommand(streams genericiooptions.IOStreams) *cobra.Command {
	var file, scenarioFile, meshProvider string
	var minInterval time.Duration
	cmd := &cobra.Command{
		Use:   "simulate -f CANARY --scenario SCENARIO",
		Short: "Run a release of a Canary through Pennant's phase machine and analysis against a scenario, without a cluster",
		Long: `Release a new revision of the Canary in a simulated world: Pennant's own phase machine and
metric analysis (the builtin checks and the comparative judge) run on a virtual clock against the
scenario's traffic, error rates, latencies, outages and webhook answers. It prints the timeline
(weights, check results with their values, events, alerts) and the outcome, in well under a second.

A scenario is YAML:

  rps: 100                                   # requests per second to the service
  primary: {errorRate: 0.5, latency: 120ms}  # error rate in percent, p99 latency
  canary:  {errorRate: 2.5, latency: 125ms}
  outages:                                   # shared failures, both versions
    - {from: 2m, to: 8m, errorRate: 10}
  webhooks: {acceptance-test: fail}          # by name; pass by default (rollback hooks: fail)
  duration: 2h                               # virtual time before giving up

Metrics from MetricTemplates or inline queries cannot be simulated. Exit code 1 when the release
was rolled back or undecided.`,
		Example: `  kubectl pennant simulate -f examples/simulate/podinfo.yaml --scenario examples/simulate/errors.yaml
  kubectl pennant simulate -f examples/simulate/podinfo-judged.yaml --scenario examples/simulate/outage.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cd, sc, err := readSimulation(file, scenarioFile)
			if err != nil {
				return err
			}
			res, err := simulate.Run(cmd.Context(), cd, sc, simulate.Options{Provider: meshProvider, MinInterval: minInterval}, streams.Out)
			if err != nil {
				return err
			}
			if res.Outcome != string(flaggerv1.CanaryPhaseSucceeded) {
				return fmt.Errorf("the release %s", map[string]string{"Failed": "was rolled back", "undecided": "was not decided"}[res.Outcome])
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&file, "filename", "f", "", "the Canary manifest (YAML or JSON)")
	cmd.Flags().StringVar(&scenarioFile, "scenario", "", "the scenario file")
	cmd.Flags().StringVar(&meshProvider, "mesh-provider", "kubernetes", "the controller's -mesh-provider, for a canary without spec.provider")
	cmd.Flags().DurationVar(&minInterval, "min-analysis-interval", 10*time.Second, "the controller's -min-analysis-interval")
	_ = cmd.MarkFlagRequired("filename")
	_ = cmd.MarkFlagRequired("scenario")
	return cmd
}

// readSimulation reads the canary and the scenario.
func readSimulation(canaryFile, scenarioFile string) (*flaggerv1.Canary, simulate.Scenario, error) {
	data, err := os.ReadFile(canaryFile)
	if err != nil {
		return nil, simulate.Scenario{}, err
	}
	cd := &flaggerv1.Canary{}
	if err := yaml.UnmarshalStrict(data, cd); err != nil {
		return nil, simulate.Scenario{}, fmt.Errorf("%s: %w", canaryFile, err)
	}
	if cd.Kind != "Canary" {
		return nil, simulate.Scenario{}, fmt.Errorf("%s: kind %q, want one Canary", canaryFile, cd.Kind)
	}
	data, err = os.ReadFile(scenarioFile)
	if err != nil {
		return nil, simulate.Scenario{}, err
	}
	sc, err := simulate.ParseScenario(data)
	if err != nil {
		return nil, simulate.Scenario{}, fmt.Errorf("%s: %w", scenarioFile, err)
	}
	return cd, sc, nil
}
