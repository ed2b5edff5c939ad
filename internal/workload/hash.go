package workload

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
)

// revisionHash is the hex of the first 16 bytes of the sha256 of v's canonical JSON.
//
// Canonical means: marshalled, read back as generic maps, stripped of empty values, marshalled again
// (encoding/json sorts map keys). So the hash depends on what v says, not on the Go struct that holds
// it: a newer k8s.io/api that adds a field nobody sets, or a nil versus an empty map, changes nothing.
// This is what keeps an upgrade of Pennant from triggering rollouts (Flagger issues #1799, #1201).
func revisionHash(v any) (string, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("marshalling for hash: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber() // keep numbers as written: no float64 round trip
	var generic any
	if err := dec.Decode(&generic); err != nil {
		return "", fmt.Errorf("reading back for hash: %w", err)
	}
	pruned, _ := pruneEmpty(generic)
	canonical, err := json.Marshal(pruned)
	if err != nil {
		return "", fmt.Errorf("marshalling canonical form: %w", err)
	}
	sum := sha256.Sum256(canonical)
	return hex.EncodeToString(sum[:16]), nil
}

// pruneEmpty drops nil, "", and maps and slices that are empty once pruned. It reports whether v itself
// is empty. false and 0 are kept: they can mean something different from unset.
func pruneEmpty(v any) (any, bool) {
	switch t := v.(type) {
	case nil:
		return nil, true
	case string:
		return t, t == ""
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, item := range t {
			if pruned, empty := pruneEmpty(item); !empty {
				out[k] = pruned
			}
		}
		return out, len(out) == 0
	case []any:
		out := make([]any, 0, len(t))
		for _, item := range t {
			// An empty element still counts: dropping it would shift the positions of the others.
			pruned, _ := pruneEmpty(item)
			out = append(out, pruned)
		}
		return out, len(out) == 0
	default:
		return v, false
	}
}
