package kubecache

import (
	"context"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// DefaultMemoTTL is how long Reader keeps an object that nothing has read.
const DefaultMemoTTL = 15 * time.Minute

// Reader reads Secrets and ConfigMaps in full, whether its cache holds them Stripped or not, and
// every other object straight from the cache.
//
// It asks the cache first, for the object's resourceVersion. An object the cache holds without
// its data is read from the API once per resourceVersion and kept (until it goes unread for TTL):
// a second read of an unchanged object makes no API request, and memory holds only the objects
// actually read. Reader is safe for concurrent use.
type Reader struct {
	cached client.Reader
	api    client.Reader
	// TTL is how long an object that is not read stays in memory (DefaultMemoTTL).
	TTL time.Duration
	now func() time.Time

	mu    sync.Mutex
	memo  map[memoKey]*memoEntry
	swept time.Time
}

type memoKey struct {
	kind string
	types.NamespacedName
}

type memoEntry struct {
	obj  client.Object
	used time.Time
}

var _ client.Reader = (*Reader)(nil)

// NewReader returns a Reader over a cache (e.g. Configs) and an uncached reader of the API (the
// manager's APIReader).
func NewReader(cached, api client.Reader) *Reader {
	return &Reader{cached: cached, api: api, TTL: DefaultMemoTTL, now: time.Now, memo: map[memoKey]*memoEntry{}}
}

// Get reads obj; a Secret or ConfigMap has its data.
func (r *Reader) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	k := kind(obj)
	if k == "" {
		return r.cached.Get(ctx, key, obj, opts...)
	}
	mk := memoKey{kind: k, NamespacedName: key}
	if err := r.cached.Get(ctx, key, obj, opts...); err != nil {
		if apierrors.IsNotFound(err) {
			r.forget(mk)
		}
		return err
	}
	if !Stripped(obj) {
		return nil // the cache holds it in full
	}
	if full := r.lookup(mk, obj.GetResourceVersion()); full != nil {
		return fill(obj, full)
	}
	full := newObject(k)
	if err := r.api.Get(ctx, key, full); err != nil {
		if apierrors.IsNotFound(err) {
			r.forget(mk)
		}
		return err
	}
	r.remember(mk, full)
	return fill(obj, full)
}

// List lists from the cache: Secrets and ConfigMaps come without their data.
func (r *Reader) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	return r.cached.List(ctx, list, opts...)
}

// lookup returns the kept object at resourceVersion rv, or nil. It also drops, at most every TTL/4,
// the objects not read for TTL.
func (r *Reader) lookup(k memoKey, rv string) client.Object {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	if now.Sub(r.swept) > r.TTL/4 {
		for key, e := range r.memo {
			if now.Sub(e.used) > r.TTL {
				delete(r.memo, key)
			}
		}
		r.swept = now
	}
	e, ok := r.memo[k]
	if !ok || e.obj.GetResourceVersion() != rv {
		return nil
	}
	e.used = now
	return e.obj
}

// remember keeps obj, read from the API. Its resourceVersion may be newer than the cache's: the
// reads until the cache has caught up read the API again, then it is served from memory.
func (r *Reader) remember(k memoKey, obj client.Object) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.memo[k] = &memoEntry{obj: obj, used: r.now()}
}

func (r *Reader) forget(k memoKey) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.memo, k)
}

// kept is how many objects the Reader holds in memory.
func (r *Reader) kept() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.memo)
}

// fill sets obj to a copy of full, an object of the same kind.
func fill(obj, full client.Object) error {
	switch o := obj.(type) {
	case *corev1.Secret:
		full.(*corev1.Secret).DeepCopyInto(o)
	case *corev1.ConfigMap:
		full.(*corev1.ConfigMap).DeepCopyInto(o)
	default:
		return fmt.Errorf("kubecache: cannot fill a %T", obj)
	}
	return nil
}
