package notify

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
	"github.com/pennant/pennant/internal/webhooks"
)

// Defaults of a Dispatcher.
const (
	DefaultWorkers         = 4
	DefaultQueueSize       = 256
	DefaultJobTimeout      = time.Minute
	DefaultMaxDestinations = 256
)

// Reasons of a dropped notification, the reason label of pennant_notifications_dropped_total.
const (
	DropQueueFull           = "queue_full"
	DropStopped             = "stopped"
	DropTooManyDestinations = "too_many_destinations"
)

// Kinds of a failed notification, the kind label of pennant_notifications_failed_total.
const (
	KindAlert = "alert"
	KindEvent = "event"
)

// Counters counts what the Dispatcher could not deliver; *telemetry.NotificationCounters is one.
// Its methods run on the dispatcher's goroutines and in Alert, and must not block.
type Counters interface {
	// NotificationDropped counts one alert or event dropped before delivery (a Drop* reason).
	NotificationDropped(reason string)
	// NotificationFailed counts one alert or event whose delivery failed (KindAlert or KindEvent).
	NotificationFailed(kind string)
}

// Errors a Dispatcher reports, wrapped in an *AlertError; test them with errors.Is.
var (
	ErrProviderNotFound = errors.New("alert provider not found")
	ErrSecretNotFound   = errors.New("alert provider secret not found")
	ErrNoAddress        = errors.New("alert provider has no address")
	ErrQueueFull        = errors.New("the alert queue is full")
	ErrStopped          = errors.New("the alert dispatcher is stopped")
	ErrTooManyDests     = errors.New("too many alert destinations")
)

// AlertError says which alert of a canary could not be delivered, and why. Its message names the
// provider the way Flagger logs it, e.g. "alert provider on-call.flagger not found", so that the
// controller can record it as a Warning event as it is.
type AlertError struct {
	// Alert is the name of the canary's alert; empty for the global notifier.
	Alert string
	// Provider is the AlertProvider; empty for the global notifier.
	Provider types.NamespacedName
	// Reason completes the message: "not found", "secretRef x not found", "send error: ...".
	Reason string
	Err    error
}

func (e *AlertError) Error() string {
	if e.Provider.Name == "" {
		return "alert can't be sent: " + e.Reason
	}
	return fmt.Sprintf("alert provider %s.%s %s", e.Provider.Name, e.Provider.Namespace, e.Reason)
}

func (e *AlertError) Unwrap() error { return e.Err }

// HookCaller posts a webhook payload; *webhooks.Caller is one.
type HookCaller interface {
	Call(ctx context.Context, cd *flaggerv1.Canary, hook flaggerv1.CanaryWebhook, phase flaggerv1.CanaryPhase, metadata map[string]string) error
}

// Options configure a Dispatcher.
type Options struct {
	// Providers reads AlertProviders: the manager's cache in production.
	Providers client.Reader
	// Secrets reads the Secrets of AlertProviders, with their data; Providers when nil. In
	// production a kubecache.Reader: the manager's cache does not hold Secrets.
	Secrets client.Reader
	// Global serves canaries without alerts (NewGlobalSender); nil drops their alerts.
	Global Sender
	// ClusterName (-cluster-name) adds a Cluster field to every alert when set.
	ClusterName string
	// EventWebhook (-event-webhook) receives the events of canaries without event webhooks.
	EventWebhook string
	// Hooks posts event webhooks; a webhooks.NewCaller() when nil.
	Hooks HookCaller
	// Workers is the number of goroutines that resolve AlertProviders (DefaultWorkers when zero);
	// they only read the cluster, the posts run on the destinations' own workers.
	Workers int
	// QueueSize bounds the queue of the resolvers and the queue of each destination
	// (DefaultQueueSize when zero).
	QueueSize int
	// MaxDestinations bounds the number of destinations, each with its own queue and worker
	// (DefaultMaxDestinations when zero); a notification for one more destination is dropped.
	MaxDestinations int
	// Counters counts dropped and failed notifications; nil counts only Dropped().
	Counters Counters
	// SendTimeout bounds one post to an AlertProvider (DefaultTimeout when zero); JobTimeout bounds
	// one alert or event with all its providers (DefaultJobTimeout when zero).
	SendTimeout time.Duration
	JobTimeout  time.Duration
	// Metadata says which alerts carry the canary's metadata fields; FlaggerMetadata when nil.
	Metadata func(severity flaggerv1.AlertSeverity, text string) bool
	// Report receives each alert that could not be delivered, as an *AlertError, with a copy of the
	// canary: the controller records it as a Warning event. The errors are logged when nil. Report
	// runs on a worker and must not block; it is never called for event webhooks, whose failures are
	// only logged (recording them as events would post more events to the failing webhook).
	Report func(cd *flaggerv1.Canary, err error)
	// Log defaults to controller-runtime's logger named "notify".
	Log logr.Logger
}

