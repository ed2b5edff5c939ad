package controller

import (
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

// staleCache reports whether the cached canary predates our last status write.
func (r *CanaryReconciler) staleCache(cd *flaggerv1.Canary) bool {
	v, ok := r.written.Load(key(cd))
	if !ok {
		return false
	}
	w := v.(writtenStatus)
	if equality.Semantic.DeepEqual(withoutTimes(w.status), withoutTimes(cd.Status)) || r.Now().Sub(w.at) > cacheLag {
		r.written.Delete(key(cd))
		return false
	}
	return true
}
