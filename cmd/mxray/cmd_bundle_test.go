package main

import (
	"archive/tar"
	"compress/gzip"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mxray/mxray/internal/lab"
)

// readBundle opens a tar.gz and returns its members by name.
func readBundle(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	m := map[string]string{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		m[h.Name] = string(b)
	}
	return m
}

func TestBundleNothingInstalled(t *testing.T) {
	useRecordedHost(t, recordedTools{})
	dir := t.TempDir()
	wd, _ := os.Getwd()
	t.Chdir(dir) // the default output file goes to the current directory
	out, errOut, code := cli(t, "bundle", "--resolver", "127.0.0.1:1", "--json", "--log", filepath.Join(dir, "none.log"))
	os.Chdir(wd) // back, for the golden file
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	res := checkEnvelope(t, out, "bundle")
	file, _ := res["file"].(string)
	if !regexp.MustCompile(`^mxray-bundle-[A-Za-z0-9._-]+-\d{8}T\d{6}Z\.tar\.gz$`).MatchString(file) {
		t.Errorf("default file name %q", file)
	}
	members := readBundle(t, filepath.Join(dir, file))
	// The members and the missing parts, without sizes, times and paths.
	type summary struct {
		Members []string          `json:"members"`
		Missing map[string]string `json:"missing"`
	}
	var s summary
	s.Missing = map[string]string{}
	for _, m := range res["members"].([]any) {
		s.Members = append(s.Members, m.(map[string]any)["name"].(string))
	}
	for _, m := range res["missing"].([]any) {
		mm := m.(map[string]any)
		s.Missing[mm["name"].(string)] = strings.ReplaceAll(mm["reason"].(string), dir, "TMP")
	}
	js, _ := json.MarshalIndent(s, "", "  ")
	golden(t, "bundle_none.json", string(js)+"\n")
	for _, want := range append(s.Members, "MANIFEST.txt") {
		if _, ok := members[want]; !ok {
			t.Errorf("member %s not in the tar", want)
		}
	}
	man := members["MANIFEST.txt"]
	for _, want := range []string{"Missing:", "postconf-n.txt               Postfix is not installed", "doveconf-n.txt               Dovecot is not installed", "Not redacted: user names"} {
		if !strings.Contains(man, want) {
			t.Errorf("manifest lacks %q:\n%s", want, man)
		}
	}
	if !strings.Contains(members["server-check.jsonl"], `"command":"server check"`) {
		t.Errorf("server check member: %s", members["server-check.jsonl"])
	}
}

// TestBundleRedactsLabSecrets plants secrets in a real Postfix's and
// Dovecot's configuration and logs and proves that none of them is in
// any member of the bundle.
func TestBundleRedactsLabSecrets(t *testing.T) {
	secrets := []string{"PlantedQuota1", "PlantedConnect2", "PlantedPlain3", "PlantedToken4", "PlantedGiven5", "PlantedSasl7", "PlantedToken8", "alice-password", "PRIVATE KEY"}
	ca, err := lab.NewCA(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.Issue([]string{"mx1.example.test"}, lab.CertOptions{Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	saslDir := t.TempDir()
	sasl := filepath.Join(saslDir, "sasl_passwd")
	os.WriteFile(sasl, []byte("[relay.example.test]:587 user:PlantedSasl7\n"), 0o600)
	pf, dv := startLabServer(t, lab.PostfixConfig{Cert: cert, Main: map[string]string{
		"smtp_sasl_password_maps": "texthash:" + sasl + ", inline:{ [relay2.example.test]:587=user:PlantedToken8 }",
	}}, lab.DovecotConfig{Cert: cert, Extra: `plugin {
  quota_password = PlantedQuota1
  sql_connect = host=db password=PlantedConnect2 dbname=mail
  note = user:{PLAIN}PlantedPlain3
  api_token = PlantedToken4
}
`})
	f, err := os.OpenFile(pf.LogFile, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(time.Now().UTC().Format(time.RFC3339) + " mx1 dovecot: auth: passwd-file(bob@example.test,192.0.2.1): Password mismatch (given password: PlantedGiven5)\n")
	f.Close()

	// The secrets are there to find: the tools print them unredacted.
	raw, _ := exec.Command("postconf", "-c", pf.ConfigDir, "-n").Output()
	rawDv, _ := exec.Command("doveconf", "-c", dv.ConfigFile, "-n").Output()
	for _, s := range []string{"PlantedToken8", "PlantedPlain3", "PlantedToken4"} {
		if !strings.Contains(string(raw)+string(rawDv), s) {
			t.Fatalf("planted %s is not in postconf/doveconf output: the test proves nothing", s)
		}
	}

	out := filepath.Join(t.TempDir(), "b.tar.gz")
	stdout, errOut, code := cli(t, "bundle", "--resolver", "127.0.0.1:1", "-o", out, "-c", pf.ConfigDir, "--dovecot-config", dv.ConfigFile, "--lines", "500")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, errOut)
	}
	if !strings.Contains(stdout, "Wrote "+out) {
		t.Errorf("stdout %q", stdout)
	}
	members := readBundle(t, out)
	for _, want := range []string{"MANIFEST.txt", "postconf-n.txt", "postconf-M.txt", "doveconf-n.txt", "server-check.jsonl", "queue-summary.json",
		"listening-ports.txt", "versions.txt", "logs/postfix.log", "logs/dovecot.log"} {
		if _, ok := members[want]; !ok {
			t.Errorf("no member %s (have %v)", want, keys(members))
		}
	}
	for name, body := range members {
		for _, s := range secrets {
			if strings.Contains(body, s) {
				t.Errorf("secret %q in %s", s, name)
			}
		}
	}
	// What was redacted is listed, by key name.
	man := members["MANIFEST.txt"]
	for _, want := range []string{"smtp_sasl_password_maps", "smtpd_tls_key_file", "api_token", "{SCHEME}password", "given password"} {
		if !strings.Contains(man, want) {
			t.Errorf("manifest does not list %q:\n%s", want, man)
		}
	}
	// Evidence is kept: the redacted lines still name their keys, the
	// rest of the configuration is intact.
	for member, want := range map[string]string{
		"postconf-n.txt":   "smtp_sasl_password_maps = <redacted>",
		"doveconf-n.txt":   "note = user:{PLAIN}<redacted>",
		"versions.txt":     "postfix: 3.",
		"logs/postfix.log": "(given password: <redacted>)",
	} {
		if !strings.Contains(members[member], want) {
			t.Errorf("%s lacks %q:\n%s", member, want, members[member])
		}
	}
	if !strings.Contains(members["postconf-n.txt"], "myhostname = mx1.example.test") || !strings.Contains(members["server-check.jsonl"], `"id":"postfix.running","status":"ok"`) {
		t.Errorf("evidence lost:\n%s\n%s", members["postconf-n.txt"], members["server-check.jsonl"])
	}
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
