package maillog

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // fail2ban's expectations are in Europe/Berlin

	"github.com/google/go-cmp/cmp"
	"github.com/mxray/mxray/internal/testutil"
)

// corpusNotLogs lists the files of ../shared/testdata/mail-logs that are
// not log input, with the reason. TestCorpusAccounting fails when the
// directory and this table (plus the globs below) disagree.
var corpusNotLogs = map[string]string{
	"SOURCE.md":                             "provenance notes for the whole set",
	"fail2ban/COPYING":                      "licence text",
	"lightmeter/.reuse/dep5":                "licence metadata",
	"lightmeter/LICENSES/AGPL-3.0-only.txt": "licence text",
	"postfix-grok-patterns/LICENSE":         "licence text",
}

// corpusKinds classifies every other file by how it is read.
func corpusKind(rel string) string {
	switch {
	case strings.HasPrefix(rel, "postfix-grok-patterns/test/") && strings.HasSuffix(rel, ".yaml"):
		return "grok" // TestGrokPatterns
	case rel == "lightmeter/test_files/postfix_logs/complete.tar.gz":
		return "tar" // members read with archive/tar
	case strings.HasSuffix(rel, ".log"):
		return "log"
	}
	return ""
}

func corpusFiles(t *testing.T) (root string, rels []string) {
	t.Helper()
	root = testutil.Shared(t, "mail-logs")
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			rel, _ := filepath.Rel(root, p)
			rels = append(rels, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(rels)
	return root, rels
}

func TestCorpusAccounting(t *testing.T) {
	root, rels := corpusFiles(t)
	seen := map[string]bool{}
	counts := map[string]int{}
	for _, rel := range rels {
		seen[rel] = true
		if _, ok := corpusNotLogs[rel]; ok {
			counts["not a log"]++
			continue
		}
		k := corpusKind(rel)
		if k == "" {
			t.Errorf("%s is neither read by a test nor listed in corpusNotLogs", rel)
			continue
		}
		counts[k]++
	}
	for rel := range corpusNotLogs {
		if !seen[rel] {
			t.Errorf("corpusNotLogs lists %s, which is not in %s", rel, root)
		}
	}
	t.Logf("%d files: %v", len(rels), counts)
	if counts["grok"] != 191 || counts["log"] < 50 || counts["tar"] != 1 {
		t.Errorf("unexpected corpus shape: %v", counts)
	}
}

// readLines returns the lines of data as the accumulator splits them.
func countLines(data []byte) int64 {
	n := int64(bytes.Count(data, []byte("\n")))
	if len(data) > 0 && data[len(data)-1] != '\n' {
		n++
	}
	return n
}

// checkLog reads one log with Summarize (both modes), AddLine and
// ParseLine, and checks that every line is accounted for.
func checkLog(t *testing.T, name string, data []byte) Summary {
	t.Helper()
	want := countLines(data)
	var def Summary
	for _, compat := range []bool{false, true} {
		s, err := Summarize(context.Background(), Options{Reference: parityRef, PflogsummCompat: compat}, bytes.NewReader(data))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		l := s.Lines
		if l.Total != want || l.Postfix+l.Dovecot+l.Other+l.Unparsed != l.Total {
			t.Errorf("%s (compat %v): lines %+v, want total %d, all accounted for", name, compat, l, want)
		}
		if !compat {
			def = *s
		}
		if err := WriteText(io.Discard, s); err != nil {
			t.Fatal(err)
		}
	}
	// The line-by-line path gives the same summary as the parallel reader.
	a := NewAccumulator(Options{Reference: parityRef})
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, MaxLineLength)
	for sc.Scan() {
		a.AddLine(sc.Bytes())
	}
	if diff := cmp.Diff(&def, a.Summary()); diff != "" {
		t.Errorf("%s: AddLine and Summarize disagree (-Summarize +AddLine):\n%s", name, diff)
	}
	unknown := 0
	for _, line := range bytes.Split(data, []byte("\n")) {
		e := ParseLine(line, Options{Reference: parityRef})
		if e.Event == "" {
			t.Errorf("%s: no event for %q", name, line)
		}
		if e.Daemon == DaemonPostfix && e.Event == EventOther && e.Level == "" && e.Message == "" {
			unknown++
		}
	}
	return def
}

