package harness

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Change is the moment an object's observed value (a phase, a canary weight) became Value.
type Change struct {
	At    time.Time
	Value string
}

// Timeline records when one object's value changes, from a watch (the time is when the harness saw
// the change: within milliseconds of the write on loopback).
type Timeline struct {
	mu      sync.Mutex
	changes []Change
	cancel  context.CancelFunc
	done    chan struct{}
}

// Watch starts a timeline of value(obj) for the object gvk namespace/name; a missing object is "".
func (s *Stack) Watch(ctx context.Context, gvk schema.GroupVersionKind, namespace, name string, value func(*unstructured.Unstructured) string) (*Timeline, error) {
	wc, err := client.NewWithWatch(s.Config, client.Options{Scheme: s.Scheme})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	tl := &Timeline{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(tl.done)
		for ctx.Err() == nil {
			list := &unstructured.UnstructuredList{}
			list.SetGroupVersionKind(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
			w, err := wc.Watch(ctx, list, client.InNamespace(namespace),
				client.MatchingFieldsSelector{Selector: fields.OneTermEqualSelector("metadata.name", name)})
			if err != nil {
				time.Sleep(200 * time.Millisecond)
				continue
			}
			tl.consume(w, value)
		}
	}()
	return tl, nil
}

func (tl *Timeline) consume(w watch.Interface, value func(*unstructured.Unstructured) string) {
	defer w.Stop()
	for ev := range w.ResultChan() {
		u, ok := ev.Object.(*unstructured.Unstructured)
		if !ok {
			continue
		}
		v := value(u)
		if ev.Type == watch.Deleted {
			v = ""
		}
		tl.mu.Lock()
		if n := len(tl.changes); n == 0 || tl.changes[n-1].Value != v {
			tl.changes = append(tl.changes, Change{At: time.Now(), Value: v})
		}
		tl.mu.Unlock()
	}
}

// Stop ends the watch.
func (tl *Timeline) Stop() {
	tl.cancel()
	<-tl.done
}

// Changes is the record so far.
func (tl *Timeline) Changes() []Change {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	return append([]Change(nil), tl.changes...)
}

// First is the first change to a value for which match is true, at or after from.
func (tl *Timeline) First(from time.Time, match func(string) bool) (Change, bool) {
	for _, c := range tl.Changes() {
		if !c.At.Before(from) && match(c.Value) {
			return c, true
		}
	}
	return Change{}, false
}

// Wait waits until the value matches (the latest one, or one recorded at or after from).
func (tl *Timeline) Wait(ctx context.Context, from time.Time, timeout time.Duration, what string, match func(string) bool) (Change, error) {
	var got Change
	err := poll(ctx, timeout, 50*time.Millisecond, what, func() (bool, error) {
		c, ok := tl.First(from, match)
		got = c
		if !ok {
			return false, fmt.Errorf("seen %s", tl.String())
		}
		return true, nil
	})
	return got, err
}

func (tl *Timeline) String() string {
	var b strings.Builder
	for i, c := range tl.Changes() {
		if i > 0 {
			b.WriteString(" → ")
		}
		fmt.Fprintf(&b, "%s@%s", c.Value, c.At.Format("15:04:05.000"))
	}
	return b.String()
}

// Is matches one value.
func Is(values ...string) func(string) bool {
	return func(v string) bool {
		for _, w := range values {
			if v == w {
				return true
			}
		}
		return false
	}
}
