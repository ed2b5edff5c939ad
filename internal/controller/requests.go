package controller

import (
	"context"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
	"github.com/pennant/pennant/internal/request"
)

// pendingRequest is the canary's manual request (the pennant.dev/request annotation) when the
// status has not recorded it as handled yet; nil otherwise, without an API request, so that idle
// canaries cost none. The actor comes from the managedFields entry that wrote the annotation:
// the cache keeps no managedFields, so a new request costs one read from the API server.
func (r *CanaryReconciler) pendingRequest(ctx context.Context, cd *flaggerv1.Canary) *request.Pending {
	value, ok := cd.Annotations[request.Annotation]
	if !ok {
		return nil
	}
	id := request.ID(value)
	if last := cd.Status.LastRequest; last != nil && last.ID == id {
		return nil
	}
	p := &request.Pending{ID: id}
	p.Request, p.Err = request.Parse(value)
	p.Actor = request.Actor(p.User, r.requestManager(ctx, cd, value))
	return p
}

// requestManager is the field manager that wrote the request's annotation ("" when unknown).
func (r *CanaryReconciler) requestManager(ctx context.Context, cd *flaggerv1.Canary, value string) string {
	fields := cd.ManagedFields
	if len(fields) == 0 && r.apiReader != nil {
		fresh := &flaggerv1.Canary{}
		if err := r.apiReader.Get(ctx, key(cd), fresh); err != nil || fresh.Annotations[request.Annotation] != value {
			// Gone, or another request meanwhile (whose change wakes the canary again).
			return ""
		}
		fields = fresh.ManagedFields
	}
	return request.Manager(fields)
}
