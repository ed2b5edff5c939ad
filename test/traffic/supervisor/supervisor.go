// Package supervisor runs one real OS process per running pod of a local control plane whose pods
// nobody runs (kwok only marks them Ready): for each pod matching a label selector it starts
// `BINARY serve -listen IP:PORT,...` (test/traffic/cmd/pods, the podinfo-like demo app) bound to the
// pod's IP and ports, with the pod's environment, and stops it when the pod goes. Inside
// hack/netns.sh the pod network 10.244.0.0/16 is local, so the pod IPs a proxy learns from
// EndpointSlices really answer.
package supervisor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Options say which pods to run and how.
type Options struct {
	// Selector is a label selector (e.g. "app=podinfo"); pods matching it get a process. Required.
	Selector string
	// Namespace limits the pods (and the ConfigMaps and Secrets read) to one namespace; empty: all.
	Namespace string
	// Binary is the executable started as `Binary serve -listen ...`; empty: this process's own.
	Binary string
	// LogDir, when set, receives each pod's output in <namespace>_<pod>.log; otherwise it goes to Log,
	// each line prefixed with [namespace/pod].
	LogDir string
	// Log receives one line per start, stop and exit (and the children's output without LogDir).
	// Nil: os.Stderr.
	Log io.Writer
	// MaxGracePeriod bounds the wait between SIGTERM and SIGKILL (default DefaultMaxGracePeriod).
	MaxGracePeriod time.Duration
	// RestartBackoff is the first wait before restarting a child that exited by itself; it doubles up
	// to MaxRestartBackoff on every exit within a minute of the start (defaults 1s and 30s).
	RestartBackoff, MaxRestartBackoff time.Duration
}

// Supervisor keeps one child process per serving pod.
type Supervisor struct {
	opts     Options
	binary   string
	selector labels.Selector
	log      *log.Logger
	cache    cache.Cache
	writer   client.Client // deletes a terminating pod once its process has exited

	mu       sync.Mutex
	children map[types.UID]*child // current children by pod uid
	all      map[*child]struct{}  // current and stopping children, until their process is gone
	waiting  map[types.UID]string // why a serving pod has no child (e.g. a missing ConfigMap), logged once
	wg       sync.WaitGroup
}

// Run supervises until ctx ends, then stops every child and waits for them.
func Run(ctx context.Context, cfg *rest.Config, opts Options) error {
	s, err := New(cfg, opts)
	if err != nil {
		return err
	}
	return s.Run(ctx)
}

// New prepares a Supervisor; nothing runs before Run.
func New(cfg *rest.Config, opts Options) (*Supervisor, error) {
	if opts.Selector == "" {
		return nil, errors.New("supervisor: a label selector is required (all pods of a cluster is never meant)")
	}
	sel, err := labels.Parse(opts.Selector)
	if err != nil {
		return nil, fmt.Errorf("supervisor: selector %q: %w", opts.Selector, err)
	}
	binary := opts.Binary
	if binary == "" {
		if binary, err = os.Executable(); err != nil {
			return nil, fmt.Errorf("supervisor: finding the own executable: %w", err)
		}
	}
	if _, err := os.Stat(binary); err != nil {
		return nil, fmt.Errorf("supervisor: binary: %w", err)
	}
	if opts.LogDir != "" {
		if err := os.MkdirAll(opts.LogDir, 0o755); err != nil {
			return nil, fmt.Errorf("supervisor: log directory: %w", err)
		}
	}
	if opts.Log == nil {
		opts.Log = os.Stderr
	}
	if opts.MaxGracePeriod <= 0 {
		opts.MaxGracePeriod = DefaultMaxGracePeriod
	}
	if opts.RestartBackoff <= 0 {
		opts.RestartBackoff = time.Second
	}
	if opts.MaxRestartBackoff <= 0 {
		opts.MaxRestartBackoff = 30 * time.Second
	}

	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, err
	}
	cacheOpts := cache.Options{
		Scheme:           scheme,
		ByObject:         map[client.Object]cache.ByObject{&corev1.Pod{}: {Label: sel}},
		DefaultTransform: cache.TransformStripManagedFields(),
	}
	if opts.Namespace != "" {
		cacheOpts.DefaultNamespaces = map[string]cache.Config{opts.Namespace: {}}
	}
	c, err := cache.New(cfg, cacheOpts)
	if err != nil {
		return nil, fmt.Errorf("supervisor: %w", err)
	}
	writer, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, fmt.Errorf("supervisor: %w", err)
	}
	return &Supervisor{
		opts: opts, binary: binary, selector: sel, cache: c, writer: writer,
		log:      log.New(opts.Log, "pods: ", log.LstdFlags|log.Lmicroseconds),
		children: map[types.UID]*child{}, all: map[*child]struct{}{}, waiting: map[types.UID]string{},
	}, nil
}

