package gates

import (
	"context"
	"sync"
	"time"
)

// MemoryStore keeps the gates in memory, as Flagger's load tester does: lost on restart and not shared
// by replicas. It is meant for running the load tester outside a cluster and for tests. It validates
// and bounds like ConfigMapStore, so both answer the same.
type MemoryStore struct {
	mu      sync.Mutex
	data    map[string]string
	maxOpen int
}

var _ Store = (*MemoryStore)(nil)

// NewMemoryStore keeps at most maxOpen open gates (DefaultMaxOpenGates when 0).
func NewMemoryStore(maxOpen int) *MemoryStore {
	if maxOpen <= 0 {
		maxOpen = DefaultMaxOpenGates
	}
	return &MemoryStore{maxOpen: maxOpen}
}

// IsOpen tells whether the gate is open; a check never stores anything.
func (m *MemoryStore) IsOpen(_ context.Context, kind Kind, k Key) (bool, error) {
	if err := Validate(kind, k); err != nil {
		return false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	_, open := m.data[dataKey(kind, k)]
	return open, nil
}

// Set opens or closes the gate.
func (m *MemoryStore) Set(_ context.Context, kind Kind, k Key, open bool) error {
	if err := Validate(kind, k); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	next, changed, err := change(m.data, dataKey(kind, k), open, time.Now().UTC().Format(time.RFC3339), m.maxOpen)
	if changed {
		m.data = next
	}
	return err
}