func TestCorpusLogs(t *testing.T) {
	root, rels := corpusFiles(t)
	total := map[string]LineCounts{}
	for _, rel := range rels {
		switch corpusKind(rel) {
		case "log":
			data, err := os.ReadFile(filepath.Join(root, rel))
			if err != nil {
				t.Fatal(err)
			}
			s := checkLog(t, rel, data)
			total[strings.Split(rel, "/")[0]] = addCounts(total[strings.Split(rel, "/")[0]], s.Lines)
		case "tar":
			for _, m := range tarMembers(t, filepath.Join(root, rel)) {
				r, err := NewReader(bytes.NewReader(m.data))
				if err != nil {
					t.Fatal(err)
				}
				plain, err := io.ReadAll(r)
				if err != nil {
					t.Fatal(err)
				}
				s := checkLog(t, rel+"/"+m.name, plain)
				total["complete.tar.gz"] = addCounts(total["complete.tar.gz"], s.Lines)
			}
		}
	}
	for k, v := range total {
		t.Logf("%s: %+v", k, v)
	}
	// fail2ban's files have "#" annotation lines and other MTAs' lines:
	// they must be counted, not lost.
	if f := total["fail2ban"]; f.Unparsed == 0 || f.Other == 0 || f.Dovecot == 0 || f.Postfix == 0 {
		t.Errorf("fail2ban lines: %+v; want unparsed, other, dovecot and postfix lines", f)
	}
	if c := total["complete.tar.gz"]; c.Dovecot < 400 || c.Postfix < 4000 || c.Other == 0 {
		t.Errorf("complete.tar.gz lines: %+v", c)
	}
}

func addCounts(a, b LineCounts) LineCounts {
	return LineCounts{a.Total + b.Total, a.Postfix + b.Postfix, a.Dovecot + b.Dovecot, a.Other + b.Other, a.Unparsed + b.Unparsed}
}

// fail2ban's annotated test logs: every line it marks as a failure must
// come out with the offending address, and the authentication failures as
// EventAuthFailure with the user where the annotation gives one.
func TestFail2banAnnotations(t *testing.T) {
	root := testutil.Shared(t, "mail-logs")
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	// fail2ban's tests run with the clock at 2005-08-14 12:00 Berlin.
	opts := Options{Reference: time.Unix(1124013600, 0), Location: berlin}
	for _, name := range []string{"postfix.log", "dovecot.log"} {
		data, err := os.ReadFile(filepath.Join(root, "fail2ban", name))
		if err != nil {
			t.Fatal(err)
		}
		checked := 0
		var pending *struct {
			Time  string `json:"time"`
			Match bool   `json:"match"`
			Host  string `json:"host"`
			User  string `json:"user"`
		}
		section := ""
		for i, line := range strings.Split(string(data), "\n") {
			if strings.HasPrefix(line, "# filterOptions:") {
				section = line
				continue
			}
			if j := strings.Index(line, "failJSON:"); strings.HasPrefix(line, "#") && j >= 0 {
				pending = &struct {
					Time  string `json:"time"`
					Match bool   `json:"match"`
					Host  string `json:"host"`
					User  string `json:"user"`
				}{}
				if err := json.Unmarshal([]byte(line[j+len("failJSON:"):]), pending); err != nil {
					t.Fatalf("%s:%d: %v", name, i+1, err)
				}
				continue
			}
			if pending == nil || strings.HasPrefix(line, "#") || strings.TrimSpace(line) == "" {
				continue
			}
			ann := *pending
			pending = nil
			e := ParseLine([]byte(line), opts)
			where := name + ":" + strconv.Itoa(i+1) + ": " + line
			if ann.Time != "" {
				want, err := time.Parse("2006-01-2T15:04:05", ann.Time)
				if err != nil {
					t.Fatalf("%s: %v", where, err)
				}
				if got := e.Time.In(berlin).Format("2006-01-02T15:04:05"); got != want.Format("2006-01-02T15:04:05") {
					t.Errorf("%s\n time %s, want %s", where, got, want.Format("2006-01-02T15:04:05"))
				}
			}
			aggressive := strings.Contains(section, `"aggressive"`) && !strings.Contains(section, "{}") && !strings.Contains(section, `"auth"`) && !strings.Contains(section, `"ddos"`) && !strings.Contains(section, `"rbl"`) && !strings.Contains(section, `"normal"`) && !strings.Contains(section, `"errors"`)
			isAuth := strings.Contains(line, "authentication failed")
			if ann.Match {
				checked++
				if ann.Host != "" && e.Client.IP != ann.Host {
					t.Errorf("%s\n client %q, want %q (event %s)", where, e.Client.IP, ann.Host, e.Event)
				}
				if ann.User != "" && e.SASLUsername != ann.User {
					t.Errorf("%s\n user %q, want %q", where, e.SASLUsername, ann.User)
				}
				switch {
				case name == "postfix.log" && isAuth:
					if e.Event != EventAuthFailure {
						t.Errorf("%s\n event %s, want %s", where, e.Event, EventAuthFailure)
					}
				case name == "dovecot.log" && !aggressive:
					if e.Event != EventAuthFailure {
						t.Errorf("%s\n event %s, want %s", where, e.Event, EventAuthFailure)
					}
				case name == "dovecot.log":
					if e.Event != EventAuthFailure && e.Event != EventLoginAborted {
						t.Errorf("%s\n event %s, want %s or %s", where, e.Event, EventAuthFailure, EventLoginAborted)
					}
				}
			} else {
				switch {
				case name == "dovecot.log" && !aggressive && e.Event == EventAuthFailure:
					t.Errorf("%s\n not a failure for fail2ban, but event %s", where, e.Event)
				case strings.Contains(line, "Connection lost to authentication server") && e.Event != EventAuthUnavailable:
					t.Errorf("%s\n event %s, want %s", where, e.Event, EventAuthUnavailable)
				}
			}
		}
		if checked < 50 {
			t.Errorf("%s: only %d annotated failures checked", name, checked)
		}
	}
}

