package controller

import (
	"context"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

// cacheLag is how long a status we wrote may take to show up in the informer cache before we stop
// waiting for it (someone else may have changed the status meanwhile).
const cacheLag = 5 * time.Second

// staleRetry is how soon to look again when the cache lags behind our last status write.
const staleRetry = 200 * time.Millisecond

type writtenStatus struct {
	status flaggerv1.CanaryStatus
	at     time.Time
}

// rememberWrite notes the status just written, so that decisions are not taken on an older copy.
func (r *CanaryReconciler) rememberWrite(cd *flaggerv1.Canary) {
	r.written.Store(key(cd), writtenStatus{status: *cd.Status.DeepCopy(), at: r.Now()})
}

// current is the canary to decide from: the cached one, once it shows our last status write. The
// cache catches up within moments (wait: look again shortly); a watch broken under load can keep it
// behind for longer, and deciding again from a status the canary has moved past would repeat that
// step's events (its write would only conflict). After cacheLag the API server's copy is read
// instead, at most once per cacheLag and canary, and decided from: it also shows a status someone
// else wrote meanwhile.
func (r *CanaryReconciler) current(ctx context.Context, cached *flaggerv1.Canary) (cd *flaggerv1.Canary, wait bool, err error) {
	v, ok := r.written.Load(key(cached))
	if !ok {
		return cached, false, nil
	}
	w := v.(writtenStatus)
	if equality.Semantic.DeepEqual(withoutTimes(w.status), withoutTimes(cached.Status)) {
		r.written.Delete(key(cached))
		return cached, false, nil
	}
	if r.Now().Sub(w.at) <= cacheLag {
		return nil, true, nil
	}
	if r.apiReader == nil {
		return cached, false, nil
	}
	live := &flaggerv1.Canary{}
	if err := r.apiReader.Get(ctx, key(cached), live); err != nil {
		return nil, false, err
	}
	// What the cache is to catch up to now: the live status, read now.
	r.written.Store(key(cached), writtenStatus{status: *live.Status.DeepCopy(), at: r.Now()})
	return live, false, nil
}
