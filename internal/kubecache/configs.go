package kubecache

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/cluster"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"
)

// Defaults of Configs.
const (
	// DefaultSyncTimeout bounds the wait for a namespace's informer to list its objects.
	DefaultSyncTimeout = time.Minute
	// DefaultIdle is how long a namespace nothing reads and Keep does not claim keeps its informers.
	DefaultIdle = 10 * time.Minute
)

// Configs is a cache of Secrets and ConfigMaps, namespace by namespace: a namespace's informer of
// a kind starts on the first read of that kind there and keeps running while Keep claims the
// namespace (e.g. it has canaries) or something has read in it within Idle. Its objects are
// Stripped (see Transform). Every other object is read through the fallback reader.
//
// Configs is a manager Runnable: reads wait for Start, and stopping it stops every informer.
type Configs struct {
	cluster  cluster.Cluster
	fallback client.Reader
	// Keep tells whether a namespace's informers must keep running though nothing reads there:
	// while it has canaries, so that a change of their configs wakes them. Nil keeps none.
	Keep func(ctx context.Context, namespace string) bool
	// SyncTimeout bounds a read's wait for a starting informer (DefaultSyncTimeout).
	SyncTimeout time.Duration
	// Idle is how long a namespace that nothing reads and Keep does not claim is cached (DefaultIdle).
	Idle time.Duration
	now  func() time.Time

	started chan struct{}
	mu      sync.Mutex
	ctx     context.Context // Start's
	spaces  map[string]*space
	sources []*eventSource
	running sync.WaitGroup
}

// space is the cache of one namespace.
type space struct {
	namespace string
	cache     cache.Cache
	ctx       context.Context
	cancel    context.CancelFunc
	lastRead  time.Time
	// kinds holds the informers started or starting, by kind.
	kinds map[string]*kindInformer
	// starting receives the list and watch errors of the informers that have not synced yet.
	starting map[string]chan error
}

type kindInformer struct {
	synced   chan struct{} // closed when informer is set or err
	informer cache.Informer
	err      error
}

type eventSource struct {
	kind    string
	handler handler.EventHandler
	ctx     context.Context
	queue   workqueue.TypedRateLimitingInterface[reconcile.Request]
}

var _ client.Reader = (*Configs)(nil)

// NewConfigs returns a Configs whose namespace caches use c's connection, scheme and REST mapper,
// and which reads every other object through c's client. Add it to the manager.
func NewConfigs(c cluster.Cluster) *Configs {
	return &Configs{
		cluster: c, fallback: c.GetClient(),
		SyncTimeout: DefaultSyncTimeout, Idle: DefaultIdle, now: time.Now,
		started: make(chan struct{}), spaces: map[string]*space{},
	}
}

// NeedLeaderElection is false: the caches serve whoever reads, leader or not.
func (c *Configs) NeedLeaderElection() bool { return false }

// Start lets reads begin, stops the informers of namespaces no longer needed every Idle/2, and
// stops all of them when ctx ends.
func (c *Configs) Start(ctx context.Context) error {
	c.mu.Lock()
	c.ctx = ctx
	close(c.started)
	c.mu.Unlock()
	tick := time.NewTicker(max(c.Idle/2, time.Second))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			c.mu.Lock()
			for _, s := range c.spaces {
				s.cancel()
			}
			c.spaces = map[string]*space{}
			c.mu.Unlock()
			c.running.Wait()
			return nil
		case <-tick.C:
			c.sweep(ctx)
		}
	}
}

// sweep stops the informers of namespaces that nothing has read within Idle and Keep does not claim.
func (c *Configs) sweep(ctx context.Context) {
	c.mu.Lock()
	var idle []string
	for ns, s := range c.spaces {
		if c.now().Sub(s.lastRead) > c.Idle {
			idle = append(idle, ns)
		}
	}
	c.mu.Unlock()
	for _, ns := range idle {
		if c.Keep != nil && c.Keep(ctx, ns) {
			continue
		}
		c.mu.Lock()
		if s := c.spaces[ns]; s != nil && c.now().Sub(s.lastRead) > c.Idle {
			c.drop(s)
		}
		c.mu.Unlock()
	}
}

// Namespaces lists the namespaces whose informers run.
func (c *Configs) Namespaces() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, 0, len(c.spaces))
	for ns := range c.spaces {
		out = append(out, ns)
	}
	return out
}

// Get reads a Secret or ConfigMap from its namespace's cache, Stripped, starting the namespace's
// informer of its kind if needed; other objects from the fallback reader.
func (c *Configs) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	k := kind(obj)
	if k == "" {
		return c.fallback.Get(ctx, key, obj, opts...)
	}
	s, err := c.informer(ctx, key.Namespace, k)
	if err != nil {
		return err
	}
	return s.cache.Get(ctx, key, obj, opts...)
}

// List lists the Secrets or ConfigMaps of one namespace (client.InNamespace is required), Stripped;
// other objects from the fallback reader.
func (c *Configs) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	k := kind(list)
	if k == "" {
		return c.fallback.List(ctx, list, opts...)
	}
	lo := (&client.ListOptions{}).ApplyOptions(opts)
	if lo.Namespace == "" {
		return fmt.Errorf("kubecache: %s are cached by namespace: list them in one", k)
	}
	s, err := c.informer(ctx, lo.Namespace, k)
	if err != nil {
		return err
	}
	return s.cache.List(ctx, list, opts...)
}

