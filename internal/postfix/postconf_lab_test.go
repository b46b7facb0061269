package postfix

import (
	"context"
	"testing"

	"github.com/mxray/mxray/internal/diag"
	"github.com/mxray/mxray/internal/lab"
)

// TestRealPostconf reads a lab Postfix with the real postconf and postfix
// check, and lints it: the planted open relay is found.
func TestRealPostconf(t *testing.T) {
	pf, err := lab.StartPostfix(context.Background(), lab.PostfixConfig{Main: map[string]string{"mynetworks": "0.0.0.0/0"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pf.Stop() })
	c := &Config{ConfigDir: pf.ConfigDir}
	nd, _, err := c.NonDefault(t.Context())
	if err != nil || nd["queue_directory"] != pf.QueueDir {
		t.Fatalf("NonDefault: %v %v", nd["queue_directory"], err)
	}
	eff, err := c.Effective(t.Context(), LintParams...)
	if err != nil {
		t.Fatal(err)
	}
	def, err := c.Defaults(t.Context(), LintDefaults...)
	if err != nil || def["mail_version"] == "" {
		t.Fatalf("Defaults %v %v", def, err)
	}
	svcs, err := c.Services(t.Context())
	if err != nil || len(svcs) == 0 || svcs[0].Command != "smtpd" || svcs[0].Name != pf.SMTP {
		t.Fatalf("Services %+v %v", svcs, err)
	}
	if r, err := c.Check(t.Context()); err != nil || !r.OK {
		t.Errorf("postfix check: %+v %v", r, err)
	}
	steps := Lint(LintInput{Params: eff, Defaults: def, Services: svcs})
	if st := stepOf(t, steps, "postfix.mynetworks"); st.Status != diag.Fail {
		t.Errorf("open relay not found: %+v", st)
	}
	if st := stepOf(t, steps, "postfix.tls_inbound"); st.Status != diag.Warn {
		t.Errorf("no TLS not found: %+v", st)
	}
}