// Dispatcher is the Notifier of the controller. Alert and EventWebhook only enqueue, so that a
// slow or hanging chat service never holds a reconcile. Every destination (a receiver's scheme,
// host and path; the global notifier is one destination) has its own bounded queue and its own
// worker, so that a receiver that hangs delays only its own notifications, never another canary's.
// AlertProviders are resolved first by a small shared pool that only reads the cluster. When a
// queue is full, or there are already MaxDestinations destinations, the notification is dropped,
// counted and logged. The workers run between Start and the end of its context; it is a
// manager.Runnable. Delivery is at most once: what is queued when the controller stops is dropped.
type Dispatcher struct {
	opts  Options
	log   logr.Logger
	queue chan job

	mu       sync.Mutex
	closed   bool
	started  bool
	stopping bool
	runCtx   context.Context
	workers  *sync.WaitGroup
	dests    map[string]*destination
	pending  int
	idle     []chan struct{}

	dropped atomic.Uint64
}

type job struct {
	canary string
	kind   string
	run    func(ctx context.Context)
}

// destination is the queue of one receiver; its worker starts with the dispatcher, or on first
// use once the dispatcher runs.
type destination struct {
	queue chan job
}

// NewDispatcher returns a Dispatcher; call Start to run its workers.
func NewDispatcher(o Options) *Dispatcher {
	if o.Secrets == nil {
		o.Secrets = o.Providers
	}
	if o.Hooks == nil {
		o.Hooks = webhooks.NewCaller()
	}
	if o.Workers <= 0 {
		o.Workers = DefaultWorkers
	}
	if o.QueueSize <= 0 {
		o.QueueSize = DefaultQueueSize
	}
	if o.MaxDestinations <= 0 {
		o.MaxDestinations = DefaultMaxDestinations
	}
	if o.SendTimeout <= 0 {
		o.SendTimeout = DefaultTimeout
	}
	if o.JobTimeout <= 0 {
		o.JobTimeout = DefaultJobTimeout
	}
	if o.Metadata == nil {
		o.Metadata = FlaggerMetadata
	}
	log := o.Log
	if log.GetSink() == nil {
		log = ctrllog.Log.WithName("notify")
	}
	return &Dispatcher{opts: o, log: log, queue: make(chan job, o.QueueSize), dests: map[string]*destination{}}
}

// Alert enqueues the alert and returns at once.
func (d *Dispatcher) Alert(_ context.Context, cd *flaggerv1.Canary, severity flaggerv1.AlertSeverity, message string) {
	d.AlertWithMetadata(cd, severity, message, d.opts.Metadata(severity, message))
}

// AlertWithMetadata enqueues the alert, with the canary's metadata fields when metadata is true.
func (d *Dispatcher) AlertWithMetadata(cd *flaggerv1.Canary, severity flaggerv1.AlertSeverity, message string, metadata bool) {
	if !d.hasRecipient(cd, severity) {
		return
	}
	c := cd.DeepCopy()
	m := NewMessage(c, severity, message, d.opts.ClusterName, metadata)
	if len(canaryAlerts(c)) == 0 {
		// The global notifier needs no resolution: straight to its own queue.
		d.toDestination(globalDestination, c, KindAlert, message, d.sendJob(c, nil, d.opts.Global, m))
		return
	}
	d.enqueue(d.queue, c, KindAlert, message, func(ctx context.Context) {
		sends, errs := d.plan(ctx, c, m)
		for _, err := range errs {
			d.report(c, err)
		}
		for _, s := range sends {
			d.toDestination(s.dest, c, KindAlert, message, d.sendJob(c, s.alert, s.sender, m))
		}
	})
}

