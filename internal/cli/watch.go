package cli

import (
	"context"
	"errors"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

// canaryListWatch lists and watches the canaries of the Env's namespace (all with AllNamespaces),
// only the one named name when it is set.
func (e *Env) canaryListWatch(ctx context.Context, name string) *cache.ListWatch {
	opts := func(raw metav1.ListOptions) *client.ListOptions {
		o := &client.ListOptions{Raw: &raw}
		if !e.AllNamespaces {
			o.Namespace = e.Namespace
		}
		if name != "" {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", name)
			raw.FieldSelector = o.FieldSelector.String()
		}
		return o
	}
	return &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, raw metav1.ListOptions) (runtime.Object, error) {
			list := &flaggerv1.CanaryList{}
			return list, e.Client.List(ctx, list, opts(raw))
		},
		WatchFuncWithContext: func(ctx context.Context, raw metav1.ListOptions) (watch.Interface, error) {
			return e.Client.Watch(ctx, &flaggerv1.CanaryList{}, opts(raw))
		},
	}
}

// watchCanaries calls seen with every canary as it is listed and then as it changes (deleted set
// for a deletion), until seen returns true or ctx ends. It is a watch, re-listed by an informer when
// the watch breaks, never a poll. A ctx that ends returns ctx's error.
func (e *Env) watchCanaries(ctx context.Context, name string, seen func(cd *flaggerv1.Canary, deleted bool) bool) error {
	_, err := watchtools.UntilWithSync(ctx, e.canaryListWatch(ctx, name), &flaggerv1.Canary{}, nil,
		func(ev watch.Event) (bool, error) {
			cd, ok := ev.Object.(*flaggerv1.Canary)
			if !ok {
				return false, nil
			}
			return seen(cd, ev.Type == watch.Deleted), nil
		})
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if errors.Is(err, watchtools.ErrWatchClosed) {
		return errors.New("the watch of canaries closed")
	}
	return err
}
