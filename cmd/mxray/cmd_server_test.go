package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/mxray/mxray/internal/lab"
	"github.com/mxray/mxray/internal/postfix"
	"github.com/mxray/mxray/internal/servercheck"
)

// recordedTools answers command lines with recorded output: the longest
// key that prefixes the command line wins; "!" at the start of a value
// makes the command exit 1 with the rest on stderr. Anything else is "not
// installed".
type recordedTools map[string]string

func (r recordedTools) Run(_ context.Context, _ []byte, name string, args ...string) ([]byte, []byte, error) {
	line := strings.Join(append([]string{name}, args...), " ")
	best := ""
	for k := range r {
		if strings.HasPrefix(line, k) && len(k) > len(best) {
			best = k
		}
	}
	if best == "" {
		return nil, nil, &exec.Error{Name: name, Err: exec.ErrNotFound}
	}
	out := r[best]
	if strings.HasPrefix(out, "!") {
		return nil, []byte(out[1:]), exec.Command("false").Run()
	}
	return []byte(out), nil, nil
}

// plantedParams is an MX with problems planted: the Docker network in
// mynetworks, no TLS certificate, SMTP AUTH on, no smuggling protection.
const plantedParams = `mail_version = 3.7.11
myhostname = mx1.example.test
mydestination =
mynetworks = 127.0.0.0/8 172.16.0.0/12
inet_interfaces = all
virtual_mailbox_domains = example.test
virtual_transport = lmtp:unix:private/dovecot-lmtp
smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination
smtpd_tls_cert_file =
smtpd_tls_security_level =
smtpd_sasl_auth_enable = yes
smtpd_forbid_bare_newline = no
smtp_tls_security_level = dane
smtp_dns_support_level = enabled
queue_directory = /nonexistent/spool
smtpd_milters =
relayhost =
smtp_sasl_password_maps = texthash:/etc/postfix/sasl_passwd
`

// plantedDovecot is Dovecot 2.4 syntax without TLS and with cleartext
// logins.
const plantedDovecot = `# 2.4.1 (7ee5fa5b9d): /etc/dovecot/dovecot.conf
dovecot_config_version = 2.4.1
auth_allow_cleartext = yes
ssl = no
mail_driver = maildir
mail_path = ~/Maildir
mail_home = /nonexistent/vmail/%{user | domain}/%{user | username}
passdb sql {
  sql_driver = pgsql
  pgsql localhost {
    parameters {
      password = dbSecret0
    }
  }
}
`

func useRecordedHost(t *testing.T, tools recordedTools) {
	t.Helper()
	oldR, oldP, oldS := serverRunner, serverProcNet, serverStatfs
	serverRunner, serverProcNet = tools, filepath.Join("testdata", "server")
	serverStatfs = func(p string) (servercheck.Disk, error) {
		return servercheck.Disk{TotalBytes: 20 << 30, FreeBytes: 1 << 30, Files: 1 << 20, FreeFiles: 1 << 19}, nil
	}
	t.Cleanup(func() { serverRunner, serverProcNet, serverStatfs = oldR, oldP, oldS })
}

func plantedTools() recordedTools {
	return recordedTools{
		"postconf -n":          plantedParams,
		"postconf -x":          plantedParams,
		"postconf -d":          "mail_version = 3.7.11\nsmtpd_forbid_bare_newline = no\n",
		"postconf -M":          "smtp inet n - y - - smtpd\nsubmission inet n - y - - smtpd\n  -o smtpd_sasl_auth_enable=yes\n",
		"postfix check":        "",
		"postfix status":       "",
		"postqueue -j":         "",
		"doveconf -n":          plantedDovecot,
		"doveconf -h base_dir": "/nonexistent/run\n",
		"doveadm who":          "username # proto (pids) (ips)\n",
		"dovecot --version":    "2.4.1 (7ee5fa5b9d)\n",
		"nft -j list ruleset":  `{"nftables": [{"chain": {"family": "inet", "table": "filter", "name": "input", "handle": 1, "hook": "input"}}, {"rule": {"family": "inet", "table": "filter", "chain": "input", "handle": 9, "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 993}}, {"reject": null}]}}]}`,
	}
}

