package mimetree

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mxray/mxray/internal/testutil"
)

// TestCorpora parses every message of the report corpora: none may fail,
// and every multipart must yield parts. The report parsers' own tests
// check the content.
func TestCorpora(t *testing.T) {
	n := 0
	for _, set := range []string{"dsn-bounces", "dmarc-failure-reports"} {
		dir := testutil.Shared(t, set)
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".eml") {
				return err
			}
			n++
			raw, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			root, err := Parse(raw)
			if err != nil {
				t.Errorf("%s: %v", path, err)
				return nil
			}
			if root.IsMultipart() && len(root.Children) == 0 && !strings.HasSuffix(path, "rfc3464-06.eml") {
				// rfc3464-06 is a multipart/report whose body has no
				// delimiter lines at all.
				t.Errorf("%s: %s without parts (%v)", path, root.MediaType, root.Defects)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if n < 150 {
		t.Errorf("only %d messages found", n)
	}
}
