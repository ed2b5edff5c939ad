package main

import (
	"fmt"

	"sigs.k8s.io/controller-runtime/pkg/cache"

	"github.com/pennant/pennant/internal/controller"
	"github.com/pennant/pennant/internal/router"
)

// checkFlags reports the flag values the controller would refuse or misread, without connecting to
// a cluster: -check-flags runs it so that an install (the Helm chart's tests) can check the
// arguments it renders against the real binary.
func checkFlags(o options) error {
	if o.meshProvider != "" {
		if _, err := router.NewRegistry(nil, router.Options{}, nil).For(o.meshProvider); err != nil {
			return fmt.Errorf("-mesh-provider: %w", err)
		}
	}
	if o.threadiness < 1 {
		return fmt.Errorf("-threadiness=%d: at least 1 worker is needed", o.threadiness)
	}
	if o.kubeconfigQPS < 1 || o.kubeconfigBurst < 1 {
		return fmt.Errorf("-kubeconfig-qps=%d -kubeconfig-burst=%d: both must be positive", o.kubeconfigQPS, o.kubeconfigBurst)
	}
	if o.maxConcurrentReleases < 0 {
		return fmt.Errorf("-max-concurrent-releases=%d: 0 (no limit) or more", o.maxConcurrentReleases)
	}
	if err := controller.WatchShard(&cache.Options{}, o.watchLabelSelector); err != nil {
		return err
	}
	return nil
}