// globalDestination is the queue key of the global notifier, whose address the dispatcher does
// not know; it cannot collide with a URL's key, which always has a scheme.
const globalDestination = "global"

// sendJob posts m with s and reports a failure as the alert a's (nil for the global notifier).
func (d *Dispatcher) sendJob(cd *flaggerv1.Canary, a *flaggerv1.CanaryAlert, s Sender, m Message) func(ctx context.Context) {
	return func(ctx context.Context) {
		if err := d.sendOne(ctx, cd, a, s, m); err != nil {
			d.report(cd, err)
		}
	}
}

func (d *Dispatcher) sendOne(ctx context.Context, cd *flaggerv1.Canary, a *flaggerv1.CanaryAlert, s Sender, m Message) error {
	err := s.Send(ctx, m)
	if err == nil {
		return nil
	}
	if a == nil {
		return &AlertError{Reason: err.Error(), Err: err}
	}
	return d.alertError(cd, *a, "send error: "+err.Error(), err)
}

// Send delivers an alert synchronously and returns every failure (nil when all were delivered).
// The controller uses Alert; Send serves tests and tools.
func (d *Dispatcher) Send(ctx context.Context, cd *flaggerv1.Canary, severity flaggerv1.AlertSeverity, message string) error {
	m := NewMessage(cd, severity, message, d.opts.ClusterName, d.opts.Metadata(severity, message))
	if len(canaryAlerts(cd)) == 0 {
		if d.opts.Global == nil {
			return nil
		}
		return d.sendOne(ctx, cd, nil, d.opts.Global, m)
	}
	sends, errs := d.plan(ctx, cd, m)
	for _, s := range sends {
		if err := d.sendOne(ctx, cd, s.alert, s.sender, m); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Dropped counts the alerts and events dropped because a queue was full, there were too many
// destinations or the dispatcher stopped.
func (d *Dispatcher) Dropped() uint64 { return d.dropped.Load() }

// hasRecipient tells, without I/O, whether an alert would go anywhere.
func (d *Dispatcher) hasRecipient(cd *flaggerv1.Canary, severity flaggerv1.AlertSeverity) bool {
	alerts := canaryAlerts(cd)
	if len(alerts) == 0 {
		return d.opts.Global != nil
	}
	for _, a := range alerts {
		if Matches(a.Severity, severity) {
			return true
		}
	}
	return false
}

func canaryAlerts(cd *flaggerv1.Canary) []flaggerv1.CanaryAlert {
	if a := cd.GetAnalysis(); a != nil {
		return a.Alerts
	}
	return nil
}

// send is one post an alert needs: the sender of an AlertProvider and the queue it goes to.
type send struct {
	alert  *flaggerv1.CanaryAlert
	sender Sender
	dest   string
}

// plan resolves the provider of every alert of the canary whose severity filter lets m through.
func (d *Dispatcher) plan(ctx context.Context, cd *flaggerv1.Canary, m Message) ([]send, []error) {
	var (
		sends []send
		errs  []error
	)
	for _, a := range canaryAlerts(cd) {
		if !Matches(a.Severity, m.Severity) {
			continue
		}
		s, dest, err := d.resolve(ctx, cd, a)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		sends = append(sends, send{alert: &a, sender: s, dest: dest})
	}
	return sends, errs
}

// DestinationKey is the queue key of a receiver: its scheme, host and path, without userinfo,
// query or fragment, so that posts to one service endpoint share one queue. An address that
// does not parse is its own key.
func DestinationKey(address string) string {
	u, err := url.Parse(strings.TrimSpace(address))
	if err != nil || u.Scheme == "" {
		return strings.TrimSpace(address)
	}
	return strings.ToLower(u.Scheme) + "://" + strings.ToLower(u.Host) + u.Path
}

// resolve builds the sender of an alert from its AlertProvider and the provider's Secret.
func (d *Dispatcher) resolve(ctx context.Context, cd *flaggerv1.Canary, a flaggerv1.CanaryAlert) (Sender, string, error) {
	if d.opts.Providers == nil {
		return nil, "", d.alertError(cd, a, "error: no reader for alert providers", ErrProviderNotFound)
	}
	key := providerKey(cd, a)
	var p flaggerv1.AlertProvider
	if err := d.opts.Providers.Get(ctx, key, &p); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, "", d.alertError(cd, a, "not found", ErrProviderNotFound)
		}
		return nil, "", d.alertError(cd, a, "error: "+err.Error(), err)
	}
	c := ProviderConfig{
		Type:     p.Spec.Type,
		Address:  p.Spec.Address,
		Proxy:    p.Spec.Proxy,
		Username: p.Spec.Username,
		Channel:  p.Spec.Channel,
		Timeout:  d.opts.SendTimeout,
	}
	if c.Username == "" {
		c.Username = DefaultUsername
	}
	if c.Channel == "" {
		c.Channel = DefaultChannel
	}
	if ref := p.Spec.SecretRef; ref != nil {
		var s corev1.Secret
		if err := d.opts.Secrets.Get(ctx, types.NamespacedName{Namespace: key.Namespace, Name: ref.Name}, &s); err != nil {
			if apierrors.IsNotFound(err) {
				return nil, "", d.alertError(cd, a, fmt.Sprintf("secretRef %s not found", ref.Name), ErrSecretNotFound)
			}
			return nil, "", d.alertError(cd, a, fmt.Sprintf("secretRef %s error: %v", ref.Name, err), err)
		}
		address, ok := s.Data["address"]
		if !ok {
			return nil, "", d.alertError(cd, a, fmt.Sprintf("secret %s does not contain an address", ref.Name), ErrNoAddress)
		}
		c.Address = strings.TrimSpace(string(address))
		c.Token = strings.TrimSpace(string(s.Data["token"]))
	}
	if strings.TrimSpace(c.Address) == "" {
		return nil, "", d.alertError(cd, a, "has no address", ErrNoAddress)
	}
	s, err := NewSender(c)
	if err != nil {
		return nil, "", d.alertError(cd, a, "error: "+err.Error(), err)
	}
	return s, DestinationKey(c.Address), nil
}

