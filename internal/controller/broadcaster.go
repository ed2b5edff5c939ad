package controller

import (
	"errors"
	"hash/fnv"
	"math/rand/v2"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/record"
	ctrl "sigs.k8s.io/controller-runtime/pkg/log"
)

// NewEventBroadcaster is the manager's event broadcaster (ctrl.Options.EventBroadcaster), with
// room for a release's events. client-go's defaults, which Flagger keeps, lose them: a burst of 25
// events per canary and type, then one per 5 minutes (the spam filter drops the rest), and more
// than 10 events of one reason within 10 minutes become a single "(combined from similar events)"
// event. A ten-step release emits about 15 Normal events, so the second release within the hour
// lost its "Advance … canary weight" events, which alerts, dashboards and kubectl pennant read.
// A canary emits at most a few events per analysis interval (10s at least), so a burst of 200 and
// one event per 10 seconds after it still stops a hot loop.
//
// client-go also posts the events one at a time and drops what does not fit its queue of 1,000:
// 1,000 canaries whose steps fall due together lost four in five of a step's events. Pennant's
// broadcaster posts them on eventWorkers workers (one canary's events stay in order on one) and
// holds the broadcaster back rather than drop while eventBacklog events wait.
func NewEventBroadcaster() record.EventBroadcaster {
	return &eventBroadcaster{
		EventBroadcaster: record.NewBroadcasterWithCorrelatorOptions(eventCorrelation),
		stop:             make(chan struct{}),
	}
}

var eventCorrelation = record.CorrelatorOptions{
	BurstSize:            200,
	QPS:                  1. / 10,
	MaxEvents:            200,
	MaxIntervalInSeconds: 600,
}

const (
	// eventWorkers post events at once: about 8 × 200 a second on a local API server, against
	// the 1,000 events a second that 1,000 canaries' steps falling due together emit.
	eventWorkers = 8
	// eventBacklog is how many events may wait for the workers, about 1 KiB each.
	eventBacklog = 10000
	// eventTries and eventRetryDelay are client-go's: an API server that does not answer holds a
	// worker's events for up to two minutes, then the event is given up (and logged).
	eventTries      = 12
	eventRetryDelay = 10 * time.Second
)

type eventBroadcaster struct {
	record.EventBroadcaster
	stop chan struct{}
}

// StartRecordingToSink records to sink through workers.
func (b *eventBroadcaster) StartRecordingToSink(sink record.EventSink) watch.Interface {
	return b.EventBroadcaster.StartRecordingToSink(newParallelSink(sink, b.stop))
}

// Shutdown stops the broadcaster and the workers; events still waiting are dropped, as client-go
// drops its queue.
func (b *eventBroadcaster) Shutdown() {
	b.EventBroadcaster.Shutdown()
	select {
	case <-b.stop:
	default:
		close(b.stop)
	}
}

// parallelSink is a record.EventSink that answers at once and posts in the background, so that
// client-go's single recording goroutine never waits on the API server. It answers with the event
// it was given: the correlator only keeps its name (set by the recorder) and count from it.
type parallelSink struct {
	sink   record.EventSink
	queues []chan sinkCall
	stop   <-chan struct{}
}

// sinkCall is an event to create, or with a patch, an event to update (the correlator's count).
type sinkCall struct {
	event *corev1.Event
	patch []byte
}

func newParallelSink(sink record.EventSink, stop <-chan struct{}) *parallelSink {
	s := &parallelSink{sink: sink, stop: stop}
	for range eventWorkers {
		q := make(chan sinkCall, eventBacklog/eventWorkers)
		s.queues = append(s.queues, q)
		go s.work(q)
	}
	return s
}

func (s *parallelSink) Create(e *corev1.Event) (*corev1.Event, error) {
	s.enqueue(sinkCall{event: e.DeepCopy()})
	return e, nil
}

func (s *parallelSink) Patch(e *corev1.Event, patch []byte) (*corev1.Event, error) {
	s.enqueue(sinkCall{event: e.DeepCopy(), patch: patch})
	return e, nil
}

// Update is not used by client-go's recording; it goes straight to the sink.
func (s *parallelSink) Update(e *corev1.Event) (*corev1.Event, error) { return s.sink.Update(e) }

// enqueue hands the call to the worker of the event's object, so that its events keep their order
// (a count's patch after its event's creation).
func (s *parallelSink) enqueue(c sinkCall) {
	h := fnv.New32a()
	_, _ = h.Write([]byte(c.event.InvolvedObject.Namespace + "/" + c.event.InvolvedObject.Name))
	select {
	case s.queues[h.Sum32()%uint32(len(s.queues))] <- c:
	case <-s.stop:
	}
}

func (s *parallelSink) work(q <-chan sinkCall) {
	for {
		select {
		case c := <-q:
			s.post(c)
		case <-s.stop:
			return
		}
	}
}

// post writes one event, retrying as client-go does: on errors of the connection, not on the API
// server's refusals.
func (s *parallelSink) post(c sinkCall) {
	log := ctrl.Log.WithName("events")
	for try := range eventTries {
		if try > 0 {
			delay := eventRetryDelay
			if try == 1 {
				delay = time.Duration(rand.Float64() * float64(delay)) // the first retry is spread
			}
			select {
			case <-time.After(delay):
			case <-s.stop:
				return
			}
		}
		err := s.write(c)
		if !retried(err) {
			if err != nil && !apierrors.IsAlreadyExists(err) {
				log.Error(err, "Server rejected event (will not retry)", "object", c.event.InvolvedObject.Name, "message", c.event.Message)
			}
			return
		}
		if try == eventTries-1 {
			log.Error(err, "Unable to write event (retry limit exceeded)", "object", c.event.InvolvedObject.Name, "message", c.event.Message)
		}
	}
}

// write creates the event, or patches its count; a patch of an event that is gone creates it.
func (s *parallelSink) write(c sinkCall) error {
	if c.patch != nil {
		if _, err := s.sink.Patch(c.event, c.patch); !apierrors.IsNotFound(err) {
			return err
		}
	}
	e := c.event.DeepCopy()
	e.ResourceVersion = ""
	_, err := s.sink.Create(e)
	return err
}

// retried tells whether a write is worth trying again: not when it succeeded, nor when the API
// server refused it (it would refuse it again) or the request could not be built.
func retried(err error) bool {
	var status apierrors.APIStatus
	var construction *rest.RequestConstructionError
	return err != nil && !errors.As(err, &status) && !errors.As(err, &construction)
}
