package gates

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/resourceversion"
	corev1informers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/kubernetes"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/cache"
)

// DefaultConfigMapName is the ConfigMap holding the gates, in the load tester's own namespace.
// config/loadtester's Role grants access to this name only.
const DefaultConfigMapName = "flagger-loadtester-gates"

// FieldManager is the field manager of the load tester's writes.
const FieldManager = "flagger-loadtester"

// Defaults of ConfigMapOptions.
const (
	DefaultSyncTimeout = time.Minute
	// maxWriteAttempts bounds Set's retries on a conflict: each round at least one of the
	// competing writers succeeds, so this many concurrent gate changes always get through.
	maxWriteAttempts = 10
)

// ConfigMapOptions configure a ConfigMapStore.
type ConfigMapOptions struct {
	// Namespace of the ConfigMap: the load tester's own (see OwnNamespace). Required.
	Namespace string
	// Name of the ConfigMap; DefaultConfigMapName when empty.
	Name string
	// MaxOpenGates bounds the gates open at the same time; DefaultMaxOpenGates when 0.
	MaxOpenGates int
	// SyncTimeout bounds how long NewConfigMapStore waits for its first read of the ConfigMap;
	// DefaultSyncTimeout when 0.
	SyncTimeout time.Duration
}

// ConfigMapStore keeps the gates in one ConfigMap, one data key per gate that is open (see dataKey).
// Every replica of the load tester reads and writes the same ConfigMap, and it outlives them.
//
// Reads (IsOpen, called by the controller for every gated canary at every analysis interval) are
// answered from an informer cache of that single ConfigMap, so they cost no API request. Writes (Set,
// a person opening or closing a gate) read the ConfigMap from the API, change it and update it with
// its resourceVersion, retrying on a conflict with another replica; the ConfigMap is created on the
// first write. A store sees its own writes at once: until its cache has caught up, it reads the
// object its last write returned.
type ConfigMapStore struct {
	client   corev1client.ConfigMapInterface
	cacheKey string // namespace/name, the informer store's key of the ConfigMap
	name     string
	maxOpen  int
	informer cache.SharedIndexInformer
	now      func() time.Time

	mu sync.Mutex
	// written is the ConfigMap as this store last wrote or read it from the API, while it is newer
	// than what the cache holds (read-your-writes).
	written *corev1.ConfigMap
}

var _ Store = (*ConfigMapStore)(nil)

// NewConfigMapStore starts a store on the ConfigMap opts names and waits (at most opts.SyncTimeout)
// until its cache has read it. The cache's watch runs until ctx is done. The client needs get, list,
// watch and update on that ConfigMap and create on ConfigMaps in its namespace (config/loadtester).
func NewConfigMapStore(ctx context.Context, client kubernetes.Interface, opts ConfigMapOptions) (*ConfigMapStore, error) {
	if opts.Namespace == "" {
		return nil, errors.New("gates: the ConfigMap store needs the load tester's namespace")
	}
	if opts.Name == "" {
		opts.Name = DefaultConfigMapName
	}
	if opts.MaxOpenGates <= 0 {
		opts.MaxOpenGates = DefaultMaxOpenGates
	}
	if opts.SyncTimeout <= 0 {
		opts.SyncTimeout = DefaultSyncTimeout
	}
	s := &ConfigMapStore{
		client:   client.CoreV1().ConfigMaps(opts.Namespace),
		cacheKey: opts.Namespace + "/" + opts.Name,
		name:     opts.Name,
		maxOpen:  opts.MaxOpenGates,
		now:      time.Now,
	}
	// Only this ConfigMap: the field selector keeps the cache (and the RBAC the store needs) to one object.
	onlyThis := func(o *metav1.ListOptions) {
		o.FieldSelector = fields.OneTermEqualSelector("metadata.name", opts.Name).String()
	}
	s.informer = corev1informers.NewFilteredConfigMapInformer(client, opts.Namespace, 0, cache.Indexers{}, onlyThis)
	if _, err := s.informer.AddEventHandler(cache.ResourceEventHandlerFuncs{DeleteFunc: s.deleted}); err != nil {
		return nil, err
	}
	go s.informer.RunWithContext(ctx)

	syncCtx, cancel := context.WithTimeout(ctx, opts.SyncTimeout)
	defer cancel()
	if !cache.WaitForCacheSync(syncCtx.Done(), s.informer.HasSynced) {
		return nil, fmt.Errorf("gates: reading ConfigMap %s/%s: not done after %v (is the API server reachable, may the load tester's ServiceAccount list and watch it?)",
			opts.Namespace, opts.Name, opts.SyncTimeout)
	}
	return s, nil
}

// IsOpen answers from the cache: no API request.
func (s *ConfigMapStore) IsOpen(_ context.Context, kind Kind, k Key) (bool, error) {
	if err := Validate(kind, k); err != nil {
		return false, err
	}
	cm := s.current()
	if cm == nil {
		return false, nil
	}
	_, open := cm.Data[dataKey(kind, k)]
	return open, nil
}