// grok test files: a tiny reader for their YAML subset.
type grokCase struct {
	pattern, data string
	results       map[string]string
	order         []string
}

func yamlScalar(v string) (string, error) {
	v = strings.TrimSpace(v)
	switch {
	case strings.HasPrefix(v, `"`):
		return strconv.Unquote(v)
	case strings.HasPrefix(v, `'`):
		return strings.ReplaceAll(strings.Trim(v, `'`), `''`, `'`), nil
	}
	return v, nil
}

func readGrok(t *testing.T, path string) grokCase {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	c := grokCase{results: map[string]string{}}
	inResults := false
	for _, line := range strings.Split(string(data), "\n") {
		trim := strings.TrimSpace(line)
		if trim == "" || strings.HasPrefix(trim, "#") {
			continue
		}
		k, v, ok := strings.Cut(trim, ":")
		if !ok {
			t.Fatalf("%s: cannot read %q", path, line)
		}
		val, err := yamlScalar(v)
		if err != nil {
			t.Fatalf("%s: %q: %v", path, line, err)
		}
		indented := line[0] == ' ' || line[0] == '\t'
		switch {
		case indented && inResults:
			c.results[k] = val
			c.order = append(c.order, k)
		case k == "pattern":
			c.pattern = val
		case k == "data":
			c.data = val
		case k == "results":
			inResults = true
		default:
			t.Fatalf("%s: unexpected key %q", path, k)
		}
	}
	return c
}

