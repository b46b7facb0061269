package postfix

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mxray/mxray/internal/diag"
)

// goodParams is a sound MX as postconf -x prints it (Postfix 3.7.11,
// recorded, then trimmed).
const goodParams = `mail_version = 3.7.11
myhostname = mx1.example.com
mydomain = example.com
mydestination = mx1.example.com, localhost
mynetworks = 127.0.0.0/8 [::ffff:127.0.0.0]/104 [::1]/128 192.168.1.0/24
inet_interfaces = all
relay_domains =
virtual_mailbox_domains = example.com
virtual_alias_domains =
smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, defer_unauth_destination
smtpd_recipient_restrictions =
smtpd_tls_cert_file =
smtpd_tls_chain_files = /etc/ssl/mx/key.pem, /etc/ssl/mx/fullchain.pem
smtpd_tls_security_level = may
smtpd_use_tls = no
smtpd_sasl_auth_enable = no
smtpd_tls_auth_only = no
smtpd_forbid_bare_newline = normalize
smtp_tls_security_level = dane
smtp_dns_support_level = dnssec
relayhost =
`

func params(t *testing.T, override map[string]string, drop ...string) Params {
	t.Helper()
	p := ParseParams([]byte(goodParams))
	for k, v := range override {
		p[k] = v
	}
	for _, k := range drop {
		delete(p, k)
	}
	return p
}

func stepOf(t *testing.T, steps []diag.Step, id string) diag.Step {
	t.Helper()
	for _, s := range steps {
		if s.ID == id {
			return s
		}
	}
	t.Fatalf("no step %s in %+v", id, steps)
	return diag.Step{}
}

