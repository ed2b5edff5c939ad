package cli

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
)

// prometheusAnswering is an HTTP server on 127.0.0.1 that answers every instant query of
// Prometheus's HTTP API (/api/v1/query) with one sample of value: the metric's value is what the
// test is about, not PromQL.
func prometheusAnswering(t *testing.T, value string) string {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/query" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1700000000,%q]}]}}`, value)
	}))
	t.Cleanup(s.Close)
	return s.URL
}