// grokUnchecked are result fields mxray does not extract, with the reason.
var grokUnchecked = map[string]string{
	"postfix_anvil_conn_rate": "anvil statistics are not modelled", "postfix_anvil_conn_period": "anvil statistics",
	"postfix_anvil_conn_count": "anvil statistics", "postfix_anvil_timestamp": "anvil statistics",
	"postfix_anvil_cache_size": "anvil statistics", "postfix_service": "anvil statistics (service in the message)",
	"postfix_scache_success": "scache statistics", "postfix_scache_miss": "scache statistics", "postfix_scache_hits": "scache statistics",
	"postfix_scache_timestamp": "scache statistics", "postfix_scache_domains": "scache statistics",
	"postfix_scache_connection": "scache statistics", "postfix_scache_addresses": "scache statistics",
	"postfix_postsuper_summary_count": "postsuper summaries are kept as Message", "postfix_postsuper_summary_action": "postsuper summaries",
	"postfix_postsuper_action":    "postsuper actions are kept as Message",
	"postfix_verify_cleanup_type": "verify statistics", "postfix_verify_cache_retained": "verify statistics", "postfix_verify_cache_dropped": "verify statistics",
	"postfix_postscreen_cache_retained": "postscreen cache statistics", "postfix_postscreen_cache_dropped": "postscreen cache statistics",
	"postfix_postscreen_toobusy_data": "kept in Reject.Text", "postfix_postscreen_dnsbl_rank": "DNSBL rank number not extracted",
	"postfix_postscreen_violation_time": "violation timing not extracted",
	"postfix_dnsbl_result":              "dnsblog lines are not modelled", "postfix_dnsbl_domain": "dnsblog lines are not modelled",
	"postfix_proxy_result": "smtpd proxy-accept/reject lines are not modelled", "postfix_proxy_smtp_stage": "proxy lines",
	"postfix_proxy_message": "proxy lines", "postfix_proxy_status_code": "proxy lines", "postfix_proxy_status_code_enhanced": "proxy lines",
	"postfix_milter_result":  "milter action kept whole in Reject.Action (milter-reject, milter-header-redirect)",
	"postfix_milter_message": "kept in Reject.Text/Data", "postfix_milter_data": "kept in Reject.Text",
	"postfix_prepend_type": "kept in Reject.Stage", "postfix_prepend_trigger": "kept in Reject.Text", "postfix_prepend_value": "kept in Reject.Text",
	"postfix_tls_key_exchange": "TLS 1.3 key-exchange details not extracted", "postfix_tls_server_signature": "not extracted",
	"postfix_tls_server_signature_size": "not extracted", "postfix_tls_server_digest": "not extracted",
	"postfix_tls_server_signature_curve": "not extracted", "postfix_tls_error": "kept in Message",
	"postfix_tls_security_level": "Postfix 3.10 tls= kept whole in Entry.TLSFeatures", "postfix_tls_policy_undecided": "tls= kept whole",
	"postfix_tls_downgrade_level": "tls= kept whole", "postfix_requiretls": "tls= kept whole", "postfix_requiretls_policy_violation": "tls= kept whole",
	"postfix_requiretls_policy_undecided": "tls= kept whole", "postfix_requiretls_downgrade_level": "tls= kept whole",
	"postfix_termination_signal": "master lines kept as Message", "postfix_version": "master lines kept as Message",
	"postfix_config_path": "master lines kept as Message",
	"postfix_server_ip":   "postscreen's local address not extracted", "postfix_server_port": "postscreen's local address not extracted",
	"postfix_discarded_ehlo_keywords": "kept as Message", "postfix_pix_workaround": "kept as Message",
	"postfix_bounce_recipient": "notification kind kept whole in Detail", "postfix_bounce_reason": "notification kind kept whole in Detail",
	"postfix_client_ip_unknown": "unknown[unknown] leaves Client.IP \"unknown\"",
}

// grokFragments are patterns whose data is part of a line, not a line.
var grokFragments = map[string]string{
	"^%{POSTFIX_DELAYS}$":              "delays= value: ParseDelays",
	"^%{POSTFIX_RELAY}$":               "relay= value: parseRelay",
	"^%{POSTFIX_COMMAND_COUNTER_DATA}": "disconnect counters: Entry.Commands",
	"^%{POSTFIX_TLS_FEATURES}$":        "tls= value: Entry.TLSFeatures",
}

