package notify

import (
	"context"
	"errors"
	"fmt"
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
	DefaultWorkers    = 4
	DefaultQueueSize  = 256
	DefaultJobTimeout = time.Minute
)

// Errors a Dispatcher reports, wrapped in an *AlertError; test them with errors.Is.
var (
	ErrProviderNotFound = errors.New("alert provider not found")
	ErrSecretNotFound   = errors.New("alert provider secret not found")
	ErrNoAddress        = errors.New("alert provider has no address")
	ErrQueueFull        = errors.New("the alert queue is full")
	ErrStopped          = errors.New("the alert dispatcher is stopped")
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
	// Secrets reads the Secrets of AlertProviders; Providers when nil. Pass the manager's API reader
	// when the cache should not hold Secrets.
	Secrets client.Reader
	// Global serves canaries without alerts (NewGlobalSender); nil drops their alerts.
	Global Sender
	// ClusterName (-cluster-name) adds a Cluster field to every alert when set.
	ClusterName string
	// EventWebhook (-event-webhook) receives the events of canaries without event webhooks.
	EventWebhook string
	// Hooks posts event webhooks; a webhooks.NewCaller() when nil.
	Hooks HookCaller
	// Workers and QueueSize size the pool (DefaultWorkers, DefaultQueueSize when zero).
	Workers   int
	QueueSize int
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

// Dispatcher is the Notifier of the controller. Alert and EventWebhook only enqueue: the alerts are
// resolved and posted by a small pool of workers, so that a slow or hanging chat service never
// holds a reconcile. When the queue is full, the alert is dropped and a warning logged. The pool
// runs between Start and the end of its context; it is a manager.Runnable.
type Dispatcher struct {
	opts  Options
	log   logr.Logger
	queue chan job

	mu      sync.Mutex
	closed  bool
	started bool
	pending int
	idle    []chan struct{}

	dropped atomic.Uint64
}

type job struct {
	canary string
	run    func(ctx context.Context)
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
	return &Dispatcher{opts: o, log: log, queue: make(chan job, o.QueueSize)}
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
	d.enqueue(c, "alert", message, func(ctx context.Context) {
		for _, err := range d.deliver(ctx, c, m) {
			d.report(c, err)
		}
	})
}

// Send delivers an alert synchronously and returns every failure (nil when all were delivered).
// The controller uses Alert; Send serves tests and tools.
func (d *Dispatcher) Send(ctx context.Context, cd *flaggerv1.Canary, severity flaggerv1.AlertSeverity, message string) error {
	m := NewMessage(cd, severity, message, d.opts.ClusterName, d.opts.Metadata(severity, message))
	return errors.Join(d.deliver(ctx, cd, m)...)
}

// Dropped counts the alerts and events dropped because the queue was full or the pool stopped.
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

// deliver posts the message to the global notifier when the canary has no alerts, else to the
// provider of every alert whose severity filter lets it through.
func (d *Dispatcher) deliver(ctx context.Context, cd *flaggerv1.Canary, m Message) []error {
	alerts := canaryAlerts(cd)
	if len(alerts) == 0 {
		if d.opts.Global == nil {
			return nil
		}
		if err := d.opts.Global.Send(ctx, m); err != nil {
			return []error{&AlertError{Reason: err.Error(), Err: err}}
		}
		return nil
	}
	var errs []error
	for _, a := range alerts {
		if !Matches(a.Severity, m.Severity) {
			continue
		}
		s, err := d.resolve(ctx, cd, a)
		if err == nil {
			if serr := s.Send(ctx, m); serr != nil {
				err = d.alertError(cd, a, "send error: "+serr.Error(), serr)
			}
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// resolve builds the sender of an alert from its AlertProvider and the provider's Secret.
func (d *Dispatcher) resolve(ctx context.Context, cd *flaggerv1.Canary, a flaggerv1.CanaryAlert) (Sender, error) {
	if d.opts.Providers == nil {
		return nil, d.alertError(cd, a, "error: no reader for alert providers", ErrProviderNotFound)
	}
	key := providerKey(cd, a)
	var p flaggerv1.AlertProvider
	if err := d.opts.Providers.Get(ctx, key, &p); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, d.alertError(cd, a, "not found", ErrProviderNotFound)
		}
		return nil, d.alertError(cd, a, "error: "+err.Error(), err)
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
				return nil, d.alertError(cd, a, fmt.Sprintf("secretRef %s not found", ref.Name), ErrSecretNotFound)
			}
			return nil, d.alertError(cd, a, fmt.Sprintf("secretRef %s error: %v", ref.Name, err), err)
		}
		address, ok := s.Data["address"]
		if !ok {
			return nil, d.alertError(cd, a, fmt.Sprintf("secret %s does not contain an address", ref.Name), ErrNoAddress)
		}
		c.Address = strings.TrimSpace(string(address))
		c.Token = strings.TrimSpace(string(s.Data["token"]))
	}
	if strings.TrimSpace(c.Address) == "" {
		return nil, d.alertError(cd, a, "has no address", ErrNoAddress)
	}
	s, err := NewSender(c)
	if err != nil {
		return nil, d.alertError(cd, a, "error: "+err.Error(), err)
	}
	return s, nil
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
	if d.opts.Report != nil {
		d.opts.Report(cd, err)
		return
	}
	d.log.Error(err, "alert not delivered", "canary", cd.Key())
}

// enqueue hands a job to the pool without ever blocking.
func (d *Dispatcher) enqueue(cd *flaggerv1.Canary, kind, message string, run func(ctx context.Context)) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		d.dropped.Add(1)
		d.log.Error(ErrStopped, "dropping "+kind, "canary", cd.Key(), "message", message)
		return
	}
	select {
	case d.queue <- job{canary: cd.Key(), run: run}:
		d.pending++
	default:
		d.dropped.Add(1)
		d.log.Error(ErrQueueFull, "dropping "+kind, "canary", cd.Key(), "message", message, "queueSize", cap(d.queue))
	}
}

// Start runs the workers until ctx ends, then drops what is still queued. It returns nil.
func (d *Dispatcher) Start(ctx context.Context) error {
	d.mu.Lock()
	if d.started {
		d.mu.Unlock()
		return errors.New("notify: the dispatcher is already started")
	}
	d.started = true
	d.mu.Unlock()

	var wg sync.WaitGroup
	for range d.opts.Workers {
		wg.Go(func() { d.work(ctx) })
	}
	wg.Wait()

	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = true
	for {
		select {
		case j := <-d.queue:
			d.dropped.Add(1)
			d.log.Error(ErrStopped, "dropping queued alert", "canary", j.canary)
			d.doneLocked()
		default:
			return nil
		}
	}
}

// NeedLeaderElection is false: every replica runs the pool, but only the leader's reconciles fill it.
func (d *Dispatcher) NeedLeaderElection() bool { return false }

func (d *Dispatcher) work(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case j := <-d.queue:
			d.run(ctx, j)
		}
	}
}

func (d *Dispatcher) run(ctx context.Context, j job) {
	defer func() {
		if r := recover(); r != nil {
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