// Run supervises until ctx ends, then stops every child and waits for them. Every change of a
// selected pod, ConfigMap or Secret (read through informers, never polled) leads to one pass that
// compares the serving pods with the children.
func (s *Supervisor) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	changed := make(chan struct{}, 1)
	notify := func() {
		select {
		case changed <- struct{}{}:
		default:
		}
	}
	handler := toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { notify() },
		UpdateFunc: func(any, any) { notify() },
		DeleteFunc: func(any) { notify() },
	}
	for _, obj := range []client.Object{&corev1.Pod{}, &corev1.ConfigMap{}, &corev1.Secret{}} {
		inf, err := s.cache.GetInformer(ctx, obj)
		if err != nil {
			return fmt.Errorf("supervisor: informer for %T: %w", obj, err)
		}
		if _, err := inf.AddEventHandler(handler); err != nil {
			return fmt.Errorf("supervisor: watching %T: %w", obj, err)
		}
	}
	cacheDone := make(chan error, 1)
	go func() { cacheDone <- s.cache.Start(ctx) }()
	defer s.stopAll()
	if !s.cache.WaitForCacheSync(ctx) {
		cancel()
		if err := <-cacheDone; err != nil {
			return fmt.Errorf("supervisor: informers: %w", err)
		}
		return ctx.Err()
	}
	s.log.Printf("supervising pods %q in %s with %s", s.opts.Selector, namespaceText(s.opts.Namespace), s.binary)
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-cacheDone:
			return fmt.Errorf("supervisor: informers stopped: %w", err)
		case <-changed:
			if err := s.reconcile(ctx); err != nil {
				s.log.Printf("listing pods: %v", err)
			}
		}
	}
}

func namespaceText(ns string) string {
	if ns == "" {
		return "all namespaces"
	}
	return "namespace " + ns
}

