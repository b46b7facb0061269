package spf

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/mxray/mxray/internal/diag"
	"github.com/mxray/mxray/internal/dnsx"
	"github.com/mxray/mxray/internal/lab"
	"github.com/mxray/mxray/internal/testutil"
)

// The openspf.org test suites (../shared/testdata/spf-test-suite) run
// against the lab's DNS server: every scenario's zonedata becomes zones,
// and every test case's result must be one the suite allows.

// suiteTimeout is the DNS limit for the suite: names marked TIMEOUT never
// answer, so this is what each of their queries costs.
const suiteTimeout = 150 * time.Millisecond

type suiteScenario struct {
	Description string                 `yaml:"description"`
	Tests       map[string]suiteCase   `yaml:"tests"`
	Zonedata    map[string][]yaml.Node `yaml:"zonedata"`
}

type suiteCase struct {
	Description string       `yaml:"description"`
	Spec        any          `yaml:"spec"`
	Helo        string       `yaml:"helo"`
	Host        string       `yaml:"host"`
	MailFrom    string       `yaml:"mailfrom"`
	Result      suiteResults `yaml:"result"`
	Explanation *string      `yaml:"explanation"`
}

// suiteResults is a result or a list of acceptable ones.
type suiteResults []string

func (r *suiteResults) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.SequenceNode {
		var l []string
		if err := n.Decode(&l); err != nil {
			return err
		}
		*r = l
		return nil
	}
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	*r = suiteResults{s}
	return nil
}

func loadSuite(t *testing.T, file string) []suiteScenario {
	t.Helper()
	f, err := os.Open(filepath.Join(testutil.Shared(t, "spf-test-suite"), file))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := yaml.NewDecoder(f)
	var out []suiteScenario
	for {
		var s suiteScenario
		if err := dec.Decode(&s); err != nil {
			if err.Error() == "EOF" {
				break
			}
			t.Fatalf("%s: %v", file, err)
		}
		out = append(out, s)
	}
	return out
}

// bytesOf turns YAML text back into the octets the suite means: its
// "\xEF" escapes are code points below 256, one octet each.
func bytesOf(s string) string {
	b := make([]byte, 0, len(s))
	for _, r := range s {
		if r > 0xff || r == utf8.RuneError {
			return s
		}
		b = append(b, byte(r))
	}
	return string(b)
}

