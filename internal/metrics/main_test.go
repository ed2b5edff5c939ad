package metrics

import (
	"os"
	"testing"

	"github.com/pennant/pennant/internal/testenv"
)

// The keptn tests run on a real API server with Keptn's CRDs (test/crds/keptn.yaml); the
// environment starts on the first testenv.Start, so the other tests cost nothing more.
func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m, testenv.WithFixtureCRDs("keptn.yaml")))
}