func TestLintRules(t *testing.T) {
	submission := Service{Name: "submission", Type: "inet", Command: "smtpd",
		Args: []string{"-o", "smtpd_sasl_auth_enable=yes", "-o", "smtpd_tls_security_level=encrypt"}}
	submissionPlain := Service{Name: "submission", Type: "inet", Command: "smtpd", Args: []string{"-o", "smtpd_sasl_auth_enable=yes"}}
	tests := []struct {
		name     string
		set      map[string]string
		drop     []string
		services []Service
		defaults Params
		id       string
		want     diag.Status
		text     string // in the title or detail
	}{
		{name: "mynetworks local", id: "postfix.mynetworks", want: diag.OK},
		{name: "mynetworks everything", set: map[string]string{"mynetworks": "127.0.0.0/8 0.0.0.0/0"}, id: "postfix.mynetworks", want: diag.Fail, text: "Open relay risk"},
		{name: "mynetworks v6 everything", set: map[string]string{"mynetworks": "[::]/0"}, id: "postfix.mynetworks", want: diag.Fail},
		{name: "mynetworks public /8", set: map[string]string{"mynetworks": "127.0.0.0/8 44.0.0.0/8"}, id: "postfix.mynetworks", want: diag.Fail, text: "44.0.0.0/8"},
		{name: "mynetworks private /8 is fine", set: map[string]string{"mynetworks": "10.0.0.0/8 172.16.0.0/12"}, id: "postfix.mynetworks", want: diag.OK},
		{name: "mynetworks public /20", set: map[string]string{"mynetworks": "198.100.0.0/20"}, id: "postfix.mynetworks", want: diag.Warn},
		{name: "mynetworks table not judged", set: map[string]string{"mynetworks": "cidr:/etc/postfix/networks"}, id: "postfix.mynetworks", want: diag.OK, text: "not evaluated"},

		{name: "relay protected", id: "postfix.relay", want: diag.OK},
		{name: "relay via recipient restrictions", set: map[string]string{"smtpd_relay_restrictions": "", "smtpd_recipient_restrictions": "permit_mynetworks, reject_unauth_destination"}, id: "postfix.relay", want: diag.OK},
		{name: "relay open: permit first", set: map[string]string{"smtpd_relay_restrictions": "permit, reject_unauth_destination", "smtpd_recipient_restrictions": "permit_mynetworks"}, id: "postfix.relay", want: diag.Fail, text: "Open relay"},
		{name: "relay open: nothing", set: map[string]string{"smtpd_relay_restrictions": "permit_mynetworks", "smtpd_recipient_restrictions": ""}, id: "postfix.relay", want: diag.Fail},
		{name: "relay submission style", set: map[string]string{"smtpd_relay_restrictions": "permit_sasl_authenticated, reject"}, id: "postfix.relay", want: diag.OK},

		{name: "fqdn", id: "postfix.myhostname", want: diag.OK},
		{name: "bare hostname", set: map[string]string{"myhostname": "vm"}, id: "postfix.myhostname", want: diag.Fail},
		{name: "localdomain", set: map[string]string{"myhostname": "mail.localdomain"}, id: "postfix.myhostname", want: diag.Fail},
		{name: "address as hostname", set: map[string]string{"myhostname": "192.0.2.1"}, id: "postfix.myhostname", want: diag.Fail},

		{name: "inet all", id: "postfix.inet_interfaces", want: diag.OK},
		{name: "loopback-only on MX", set: map[string]string{"inet_interfaces": "loopback-only"}, id: "postfix.inet_interfaces", want: diag.Fail},
		{name: "127.0.0.1 on MX", set: map[string]string{"inet_interfaces": "127.0.0.1, [::1]"}, id: "postfix.inet_interfaces", want: diag.Fail},
		{name: "loopback-only null client", set: map[string]string{"inet_interfaces": "loopback-only", "virtual_mailbox_domains": "", "mydestination": "$myhostname, localhost.$mydomain, localhost"}, id: "postfix.inet_interfaces", want: diag.Info},

		{name: "tls on", id: "postfix.tls_inbound", want: diag.OK},
		{name: "no certificate", set: map[string]string{"smtpd_tls_chain_files": ""}, id: "postfix.tls_inbound", want: diag.Warn, text: "No TLS"},
		{name: "level none", set: map[string]string{"smtpd_tls_security_level": "none"}, id: "postfix.tls_inbound", want: diag.Warn},
		{name: "legacy use_tls", set: map[string]string{"smtpd_tls_security_level": "", "smtpd_use_tls": "yes"}, id: "postfix.tls_inbound", want: diag.OK},

		{name: "no sasl", id: "postfix.auth_tls", want: diag.Skip},
		{name: "sasl with auth_only", set: map[string]string{"smtpd_sasl_auth_enable": "yes", "smtpd_tls_auth_only": "yes"}, id: "postfix.auth_tls", want: diag.OK},
		{name: "sasl before starttls", set: map[string]string{"smtpd_sasl_auth_enable": "yes"}, id: "postfix.auth_tls", want: diag.Warn},
		{name: "sasl without tls", set: map[string]string{"smtpd_sasl_auth_enable": "yes", "smtpd_tls_chain_files": ""}, id: "postfix.auth_tls", want: diag.Fail},
		{name: "submission encrypt", services: []Service{submission}, id: "postfix.auth_tls", want: diag.OK},
		{name: "submission without tls", set: map[string]string{"smtpd_tls_chain_files": ""}, services: []Service{submissionPlain}, id: "postfix.auth_tls", want: diag.Fail, text: "submission"},

		{name: "smuggling normalize", id: "postfix.smuggling", want: diag.OK},
		{name: "smuggling default no on 3.7.11", set: map[string]string{"smtpd_forbid_bare_newline": "no"}, defaults: Params{"smtpd_forbid_bare_newline": "no", "mail_version": "3.7.11"},
			id: "postfix.smuggling", want: diag.Warn, text: "only Postfix 3.9 and later normalise by default"},
		{name: "smuggling unknown parameter (3.7.6)", set: map[string]string{"mail_version": "3.7.6"}, drop: []string{"smtpd_forbid_bare_newline"}, id: "postfix.smuggling", want: diag.Warn, text: "3.7.9"},
		{name: "smuggling workaround", set: map[string]string{"mail_version": "3.5.6", "smtpd_data_restrictions": "reject_unauth_pipelining", "smtpd_discard_ehlo_keywords": "chunking"},
			drop: []string{"smtpd_forbid_bare_newline"}, id: "postfix.smuggling", want: diag.Warn, text: "short-term workaround"},

		{name: "dane with dnssec", id: "postfix.tls_outbound", want: diag.OK, text: "DANE"},
		{name: "dane without dnssec", set: map[string]string{"smtp_dns_support_level": ""}, id: "postfix.tls_outbound", want: diag.Warn},
		{name: "outbound none", set: map[string]string{"smtp_tls_security_level": "none"}, id: "postfix.tls_outbound", want: diag.Warn},
		{name: "outbound may", set: map[string]string{"smtp_tls_security_level": "may"}, id: "postfix.tls_outbound", want: diag.OK, text: "opportunistic"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			def := tc.defaults
			if def == nil {
				def = Params{"mail_version": "3.7.11", "smtpd_forbid_bare_newline": "no"}
			}
			steps := Lint(LintInput{Params: params(t, tc.set, tc.drop...), Defaults: def, Services: tc.services})
			st := stepOf(t, steps, tc.id)
			if st.Status != tc.want {
				t.Errorf("status %s, want %s: %s\n%s", st.Status, tc.want, st.Title, st.Detail)
			}
			if tc.text != "" && !strings.Contains(st.Title+"\n"+st.Detail, tc.text) {
				t.Errorf("step lacks %q: %s\n%s", tc.text, st.Title, st.Detail)
			}
			if (st.Status == diag.Fail || st.Status == diag.Warn) && st.Hint == "" {
				t.Errorf("finding without a fix: %+v", st)
			}
		})
	}
}

