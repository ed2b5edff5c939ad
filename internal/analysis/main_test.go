package analysis

import (
	"os"
	"testing"

	"github.com/pennant/pennant/internal/testenv"
)

// The tests that read a Knative Service do so on a real API server with Knative's CRD (test/crds);
// the environment starts on the first testenv.Start, so the other tests cost nothing more.
func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m, testenv.WithFixtureCRDs("knative.yaml")))
}
