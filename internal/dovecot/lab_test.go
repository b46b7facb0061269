package dovecot

import (
	"context"
	"testing"

	"github.com/mxray/mxray/internal/lab"
)

// TestRealDoveconf reads a running lab Dovecot's configuration with the
// real doveconf and doveadm.
func TestRealDoveconf(t *testing.T) {
	dv, err := lab.StartDovecot(context.Background(), lab.DovecotConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dv.Stop() })
	tl := &Tools{ConfigFile: dv.ConfigFile}
	c, raw, err := tl.NonDefault(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	loc := c.Location()
	if loc.Driver != "maildir" || loc.Path != dv.MailDir+"/%d/%n/Maildir" {
		t.Errorf("location %+v from\n%s", loc, raw)
	}
	if _, err := tl.Who(t.Context()); err != nil {
		t.Errorf("doveadm who on a running Dovecot: %v", err)
	}
	if base, err := tl.Value(t.Context(), "base_dir"); err != nil || base != dv.Dir+"/run" {
		t.Errorf("base_dir = %q %v", base, err)
	}
}