// Set opens or closes a gate in the ConfigMap, creating it on the first write.
func (s *ConfigMapStore) Set(ctx context.Context, kind Kind, k Key, open bool) error {
	if err := Validate(kind, k); err != nil {
		return err
	}
	key := dataKey(kind, k)
	for attempt := 1; ; attempt++ {
		err := s.trySet(ctx, key, open)
		if err == nil || !(apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err)) {
			return err
		}
		if attempt == maxWriteAttempts {
			return fmt.Errorf("gates: %d conflicting writes of ConfigMap %s, giving up: %w", attempt, s.name, err)
		}
		// Another replica wrote first: read again after a short random pause, so that competing
		// writers do not collide in lockstep.
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(rand.N(time.Duration(attempt) * 10 * time.Millisecond)):
		}
	}
}

// trySet reads the ConfigMap from the API (not the cache, which may lag behind another replica's
// write: a change that looks like a no-op there may not be one) and writes the change, if any.
func (s *ConfigMapStore) trySet(ctx context.Context, key string, open bool) error {
	base, err := s.client.Get(ctx, s.name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		base = nil
	case err != nil:
		return fmt.Errorf("gates: reading ConfigMap %s: %w", s.name, err)
	default:
		s.remember(base)
	}
	var data map[string]string
	if base != nil {
		data = base.Data
	}
	next, changed, err := change(data, key, open, s.now().UTC().Format(time.RFC3339), s.maxOpen)
	if err != nil || !changed {
		return err
	}
	var written *corev1.ConfigMap
	if base == nil {
		written, err = s.client.Create(ctx, s.newConfigMap(next), metav1.CreateOptions{FieldManager: FieldManager})
	} else {
		cm := base.DeepCopy() // keeps base's resourceVersion: the update fails on a conflict
		cm.Data = next
		written, err = s.client.Update(ctx, cm, metav1.UpdateOptions{FieldManager: FieldManager})
	}
	if err != nil {
		return err
	}
	s.remember(written)
	return nil
}

func (s *ConfigMapStore) newConfigMap(data map[string]string) *corev1.ConfigMap {
	return &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{
			Name:   s.name,
			Labels: map[string]string{"app": "flagger-loadtester"},
			Annotations: map[string]string{
				"flagger-loadtester/description": "Open manual gates of the load tester (/gate/open, /rollback/open): " +
					"<kind>_<canary>.<namespace> = when it was opened. Closed gates have no key.",
			},
		},
		Data: data,
	}
}

// current is the ConfigMap as this store knows it: the cache's copy, or the one it last wrote or read
// itself while the cache has not caught up with it. Nil when there is none (no gate was ever opened).
func (s *ConfigMapStore) current() *corev1.ConfigMap {
	var cached *corev1.ConfigMap
	if obj, ok, _ := s.informer.GetStore().GetByKey(s.cacheKey); ok {
		cached, _ = obj.(*corev1.ConfigMap)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.written == nil {
		return cached
	}
	if cached != nil && !newer(s.written, cached) {
		s.written = nil // the cache has caught up
		return cached
	}
	return s.written
}

// remember keeps cm as the store's view until the cache holds it or something newer.
func (s *ConfigMapStore) remember(cm *corev1.ConfigMap) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.written == nil || newer(cm, s.written) {
		s.written = cm
	}
}

// deleted forgets the remembered ConfigMap when the cache sees it deleted after it.
func (s *ConfigMapStore) deleted(obj any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cm, ok := obj.(*corev1.ConfigMap)
	if !ok || s.written == nil || !newer(s.written, cm) {
		// A tombstone (the deletion was missed and found by a relist), or a deletion at least as new
		// as the remembered object: the ConfigMap is gone.
		s.written = nil
	}
}

// newer tells whether a is a later version of the ConfigMap than b. Resource versions compare as
// integers (Kubernetes' comparable resource versions); one that does not parse counts as not newer,
// so the cache wins.
func newer(a, b *corev1.ConfigMap) bool {
	c, err := resourceversion.CompareResourceVersion(a.ResourceVersion, b.ResourceVersion)
	return err == nil && c > 0
}

// OwnNamespace is the namespace the load tester runs in: $POD_NAMESPACE (the downward API, as
// config/loadtester sets it), else the namespace of its ServiceAccount token.
func OwnNamespace() (string, error) {
	if ns := os.Getenv("POD_NAMESPACE"); ns != "" {
		return ns, nil
	}
	const saNamespace = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
	b, err := os.ReadFile(saNamespace)
	if err != nil {
		return "", fmt.Errorf("gates: the load tester's namespace: set POD_NAMESPACE (%w)", err)
	}
	return strings.TrimSpace(string(b)), nil
}
