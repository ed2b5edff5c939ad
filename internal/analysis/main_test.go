package analysis

import (
	"os"
	"testing"

	"github.com/pennant/pennant/internal/testenv"
)

// The tests that read a Knative Service or Keptn's metrics do so on a real API server with the
// upstream CRDs (test/crds); the environment starts on the first testenv.Start, so the other tests
// cost nothing more.
func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m, testenv.WithFixtureCRDs("knative.yaml", "keptn.yaml")))
}