func TestParseParams(t *testing.T) {
	in := "# comment\nmynetworks = 127.0.0.0/8\n  10.0.0.0/8,\n\t192.168.0.0/16\nmyhostname=mx.example.com\n\n# c\nbroken line\nempty =\nx = a = b\n"
	want := Params{"mynetworks": "127.0.0.0/8 10.0.0.0/8, 192.168.0.0/16", "myhostname": "mx.example.com", "empty": "", "x": "a = b"}
	if diff := cmp.Diff(want, ParseParams([]byte(in))); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestParseMasterAndPort(t *testing.T) {
	in := "smtp       inet  n       -       y       -       -       smtpd\n" +
		"127.0.0.1:2525 inet n    -       n       -       -       smtpd -o syslog_name=x\n" +
		"submission inet n - y - - smtpd\n  -o smtpd_sasl_auth_enable=yes\n" +
		"dovecot   unix  -       n       n       -       -       pipe flags=DRhu user=vmail argv=/usr/lib/dovecot/dovecot-lda -f ${sender} -d ${recipient}\n"
	got := ParseMaster([]byte(in))
	if len(got) != 4 {
		t.Fatalf("%d services: %+v", len(got), got)
	}
	if got[0].Port() != 25 || got[1].Port() != 2525 || got[2].Port() != 587 || got[3].Port() != 0 {
		t.Errorf("ports %d %d %d %d", got[0].Port(), got[1].Port(), got[2].Port(), got[3].Port())
	}
	if diff := cmp.Diff([]string{"-o", "smtpd_sasl_auth_enable=yes"}, got[2].Args); diff != "" {
		t.Errorf("continuation (-want +got):\n%s", diff)
	}
	if v, _ := override(got[2], "smtpd_sasl_auth_enable"); v == nil || *v != "yes" {
		t.Errorf("override not found")
	}
}

func TestVersion(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Version
		ok   bool
	}{{"3.7.11", Version{3, 7, 11}, true}, {"3.10-20250101", Version{3, 10, 0}, true}, {"3.9.0", Version{3, 9, 0}, true}, {"x", Version{}, false}} {
		got, ok := ParseVersion(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("ParseVersion(%q) = %v %v", tc.in, got, ok)
		}
	}
	if !(Version{3, 7, 11}).AtLeast(Version{3, 7, 9}) || (Version{3, 7, 8}).AtLeast(Version{3, 7, 9}) || !(Version{3, 10, 0}).AtLeast(Version{3, 9, 0}) {
		t.Error("AtLeast")
	}
}

func TestDeliveries(t *testing.T) {
	dovecotLDA := Service{Name: "dovecot", Type: "unix", Command: "pipe", Args: []string{"flags=DRhu", "argv=/usr/lib/dovecot/dovecot-lda", "-f"}}
	tests := []struct {
		name string
		p    Params
		want []Delivery
	}{
		{"default mbox spool", Params{"mydestination": "a.example, localhost"},
			[]Delivery{{Class: "local", Transport: "local", Via: "postfix", Format: "mbox", Path: "/var/mail/%u"}}},
		{"home Maildir", Params{"mydestination": "a.example", "home_mailbox": "Maildir/"},
			[]Delivery{{Class: "local", Transport: "local", Via: "postfix", Format: "maildir", Path: "~/Maildir"}}},
		{"mailbox_transport lmtp", Params{"mydestination": "a.example", "mailbox_transport": "lmtp:unix:private/dovecot-lmtp"},
			[]Delivery{{Class: "local", Transport: "lmtp:unix:private/dovecot-lmtp", Via: "dovecot"}}},
		{"mailbox_command lda", Params{"mydestination": "a.example", "mailbox_command": "/usr/lib/dovecot/dovecot-lda -f \"$SENDER\""},
			[]Delivery{{Class: "local", Transport: "mailbox_command: /usr/lib/dovecot/dovecot-lda -f \"$SENDER\"", Via: "dovecot"}}},
		{"virtual via pipe service", Params{"virtual_mailbox_domains": "example.com", "virtual_transport": "dovecot"},
			[]Delivery{{Class: "virtual", Transport: "dovecot", Via: "dovecot"}}},
		{"virtual agent", Params{"virtual_mailbox_domains": "example.com", "virtual_mailbox_base": "/var/vmail/"},
			[]Delivery{{Class: "virtual", Transport: "virtual", Via: "postfix", Path: "/var/vmail/…"}}},
		{"discard", Params{"virtual_mailbox_domains": "example.com", "virtual_transport": "discard:"},
			[]Delivery{{Class: "virtual", Transport: "discard:", Via: "other"}}},
	}
	for _, tc := range tests {
		if diff := cmp.Diff(tc.want, Deliveries(tc.p, []Service{dovecotLDA})); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, diff)
		}
	}
}