func grokGot(t *testing.T, e Entry, key string) (string, bool) {
	r := e.Reject
	if r == nil {
		r = &Reject{}
	}
	itoa := func(n int) string {
		if n == 0 {
			return ""
		}
		return strconv.Itoa(n)
	}
	tls := e.TLS
	if tls == nil {
		tls = &TLSInfo{}
	}
	switch key {
	case "postfix_queueid":
		return e.QueueID, true
	case "postfix_client_hostname":
		return e.Client.Host, true
	case "postfix_client_ip":
		return e.Client.IP, true
	case "postfix_client_port":
		return itoa(e.Client.Port), true
	case "postfix_relay_hostname":
		return e.Relay.Host, true
	case "postfix_relay_ip":
		return e.Relay.IP, true
	case "postfix_relay_port":
		return itoa(e.Relay.Port), true
	case "postfix_relay_service":
		return e.Relay.Service, true
	case "postfix_status":
		return string(e.Status), true
	case "postfix_smtp_response", "postfix_local_response", "postfix_pipe_response", "postfix_error_response":
		return e.Reply, true
	case "postfix_status_code":
		return itoa(r.Code), true
	case "postfix_status_code_enhanced":
		return r.Enhanced, true
	case "postfix_status_data":
		return r.Data, true
	case "postfix_status_message":
		return r.Text, true
	case "postfix_action":
		return r.Action, true
	case "postfix_smtp_stage":
		if e.Reject != nil {
			return r.Stage, true
		}
		return e.Stage, true
	case "postfix_message_level":
		return string(e.Level), true
	case "postfix_message":
		return e.Message, true
	case "postfix_from":
		return e.From, true
	case "postfix_message-id":
		return e.MessageID, true
	case "postfix_bounce_queueid":
		return e.RelatedQueueID, true
	case "postfix_postscreen_violation", "postfix_postscreen_access", "postfix_smtpd_lostconn_data", "postfix_smtp_lostconn_data":
		return e.Detail, true
	case "postfix_smtp_lostconn_reason":
		return e.Stage, true
	case "postfix_tls_trustlevel":
		return tls.Trust, true
	case "postfix_tls_version":
		return tls.Protocol, true
	case "postfix_tls_cipher":
		return tls.Cipher, true
	case "postfix_tls_cipher_size":
		return tls.Bits, true
	case "postfix_command_counter_data":
		return e.Commands, true
	}
	return "", false
}

// grokKV checks each key=value of postfix_keyvalue_data against the entry.
func grokKV(t *testing.T, where string, e Entry, kv string) {
	t.Helper()
	kv = strings.TrimSuffix(strings.TrimSpace(kv), ",")
	for len(kv) > 0 {
		kv = strings.TrimLeft(kv, ", ")
		k, rest, ok := strings.Cut(kv, "=")
		if !ok {
			t.Errorf("%s: cannot read keyvalue %q", where, kv)
			return
		}
		var v string
		if strings.HasPrefix(rest, "<") {
			end := strings.Index(rest, ">")
			for end >= 0 && end+1 < len(rest) && rest[end+1] != ' ' && rest[end+1] != ',' {
				n := strings.Index(rest[end+1:], ">")
				if n < 0 {
					break
				}
				end += n + 1
			}
			v, kv = rest[1:end], rest[end+1:]
		} else {
			end := strings.IndexAny(rest, ", ")
			if end < 0 {
				end = len(rest)
			}
			v, kv = rest[:end], rest[end:]
		}
		var got string
		switch k {
		case "from":
			got = e.From
		case "to":
			got = e.To
		case "orig_to":
			got = e.OrigTo
		case "relay":
			got = e.Relay.String()
		case "delay":
			want, _ := strconv.ParseFloat(v, 64)
			if want != e.Delay {
				t.Errorf("%s: delay %v, want %v", where, e.Delay, want)
			}
			continue
		case "delays":
			d, ok := ParseDelays(v)
			if !ok || e.Delays == nil || *e.Delays != d {
				t.Errorf("%s: delays %+v, want %s", where, e.Delays, v)
			}
			continue
		case "dsn":
			got = e.DSN
		case "size":
			got = strconv.FormatInt(e.Size, 10)
		case "nrcpt":
			got = strconv.Itoa(e.NRcpt)
		case "client":
			got = e.Client.String()
		case "proto", "helo":
			if e.Reject == nil {
				t.Errorf("%s: %s= but no reject details", where, k)
				continue
			}
			got = e.Reject.Proto
			if k == "helo" {
				got = e.Reject.Helo
			}
		case "tls":
			got = e.TLSFeatures
		case "uid":
			continue // pickup's uid is not extracted
		default:
			t.Errorf("%s: keyvalue key %q not handled by the test", where, k)
			continue
		}
		if got != v {
			t.Errorf("%s: %s=%q, want %q", where, k, got, v)
		}
	}
}

