package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mxray/mxray/internal/lab"
	"github.com/mxray/mxray/internal/testutil"
)

// reports import and summary with --db (and db in the config) work on a
// real PostgreSQL and say what they say on the SQLite file.
func TestReportsPostgres(t *testing.T) {
	ctx := context.Background()
	pg, err := lab.StartPostgres(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pg.Stop() })
	url, err := pg.CreateDatabase(ctx, "mxray")
	if err != nil {
		t.Fatal(err)
	}
	files := []string{
		filepath.Join(testutil.Shared(t, "dmarc-aggregate"), "dmarc-report-viewer", "gmxnet.xml"),
		filepath.Join(testutil.Shared(t, "dmarc-aggregate"), "dmarc-report-viewer", "hardfail.xml"),
		filepath.Join(testutil.Shared(t, "dmarc-aggregate"), "parsedmarc", "aggregate"),
		filepath.Join(testutil.Shared(t, "smtp-tls-reports"), "dmarc-report-viewer", "rfc-example.json"),
	}
	data := t.TempDir()
	var imports [2]importJSON
	for i, where := range [][]string{{"--db", url}, {"--data", data}} {
		out, errOut, code := cli(t, append(append([]string{"reports", "import", "--json"}, where...), files...)...)
		if code != 1 { // parsedmarc's invalid files are quarantined
			t.Fatalf("import %v: exit %d\n%s\n%s", where, code, out, errOut)
		}
		reportsResult(t, out, "reports import", &imports[i])
	}
	if imports[0].DMARC < 10 || imports[0].TLS != 1 || imports[0].Quarantined == 0 {
		t.Errorf("import into PostgreSQL: %+v", imports[0])
	}
	if diff := cmp.Diff(imports[1], imports[0]); diff != "" {
		t.Errorf("import (-sqlite +postgres):\n%s", diff)
	}
	if _, err := os.Stat(filepath.Join(data, "mxray.db")); err != nil {
		t.Errorf("the SQLite import did not write its file: %v", err)
	}

	sumPG, errOut, code := cli(t, "reports", "summary", "--json", "--db", url)
	if code != 0 {
		t.Fatalf("summary --db: exit %d\n%s\n%s", code, sumPG, errOut)
	}
	checkEnvelope(t, sumPG, "reports summary")
	sumSQLite, _, _ := cli(t, "reports", "summary", "--json", "--data", data)
	if diff := cmp.Diff(sumSQLite, sumPG); diff != "" {
		t.Errorf("summary (-sqlite +postgres):\n%s", diff)
	}
	// The human summary too.
	human, _, _ := cli(t, "reports", "summary", "--db", url)
	if h2, _, _ := cli(t, "reports", "summary", "--data", data); human != h2 || !strings.Contains(human, "example.com") {
		t.Errorf("human summary differs or is empty:\n%s\n----\n%s", human, h2)
	}

	// db in the config file, as for the systemd unit.
	cfg := filepath.Join(t.TempDir(), "mxray.toml")
	if err := os.WriteFile(cfg, []byte("db = \""+url+"\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, errOut, code := cli(t, "reports", "summary", "--json", "--config", cfg); code != 0 || out != sumPG {
		t.Errorf("db from the config: exit %d, same output %v\n%s", code, out == sumPG, errOut)
	}

	// Errors: not a PostgreSQL URL is bad usage; a server that is not
	// there is "could not check", and the password is not shown.
	if _, errOut, code := cli(t, "reports", "summary", "--db", "mysql://root@127.0.0.1/x"); code != 2 || !strings.Contains(errOut, "--db") {
		t.Errorf("mysql URL: exit %d %s", code, errOut)
	}
	down := "postgres://u:s3cret@127.0.0.1:1/x?sslmode=disable&connect_timeout=2"
	if _, errOut, code := cli(t, "reports", "summary", "--db", down); code != 3 || strings.Contains(errOut, "s3cret") {
		t.Errorf("no server: exit %d %s", code, errOut)
	}
}
