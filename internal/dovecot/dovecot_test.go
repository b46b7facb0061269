package dovecot

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mxray/mxray/internal/diag"
)

// testdata/doveconf-2.3.txt is doveconf -n of Debian 12's Dovecot
// 2.3.19.1 (recorded); doveconf-2.4.txt is written in 2.4 syntax after
// Dovecot's 2.4 documentation.
func load(t *testing.T, name string) *Config {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return Parse(b)
}

func TestParse23(t *testing.T) {
	c := load(t, "doveconf-2.3.txt")
	if c.V24() {
		t.Error("2.3 output taken for 2.4")
	}
	if !strings.HasPrefix(c.Header, "2.3.19.1") {
		t.Errorf("header %q", c.Header)
	}
	want := Location{Driver: "maildir", Path: "/var/vmail/%d/%n/Maildir", Home: "/var/vmail/%d/%n", Source: "mail_location", Raw: "maildir:/var/vmail/%d/%n/Maildir:LAYOUT=fs"}
	if diff := cmp.Diff(want, c.Location()); diff != "" {
		t.Errorf("location (-want +got):\n%s", diff)
	}
	if got := c.MailUID(); got != "mail" {
		t.Errorf("MailUID = %q", got)
	}
	if n := len(c.Root.Find("passdb")); n != 2 {
		t.Errorf("%d passdbs", n)
	}
	svc := c.Root.Find("service")
	if len(svc) != 1 || svc[0].Name != "auth" || len(svc[0].Find("inet_listener")) != 1 {
		t.Errorf("service auth: %+v", svc)
	}
	if p, _ := svc[0].Sections[0].Get("port"); p != "12345" {
		t.Errorf("nested port %q", p)
	}
	if v, _ := c.Get("ssl_key"); v != "# hidden, use -P to show it" {
		t.Errorf("ssl_key %q", v)
	}
}

func TestParse24(t *testing.T) {
	c := load(t, "doveconf-2.4.txt")
	if !c.V24() {
		t.Fatal("2.4 syntax not recognised")
	}
	want := Location{Driver: "maildir", Path: "~/Maildir", Home: "/srv/vmail/%{user | domain}/%{user | username}", Source: "mail_driver/mail_path", Raw: "maildir:~/Maildir"}
	if diff := cmp.Diff(want, c.Location()); diff != "" {
		t.Errorf("location (-want +got):\n%s", diff)
	}
	if v, ok := c.Get("ssl_server_cert_file"); !ok || v != "/etc/ssl/mail/fullchain.pem" {
		t.Errorf("ssl_server_cert_file via section = %q %v", v, ok)
	}
	dbs := c.Root.Find("userdb")
	if len(dbs) != 1 || dbs[0].Name != "static" {
		t.Fatalf("userdb %+v", dbs)
	}
	if got := c.MailUID(); got != "vmail" {
		t.Errorf("MailUID %q", got)
	}
	mb := c.Root.Find("mailbox")
	if len(mb) != 1 || mb[0].Name != "Sent" {
		t.Errorf("mailbox %+v", mb)
	}
	if v, _ := mb[0].Get("special_use"); v != `\\Sent` {
		t.Errorf("quoted value %q", v)
	}
}

func TestGlob(t *testing.T) {
	tests := []struct {
		loc  Location
		path string
		want string
		err  error
	}{
		{Location{}, "/var/vmail/%d/%n/Maildir", "/var/vmail/*/*/Maildir", nil},
		{Location{}, "/var/vmail/%Ld/%2.256Nu", "/var/vmail/*/*", nil},
		{Location{Home: "/srv/vmail/%{user | domain}/%{user | username}"}, "~/Maildir", "/srv/vmail/*/*/Maildir", nil},
		{Location{Home: "/home/%u"}, "%h/Mail", "/home/*/Mail", nil},
		{Location{}, "~/Maildir", "", ErrNoHome},
		{Location{}, "/m/100%%/x", "/m/100%/x", nil},
	}
	for _, tc := range tests {
		got, err := tc.loc.Glob(tc.path)
		if got != tc.want || !errors.Is(err, tc.err) {
			t.Errorf("Glob(%q) = %q, %v; want %q, %v", tc.path, got, err, tc.want, tc.err)
		}
	}
}

