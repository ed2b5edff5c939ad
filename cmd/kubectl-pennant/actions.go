package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/dynamic"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
	"github.com/pennant/pennant/internal/request"
)

func init() {
	commandFactories = append(commandFactories,
		newPromoteCommand, newAbortCommand, newRetryCommand, newPauseCommand, newResumeCommand)
}

// canaries is the Canary resource.
var canaries = schema.GroupVersionResource{Group: "flagger.app", Version: "v1beta1", Resource: "canaries"}

// actionText describes a request subcommand.
type actionText struct {
	action  request.Action
	short   string
	long    string
	example string
}

func newPromoteCommand(flags *genericclioptions.ConfigFlags, streams genericiooptions.IOStreams) *cobra.Command {
	return newActionCommand(flags, streams, actionText{
		action: request.Promote,
		short:  "Finish a release now: skip the remaining analysis and promote",
		long: `Ask the controller to promote the revision under analysis now. The remaining steps and the
confirm-promotion gate are skipped; the promotion itself is the usual one (Promoting, Finalising).
The controller refuses while the canary is not ready.`,
		example: `  kubectl pennant promote podinfo -n test --reason "verified by hand"`,
	})
}

func newAbortCommand(flags *genericclioptions.ConfigFlags, streams genericiooptions.IOStreams) *cobra.Command {
	return newActionCommand(flags, streams, actionText{
		action: request.Abort,
		short:  "Roll a release back now",
		long: `Ask the controller to roll the release back now: all traffic to the primary, the canary
scaled down, phase Failed; the event and the Stalled condition name who asked and why.`,
		example: `  kubectl pennant abort podinfo -n test --reason "5xx on checkout"`,
	})
}

func newRetryCommand(flags *genericclioptions.ConfigFlags, streams genericiooptions.IOStreams) *cobra.Command {
	return newActionCommand(flags, streams, actionText{
		action: request.Retry,
		short:  "Release the last failed revision again",
		long: `Ask the controller to start a new analysis of the revision whose release failed, without a
change to the target.`,
		example: `  kubectl pennant retry podinfo -n test --reason "the database is back"`,
	})
}

func newPauseCommand(flags *genericclioptions.ConfigFlags, streams genericiooptions.IOStreams) *cobra.Command {
	return newActionCommand(flags, streams, actionText{
		action: request.Pause,
		short:  "Hold a release at its current weight",
		long: `Ask the controller to hold the analysis at its current weight: no step advances, no failed
check counts and the progress deadline does not run until "kubectl pennant resume". The phase stays
what it was; the Paused condition says who paused it and why. A new revision ends the pause.`,
		example: `  kubectl pennant pause podinfo -n test --reason "watching the dashboards"`,
	})
}

func newResumeCommand(flags *genericclioptions.ConfigFlags, streams genericiooptions.IOStreams) *cobra.Command {
	return newActionCommand(flags, streams, actionText{
		action: request.Resume,
		short:  "Resume a paused release",
		long: `Ask the controller to resume a paused analysis; the next step is one interval later and the
progress deadline counts from now.`,
		example: `  kubectl pennant resume podinfo -n test`,
	})
}

// actionOptions are the flags of a request subcommand.
type actionOptions struct {
	reason  string
	wait    bool
	timeout time.Duration
}

func newActionCommand(flags *genericclioptions.ConfigFlags, streams genericiooptions.IOStreams, text actionText) *cobra.Command {
	opts := actionOptions{}
	cmd := &cobra.Command{
		Use:   string(text.action) + " NAME",
		Short: text.short,
		Long: text.long + `

The request is the annotation ` + request.Annotation + ` on the Canary, written by server-side apply
with the field manager ` + request.FieldManager + ` (the spec, which Flux or Helm own, is not touched), for
the revision in status.lastAppliedSpec: once that revision is replaced the request is ignored. The
command waits until the controller has handled it and prints what it did (exit status 1 when the
request was refused or ignored).`,
		Example: text.example,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runAction(cmd.Context(), flags, streams, text.action, args[0], opts)
		},
	}
	cmd.Flags().StringVar(&opts.reason, "reason", "", "why, for the event, the log and the canary's status")
	cmd.Flags().BoolVar(&opts.wait, "wait", true, "wait until the controller has handled the request")
	cmd.Flags().DurationVar(&opts.timeout, "timeout", 30*time.Second, "how long to wait for the controller")
	return cmd
}

