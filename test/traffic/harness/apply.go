package harness

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// fieldOwner is the manager of what the harness applies, as `kubectl apply --server-side` would be.
const fieldOwner = client.FieldOwner("pennant-demo")

// CreateNamespace creates a namespace (kept if it exists).
func (s *Stack) CreateNamespace(ctx context.Context, name string) error {
	err := s.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	return err
}

// ApplyFile applies every object of a YAML file (server-side), in namespace when it names none, and
// returns their kinds and names ("Deployment/podinfo"); replace rewrites the file's text first (e.g. a
// host name), edit, when set, may change each object.
func (s *Stack) ApplyFile(ctx context.Context, path, namespace string, replace map[string]string, edit func(*unstructured.Unstructured)) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	for old, repl := range replace {
		data = bytes.ReplaceAll(data, []byte(old), []byte(repl))
	}
	reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var applied []string
	for {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return applied, nil
		}
		if err != nil {
			return applied, fmt.Errorf("%s: %w", path, err)
		}
		u := &unstructured.Unstructured{}
		if err := utilyaml.Unmarshal(doc, &u.Object); err != nil {
			return applied, fmt.Errorf("%s: %w", path, err)
		}
		if len(u.Object) == 0 {
			continue
		}
		if u.GetNamespace() == "" {
			u.SetNamespace(namespace)
		}
		if edit != nil {
			edit(u)
		}
		if err := s.Client.Patch(ctx, u, client.Apply, fieldOwner, client.ForceOwnership); err != nil { //nolint:staticcheck // client.Apply with unstructured is the simple form here
			return applied, fmt.Errorf("applying %s %s: %w", u.GetKind(), u.GetName(), err)
		}
		applied = append(applied, u.GetKind()+"/"+u.GetName())
	}
}

// Events is the canary's events as `kubectl describe` lists them: type, reason, age, from, message.
func (s *Stack) Events(ctx context.Context, namespace, name string, since time.Time) (string, error) {
	list := &corev1.EventList{}
	if err := s.Client.List(ctx, list, client.InNamespace(namespace)); err != nil {
		return "", err
	}
	var evs []corev1.Event
	for _, e := range list.Items {
		if e.InvolvedObject.Kind == "Canary" && e.InvolvedObject.Name == name && !eventTime(e).Before(since.Truncate(time.Second)) {
			evs = append(evs, e)
		}
	}
	sort.SliceStable(evs, func(i, j int) bool { return eventTime(evs[i]).Before(eventTime(evs[j])) })
	var b strings.Builder
	fmt.Fprintf(&b, "  %-8s %-8s %-6s %-8s %s\n", "Type", "Reason", "Age", "From", "Message")
	fmt.Fprintf(&b, "  %-8s %-8s %-6s %-8s %s\n", "----", "------", "---", "----", "-------")
	for _, e := range evs {
		age := time.Since(eventTime(e)).Round(time.Second)
		fmt.Fprintf(&b, "  %-8s %-8s %-6s %-8s %s\n", e.Type, e.Reason, age, e.Source.Component, e.Message)
	}
	return b.String(), nil
}

func eventTime(e corev1.Event) time.Time {
	switch {
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	default:
		return e.CreationTimestamp.Time
	}
}
