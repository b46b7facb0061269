package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mxray/mxray/internal/lab"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// cli runs one mxray command line in-process, the way main does.
func cli(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, strings.NewReader(""), &out, &errb)
	return out.String(), errb.String(), code
}

// startLabDNS runs the lab's DNS server with its scenario domains.
func startLabDNS(t *testing.T) string {
	t.Helper()
	s, err := lab.StartDNS("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := lab.LoadScenarios(s); err != nil {
		t.Fatal(err)
	}
	return s.Addr
}

func TestMain(m *testing.M) {
	// Never read the developer's own config or data.
	dir, err := os.MkdirTemp("", "mxray-cmd-test")
	if err != nil {
		panic(err)
	}
	os.Setenv("XDG_DATA_HOME", dir)
	os.Setenv("NO_COLOR", "1")
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// volatile matches the fields of a JSON line that change from run to run.
var volatile = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile(`"elapsed_ms":[0-9.e-]+`), `"elapsed_ms":0`},
	{regexp.MustCompile(`127\.0\.0\.1:[0-9]+`), `127.0.0.1:PORT`},
}

// golden compares got with testdata/golden/NAME after normalising the
// volatile fields; -update rewrites the file.
func golden(t *testing.T, name, got string) {
	t.Helper()
	for _, v := range volatile {
		got = v.re.ReplaceAllString(got, v.with)
	}
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s (-want +got):\n%s", name, diff)
	}
}

// checkEnvelope checks DESIGN.md's JSON Lines contract: every line is a
// JSON object with a type, steps come first, and exactly one result line
// with the command name and schema 1 comes last.
func checkEnvelope(t *testing.T, out, command string) map[string]any {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	var last map[string]any
	for i, l := range lines {
		var obj map[string]any
		if err := json.Unmarshal([]byte(l), &obj); err != nil {
			t.Fatalf("line %d is not JSON: %v\n%s", i+1, err, l)
		}
		typ := obj["type"]
		if i < len(lines)-1 && typ != "step" {
			t.Errorf("line %d has type %v, want step before the result", i+1, typ)
		}
		last = obj
	}
	if last["type"] != "result" || last["command"] != command || last["schema"] != float64(1) {
		t.Fatalf("last line = %v, want type result, command %s, schema 1", last, command)
	}
	return last
}

func TestDNS(t *testing.T) {
	res := "--resolver=" + startLabDNS(t)
	tests := []struct {
		name   string
		args   []string
		code   int
		golden string // for --json runs
		text   []string
	}{
		{name: "mx json", args: []string{"dns", res, "example.test", "MX", "--json"}, code: 0, golden: "dns_example_mx.jsonl"},
		{name: "nxdomain", args: []string{"dns", res, "nope.example.test", "A", "--json"}, code: 1, golden: "dns_nxdomain.jsonl"},
		{name: "nodata named type", args: []string{"dns", res, "example.test", "AAAA"}, code: 1,
			text: []string{"NODATA: example.test exists but has no AAAA records"}},
		{name: "default set with some nodata", args: []string{"dns", res, "example.test"}, code: 0,
			text: []string{"example.test MX", "10 mx1.example.test.", "v=spf1 ip4:127.0.0.0/8 -all"}},
		{name: "default set, strict", args: []string{"dns", res, "--strict", "example.test"}, code: 1},
		{name: "servfail", args: []string{"dns", res, "servfail.test", "MX", "--json"}, code: 3, golden: "dns_servfail.jsonl"},
		{name: "timeout", args: []string{"dns", res, "--timeout", "1s", "timeout.test", "MX"}, code: 3,
			text: []string{"timeout: no answer from 127.0.0.1:"}},
		{name: "ptr for an IP", args: []string{"dns", res, "127.0.0.1"}, code: 0,
			text: []string{"1.0.0.127.in-addr.arpa PTR", "mx1.example.test."}},
		{name: "tcp after truncation", args: []string{"dns", res, "tcp.test", "TXT"}, code: 0,
			text: []string{"/tcp", `"v=spf1 -all"`}},
		{name: "cname chain", args: []string{"dns", res, "www.example.test", "A"}, code: 0,
			text: []string{"www.example.test.  300  CNAME  example.test.", "example.test.  300  A  127.0.0.1"}},
		{name: "unknown type", args: []string{"dns", res, "example.test", "BOGUS"}, code: 2},
		{name: "bad name", args: []string{"dns", res, "exa mple..test"}, code: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := cli(t, tc.args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, out, errOut)
			}
			if tc.golden != "" {
				checkEnvelope(t, out, "dns")
				golden(t, tc.golden, out)
			}
			for _, s := range tc.text {
				if !strings.Contains(out, s) {
					t.Errorf("output lacks %q:\n%s", s, out)
				}
			}
		})
	}
}