// Source is the event source of a kind (a Secret or ConfigMap) for a controller: events of every
// namespace whose informer of that kind runs, now or later, go to h.
func (c *Configs) Source(obj client.Object, h handler.EventHandler) source.Source {
	return source.Func(func(ctx context.Context, queue workqueue.TypedRateLimitingInterface[reconcile.Request]) error {
		k := kind(obj)
		if k == "" {
			return fmt.Errorf("kubecache: no events of %T: only Secrets and ConfigMaps", obj)
		}
		src := &eventSource{kind: k, handler: h, ctx: ctx, queue: queue}
		c.mu.Lock()
		defer c.mu.Unlock()
		c.sources = append(c.sources, src)
		for _, s := range c.spaces {
			if ki := s.kinds[k]; ki != nil && ki.informer != nil {
				if err := src.attach(ki.informer); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

func (src *eventSource) attach(inf cache.Informer) error {
	return (&source.Informer{Informer: inf, Handler: src.handler}).Start(src.ctx, src.queue)
}

// informer returns the space of namespace once its informer of kind k has synced, starting both
// as needed.
func (c *Configs) informer(ctx context.Context, namespace, k string) (*space, error) {
	if namespace == "" {
		return nil, fmt.Errorf("kubecache: %s are cached by namespace: name one", k)
	}
	select {
	case <-c.started:
	case <-ctx.Done():
		return nil, fmt.Errorf("kubecache: reading a %s before the caches started: %w", k, ctx.Err())
	}
	c.mu.Lock()
	if c.ctx.Err() != nil {
		c.mu.Unlock()
		return nil, errors.New("kubecache: the caches have stopped")
	}
	s := c.spaces[namespace]
	if s == nil {
		var err error
		if s, err = c.newSpace(namespace); err != nil {
			c.mu.Unlock()
			return nil, err
		}
	}
	s.lastRead = c.now()
	ki := s.kinds[k]
	if ki == nil {
		ki = &kindInformer{synced: make(chan struct{})}
		s.kinds[k] = ki
		c.running.Add(1)
		go c.startInformer(s, k, ki)
	}
	c.mu.Unlock()
	select {
	case <-ki.synced:
	case <-ctx.Done():
		return nil, fmt.Errorf("kubecache: waiting for the %s informer of namespace %s: %w", k, namespace, ctx.Err())
	}
	if ki.err != nil {
		return nil, ki.err
	}
	return s, nil
}

// newSpace starts the (empty) cache of a namespace. c.mu is held.
func (c *Configs) newSpace(namespace string) (*space, error) {
	s := &space{namespace: namespace, kinds: map[string]*kindInformer{}, starting: map[string]chan error{}}
	nsCache, err := cache.New(c.cluster.GetConfig(), cache.Options{
		HTTPClient:        c.cluster.GetHTTPClient(),
		Scheme:            c.cluster.GetScheme(),
		Mapper:            c.cluster.GetRESTMapper(),
		DefaultNamespaces: map[string]cache.Config{namespace: {}},
		DefaultTransform:  Transform,
		DefaultWatchErrorHandler: func(ctx context.Context, r *toolscache.Reflector, err error) {
			toolscache.DefaultWatchErrorHandler(ctx, r, err)
			if err != io.EOF && !apierrors.IsResourceExpired(err) && !apierrors.IsGone(err) {
				c.failStart(s, r.TypeDescription(), err)
			}
		},
	})
	if err != nil {
		return nil, fmt.Errorf("kubecache: the cache of namespace %s: %w", namespace, err)
	}
	ctx, cancel := context.WithCancel(c.ctx)
	s.cache, s.ctx, s.cancel = nsCache, ctx, cancel
	c.spaces[namespace] = s
	c.running.Add(1)
	go func() {
		defer c.running.Done()
		_ = nsCache.Start(ctx)
	}()
	return s, nil
}

// failStart hands a list or watch error to the informers of s that are starting: a read fails at
// once (e.g. when the controller may not list Secrets there) instead of waiting for SyncTimeout.
func (c *Configs) failStart(s *space, typeDescription string, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, errs := range s.starting {
		if strings.HasSuffix(typeDescription, "."+k) || !strings.Contains(typeDescription, ".") {
			select {
			case errs <- err:
			default:
			}
		}
	}
}

// startInformer starts the informer of kind k in s and, once it has synced, gives its events to
// the sources of k. When it fails to sync, it is removed: the next read starts it afresh.
func (c *Configs) startInformer(s *space, k string, ki *kindInformer) {
	defer c.running.Done()
	errs := make(chan error, 1)
	c.mu.Lock()
	s.starting[k] = errs
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(s.ctx, c.SyncTimeout)
	defer cancel()
	var listErr error
	done, exited := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(exited)
		select {
		case listErr = <-errs:
			cancel()
		case <-done:
		}
	}()
	// An informer added before its cache has started does not wait for its sync: wait for the start.
	var inf cache.Informer
	err := ctx.Err()
	if s.cache.WaitForCacheSync(ctx) {
		inf, err = s.cache.GetInformer(ctx, newObject(k))
	} else if err = ctx.Err(); err == nil {
		err = errors.New("cache stopped")
	}
	close(done)
	<-exited
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(s.starting, k)
	if err == nil {
		for _, src := range c.sources {
			if src.kind == k {
				if err = src.attach(inf); err != nil {
					break
				}
			}
		}
	}
	if err != nil {
		if listErr != nil {
			err = listErr
		}
		ki.err = fmt.Errorf("kubecache: the %s informer of namespace %s did not start: %w", k, s.namespace, err)
		delete(s.kinds, k)
		_ = s.cache.RemoveInformer(context.Background(), newObject(k))
	} else {
		ki.informer = inf
	}
	close(ki.synced)
}

// drop stops a space's informers and forgets it. c.mu is held.
func (c *Configs) drop(s *space) {
	s.cancel()
	delete(c.spaces, s.namespace)
}
