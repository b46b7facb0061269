package maillog

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/mxray/mxray/internal/testutil"
)

// generateLog runs the shared deterministic generator into dir.
func generateLog(tb testing.TB, dir string, messages string) string {
	tb.Helper()
	gen := filepath.Join(filepath.Dir(testutil.RepoRoot(tb)), "shared", "bench", "gen-postfix-log")
	py, err := exec.LookPath("python3")
	if err != nil {
		tb.Fatalf("python3 is needed to run %s: %v", gen, err)
	}
	out, err := exec.Command(py, gen, "--messages", messages, "--seed", "7").Output()
	if err != nil {
		tb.Fatalf("%s: %v", gen, err)
	}
	p := filepath.Join(dir, "mail.log")
	if err := os.WriteFile(p, out, 0o644); err != nil {
		tb.Fatal(err)
	}
	return p
}

func BenchmarkSummary(b *testing.B) {
	p := generateLog(b, b.TempDir(), "20000")
	data, err := os.ReadFile(p)
	if err != nil {
		b.Fatal(err)
	}
	opts := Options{Reference: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Summarize(context.Background(), opts, bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkScanLine measures the per-line scan alone, on one core.
func BenchmarkScanLine(b *testing.B) {
	p := generateLog(b, b.TempDir(), "20000")
	data, _ := os.ReadFile(p)
	lines := bytes.Split(data, []byte("\n"))
	a := NewAccumulator(Options{Reference: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)})
	sc := a.scanner()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		for _, l := range lines {
			var o op
			sc.out = lineSrc{data: l, arena: sc.out.arena[:0]}
			sc.scanLine(l, &o)
		}
	}
}
