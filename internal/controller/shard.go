package controller

import (
	"fmt"
	"hash/fnv"

	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

// ShardKeyLabel is Flux's sharding label: a controller started with
// -watch-label-selector=sharding.fluxcd.io/key=shard1 owns the canaries labelled so, and the main
// one, with !sharding.fluxcd.io/key, those without the label.
const ShardKeyLabel = "sharding.fluxcd.io/key"

// WatchShard restricts a manager's cache of Canaries to those matching selector (a label selector
// as kubectl's -l; empty: every canary), so that several controllers each own a disjoint set. Only
// Canaries are filtered: the objects a canary refers to are read whatever their labels. A canary
// relabelled to another shard leaves this cache as if deleted (its in-memory state is dropped,
// nothing in the cluster is touched) and enters the other's, which carries on from its status.
func WatchShard(opts *cache.Options, selector string) error {
	if selector == "" {
		return nil
	}
	sel, err := labels.Parse(selector)
	if err != nil {
		return fmt.Errorf("-watch-label-selector %q: %w", selector, err)
	}
	if opts.ByObject == nil {
		opts.ByObject = map[client.Object]cache.ByObject{}
	}
	opts.ByObject[&flaggerv1.Canary{}] = cache.ByObject{Label: sel}
	return nil
}

// ShardLeaseName is the leader election Lease of the shard of selector: base (Flagger's) for the
// unsharded controller, so that it keeps taking part in Flagger's election, and one per selector
// otherwise, so that each shard elects its own leader.
func ShardLeaseName(base, selector string) string {
	if selector == "" {
		return base
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(selector))
	return fmt.Sprintf("%s-shard-%08x", base, h.Sum32())
}
