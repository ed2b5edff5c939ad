package gates

import (
	"fmt"
	"maps"
)

// DefaultMaxOpenGates bounds the open gates a ConfigMapStore keeps. A closed gate takes no room (its
// key is removed), so this is the number of gates open at the same time. A key is at most 253 bytes
// and a value about 25, so the ConfigMap stays far below the API server's 1 MiB limit on its data.
const DefaultMaxOpenGates = 2000

// maxDataBytes refuses a change that would make the ConfigMap's data larger than this, whatever the
// entry bound, leaving room under the 1 MiB limit for the object's metadata.
const maxDataBytes = 900 << 10

// change is the data of the gates' ConfigMap after setting the gate stored under key: an open gate is
// present with the time it was opened (for whoever reads the ConfigMap), a closed gate is absent.
// changed is false when the gate already was in that state, and data is then returned as is;
// otherwise data is left untouched and a new map returned. Opening refuses to grow the data beyond
// maxOpen entries or maxDataBytes.
func change(data map[string]string, key string, open bool, openedAt string, maxOpen int) (next map[string]string, changed bool, err error) {
	_, isOpen := data[key]
	if isOpen == open {
		return data, false, nil
	}
	next = maps.Clone(data)
	if next == nil {
		next = map[string]string{}
	}
	if !open {
		delete(next, key)
		return next, true, nil
	}
	if len(data) >= maxOpen {
		return nil, false, fmt.Errorf("%w: %d gates are open, the most this load tester keeps; close some", ErrFull, len(data))
	}
	next[key] = openedAt
	if size := dataSize(next); size > maxDataBytes {
		return nil, false, fmt.Errorf("%w: the gates would take %d bytes, more than %d", ErrFull, size, maxDataBytes)
	}
	return next, true, nil
}

// dataSize is the size of a ConfigMap's data as the API server counts it against its limit.
func dataSize(data map[string]string) int {
	n := 0
	for k, v := range data {
		n += len(k) + len(v)
	}
	return n
}
