// Package cli is the logic of the kubectl-pennant plugin's read-only commands (get, status, wait,
// explain, lint). cmd/kubectl-pennant only wires them to cobra; everything here takes a client and
// writers, so that tests drive it against a real API server.
package cli

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/duration"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

// Env is what a command runs with: an API client, the namespace it works in and its output.
type Env struct {
	Client client.WithWatch
	// Namespace is -n (or the kubeconfig context's namespace); AllNamespaces (-A) lists across all.
	Namespace     string
	AllNamespaces bool
	Out, ErrOut   io.Writer
	// Now is the clock (time.Now by default).
	Now func() time.Time
	// Age renders how long ago t was, as kubectl does ("12s", "3m4s"); tests replace it to get
	// stable output.
	Age func(t time.Time) string
}

// Scheme knows client-go's types and flagger.app/v1beta1.
func Scheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		return nil, err
	}
	if err := flaggerv1.AddToScheme(s); err != nil {
		return nil, err
	}
	return s, nil
}

// NewEnv connects to the API server of cfg.
func NewEnv(cfg *rest.Config, namespace string, out, errOut io.Writer) (*Env, error) {
	s, err := Scheme()
	if err != nil {
		return nil, err
	}
	c, err := client.NewWithWatch(cfg, client.Options{Scheme: s})
	if err != nil {
		return nil, err
	}
	e := &Env{Client: c, Namespace: namespace, Out: out, ErrOut: errOut}
	return e.withDefaults(), nil
}

func (e *Env) withDefaults() *Env {
	if e.Now == nil {
		e.Now = time.Now
	}
	if e.Age == nil {
		e.Age = func(t time.Time) string {
			if t.IsZero() {
				return "-"
			}
			return duration.HumanDuration(e.Now().Sub(t))
		}
	}
	return e
}

// canary reads one canary of the namespace.
func (e *Env) canary(ctx context.Context, name string) (*flaggerv1.Canary, error) {
	cd := &flaggerv1.Canary{}
	if err := e.Client.Get(ctx, client.ObjectKey{Namespace: e.Namespace, Name: name}, cd); err != nil {
		return nil, err
	}
	return cd, nil
}

// events lists the canary's events, oldest first.
func (e *Env) events(ctx context.Context, cd *flaggerv1.Canary) ([]corev1.Event, error) {
	var list corev1.EventList
	sel := fields.Set{"involvedObject.kind": flaggerv1.CanaryKind, "involvedObject.name": cd.Name}.AsSelector()
	if err := e.Client.List(ctx, &list, client.InNamespace(cd.Namespace), client.MatchingFieldsSelector{Selector: sel}); err != nil {
		return nil, fmt.Errorf("listing the events of canary %s: %w", cd.Key(), err)
	}
	evs := list.Items
	for i := range evs {
		// client-go's recorder folds the 11th similar event in 10 minutes into one with this prefix.
		evs[i].Message = strings.TrimPrefix(evs[i].Message, "(combined from similar events): ")
	}
	sort.SliceStable(evs, func(i, j int) bool {
		ti, tj := eventTime(evs[i]), eventTime(evs[j])
		if !ti.Equal(tj) {
			return ti.Before(tj)
		}
		return evs[i].Name < evs[j].Name // <object>.<hex nanoseconds>: creation order
	})
	return evs, nil
}

// eventTime is when an event last happened.
func eventTime(ev corev1.Event) time.Time {
	switch {
	case ev.Series != nil && !ev.Series.LastObservedTime.IsZero():
		return ev.Series.LastObservedTime.Time
	case !ev.LastTimestamp.IsZero():
		return ev.LastTimestamp.Time
	case !ev.EventTime.IsZero():
		return ev.EventTime.Time
	}
	return ev.CreationTimestamp.Time
}

// deployment reads a Deployment of the canary's namespace; nil when it is not there.
func (e *Env) deployment(ctx context.Context, ns, name string) *appsv1.Deployment {
	d := &appsv1.Deployment{}
	if err := e.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, d); err != nil {
		return nil
	}
	return d
}

// shortRevision is the first 8 characters of a revision hash, as git shortens commits.
func shortRevision(rev string) string {
	if len(rev) > 8 {
		return rev[:8]
	}
	if rev == "" {
		return "-"
	}
	return rev
}

// oneLine folds whitespace, so that a multi-line message fits in a table cell.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
