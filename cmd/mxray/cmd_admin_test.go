package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/mxray/mxray/internal/store"
	"github.com/mxray/mxray/internal/web"
)

func TestAdminResetPassword(t *testing.T) {
	data := t.TempDir()
	if _, errOut, code := cli(t, "admin", "reset-password", "--data", data); code != 2 || !strings.Contains(errOut, `no web admin account "admin"`) {
		t.Fatalf("before any account: exit %d, %q; want 2", code, errOut)
	}
	ctx := context.Background()
	db, err := store.Open(ctx, data, store.Options{Now: time.Now})
	if err != nil {
		t.Fatal(err)
	}
	first, created, err := web.EnsureAdmin(ctx, db, time.Now())
	db.Close()
	if err != nil || !created {
		t.Fatalf("EnsureAdmin: %v %v", created, err)
	}

	out, _, code := cli(t, "admin", "reset-password", "--data", data, "--json")
	res := checkEnvelope(t, out, "admin reset-password")
	pw, _ := res["password"].(string)
	if code != 0 || res["user"] != "admin" || len(pw) < 20 || pw == first {
		t.Fatalf("reset: exit %d, %v", code, res)
	}
	// The new password is the one stored: a second reset gives another.
	out, _, code = cli(t, "admin", "reset-password", "--data", data)
	if code != 0 || !strings.HasPrefix(out, `new password for "admin" (shown once): `) || strings.Contains(out, pw) {
		t.Errorf("second reset: exit %d, %q", code, out)
	}
}
