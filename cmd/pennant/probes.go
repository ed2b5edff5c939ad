package main

import (
	"context"
	"errors"
	"net/http"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/healthz"
)

// cacheSyncer is the part of the manager's cache that tells whether its informers have synced.
type cacheSyncer interface {
	WaitForCacheSync(ctx context.Context) bool
}

// cacheSyncWait bounds how long one readiness probe waits for the caches.
const cacheSyncWait = time.Second

// cachesSynced is the readiness check: ready only once every informer has synced. It does not
// depend on leadership, so leader-election standbys are ready and can take over at once.
func cachesSynced(c cacheSyncer) healthz.Checker {
	return func(req *http.Request) error {
		ctx, cancel := context.WithTimeout(req.Context(), cacheSyncWait)
		defer cancel()
		if !c.WaitForCacheSync(ctx) {
			return errors.New("caches have not synced yet")
		}
		return nil
	}
}

// readyHandler serves a readiness check on -port (Flagger's port), next to /healthz.
func readyHandler(check healthz.Checker) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if err := check(req); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("OK"))
	})
}
