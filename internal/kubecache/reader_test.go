package kubecache

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// store is a client.Reader over a map of objects that counts its Gets.
type store struct {
	mu   sync.Mutex
	objs map[string]client.Object
	gets int
}

func newStore(objs ...client.Object) *store {
	s := &store{objs: map[string]client.Object{}}
	for _, o := range objs {
		s.put(o)
	}
	return s
}

func storeKey(obj client.Object, key client.ObjectKey) string {
	return fmt.Sprintf("%T/%s", obj, key)
}

func (s *store) put(obj client.Object) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.objs[storeKey(obj, client.ObjectKeyFromObject(obj))] = obj.DeepCopyObject().(client.Object)
}

func (s *store) del(obj client.Object) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.objs, storeKey(obj, client.ObjectKeyFromObject(obj)))
}

func (s *store) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gets
}

func (s *store) Get(_ context.Context, key client.ObjectKey, obj client.Object, _ ...client.GetOption) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gets++
	o, ok := s.objs[storeKey(obj, key)]
	if !ok {
		return apierrors.NewNotFound(schema.GroupResource{Resource: fmt.Sprintf("%T", obj)}, key.Name)
	}
	switch out := obj.(type) {
	case *corev1.Secret:
		o.(*corev1.Secret).DeepCopyInto(out)
	case *corev1.ConfigMap:
		o.(*corev1.ConfigMap).DeepCopyInto(out)
	case *appsv1.Deployment:
		o.(*appsv1.Deployment).DeepCopyInto(out)
	}
	return nil
}

func (s *store) List(context.Context, client.ObjectList, ...client.ListOption) error { return nil }

func secret(rv, password string) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "creds", Namespace: "ns", ResourceVersion: rv},
		Type:       corev1.SecretTypeOpaque, Data: map[string][]byte{"password": []byte(password)},
	}
}

// fixture is a Reader over a cache holding Stripped objects and an API holding them in full.
type fixture struct {
	cache, api *store
	r          *Reader
	now        time.Time
}

func newFixture(objs ...client.Object) *fixture {
	f := &fixture{cache: newStore(), api: newStore(), now: time.Unix(1000, 0)}
	for _, o := range objs {
		f.set(o)
	}
	f.r = NewReader(f.cache, f.api)
	f.r.now = func() time.Time { return f.now }
	return f
}

// set changes obj in the API and, stripped, in the cache.
func (f *fixture) set(obj client.Object) {
	f.api.put(obj)
	f.cache.put(Strip(obj))
}

func (f *fixture) password(t *testing.T) string {
	t.Helper()
	s := &corev1.Secret{}
	if err := f.r.Get(context.Background(), client.ObjectKey{Namespace: "ns", Name: "creds"}, s); err != nil {
		t.Fatal(err)
	}
	if Stripped(s) {
		t.Fatalf("Reader returned a stripped secret: %+v", s)
	}
	return string(s.Data["password"])
}

func TestReaderReadsTheAPIOncePerResourceVersion(t *testing.T) {
	f := newFixture(secret("1", "one"))
	if got := f.password(t); got != "one" {
		t.Errorf("password %q, want one", got)
	}
	if f.api.count() != 1 {
		t.Errorf("%d API reads for the first read, want 1", f.api.count())
	}
	for range 3 {
		f.password(t)
	}
	if f.api.count() != 1 {
		t.Errorf("%d API reads after 3 more reads of an unchanged secret, want 1", f.api.count())
	}
	f.set(secret("2", "two"))
	if got := f.password(t); got != "two" || f.api.count() != 2 {
		t.Errorf("after a change: password %q after %d API reads, want two after 2", got, f.api.count())
	}
	if f.r.kept() != 1 {
		t.Errorf("%d objects kept, want 1", f.r.kept())
	}
}

func TestReaderReturnsCopies(t *testing.T) {
	f := newFixture(secret("1", "one"))
	s := &corev1.Secret{}
	_ = f.r.Get(context.Background(), client.ObjectKey{Namespace: "ns", Name: "creds"}, s)
	s.Data["password"] = []byte("changed by the caller")
	if got := f.password(t); got != "one" {
		t.Errorf("a caller's change reached the kept object: %q", got)
	}
}

func TestReaderReadsAgainWhileTheCacheLagsBehind(t *testing.T) {
	f := newFixture(secret("1", "one"))
	f.api.put(secret("2", "two")) // the watch has not delivered resourceVersion 2 yet
	if got := f.password(t); got != "two" {
		t.Errorf("password %q, want the API's two", got)
	}
	f.password(t)
	if f.api.count() != 2 {
		t.Errorf("%d API reads, want 2: the kept object is newer than the cache's", f.api.count())
	}
	f.cache.put(Strip(secret("2", "two")))
	f.password(t)
	f.password(t)
	if f.api.count() != 2 {
		t.Errorf("%d API reads, want still 2: once the cache has caught up the kept object serves", f.api.count())
	}
}

func TestReaderForgetsDeletedAndUnreadObjects(t *testing.T) {
	f := newFixture(secret("1", "one"), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "settings", Namespace: "ns", ResourceVersion: "3"}})
	f.password(t)
	f.cache.del(secret("1", ""))
	err := f.r.Get(context.Background(), client.ObjectKey{Namespace: "ns", Name: "creds"}, &corev1.Secret{})
	if !apierrors.IsNotFound(err) || f.r.kept() != 0 {
		t.Errorf("deleted secret: err %v and %d kept, want NotFound and 0", err, f.r.kept())
	}
	if err := f.r.Get(context.Background(), client.ObjectKey{Namespace: "ns", Name: "settings"}, &corev1.ConfigMap{}); err != nil {
		t.Fatal(err)
	}
	f.now = f.now.Add(DefaultMemoTTL + time.Second)
	f.set(secret("4", "four"))
	f.password(t) // reading something sweeps what was not read for TTL
	if f.r.kept() != 1 {
		t.Errorf("%d objects kept, want 1: the ConfigMap was not read for the TTL", f.r.kept())
	}
}

func TestReaderServesFullCachesAndOtherKindsFromTheCache(t *testing.T) {
	f := newFixture()
	f.cache.put(secret("1", "cached in full"))
	f.cache.put(&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: "ns"}})
	if got := f.password(t); got != "cached in full" {
		t.Errorf("password %q", got)
	}
	if err := f.r.Get(context.Background(), client.ObjectKey{Namespace: "ns", Name: "podinfo"}, &appsv1.Deployment{}); err != nil {
		t.Fatal(err)
	}
	if f.api.count() != 0 || f.r.kept() != 0 {
		t.Errorf("%d API reads and %d objects kept, want none", f.api.count(), f.r.kept())
	}
}

func TestReaderIsSafeForConcurrentUse(t *testing.T) {
	f := newFixture(secret("1", "one"))
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 50 {
				if i == 0 && j%10 == 0 {
					f.set(secret(fmt.Sprint(2+j), "v"))
				}
				s := &corev1.Secret{}
				if err := f.r.Get(context.Background(), client.ObjectKey{Namespace: "ns", Name: "creds"}, s); err != nil || s.Data == nil {
					t.Errorf("read %v: %+v", err, s)
				}
			}
		})
	}
	wg.Wait()
}