func TestServerCheckRecorded(t *testing.T) {
	useRecordedHost(t, plantedTools())
	log := "--log=" + filepath.Join("testdata", "server", "mail.log")
	out, errOut, code := cli(t, "server", "check", "--resolver", "127.0.0.1:1", log, "--json")
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s\n%s", code, out, errOut)
	}
	res := checkEnvelope(t, out, "server check")
	golden(t, "server_planted.jsonl", out)
	if res["status"] != "fail" {
		t.Errorf("status %v", res["status"])
	}
	fails := map[string]bool{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var st struct{ Type, ID, Status string }
		json.Unmarshal([]byte(l), &st)
		if st.Type == "step" && st.Status == "fail" || st.Status == "warn" {
			fails[st.ID+"="+st.Status] = true
		}
	}
	var got []string
	for k := range fails {
		got = append(got, k)
	}
	sort.Strings(got)
	want := []string{"dovecot.cleartext=fail", "dovecot.tls=warn", "firewall=warn", "logs.client_ip=fail", "postfix.auth_tls=fail",
		"postfix.smuggling=warn", "postfix.tls_inbound=warn", "postfix.tls_outbound=warn", "disk.queue=warn"}
	sort.Strings(want)
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("findings\n got %v\nwant %v", got, want)
	}

	text, _, code := cli(t, "server", "check", "--resolver", "127.0.0.1:1", log)
	for _, s := range []string{"[FAIL] A proxy or container network hides the real client IP", "172.18.0.1 is in mynetworks",
		"and set auth_allow_cleartext = no", "port 993: reject by inet filter input handle 9", "3 fail"} {
		if !strings.Contains(text, s) {
			t.Errorf("text lacks %q:\n%s", s, text)
		}
	}
	if code != 1 {
		t.Errorf("text exit %d", code)
	}
}

func TestServerCheckNothingInstalled(t *testing.T) {
	useRecordedHost(t, recordedTools{})
	tmp := t.TempDir()
	out, errOut, code := cli(t, "server", "check", "--resolver", "127.0.0.1:1", "--json", "--log", filepath.Join(tmp, "none.log"))
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	checkEnvelope(t, out, "server check")
	golden(t, "server_none.jsonl", strings.ReplaceAll(out, tmp, "TMP"))
	_, errOut, code = cli(t, "server", "check", "--public-ip", "nope")
	if code != 2 || !strings.Contains(errOut, "--public-ip") {
		t.Errorf("bad --public-ip: exit %d %s", code, errOut)
	}
}

func TestServerCheckStrict(t *testing.T) {
	tools := plantedTools()
	// Only warnings left: TLS certificate, no SASL, Dovecot TLS, clients.
	tools["postconf -x"] = strings.NewReplacer("smtpd_sasl_auth_enable = yes", "smtpd_sasl_auth_enable = no", "172.16.0.0/12", "").Replace(plantedParams)
	tools["postconf -M"] = "smtp inet n - y - - smtpd\n"
	tools["doveconf -n"] = "ssl = no\nlisten = 127.0.0.1\n"
	useRecordedHost(t, tools)
	log := "--log=" + filepath.Join("testdata", "server", "mail.log")
	if _, _, code := cli(t, "server", "check", "--resolver", "127.0.0.1:1", log); code != 0 {
		t.Errorf("warnings only: exit %d, want 0", code)
	}
	if _, _, code := cli(t, "server", "check", "--resolver", "127.0.0.1:1", log, "--strict"); code != 1 {
		t.Errorf("warnings with --strict: exit %d, want 1", code)
	}
}

// startLabServer runs a lab Dovecot and a lab Postfix delivering to it.
func startLabServer(t *testing.T, pcfg lab.PostfixConfig, dcfg lab.DovecotConfig) (*lab.Postfix, *lab.Dovecot) {
	t.Helper()
	ctx := context.Background()
	dv, err := lab.StartDovecot(ctx, dcfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dv.Stop() })
	pcfg.LMTP = dv.LMTP
	pf, err := lab.StartPostfix(ctx, pcfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pf.Stop() })
	return pf, dv
}