// zoneString quotes one TXT character-string in master-file syntax.
func zoneString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20 || c > 0x7e:
			fmt.Fprintf(&b, "\\%03d", c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

func zoneTXT(strs []string) string {
	if len(strs) == 0 {
		return `""` // a TXT record with no strings cannot be written; one empty string is as useless
	}
	var parts []string
	for _, s := range strs {
		s = bytesOf(s)
		for len(s) > 255 {
			parts = append(parts, zoneString(s[:255]))
			s = s[255:]
		}
		parts = append(parts, zoneString(s))
	}
	return strings.Join(parts, " ")
}

func zoneName(s string) string {
	s = strings.TrimSuffix(s, ".")
	if s == "" {
		return "."
	}
	return presentation(s) + "."
}

// suiteZone is one name's records and whether its queries time out.
type suiteZone struct {
	owner   string
	lines   []string
	timeout bool
}

// buildZones reads a scenario's zonedata the way the suite's reference
// driver (pyspf's testspf.py) does: SPF records are also served as TXT
// unless the name has a TXT entry of its own ("TXT: NONE" counts, and
// serves nothing); a TIMEOUT entry makes queries of the name time out,
// unless a record of the asked type comes before it.
func buildZones(t *testing.T, zd map[string][]yaml.Node) []suiteZone {
	t.Helper()
	var zones []suiteZone
	for name, recs := range zd {
		z := suiteZone{owner: zoneName(strings.ToLower(name))}
		var spf [][]string
		hasTXT, seenBeforeTimeout := false, false
		for _, n := range recs {
			if n.Kind == yaml.ScalarNode && n.Value == "TIMEOUT" {
				// Only "spftimeout" lists records before TIMEOUT: its TXT
				// answers and its type SPF query (never made) times out.
				z.timeout = !seenBeforeTimeout
				continue
			}
			if n.Kind != yaml.MappingNode || len(n.Content) != 2 {
				t.Fatalf("zonedata %s: unexpected entry %v", name, n.Value)
			}
			typ, v := n.Content[0].Value, n.Content[1]
			seenBeforeTimeout = seenBeforeTimeout || typ == "TXT" && v.Value != "NONE"
			var strs []string
			if v.Kind == yaml.SequenceNode {
				if err := v.Decode(&strs); err != nil {
					t.Fatalf("zonedata %s %s: %v", name, typ, err)
				}
			} else {
				strs = []string{v.Value}
			}
			switch typ {
			case "TXT", "SPF":
				if typ == "TXT" {
					hasTXT = true
				}
				if v.Kind == yaml.ScalarNode && v.Value == "NONE" {
					continue
				}
				if typ == "SPF" {
					spf = append(spf, strs)
				}
				z.lines = append(z.lines, fmt.Sprintf("%s %s %s", z.owner, typ, zoneTXT(strs)))
			case "A", "AAAA":
				z.lines = append(z.lines, fmt.Sprintf("%s %s %s", z.owner, typ, v.Value))
			case "MX":
				z.lines = append(z.lines, fmt.Sprintf("%s MX %s %s", z.owner, strs[0], zoneName(strs[1])))
			case "PTR", "CNAME":
				z.lines = append(z.lines, fmt.Sprintf("%s %s %s", z.owner, typ, zoneName(v.Value)))
			default:
				t.Fatalf("zonedata %s: unknown type %s", name, typ)
			}
		}
		if !hasTXT {
			for _, s := range spf {
				z.lines = append(z.lines, fmt.Sprintf("%s TXT %s", z.owner, zoneTXT(s)))
			}
		}
		zones = append(zones, z)
	}
	sort.Slice(zones, func(i, j int) bool { return zones[i].owner < zones[j].owner })
	return zones
}

// startSuiteDNS serves a scenario: one root zone with every record, and
// a zone of its own for each name that times out and for each name below
// one (so that the timeout does not swallow it).
func startSuiteDNS(t *testing.T, zd map[string][]yaml.Node) string {
	t.Helper()
	s, err := lab.StartDNS("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	zones := buildZones(t, zd)
	var all []string
	var timeouts []string
	for _, z := range zones {
		all = append(all, z.lines...)
		if z.timeout {
			timeouts = append(timeouts, z.owner)
		}
	}
	// The lab would make up an SOA named after the origin ("ns.." for
	// the root), which cannot be sent; give the root zone a real one.
	all = append([]string{". SOA ns.lab.test. hostmaster.lab.test. 1 3600 600 86400 60"}, all...)
	if err := s.AddZone(".", strings.Join(all, "\n")+"\n", lab.ZoneOptions{}); err != nil {
		t.Fatalf("root zone: %v\n%s", err, strings.Join(all, "\n"))
	}
	for _, z := range zones {
		under := false
		for _, to := range timeouts {
			under = under || (z.owner != to && strings.HasSuffix(z.owner, "."+to))
		}
		switch {
		case z.timeout:
			if err := s.AddZone(z.owner, "", lab.ZoneOptions{Drop: true}); err != nil {
				t.Fatal(err)
			}
		case under:
			if err := s.AddZone(z.owner, strings.Join(z.lines, "\n")+"\n", lab.ZoneOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	return s.Addr
}

func suiteEnv(addr string) diag.Env {
	c := dnsx.New([]string{addr})
	c.Timeout, c.Tries = suiteTimeout, 1
	return diag.Env{
		Resolver: c,
		Now:      func() time.Time { return time.Unix(1700000000, 0) },
		Limits:   diag.Limits{DNS: suiteTimeout, DNSTry: 1},
	}
}

// runSuite runs every case of file except those in skip (name → why
// RFC 7208 decides differently), and fails on any other mismatch.
func runSuite(t *testing.T, file string, skip map[string]string) {
	scenarios := loadSuite(t, file)
	ran, excluded := 0, 0
	seen := map[string]bool{}
	for _, sc := range scenarios {
		addr := startSuiteDNS(t, sc.Zonedata)
		names := make([]string, 0, len(sc.Tests))
		for n := range sc.Tests {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, name := range names {
			tc := sc.Tests[name]
			if _, ok := skip[name]; ok {
				seen[name] = true
				excluded++
				continue
			}
			ran++
			t.Run(sc.Description+"/"+name, func(t *testing.T) {
				ip, err := netip.ParseAddr(tc.Host)
				if err != nil {
					t.Fatalf("host %q: %v", tc.Host, err)
				}
				res := Check(context.Background(), suiteEnv(addr), Query{
					IP: ip, MailFrom: tc.MailFrom, Helo: tc.Helo, DefaultExplanation: "DEFAULT",
				})
				ok := false
				for _, want := range tc.Result {
					ok = ok || string(res.Status) == want
				}
				if !ok {
					t.Errorf("%s (spec %v): result %s, want %v; err %v\n%s", name, tc.Spec, res.Status, tc.Result, res.Err, dumpTrace(res.Trace))
				}
				if tc.Explanation != nil && res.Explanation != *tc.Explanation {
					t.Errorf("%s: explanation %q, want %q\n%s", name, res.Explanation, *tc.Explanation, dumpTrace(res.Trace))
				}
			})
		}
	}
	for name := range skip {
		if !seen[name] {
			t.Errorf("exclusion %q names no test case of %s", name, file)
		}
	}
	t.Logf("%s: %d cases run, %d excluded", file, ran, excluded)
}

func dumpTrace(n *Node) string {
	var b strings.Builder
	var walk func(n *Node, depth int)
	walk = func(n *Node, depth int) {
		ind := strings.Repeat("  ", depth)
		fmt.Fprintf(&b, "%s%s %s %s domain=%s exp=%q matched=%v result=%s lookups=%d void=%d note=%q err=%q\n",
			ind, n.Kind, n.Term, n.Record, n.Domain, n.Expanded, n.Matched, n.Result, n.Lookups, n.VoidLookups, n.Note, n.Error)
		for _, q := range n.Queries {
			fmt.Fprintf(&b, "%s  ? %s %s → %s %v %s\n", ind, q.Name, q.Type, q.Status, q.Answers, q.Error)
		}
		for _, c := range n.Children {
			walk(c, depth+1)
		}
	}
	if n != nil {
		walk(n, 0)
	}
	return b.String()
}

func TestRFC7208Suite(t *testing.T) {
	runSuite(t, "rfc7208-tests.yml", nil)
}

// TestRFC4408Suite runs the RFC 4408 suite whole: where RFC 7208 changed a
// rule (mx-limit, invalid-domain-*, type SPF records, multiple records),
// the 4408 suite already accepts the RFC 7208 answer among its
// alternatives, so no case needs excluding.
func TestRFC4408Suite(t *testing.T) {
	runSuite(t, "rfc4408-tests.yml", nil)
}

// TestPyspfSuite runs pyspf's own cases. Their Received-SPF "header"
// fields are pyspf's wording and are not compared (mxray writes no
// Received-SPF header).
func TestPyspfSuite(t *testing.T) {
	runSuite(t, "pyspf-test.yml", map[string]string{
		"default-modifier": "pyspf's lax mode (strict: 0) honours the pre-RFC 4408 default= modifier; " +
			"RFC 7208 §6 makes it an unknown modifier, ignored (the RFC 7208 suite's default-modifier-obsolete cases check that)",
		"default-modifier-harsh": "expects pyspf's own \"ambiguous\" result (strict: 2), which is not an RFC 7208 result",
	})
}