// reconcile starts a child for every serving pod without one and stops every child whose pod no
// longer serves (deleted, being deleted, not matching, or with another IP).
func (s *Supervisor) reconcile(ctx context.Context) error {
	var pods corev1.PodList
	listOpts := []client.ListOption{client.MatchingLabelsSelector{Selector: s.selector}}
	if s.opts.Namespace != "" {
		listOpts = append(listOpts, client.InNamespace(s.opts.Namespace))
	}
	if err := s.cache.List(ctx, &pods, listOpts...); err != nil {
		return err
	}
	desired := map[types.UID]ChildSpec{}
	for i := range pods.Items {
		pod := &pods.Items[i]
		if !Serving(pod) {
			continue
		}
		spec, err := s.specFor(ctx, pod)
		s.noteWaiting(pod, spec, err)
		if err == nil {
			desired[pod.UID] = spec
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	for uid, c := range s.children {
		if want, ok := desired[uid]; !ok || !want.sameProcess(c.spec) {
			delete(s.children, uid)
			c.requestStop()
		}
	}
	for uid := range s.waiting {
		if _, ok := desired[uid]; !ok && !s.podListed(pods.Items, uid) {
			delete(s.waiting, uid)
		}
	}
	for uid, spec := range desired {
		if _, ok := s.children[uid]; !ok {
			s.children[uid] = s.startChild(spec, s.stoppingOn(spec.IP))
		}
	}
	return nil
}

// stoppingOn ends the grace period of every stopping child on ip and returns them; the caller holds s.mu.
func (s *Supervisor) stoppingOn(ip string) []*child {
	var out []*child
	for c := range s.all {
		if c.spec.IP == ip && c.status().Stopping {
			c.killNow()
			out = append(out, c)
		}
	}
	return out
}

func (s *Supervisor) podListed(pods []corev1.Pod, uid types.UID) bool {
	for i := range pods {
		if pods[i].UID == uid {
			return true
		}
	}
	return false
}

// noteWaiting logs once why a serving pod gets no process yet (and once when it may start).
func (s *Supervisor) noteWaiting(pod *corev1.Pod, spec ChildSpec, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := pod.Namespace + "/" + pod.Name
	switch {
	case err != nil && s.waiting[pod.UID] != err.Error():
		s.waiting[pod.UID] = err.Error()
		s.log.Printf("wait %s: not started: %v", key, err)
	case err == nil && s.waiting[pod.UID] != "":
		delete(s.waiting, pod.UID)
		s.log.Printf("ready %s: %s", key, strings.Join(spec.Addrs, ","))
	}
}

func (s *Supervisor) specFor(ctx context.Context, pod *corev1.Pod) (ChildSpec, error) {
	addrs := ListenAddrs(pod)
	if len(addrs) == 0 {
		return ChildSpec{}, errors.New("no TCP containerPort in the pod spec")
	}
	env, version, err := ChildEnv(pod, cacheLookup{ctx: ctx, c: s.cache}, os.Getenv("PATH"))
	if err != nil {
		return ChildSpec{}, err
	}
	return ChildSpec{
		Pod: pod.Namespace + "/" + pod.Name, UID: pod.UID, IP: pod.Status.PodIP, Addrs: addrs,
		Version: version, Env: env, Grace: GracePeriod(pod, s.opts.MaxGracePeriod),
	}, nil
}

// cacheLookup reads ConfigMaps and Secrets from the informers' cache.
type cacheLookup struct {
	ctx context.Context
	c   cache.Cache
}

func (l cacheLookup) ConfigMap(namespace, name string) (*corev1.ConfigMap, error) {
	var cm corev1.ConfigMap
	return &cm, l.c.Get(l.ctx, client.ObjectKey{Namespace: namespace, Name: name}, &cm)
}

func (l cacheLookup) Secret(namespace, name string) (*corev1.Secret, error) {
	var sec corev1.Secret
	return &sec, l.c.Get(l.ctx, client.ObjectKey{Namespace: namespace, Name: name}, &sec)
}

// stopAll stops every child and waits until all their processes are gone.
func (s *Supervisor) stopAll() {
	s.mu.Lock()
	for uid, c := range s.children {
		delete(s.children, uid)
		c.requestStop()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// Child describes a child process for tests and tools.
type Child struct {
	// Pod is namespace/name; Addrs the addresses it listens on; Version its PODINFO_VERSION.
	Pod     string
	Addrs   []string
	Version string
	// PID is the current process's id, 0 while none runs (between restarts).
	PID int
	// Stopping is true once the pod is gone and the process is being terminated.
	Stopping bool
}

// Children lists the children whose process may still run, stopping ones included, by pod.
func (s *Supervisor) Children() []Child {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Child, 0, len(s.all))
	for c := range s.all {
		out = append(out, c.status())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Pod < out[j].Pod })
	return out
}

// output is where a child's stdout and stderr go: its log file, or the supervisor's log.
func (s *Supervisor) output(spec ChildSpec) (io.Writer, func(), error) {
	if s.opts.LogDir == "" {
		w := &linePrefixer{log: s.log, prefix: "[" + spec.Pod + "] "}
		return w, w.flush, nil
	}
	name := filepath.Join(s.opts.LogDir, strings.ReplaceAll(spec.Pod, "/", "_")+".log")
	f, err := os.OpenFile(name, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, nil, err
	}
	return f, func() { _ = f.Close() }, nil
}

// linePrefixer writes each complete line through the supervisor's logger with a prefix.
type linePrefixer struct {
	log     *log.Logger
	prefix  string
	mu      sync.Mutex
	partial []byte
}

func (w *linePrefixer) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.partial = append(w.partial, b...)
	for {
		i := strings.IndexByte(string(w.partial), '\n')
		if i < 0 {
			return len(b), nil
		}
		w.log.Print(w.prefix + string(w.partial[:i]))
		w.partial = w.partial[i+1:]
	}
}

func (w *linePrefixer) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.partial) > 0 {
		w.log.Print(w.prefix + string(w.partial))
		w.partial = nil
	}
}

// releasePod deletes a terminating pod once its process has exited, as a kubelet does when its
// containers have stopped: the pod, and its IP, go now rather than at the end of the grace period
// (the local cluster's kwok deletes it then at the latest). A pod that is not terminating (its
// child was replaced for another reason) is left alone.
func (s *Supervisor) releasePod(spec ChildSpec) {
	ns, name, _ := strings.Cut(spec.Pod, "/")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pod := &corev1.Pod{}
	if err := s.cache.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, pod); err != nil ||
		pod.UID != spec.UID || pod.DeletionTimestamp == nil {
		return
	}
	uid := spec.UID
	err := s.writer.Delete(ctx, pod, client.GracePeriodSeconds(0), client.Preconditions{UID: &uid})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		s.log.Printf("delete %s after its process exited: %v", spec.Pod, err)
	}
}