// mkMaildir creates a Maildir owned by the lab's mail user.
func mkMaildir(t *testing.T, dir string, mode os.FileMode) {
	t.Helper()
	for _, sub := range []string{"", "cur", "new", "tmp"} {
		p := filepath.Join(dir, sub)
		if err := os.MkdirAll(p, 0o700); err != nil {
			t.Fatal(err)
		}
		os.Chown(p, 8, 8) // Debian's mail user
	}
	os.Chown(filepath.Dir(dir), 8, 8)
	if err := os.Chmod(dir, mode); err != nil {
		t.Fatal(err)
	}
}

func stepsByID(t *testing.T, out string) map[string]map[string]any {
	t.Helper()
	m := map[string]map[string]any{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var obj map[string]any
		if err := json.Unmarshal([]byte(l), &obj); err != nil {
			t.Fatal(err)
		}
		if obj["type"] == "step" {
			m[obj["id"].(string)] = obj
		}
	}
	return m
}

func TestServerCheckLab(t *testing.T) {
	ca, err := lab.NewCA(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.Issue([]string{"mx1.example.test"}, lab.CertOptions{Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	t.Run("planted", func(t *testing.T) {
		pf, dv := startLabServer(t, lab.PostfixConfig{Main: map[string]string{"mynetworks": "127.0.0.0/8, 0.0.0.0/0"}}, lab.DovecotConfig{})
		mkMaildir(t, filepath.Join(dv.MailDir, "example.test", "bob", "Maildir"), 0o777)
		out, errOut, code := cli(t, "server", "check", "--resolver", "127.0.0.1:1", "-c", pf.ConfigDir, "--dovecot-config", dv.ConfigFile, "--json")
		if code != 1 {
			t.Fatalf("exit %d, want 1\n%s\n%s", code, out, errOut)
		}
		checkEnvelope(t, out, "server check")
		steps := stepsByID(t, out)
		for id, want := range map[string]string{"postfix.running": "ok", "dovecot.running": "ok", "postfix.mynetworks": "fail",
			"postfix.tls_inbound": "warn", "maildir.permissions": "fail", "mailbox.format": "ok", "postfix.inet_interfaces": "fail"} {
			if got := steps[id]["status"]; got != want {
				t.Errorf("%s = %v, want %s: %v\n%v", id, got, want, steps[id]["title"], steps[id]["detail"])
			}
		}
		if d, _ := steps["maildir.permissions"]["detail"].(string); !strings.Contains(d, "bob/Maildir: the Maildir is world-writable (0777)") {
			t.Errorf("maildir detail: %s", d)
		}
		if d, _ := steps["postfix.mynetworks"]["detail"].(string); !strings.Contains(d, "0.0.0.0/0") {
			t.Errorf("mynetworks detail: %s", d)
		}
	})
	t.Run("clean", func(t *testing.T) {
		pf, dv := startLabServer(t, lab.PostfixConfig{Cert: cert, Main: map[string]string{"inet_interfaces": "all"}}, lab.DovecotConfig{Cert: cert})
		mkMaildir(t, filepath.Join(dv.MailDir, "example.test", "alice", "Maildir"), 0o700)
		out, errOut, code := cli(t, "server", "check", "--resolver", "127.0.0.1:1", "-c", pf.ConfigDir, "--dovecot-config", dv.ConfigFile, "--json")
		steps := stepsByID(t, out)
		for id, st := range steps {
			if st["status"] == "fail" {
				t.Errorf("%s failed on a clean setup: %v\n%v", id, st["title"], st["detail"])
			}
		}
		if code != 0 {
			t.Errorf("exit %d\n%s", code, errOut)
		}
		for id, want := range map[string]string{"postfix.running": "ok", "dovecot.running": "ok", "postfix.check": "ok", "postfix.relay": "ok",
			"postfix.tls_inbound": "ok", "dovecot.tls": "ok", "dovecot.cleartext": "ok", "maildir.permissions": "ok", "ports": "info"} {
			if got := steps[id]["status"]; got != want {
				t.Errorf("%s = %v, want %s: %v\n%v", id, got, want, steps[id]["title"], steps[id]["detail"])
			}
		}
	})
}

var _ postfix.Runner = recordedTools{}