// runAction writes the request for the canary's current revision and waits for its result.
func runAction(ctx context.Context, flags *genericclioptions.ConfigFlags, streams genericiooptions.IOStreams, action request.Action, name string, opts actionOptions) error {
	if ctx == nil {
		ctx = context.Background()
	}
	cfg, err := flags.ToRESTConfig()
	if err != nil {
		return err
	}
	namespace, _, err := flags.ToRawKubeConfigLoader().Namespace()
	if err != nil {
		return err
	}
	dc, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}
	client := dc.Resource(canaries).Namespace(namespace)
	cd, err := getCanary(ctx, client, name)
	if err != nil {
		return err
	}
	revision := cd.Status.LastAppliedSpec
	if revision == "" {
		return fmt.Errorf("canary %s.%s has no revision yet (status.lastAppliedSpec): the controller has not initialized it", name, namespace)
	}
	value, err := request.Encode(request.Request{
		Action:      action,
		Revision:    revision,
		Reason:      opts.reason,
		User:        kubeconfigUser(flags),
		RequestedAt: time.Now().UTC().Format(time.RFC3339Nano),
	})
	if err != nil {
		return err
	}
	if err := applyRequest(ctx, client, name, value); err != nil {
		return err
	}
	fmt.Fprintf(streams.Out, "canary.flagger.app/%s: %s requested for revision %s\n", name, action, revision)
	if !opts.wait {
		return nil
	}
	handled, err := waitHandled(ctx, client, name, request.ID(value), opts.timeout)
	if err != nil {
		return err
	}
	fmt.Fprintf(streams.Out, "%s: %s\n", handled.Result, handled.Message)
	if handled.Result != flaggerv1.RequestDone {
		return fmt.Errorf("request %s", handled.Result)
	}
	return nil
}

func getCanary(ctx context.Context, client dynamic.ResourceInterface, name string) (*flaggerv1.Canary, error) {
	u, err := client.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	cd := &flaggerv1.Canary{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, cd); err != nil {
		return nil, err
	}
	return cd, nil
}

// applyRequest sets the request annotation by server-side apply as kubectl-pennant, taking it over
// from whoever wrote the last request; nothing else of the canary is in the applied object.
func applyRequest(ctx context.Context, client dynamic.ResourceInterface, name, value string) error {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion(flaggerv1.GroupVersion.String())
	u.SetKind(flaggerv1.CanaryKind)
	u.SetName(name)
	u.SetAnnotations(map[string]string{request.Annotation: value})
	_, err := client.Apply(ctx, name, u, metav1.ApplyOptions{FieldManager: request.FieldManager, Force: true})
	return err
}

// waitHandled polls the canary until its status records the request (bounded by timeout).
func waitHandled(ctx context.Context, client dynamic.ResourceInterface, name, id string, timeout time.Duration) (*flaggerv1.CanaryRequestStatus, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		cd, err := getCanary(ctx, client, name)
		if err == nil && cd.Status.LastRequest != nil && cd.Status.LastRequest.ID == id {
			return cd.Status.LastRequest, nil
		}
		if err != nil && !errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("the controller has not handled the request within %s (is Pennant running?)", timeout)
		case <-tick.C:
		}
	}
}

// kubeconfigUser is the user of the kubeconfig context in use ("" when unknown): the request names
// it besides the field manager, which is the same for everyone who uses the plugin.
func kubeconfigUser(flags *genericclioptions.ConfigFlags) string {
	raw, err := flags.ToRawKubeConfigLoader().RawConfig()
	if err != nil {
		return ""
	}
	name := raw.CurrentContext
	if flags.Context != nil && *flags.Context != "" {
		name = *flags.Context
	}
	if c, ok := raw.Contexts[name]; ok {
		if flags.AuthInfoName != nil && *flags.AuthInfoName != "" {
			return *flags.AuthInfoName
		}
		return c.AuthInfo
	}
	return ""
}