// providerKey is the alert's providerRef, in the canary's namespace unless it names another.
func providerKey(cd *flaggerv1.Canary, a flaggerv1.CanaryAlert) types.NamespacedName {
	ns := a.ProviderRef.Namespace
	if ns == "" {
		ns = cd.Namespace
	}
	return types.NamespacedName{Namespace: ns, Name: a.ProviderRef.Name}
}

func (d *Dispatcher) alertError(cd *flaggerv1.Canary, a flaggerv1.CanaryAlert, reason string, err error) *AlertError {
	return &AlertError{Alert: a.Name, Provider: providerKey(cd, a), Reason: reason, Err: err}
}

func (d *Dispatcher) report(cd *flaggerv1.Canary, err error) {
	d.failed(KindAlert)
	if d.opts.Report != nil {
		d.opts.Report(cd, err)
		return
	}
	d.log.Error(err, "alert not delivered", "canary", cd.Key())
}

// failed counts one failed notification of kind.
func (d *Dispatcher) failed(kind string) {
	if d.opts.Counters != nil {
		d.opts.Counters.NotificationFailed(kind)
	}
}

// dropLocked counts and logs one dropped notification; d.mu is held.
func (d *Dispatcher) dropLocked(reason string, err error, canary, kind, message string) {
	d.dropped.Add(1)
	if d.opts.Counters != nil {
		d.opts.Counters.NotificationDropped(reason)
	}
	d.log.Error(err, "dropping "+kind, "canary", canary, "message", message, "reason", reason)
}

// enqueue hands a job to queue without ever blocking.
func (d *Dispatcher) enqueue(queue chan job, cd *flaggerv1.Canary, kind, message string, run func(ctx context.Context)) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.enqueueLocked(queue, cd, kind, message, run)
}

func (d *Dispatcher) enqueueLocked(queue chan job, cd *flaggerv1.Canary, kind, message string, run func(ctx context.Context)) {
	if d.closed {
		d.dropLocked(DropStopped, ErrStopped, cd.Key(), kind, message)
		return
	}
	select {
	case queue <- job{canary: cd.Key(), kind: kind, run: run}:
		d.pending++
	default:
		d.dropLocked(DropQueueFull, ErrQueueFull, cd.Key(), kind, message)
	}
}

