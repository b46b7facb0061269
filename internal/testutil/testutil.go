// Package testutil holds helpers shared by mxray's tests: where the external
// corpora live, and small assertions that several packages need.
package testutil

import (
	"os"
	"path/filepath"
	"testing"
)

// RepoRoot returns the directory holding go.mod, found by walking up from the
// working directory of the test (Go runs each package's tests in its own
// directory).
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatalf("getwd: %v", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatalf("no go.mod above the test's directory")
		}
		dir = parent
	}
}

// Shared returns the path of an external corpus set under ../shared/testdata
// (beside the repository), for example Shared(t, "spf-test-suite"). The
// corpora are part of every checkout that CI makes, so a missing set fails
// the test rather than skipping it.
func Shared(t testing.TB, set string) string {
	t.Helper()
	p := filepath.Join(filepath.Dir(RepoRoot(t)), "shared", "testdata", set)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("external corpus %s missing (expected ../shared/testdata beside the repository): %v", set, err)
	}
	return p
}
