package controller

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

// reservationTTL bounds how long a slot stays reserved for a release whose start the cache has
// not shown yet (its status write failed, or the cache lags).
const reservationTTL = time.Minute

// releaseSlots bounds the releases in flight at once (-max-concurrent-releases), so that a
// ConfigMap shared by hundreds of canaries does not start hundreds of analyses together. The
// count comes from the cache (the canaries' phases), so it holds across restarts; the mutex and
// the reservations cover the moment between a decision to start and the cache seeing it. Queued
// releases start in the order they were queued (status.lastTransitionTime, then name).
type releaseSlots struct {
	limit int
	cache client.Reader

	mu sync.Mutex
	// reserved are the releases started (or about to be) that the cache may not show in flight
	// yet; ended those that ended, which it may still show in flight.
	reserved, ended map[types.NamespacedName]time.Time
}

func newReleaseSlots(limit int, cache client.Reader) *releaseSlots {
	return &releaseSlots{limit: limit, cache: cache,
		reserved: map[types.NamespacedName]time.Time{}, ended: map[types.NamespacedName]time.Time{}}
}

// take reserves a slot for canary cd's release. When there is none, queued says why, for the
// status; when it returns no error and an empty queued, the caller must give back the slot
// (giveBack) unless its decision started the release.
func (s *releaseSlots) take(ctx context.Context, cd *flaggerv1.Canary, now time.Time) (queued string, err error) {
	if s == nil || s.limit <= 0 {
		return "", nil
	}
	var list flaggerv1.CanaryList
	if err := s.cache.List(ctx, &list, client.UnsafeDisableDeepCopy); err != nil {
		return "", err
	}
	self := key(cd)
	s.mu.Lock()
	defer s.mu.Unlock()
	inFlight := map[types.NamespacedName]bool{}
	for i := range list.Items {
		c := &list.Items[i]
		k := key(c)
		if at, ok := s.reserved[k]; ok && (c.Status.ReleaseInFlight() || c.Status.LastTransitionTime.After(at)) {
			delete(s.reserved, k) // the cache shows the release started (it counts from here), or over
		}
		if _, ok := s.ended[k]; ok && !c.Status.ReleaseInFlight() {
			delete(s.ended, k) // the cache has caught up with its end
		}
		_, over := s.ended[k]
		if k != self && c.Status.ReleaseInFlight() && !over {
			inFlight[k] = true
		}
	}
	// A reserved release has left the queue, whatever the lagging cache says.
	waiting := queueOf(list.Items, func(k types.NamespacedName) bool { _, ok := s.reserved[k]; return ok || k == self })
	for k, at := range s.ended {
		if now.Sub(at) > reservationTTL {
			delete(s.ended, k)
		}
	}
	for k, at := range s.reserved {
		if now.Sub(at) > reservationTTL {
			delete(s.reserved, k)
		} else if k != self {
			inFlight[k] = true
		}
	}
	me := queuedRelease{self, now}
	if cd.Status.ReleaseQueued() {
		me.since = cd.Status.LastTransitionTime.Time
	}
	ahead, _ := slices.BinarySearchFunc(waiting, me, queuedRelease.compare)
	if len(inFlight)+ahead >= s.limit {
		return fmt.Sprintf("%d releases in flight, the controller's limit (-max-concurrent-releases)", s.limit), nil
	}
	s.reserved[self] = now
	return "", nil
}

// giveBack frees the slot reserved for a canary whose decision did not start its release.
func (s *releaseSlots) giveBack(c types.NamespacedName) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.reserved, c)
}

// release frees the slot of a release that ended (its status is written; the cache may lag).
func (s *releaseSlots) release(c types.NamespacedName, now time.Time) {
	if s == nil || s.limit <= 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.reserved, c)
	s.ended[c] = now
}

// queued lists the canaries whose release waits for a slot, in queue order.
func (s *releaseSlots) queued(ctx context.Context) []types.NamespacedName {
	if s == nil || s.limit <= 0 {
		return nil
	}
	var list flaggerv1.CanaryList
	if err := s.cache.List(ctx, &list, client.UnsafeDisableDeepCopy); err != nil {
		return nil
	}
	var out []types.NamespacedName
	for _, w := range queueOf(list.Items, func(types.NamespacedName) bool { return false }) {
		out = append(out, w.canary)
	}
	return out
}

// queueOf is the queue of the releases of canaries waiting for a slot, but those skip names, in
// order.
func queueOf(canaries []flaggerv1.Canary, skip func(types.NamespacedName) bool) []queuedRelease {
	var q []queuedRelease
	for i := range canaries {
		c := &canaries[i]
		if k := key(c); c.Status.ReleaseQueued() && !skip(k) {
			q = append(q, queuedRelease{k, c.Status.LastTransitionTime.Time})
		}
	}
	slices.SortFunc(q, queuedRelease.compare)
	return q
}

type queuedRelease struct {
	canary types.NamespacedName
	since  time.Time
}

// compare orders the queue: the longest waiting first, then by namespace and name.
func (q queuedRelease) compare(o queuedRelease) int {
	return cmp.Or(q.since.Compare(o.since), cmp.Compare(q.canary.Namespace, o.canary.Namespace), cmp.Compare(q.canary.Name, o.canary.Name))
}