func TestGrokPatterns(t *testing.T) {
	root := testutil.Shared(t, "mail-logs")
	files, err := filepath.Glob(filepath.Join(root, "postfix-grok-patterns/test/*.yaml"))
	if err != nil || len(files) != 191 {
		t.Fatalf("grok files: %d, %v", len(files), err)
	}
	checked := 0
	for _, f := range files {
		c := readGrok(t, f)
		where := filepath.Base(f) + ": " + c.data
		if _, ok := grokFragments[c.pattern]; ok {
			switch c.pattern {
			case "^%{POSTFIX_DELAYS}$":
				d, ok := ParseDelays(c.data)
				want := Delays{}
				want.BeforeQmgr, _ = strconv.ParseFloat(c.results["postfix_delay_before_qmgr"], 64)
				want.InQmgr, _ = strconv.ParseFloat(c.results["postfix_delay_in_qmgr"], 64)
				want.ConnSetup, _ = strconv.ParseFloat(c.results["postfix_delay_conn_setup"], 64)
				want.Transmission, _ = strconv.ParseFloat(c.results["postfix_delay_transmission"], 64)
				if !ok || d != want {
					t.Errorf("%s: %+v, want %+v", where, d, want)
				}
			case "^%{POSTFIX_RELAY}$":
				ep := parseRelay(c.data)
				if ep.Host != c.results["postfix_relay_hostname"] || ep.Service != c.results["postfix_relay_service"] {
					t.Errorf("%s: %+v", where, ep)
				}
			case "^%{POSTFIX_COMMAND_COUNTER_DATA}":
				e := ParseLine([]byte("Jan  1 00:00:00 mx postfix/smtpd[1]: disconnect from unknown[192.0.2.1] "+c.data), Options{})
				if e.Commands != c.data || e.Event != EventDisconnect {
					t.Errorf("%s: commands %q", where, e.Commands)
				}
			case "^%{POSTFIX_TLS_FEATURES}$":
				e := ParseLine([]byte("Jan  1 00:00:00 mx postfix/smtp[1]: ABCDE12345: to=<a@b.example>, relay=x[192.0.2.1]:25, delay=1, delays=0/0/0/1, tls="+c.data+", dsn=2.0.0, status=sent (ok)"), Options{})
				if e.TLSFeatures != c.data || e.Status != StatusSent {
					t.Errorf("%s: tls %q status %q", where, e.TLSFeatures, e.Status)
				}
			}
			checked++
			continue
		}
		svc := strings.TrimSuffix(strings.TrimPrefix(strings.Trim(c.pattern, "^$"), "%{POSTFIX_"), "}")
		svc = strings.ReplaceAll(strings.ToLower(svc), "_", "-")
		if svc == "script" {
			svc = "postfix-script"
		}
		line := "Jan  1 00:00:00 mx postfix/" + svc + "[123]: " + c.data
		e := ParseLine([]byte(line), Options{})
		if e.Daemon != DaemonPostfix || e.Service != svc {
			t.Errorf("%s: daemon %q service %q", where, e.Daemon, e.Service)
		}
		for _, k := range c.order {
			want := c.results[k]
			if _, ok := grokUnchecked[k]; ok || strings.HasPrefix(k, "postfix_cmd_") {
				continue
			}
			if k == "postfix_keyvalue_data" {
				grokKV(t, where, e, want)
				continue
			}
			if strings.HasPrefix(k, "postfix_delay_") {
				continue // the DELAYS fragment above
			}
			got, ok := grokGot(t, e, k)
			if !ok {
				t.Errorf("%s: result field %s neither checked nor listed in grokUnchecked", where, k)
				continue
			}
			if got != want {
				t.Errorf("%s\n %s = %q, want %q (event %s)", where, k, got, want, e.Event)
			}
		}
		checked++
	}
	if checked != len(files) {
		t.Errorf("checked %d of %d grok files", checked, len(files))
	}
}