func TestLint(t *testing.T) {
	tests := []struct {
		name string
		conf string
		id   string
		want diag.Status
	}{
		{"2.3 tls default, no cert named", "", "dovecot.tls", diag.Info},
		{"2.3 tls with cert", "ssl_cert = </etc/c.pem\n", "dovecot.tls", diag.OK},
		{"2.3 ssl no", "ssl = no\n", "dovecot.tls", diag.Warn},
		{"2.3 ssl no on loopback", "ssl = no\nlisten = 127.0.0.1, ::1\n", "dovecot.tls", diag.Info},
		{"2.4 ssl required", "dovecot_config_version = 2.4.0\nssl = required\nssl_server_cert_file = /c.pem\n", "dovecot.tls", diag.OK},
		{"2.3 cleartext off by default", "", "dovecot.cleartext", diag.OK},
		{"2.3 cleartext with tls", "disable_plaintext_auth = no\n", "dovecot.cleartext", diag.Warn},
		{"2.3 cleartext without tls", "disable_plaintext_auth = no\nssl = no\n", "dovecot.cleartext", diag.Fail},
		{"2.3 cleartext without tls, loopback", "disable_plaintext_auth = no\nssl = no\nlisten = 127.0.0.1\n", "dovecot.cleartext", diag.Info},
		{"2.4 cleartext allowed, ssl required", "dovecot_config_version = 2.4.0\nauth_allow_cleartext = yes\nssl = required\n", "dovecot.cleartext", diag.OK},
		{"2.4 cleartext allowed, no tls", "dovecot_config_version = 2.4.0\nauth_allow_cleartext = yes\nssl = no\n", "dovecot.cleartext", diag.Fail},
		{"2.4 cleartext default", "dovecot_config_version = 2.4.0\n", "dovecot.cleartext", diag.OK},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got *diag.Step
			for _, s := range Lint(Parse([]byte(tc.conf))) {
				if s.ID == tc.id {
					got = &s
				}
			}
			if got == nil || got.Status != tc.want {
				t.Fatalf("%s = %+v, want %s", tc.id, got, tc.want)
			}
			if (got.Status == diag.Fail || got.Status == diag.Warn) && got.Hint == "" {
				t.Errorf("finding without a fix")
			}
		})
	}
}

func mkMaildir(t *testing.T, dir string, mode os.FileMode, uid int) {
	t.Helper()
	for _, sub := range []string{"cur", "new", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			t.Fatal(err)
		}
		os.Chown(filepath.Join(dir, sub), uid, uid)
	}
	if err := os.Chmod(dir, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, uid, uid); err != nil {
		t.Fatal(err) // the tests run as root (CONVENTIONS.md)
	}
}

func TestCheckMaildir(t *testing.T) {
	root := t.TempDir()
	tests := []struct {
		name string
		mode os.FileMode
		uid  int
		want int
		st   diag.Status
	}{
		{"private", 0o700, 8, 8, diag.OK},
		{"world-writable", 0o777, 8, 8, diag.Fail},
		{"group-readable", 0o750, 8, 8, diag.Warn},
		{"wrong owner", 0o700, 9, 8, diag.Fail},
		{"owner unknown, root", 0o700, 0, -1, diag.Warn},
		{"owner unknown, user", 0o700, 1000, -1, diag.OK},
	}
	for i, tc := range tests {
		dir := filepath.Join(root, tc.name, "Maildir")
		mkMaildir(t, dir, tc.mode, tc.uid)
		r, err := CheckMaildir(dir, tc.want)
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != tc.st {
			t.Errorf("%d %s: %s %v, want %s", i, tc.name, r.Status, r.Problems, tc.st)
		}
	}
	got := FindMaildirs(root, 3, 100)
	if len(got) != len(tests) {
		t.Errorf("FindMaildirs found %d: %v", len(got), got)
	}
	if ResolveUID("8", nil) != 8 || ResolveUID("", nil) != -1 || ResolveUID("mail", func(string) (string, error) { return "8", nil }) != 8 {
		t.Error("ResolveUID")
	}
}

type fake map[string]string

func (f fake) Run(_ context.Context, _ []byte, name string, args ...string) ([]byte, []byte, error) {
	out, ok := f[strings.Join(append([]string{name}, args...), " ")]
	if !ok {
		return nil, nil, &exec.Error{Name: name, Err: exec.ErrNotFound}
	}
	return []byte(out), nil, nil
}

func TestTools(t *testing.T) {
	tl := &Tools{Runner: fake{"doveconf -c /x.conf -n": "ssl = no\n", "doveconf -c /x.conf -h base_dir": "/run/dovecot\n", "dovecot --version": "2.3.19.1 (9b53102964)\n"}, ConfigFile: "/x.conf"}
	c, _, err := tl.NonDefault(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := c.Get("ssl"); v != "no" {
		t.Errorf("ssl %q", v)
	}
	if v, err := tl.Value(t.Context(), "base_dir"); v != "/run/dovecot" || err != nil {
		t.Errorf("Value = %q %v", v, err)
	}
	if v, _ := tl.Version(t.Context()); v != "2.3.19.1 (9b53102964)" {
		t.Errorf("Version %q", v)
	}
	if _, err := tl.Who(t.Context()); !errors.Is(err, ErrNotInstalled) {
		t.Errorf("Who: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	for _, n := range []string{"doveconf-2.3.txt", "doveconf-2.4.txt"} {
		b, _ := os.ReadFile(filepath.Join("testdata", n))
		f.Add(b)
	}
	f.Add([]byte("}}\na {\nb = {\n\"x\" = \"\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c := Parse(b)
		loc := c.Location()
		loc.Glob(loc.Path)
		Lint(c)
		c.MailUID()
	})
}
