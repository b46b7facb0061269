package maillog

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/mxray/mxray/internal/testutil"
)

// The parity tests run Debian's real pflogsumm 1.1.5 and compare its
// grand totals with ours. They never skip: a machine without pflogsumm or
// python3 fails them with a message saying what to install.

var parityRef = time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)

func pflogsummPath(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("pflogsumm")
	if err != nil {
		p = "/usr/sbin/pflogsumm"
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("pflogsumm is needed for the parity test: install Debian's package (apt-get install -y pflogsumm): %v", err)
		}
	}
	return p
}

// exactPflogsumm writes a copy of the installed pflogsumm whose only
// change is that it never scales numbers to "k" or "m", so that byte
// totals can be compared exactly. The copy is checked to differ in exactly
// those two lines.
func exactPflogsumm(t testing.TB, dir string) string {
	t.Helper()
	src, err := os.ReadFile(pflogsummPath(t))
	if err != nil {
		t.Fatal(err)
	}
	s := string(src)
	n := 0
	for _, v := range []string{"$divByOneKAt", "$divByOneMegAt"} {
		re := regexp.MustCompile(`(?m)^\` + v + ` += \d+;`)
		if len(re.FindAllString(s, -1)) != 1 {
			t.Fatalf("pflogsumm has changed: %s is not set exactly once", v)
		}
		s = re.ReplaceAllLiteralString(s, v+" = 1e30;")
		n++
	}
	p := filepath.Join(dir, "pflogsumm-exact")
	if err := os.WriteFile(p, []byte(s), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

var totalRe = regexp.MustCompile(`^\s+(\d+)([ km])\s+(.*?)\s*$`)

// pflogsummTotals runs script (pflogsumm or its exact copy) on file and
// returns the grand totals as printed ("42439k") by our JSON names.
func pflogsummTotals(t testing.TB, script, file string) map[string]string {
	t.Helper()
	cmd := exec.Command("perl", script, file)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", script, file, err, stderr.String())
	}
	names := map[string]string{
		"received": "received", "delivered": "delivered", "forwarded": "forwarded", "bounced": "bounced",
		"reject warnings": "reject_warnings", "held": "held", "bytes received": "bytes_received",
		"bytes delivered": "bytes_delivered", "senders": "senders", "sending hosts/domains": "sending_domains",
		"recipients": "recipients", "recipient hosts/domains": "recipient_domains",
	}
	got := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	in := false
	for sc.Scan() {
		line := sc.Text()
		if line == "Grand Totals" {
			in = true
			continue
		}
		if !in {
			continue
		}
		if strings.HasPrefix(line, "Per-") || strings.HasPrefix(line, "Host/Domain") || strings.HasPrefix(line, "smtpd") {
			break
		}
		m := totalRe.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		v, label := m[1]+strings.TrimSpace(m[2]), m[3]
		switch {
		case strings.HasPrefix(label, "deferred"):
			got["deferred"] = v
			got["deferrals"] = "0"
			if d := regexp.MustCompile(`\((\d+)([ km]) deferrals\)`).FindStringSubmatch(label); d != nil {
				got["deferrals"] = d[1] + strings.TrimSpace(d[2])
			}
		case strings.HasPrefix(label, "rejected ("):
			got["rejected"] = v
			got["rejected_percent"] = strings.TrimSuffix(strings.TrimPrefix(label, "rejected ("), "%)")
		case strings.HasPrefix(label, "discarded ("):
			got["discarded"] = v
			got["discarded_percent"] = strings.TrimSuffix(strings.TrimPrefix(label, "discarded ("), "%)")
		default:
			if k, ok := names[label]; ok {
				got[k] = v
			}
		}
	}
	if len(got) != 18 {
		t.Fatalf("could not read pflogsumm's grand totals for %s (got %d of 18):\n%s", file, len(got), out)
	}
	return got
}

// adjIntUnits formats n as pflogsumm's adj_int_units and "%d%s" do.
func adjIntUnits(n int64) string {
	switch {
	case n > 536870912:
		return strconv.FormatInt(n/1048576, 10) + "m"
	case n > 524288:
		return strconv.FormatInt(n/1024, 10) + "k"
	}
	return strconv.FormatInt(n, 10)
}

func totalsMap(t Totals, format func(int64) string) map[string]string {
	return map[string]string{
		"received": format(t.Received), "delivered": format(t.Delivered), "forwarded": format(t.Forwarded),
		"deferred": format(t.Deferred), "deferrals": format(t.Deferrals), "bounced": format(t.Bounced),
		"rejected": format(t.Rejected), "rejected_percent": strconv.Itoa(t.RejectedPercent),
		"reject_warnings": format(t.RejectWarnings), "held": format(t.Held), "discarded": format(t.Discarded),
		"discarded_percent": strconv.Itoa(t.DiscardedPercent), "bytes_received": format(t.BytesReceived),
		"bytes_delivered": format(t.BytesDelivered), "senders": format(int64(t.Senders)),
		"sending_domains": format(int64(t.SendingDomains)), "recipients": format(int64(t.Recipients)),
		"recipient_domains": format(int64(t.RecipientDomains)),
	}
}

func exact(n int64) string { return strconv.FormatInt(n, 10) }

func summarizeFile(t testing.TB, path string, compat bool) Totals {
	t.Helper()
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s, err := Summarize(context.Background(), Options{Reference: parityRef, PflogsummCompat: compat}, f)
	if err != nil {
		t.Fatal(err)
	}
	return s.Totals
}

// normalizeProgram rewrites every Postfix program name to a form that
// pflogsumm 1.1.5 understands ("postfix-out/smtp" and
// "postfix/sender-cleanup/cleanup" become "postfix/smtp" and
// "postfix/cleanup"). pflogsumm on the rewritten log must count what
// mxray counts on the original: that is the documented difference.
var progRe = regexp.MustCompile(`^((?:[A-Z][a-z]{2} +\d{1,2} \d\d:\d\d:\d\d|\d{4}-\d\d-\d\dT\S+) \S+ )(postfix[^\[: ]*)(.*)$`)

func normalizeProgram(line string) string {
	m := progRe.FindStringSubmatch(line)
	if m == nil {
		return line
	}
	prog := m[2]
	parts := strings.Split(prog, "/")
	first := parts[0]
	if first != "postfix" && (!strings.HasPrefix(first, "postfix-") || first == "postfix-script") {
		return line
	}
	if len(parts) == 1 {
		if first == "postfix" {
			return line
		}
		return m[1] + "postfix" + m[3]
	}
	return m[1] + "postfix/" + parts[len(parts)-1] + m[3]
}

// tlsFieldRe is Postfix 3.10's "tls=..." delivery field, which pflogsumm
// 1.1.5's delivery expression does not allow for (PFLOGSUMM.md,
// difference 2).
var tlsFieldRe = regexp.MustCompile(`(delays=[^,]+, )tls=[^,]+, `)

func normalizeFile(t testing.TB, src, dst string) bool {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	changed := false
	for i, l := range lines {
		if n := tlsFieldRe.ReplaceAllString(normalizeProgram(l), "$1"); n != l {
			lines[i], changed = n, true
		}
	}
	if err := os.WriteFile(dst, []byte(strings.Join(lines, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	return changed
}

type parityInput struct {
	name string
	path string // plain text, what pflogsumm reads
	orig string // what mxray reads (may be gzip)
}

func parityInputs(t *testing.T, dir string) []parityInput {
	t.Helper()
	var in []parityInput
	gen := generateLog(t, dir, "3000")
	in = append(in, parityInput{"gen-postfix-log-3000-seed-7", gen, gen})

	root := testutil.Shared(t, "mail-logs")
	ind, err := filepath.Glob(filepath.Join(root, "lightmeter/test_files/postfix_logs/individual_files/*.log"))
	if err != nil || len(ind) == 0 {
		t.Fatalf("no lightmeter files: %v", err)
	}
	for _, p := range ind {
		in = append(in, parityInput{"lightmeter/" + filepath.Base(p), p, p})
	}
	in = append(in, parityInput{"fail2ban/postfix.log", filepath.Join(root, "fail2ban/postfix.log"), filepath.Join(root, "fail2ban/postfix.log")})

	// complete.tar.gz: every member, gzip members decompressed for
	// pflogsumm (which cannot read them) but read compressed by mxray.
	for _, m := range tarMembers(t, filepath.Join(root, "lightmeter/test_files/postfix_logs/complete.tar.gz")) {
		orig := filepath.Join(dir, "tar-"+strings.ReplaceAll(m.name, "/", "_"))
		if err := os.WriteFile(orig, m.data, 0o644); err != nil {
			t.Fatal(err)
		}
		r, err := NewReader(bytes.NewReader(m.data))
		if err != nil {
			t.Fatal(err)
		}
		plain, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		p := orig + ".txt"
		if err := os.WriteFile(p, plain, 0o644); err != nil {
			t.Fatal(err)
		}
		in = append(in, parityInput{"complete.tar.gz/" + m.name, p, orig})
	}
	return in
}

type tarMember struct {
	name string
	data []byte
}

func tarMembers(t testing.TB, path string) []tarMember {
	t.Helper()
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	var out []tarMember
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, tarMember{h.Name, data})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

func TestPflogsummParity(t *testing.T) {
	if _, err := exec.LookPath("perl"); err != nil {
		t.Fatalf("perl is needed to run pflogsumm: %v", err)
	}
	real := pflogsummPath(t)
	dir := t.TempDir()
	exactScript := exactPflogsumm(t, dir)
	inputs := parityInputs(t, dir)
	var mu sync.Mutex
	var normalized []string
	for _, in := range inputs {
		t.Run(in.name, func(t *testing.T) {
			t.Parallel()
			compat := summarizeFile(t, in.orig, true)
			def := summarizeFile(t, in.orig, false)

			// Compat mode equals pflogsumm exactly, and as printed.
			if diff := cmp.Diff(pflogsummTotals(t, exactScript, in.path), totalsMap(compat, exact)); diff != "" {
				t.Errorf("compat totals differ from pflogsumm (unscaled) (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(pflogsummTotals(t, real, in.path), totalsMap(compat, adjIntUnits)); diff != "" {
				t.Errorf("compat totals differ from pflogsumm as printed (-want +got):\n%s", diff)
			}
			// Default mode equals pflogsumm on the log with program names
			// normalised (PFLOGSUMM.md, difference 1).
			norm := filepath.Join(t.TempDir(), "normalized.log")
			changed := normalizeFile(t, in.path, norm)
			if diff := cmp.Diff(pflogsummTotals(t, exactScript, norm), totalsMap(def, exact)); diff != "" {
				t.Errorf("default totals differ from pflogsumm on the normalised log (-want +got):\n%s", diff)
			}
			if !changed {
				if diff := cmp.Diff(totalsMap(compat, exact), totalsMap(def, exact)); diff != "" {
					t.Errorf("no multi-instance names, yet default and compat totals differ (-compat +default):\n%s", diff)
				}
			}
			if compat != def {
				mu.Lock()
				normalized = append(normalized, in.name)
				mu.Unlock()
			}
		})
	}
	t.Cleanup(func() {
		sort.Strings(normalized)
		t.Logf("inputs where mxray counts more than pflogsumm (multi-instance names): %v", normalized)
	})
}

// TestParityGeneratedMatchesWithoutNormalising pins the headline claim: on
// the generator's log, mxray's default totals are pflogsumm's.
func TestParityGeneratedDefault(t *testing.T) {
	dir := t.TempDir()
	gen := generateLog(t, dir, "3000")
	got := totalsMap(summarizeFile(t, gen, false), exact)
	want := pflogsummTotals(t, exactPflogsumm(t, dir), gen)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if want["received"] == "0" || want["delivered"] == "0" || want["rejected"] == "0" || want["bounced"] == "0" || want["deferred"] == "0" {
		t.Errorf("the generated log exercises too little: %v", want)
	}
}

func TestNormalizeProgram(t *testing.T) {
	for in, want := range map[string]string{
		"Nov  2 00:00:00 h postfix-out/smtp[1]: X: to=<a>":            "Nov  2 00:00:00 h postfix/smtp[1]: X: to=<a>",
		"Nov  2 00:00:00 h postfix/sender-cleanup/cleanup[1]: X":      "Nov  2 00:00:00 h postfix/cleanup[1]: X",
		"Nov  2 00:00:00 h postfix/smtpd[1]: X":                       "Nov  2 00:00:00 h postfix/smtpd[1]: X",
		"2024-01-02T03:04:05.1+00:00 h postfix-1.2.3.4/qmgr[9]: X: y": "2024-01-02T03:04:05.1+00:00 h postfix/qmgr[9]: X: y",
		"Nov  2 00:00:00 h postfix-script[1]: starting":               "Nov  2 00:00:00 h postfix-script[1]: starting",
		"Nov  2 00:00:00 h dovecot[1]: imap-login: Login":             "Nov  2 00:00:00 h dovecot[1]: imap-login: Login",
	} {
		if got := normalizeProgram(in); got != want {
			t.Errorf("normalizeProgram(%q) = %q, want %q", in, got, want)
		}
	}
}