// toDestination hands a job to the queue of the destination key, creating the queue (and its
// worker, once the dispatcher runs) on first use, without ever blocking.
func (d *Dispatcher) toDestination(key string, cd *flaggerv1.Canary, kind, message string, run func(ctx context.Context)) {
	d.mu.Lock()
	defer d.mu.Unlock()
	dest, ok := d.dests[key]
	if !ok && !d.closed {
		if len(d.dests) >= d.opts.MaxDestinations {
			d.dropLocked(DropTooManyDestinations, ErrTooManyDests, cd.Key(), kind, message)
			return
		}
		dest = &destination{queue: make(chan job, d.opts.QueueSize)}
		d.dests[key] = dest
		d.startWorkerLocked(dest.queue)
	}
	if dest == nil { // closed
		d.dropLocked(DropStopped, ErrStopped, cd.Key(), kind, message)
		return
	}
	d.enqueueLocked(dest.queue, cd, kind, message, run)
}

// startWorkerLocked runs a worker on queue when the dispatcher runs; Start runs the workers of the
// queues made before it. Once Start stops waiting for workers (stopping), none is added.
func (d *Dispatcher) startWorkerLocked(queue chan job) {
	if d.runCtx == nil || d.stopping {
		return
	}
	ctx := d.runCtx
	d.workers.Go(func() { d.work(ctx, queue) })
}

// Start runs the workers until ctx ends, then drops what is still queued. It returns nil.
func (d *Dispatcher) Start(ctx context.Context) error {
	d.mu.Lock()
	if d.started {
		d.mu.Unlock()
		return errors.New("notify: the dispatcher is already started")
	}
	d.started = true
	var wg sync.WaitGroup
	d.runCtx, d.workers = ctx, &wg
	for range d.opts.Workers {
		d.startWorkerLocked(d.queue)
	}
	for _, dest := range d.dests {
		d.startWorkerLocked(dest.queue)
	}
	d.mu.Unlock()

	<-ctx.Done()
	d.mu.Lock()
	d.stopping = true
	d.mu.Unlock()
	wg.Wait()

	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = true
	d.drainLocked(d.queue)
	for _, dest := range d.dests {
		d.drainLocked(dest.queue)
	}
	return nil
}

// drainLocked drops what is left in queue once the workers stopped.
func (d *Dispatcher) drainLocked(queue chan job) {
	for {
		select {
		case j := <-queue:
			d.dropLocked(DropStopped, ErrStopped, j.canary, "queued "+j.kind, "")
			d.doneLocked()
		default:
			return
		}
	}
}

// NeedLeaderElection is false: every replica runs the pool, but only the leader's reconciles fill it.
func (d *Dispatcher) NeedLeaderElection() bool { return false }

func (d *Dispatcher) work(ctx context.Context, queue chan job) {
	for {
		select {
		case <-ctx.Done():
			return
		case j := <-queue:
			d.run(ctx, j)
		}
	}
}

func (d *Dispatcher) run(ctx context.Context, j job) {
	defer func() {
		if r := recover(); r != nil {
			d.failed(j.kind)
			d.log.Error(fmt.Errorf("panic: %v", r), "alert worker recovered", "canary", j.canary)
		}
		d.mu.Lock()
		d.doneLocked()
		d.mu.Unlock()
	}()
	ctx, cancel := context.WithTimeout(ctx, d.opts.JobTimeout)
	defer cancel()
	j.run(ctx)
}

func (d *Dispatcher) doneLocked() {
	d.pending--
	if d.pending == 0 {
		for _, c := range d.idle {
			close(c)
		}
		d.idle = nil
	}
}

// Flush waits until every enqueued alert and event has been handled (or dropped), or ctx ends.
func (d *Dispatcher) Flush(ctx context.Context) error {
	d.mu.Lock()
	if d.pending == 0 {
		d.mu.Unlock()
		return nil
	}
	c := make(chan struct{})
	d.idle = append(d.idle, c)
	d.mu.Unlock()
	select {
	case <-c:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

var _ Notifier = (*Dispatcher)(nil)
