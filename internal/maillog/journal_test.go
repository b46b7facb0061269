package maillog

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// fakeJournalctl writes a journalctl stand-in: there is no journald in
// the test sandbox, and no real journal could be made to hold these
// records. It answers -F with field values, records the arguments of the
// main run in DIR/args and prints the records of DIR/records.
func fakeJournalctl(t *testing.T, records string) (cmd, dir string) {
	t.Helper()
	dir = t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "records"), []byte(records), 0o644); err != nil {
		t.Fatal(err)
	}
	script := `#!/bin/sh
case "$1 $2" in
"-F SYSLOG_IDENTIFIER") printf 'postfix/smtpd\npostfix/qmgr\nsshd\ndovecot\npostfix-out/smtp\nCRON\n'; exit 0;;
"-F _SYSTEMD_UNIT") printf 'postfix@-.service\nssh.service\npostfix@postfix-out.service\n'; exit 0;;
esac
printf '%s\n' "$@" > "` + dir + `/args"
cat "` + dir + `/records"
`
	cmd = filepath.Join(dir, "journalctl")
	if err := os.WriteFile(cmd, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return cmd, dir
}

const journalRecords = `{"__REALTIME_TIMESTAMP":"1730541601000000","_HOSTNAME":"mx","SYSLOG_IDENTIFIER":"postfix/smtpd","_PID":"100","MESSAGE":"4AB12C3D4E: client=client.example[192.0.2.10]"}
{"__REALTIME_TIMESTAMP":"1730541601100000","_HOSTNAME":"mx","SYSLOG_IDENTIFIER":"postfix/qmgr","_PID":"102","MESSAGE":"4AB12C3D4E: from=<alice@client.example>, size=1234, nrcpt=1 (queue active)"}
{"__REALTIME_TIMESTAMP":"1730541602000000","_HOSTNAME":"mx","SYSLOG_IDENTIFIER":"postfix/smtp","_PID":"103","MESSAGE":"4AB12C3D4E: to=<bob@dest.example>, relay=mx.dest.example[198.51.100.7]:25, delay=1.2, delays=0.1/0.01/0.5/0.6, dsn=2.0.0, status=sent (250 ok)"}
{"__REALTIME_TIMESTAMP":"1730541602100000","_HOSTNAME":"mx","SYSLOG_IDENTIFIER":"postfix/qmgr","_PID":"102","MESSAGE":"4AB12C3D4E: removed"}
`

func TestJournal(t *testing.T) {
	cmd, dir := fakeJournalctl(t, journalRecords)
	since := time.Unix(1730500000, 0)
	j := Journal{Command: cmd, Since: since}
	r, args, err := j.Open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	res, err := Trace(context.Background(), "bob@dest.example", Options{}, time.Time{}, r)
	r.Close()
	if err != nil {
		t.Fatal(err)
	}
	if res.Matched != 1 || res.Messages[0].Outcome != OutcomeDelivered || len(res.Messages[0].Events) != 4 {
		t.Errorf("trace of the journal: %+v", briefs(res))
	}
	want := []string{"-o", "json", "--no-pager", "-q", "--since", "@1730500000",
		"SYSLOG_IDENTIFIER=dovecot", "SYSLOG_IDENTIFIER=postfix-out/smtp", "SYSLOG_IDENTIFIER=postfix/qmgr", "SYSLOG_IDENTIFIER=postfix/smtpd",
		"+", "_SYSTEMD_UNIT=dovecot.service", "_SYSTEMD_UNIT=postfix.service", "_SYSTEMD_UNIT=postfix@-.service", "_SYSTEMD_UNIT=postfix@postfix-out.service"}
	if diff := cmp.Diff(want, args); diff != "" {
		t.Errorf("arguments (-want +got):\n%s", diff)
	}
	ran, _ := os.ReadFile(filepath.Join(dir, "args"))
	if diff := cmp.Diff(strings.Join(want, "\n")+"\n", string(ran)); diff != "" {
		t.Errorf("journalctl ran with (-want +got):\n%s", diff)
	}
}

func TestJournalFailures(t *testing.T) {
	// journalctl is missing.
	_, _, err := Journal{Command: filepath.Join(t.TempDir(), "journalctl")}.Open(context.Background())
	if !errors.Is(err, ErrNoJournal) {
		t.Errorf("missing journalctl: %v, want ErrNoJournal", err)
	}
	// journalctl fails after the field listing: the reader says why.
	dir := t.TempDir()
	cmd := filepath.Join(dir, "journalctl")
	os.WriteFile(cmd, []byte("#!/bin/sh\n[ \"$1\" = -F ] && exit 0\necho 'Failed to open journal: Permission denied' >&2\nexit 1\n"), 0o755)
	r, _, err := Journal{Command: cmd}.Open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadAll(r)
	r.Close()
	if !errors.Is(err, ErrNoJournal) || !strings.Contains(err.Error(), "Permission denied") {
		t.Errorf("failing journalctl: %v", err)
	}
}
