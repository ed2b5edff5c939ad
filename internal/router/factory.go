package router

import (
	"fmt"
	"maps"
	"slices"
)

// Registry maps provider names to their routers.
type Registry map[string]Interface

// For returns the router of a provider, or an error naming the providers that exist.
func (r Registry) For(provider string) (Interface, error) {
	if rt, ok := r[provider]; ok {
		return rt, nil
	}
	return nil, fmt.Errorf("provider %q is not supported (supported: %v)", provider, slices.Sorted(maps.Keys(r)))
}