func TestDNSTraceGoesToStderr(t *testing.T) {
	res := "--resolver=" + startLabDNS(t)
	out, errOut, code := cli(t, "dns", res, "tcp.test", "TXT", "--json", "--log-level", "trace")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	checkEnvelope(t, out, "dns") // stdout stays machine-clean
	for _, s := range []string{"level=TRACE", "transport=udp", "transport=tcp", "name=tcp.test."} {
		if !strings.Contains(errOut, s) {
			t.Errorf("trace on stderr lacks %q:\n%s", s, errOut)
		}
	}
}

func TestUsageErrorsExit2(t *testing.T) {
	dir := t.TempDir()
	badCfg := filepath.Join(dir, "bad.toml")
	os.WriteFile(badCfg, []byte("resolver = [\"127.0.0.1\"]\nresolvr = 1\n[limits]\nconect = \"1s\"\n"), 0o644)
	tests := []struct {
		args []string
		msg  string
	}{
		{[]string{"bogus"}, `unknown command "bogus"`},
		{[]string{"dns"}, "requires at least 1 arg"},
		{[]string{"dns", "--no-such-flag", "x"}, "unknown flag: --no-such-flag"},
		{[]string{"dns", "--resolver", "[::1", "x"}, "--resolver"},
		{[]string{"dns", "--connect-map", "25=nohost", "x"}, "--connect-map"},
		{[]string{"dns", "--config", badCfg, "x"}, "unknown key(s): limits.conect, resolvr"},
		{[]string{"dns", "--config", filepath.Join(dir, "missing.toml"), "x"}, "no such file"},
		{[]string{"dns", "--log-level", "loud", "x"}, "--log-level"},
		{[]string{"dns", "--tls-ca", badCfg, "x"}, "holds no PEM certificate"},
		{[]string{"version", "extra"}, "accepts 0 arg"},
	}
	for _, tc := range tests {
		_, errOut, code := cli(t, tc.args...)
		if code != 2 || !strings.Contains(errOut, tc.msg) {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 and %q", tc.args, code, errOut, tc.msg)
		}
	}
}

func TestConfigFileAndFlagPrecedence(t *testing.T) {
	addr := startLabDNS(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "mxray.toml")
	os.WriteFile(cfg, []byte("resolver = [\""+addr+"\"]\ntimeout = \"5s\"\n[limits]\ndns = \"1s\"\ndns_tries = 1\n"), 0o644)

	// The default config file lives in --data.
	out, errOut, code := cli(t, "dns", "--data", dir, "example.test", "MX")
	if code != 0 || !strings.Contains(out, "10 mx1.example.test.") {
		t.Fatalf("config resolver not used: exit %d\n%s\n%s", code, out, errOut)
	}
	// A flag beats the file: this resolver does not exist, so the lookup
	// cannot succeed.
	_, _, code = cli(t, "dns", "--config", cfg, "--resolver", "127.0.0.1:1", "--timeout", "1s", "example.test", "MX")
	if code != 3 {
		t.Errorf("--resolver did not override the config: exit %d, want 3", code)
	}
}

func TestVersion(t *testing.T) {
	out, _, code := cli(t, "version", "--json")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	res := checkEnvelope(t, out, "version")
	if res["version"] == "" || !strings.HasPrefix(res["go"].(string), "go1.") {
		t.Errorf("version result %v", res)
	}
	out, _, _ = cli(t, "version")
	if !strings.HasPrefix(out, "mxray ") {
		t.Errorf("version text %q", out)
	}
}

func TestCompletion(t *testing.T) {
	out, _, code := cli(t, "completion", "bash")
	if code != 0 || !strings.Contains(out, "__start_mxray") {
		t.Errorf("bash completion: exit %d, %d bytes", code, len(out))
	}
}

func TestReadSecret(t *testing.T) {
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "pw")
	os.WriteFile(pwFile, []byte("s3cret\r\nsecond line\n"), 0o600)
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, []byte("\n"), 0o600)
	var errb bytes.Buffer
	a := newApp(strings.NewReader(""), &bytes.Buffer{}, &errb)

	t.Setenv(secretEnv, "from-env")
	if pw, err := a.readSecret(pwFile, "Password: "); err != nil || pw != "s3cret" {
		t.Errorf("file: %q, %v; want the first line without CR", pw, err)
	}
	if pw, err := a.readSecret("", "Password: "); err != nil || pw != "from-env" {
		t.Errorf("env: %q, %v", pw, err)
	}
	if _, err := a.readSecret(empty, "Password: "); exitCode(err) != 2 {
		t.Errorf("empty file: %v, want a usage error", err)
	}
	if _, err := a.readSecret(filepath.Join(dir, "none"), "Password: "); exitCode(err) != 2 {
		t.Errorf("missing file: %v, want a usage error", err)
	}
	t.Setenv(secretEnv, "")
	_, err := a.readSecret("", "Password: ")
	if exitCode(err) != 2 || !strings.Contains(err.Error(), "--password-file") {
		t.Errorf("no secret, no terminal: %v, want exit 2 naming --password-file", err)
	}
	if strings.Contains(errb.String(), "s3cret") || strings.Contains(errb.String(), "from-env") {
		t.Error("a secret was written to stderr")
	}
}
