package webhooks

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

// Checksum identifies the revision under analysis (target revision and tracked configs), so that a
// webhook receiver such as the load tester can tell two releases apart.
func Checksum(cd *flaggerv1.Canary) string {
	var tracked map[string]string
	if cd.Status.TrackedConfigs != nil {
		tracked = *cd.Status.TrackedConfigs
	}
	b, _ := json.Marshal(struct {
		TrackedConfigs  map[string]string `json:"trackedConfigs,omitempty"`
		LastAppliedSpec string            `json:"lastAppliedSpec"`
	}{tracked, cd.Status.LastAppliedSpec})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}
