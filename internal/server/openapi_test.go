package server

import (
	"os"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"gopkg.in/yaml.v3"
)

// TestOpenAPIDocumentsEveryEndpoint keeps docs/openapi.yaml in step with
// the handlers: the same paths, and the same public (token-less) ones.
func TestOpenAPIDocumentsEveryEndpoint(t *testing.T) {
	b, err := os.ReadFile("../../docs/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		OpenAPI string `yaml:"openapi"`
		Paths   map[string]map[string]struct {
			Security *[]map[string][]string `yaml:"security"`
		} `yaml:"paths"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	var paths, public []string
	for p, ops := range doc.Paths {
		for method, op := range ops {
			paths = append(paths, method+" "+p)
			if op.Security != nil && len(*op.Security) == 0 {
				public = append(public, method+" "+p)
			}
		}
	}
	slices.Sort(paths)
	slices.Sort(public)
	want := []string{"get /api/alerts", "get /api/health", "get /api/quarantine", "get /api/reports", "get /api/reports/{id}",
		"get /api/summary", "get /api/tls", "get /api/webhooks/outbox", "post " + DefaultTLSRPTPath}
	if diff := cmp.Diff(want, paths); diff != "" || doc.OpenAPI[:2] != "3." {
		t.Errorf("openapi %s paths (-want +got):\n%s", doc.OpenAPI, diff)
	}
	if diff := cmp.Diff([]string{"get /api/health", "post /tlsrpt"}, public); diff != "" {
		t.Errorf("operations without a token (-want +got):\n%s", diff)
	}
}