func TestMiltersAndRelayhost(t *testing.T) {
	p := Params{"queue_directory": "/var/spool/postfix",
		"smtpd_milters":     "unix:opendkim/opendkim.sock, inet:localhost:11332 { inet:[::1]:8891, default_action=accept }",
		"non_smtpd_milters": "$smtpd_milters unix:opendkim/opendkim.sock"}
	want := []Milter{
		{Spec: "unix:opendkim/opendkim.sock", Network: "unix", Address: "/var/spool/postfix/opendkim/opendkim.sock"},
		{Spec: "inet:localhost:11332", Network: "tcp", Address: "localhost:11332"},
		{Spec: "inet:[::1]:8891", Network: "tcp", Address: "[::1]:8891"},
		{Spec: "$smtpd_milters"},
	}
	if diff := cmp.Diff(want, Milters(p)); diff != "" {
		t.Errorf("milters (-want +got):\n%s", diff)
	}
	for _, tc := range []struct {
		in   string
		want Relayhost
		ok   bool
	}{
		{"[smtp.example.com]:587", Relayhost{"smtp.example.com", 587, false}, true},
		{"example.com", Relayhost{"example.com", 25, true}, true},
		{"[192.0.2.1]", Relayhost{"192.0.2.1", 25, false}, true},
		{"relay.example:2525", Relayhost{"relay.example", 2525, true}, true},
		{"", Relayhost{}, false},
		{"[x]:99999", Relayhost{}, false},
	} {
		got, ok := ParseRelayhost(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("ParseRelayhost(%q) = %+v %v", tc.in, got, ok)
		}
	}
}

// TestConfigRecorded runs Config against recorded tool output.
func TestConfigRecorded(t *testing.T) {
	r := toolRunner{
		"postconf -c /etc/pf -n":   {out: "myhostname = mx.example.com\n"},
		"postconf -c /etc/pf -x a": {out: "a = b\n"},
		"postfix -c /etc/pf check": {errOut: "postfix/postfix-script: warning: not owned by postfix: /x\n"},
		"postconf -n":              {errOut: "postconf: fatal: open /etc/postfix/main.cf: No such file or directory\n", exit: true},
	}
	c := &Config{Runner: r, ConfigDir: "/etc/pf"}
	p, _, err := c.NonDefault(t.Context())
	if err != nil || p["myhostname"] != "mx.example.com" {
		t.Fatalf("NonDefault = %v %v", p, err)
	}
	if e, _ := c.Effective(t.Context(), "a"); e["a"] != "b" {
		t.Errorf("Effective = %v", e)
	}
	cr, err := c.Check(t.Context())
	if err != nil || !cr.OK || len(cr.Warnings) != 1 {
		t.Errorf("Check = %+v %v", cr, err)
	}
	_, _, err = (&Config{Runner: r}).NonDefault(t.Context())
	if !errors.Is(err, ErrNoConfig) {
		t.Errorf("missing main.cf: %v", err)
	}
	_, _, err = (&Config{Runner: toolRunner{}}).NonDefault(t.Context())
	if !errors.Is(err, ErrNotInstalled) {
		t.Errorf("not installed: %v", err)
	}
}

type toolResult struct {
	out, errOut string
	exit        bool
}

// toolRunner answers command lines ("postconf -c DIR -n") with recorded
// output; any other command is "not installed".
type toolRunner map[string]toolResult

func (r toolRunner) Run(_ context.Context, _ []byte, name string, args ...string) ([]byte, []byte, error) {
	res, ok := r[strings.Join(append([]string{name}, args...), " ")]
	if !ok {
		return nil, nil, &exec.Error{Name: name, Err: exec.ErrNotFound}
	}
	var err error
	if res.exit {
		err = &exec.ExitError{}
	}
	return []byte(res.out), []byte(res.errOut), err
}
