package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

// syncFlag is a cache whose sync state the test sets.
type syncFlag struct{ synced atomic.Bool }

func (s *syncFlag) WaitForCacheSync(ctx context.Context) bool {
	if s.synced.Load() {
		return true
	}
	<-ctx.Done()
	return false
}

func TestReadyzIs503UntilTheCachesSync(t *testing.T) {
	cache := &syncFlag{}
	srv := httptest.NewServer(readyHandler(cachesSynced(cache)))
	defer srv.Close()
	status := func() int {
		resp, err := http.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		return resp.StatusCode
	}
	if got := status(); got != http.StatusServiceUnavailable {
		t.Errorf("before sync: /readyz = %d, want 503", got)
	}
	cache.synced.Store(true)
	if got := status(); got != http.StatusOK {
		t.Errorf("after sync: /readyz = %d, want 200", got)
	}
}
