package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestAdmins(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *DB) {
		ctx := context.Background()
		if n, err := db.AdminCount(ctx); err != nil || n != 0 {
			t.Fatalf("AdminCount of an empty store = %d, %v", n, err)
		}
		id, created, err := db.AdminCreate(ctx, "admin", "pbkdf2-sha256$1$salt$hash", testNow)
		if err != nil || !created {
			t.Fatalf("AdminCreate = %d, %v, %v", id, created, err)
		}
		if _, created, err := db.AdminCreate(ctx, "admin", "other", testNow); err != nil || created {
			t.Errorf("creating admin twice: created %v, err %v; want false, nil", created, err)
		}
		if n, _ := db.AdminCount(ctx); n != 1 {
			t.Errorf("AdminCount = %d, want 1", n)
		}
		if _, err := db.AdminByName(ctx, "nobody"); !errors.Is(err, ErrNotFound) {
			t.Errorf("AdminByName(nobody) = %v, want ErrNotFound", err)
		}
		later := testNow.Add(time.Hour)
		if err := db.AdminLoggedIn(ctx, id, later); err != nil {
			t.Fatal(err)
		}
		got, err := db.AdminByName(ctx, "admin")
		if err != nil {
			t.Fatal(err)
		}
		want := Admin{ID: id, Name: "admin", PasswordHash: "pbkdf2-sha256$1$salt$hash", Created: testNow, LastLogin: later}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("AdminByName (-want +got):\n%s", diff)
		}

		ss := AdminSession{Hash: Hash([]byte("session-1")), AdminID: id, CSRF: "tok", Created: testNow, Expires: testNow.Add(time.Hour)}
		if err := db.AdminSessionCreate(ctx, ss); err != nil {
			t.Fatal(err)
		}
		gotS, err := db.AdminSession(ctx, ss.Hash, testNow.Add(59*time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		wantS := ss
		wantS.Admin = "admin"
		if diff := cmp.Diff(wantS, gotS); diff != "" {
			t.Errorf("AdminSession (-want +got):\n%s", diff)
		}
		if _, err := db.AdminSession(ctx, ss.Hash, testNow.Add(time.Hour)); !errors.Is(err, ErrNotFound) {
			t.Errorf("an expired session: %v, want ErrNotFound", err)
		}
		if _, err := db.AdminSession(ctx, Hash([]byte("unknown")), testNow); !errors.Is(err, ErrNotFound) {
			t.Errorf("an unknown session: %v, want ErrNotFound", err)
		}

		// Expiry deletes only what has expired.
		ss2 := AdminSession{Hash: Hash([]byte("session-2")), AdminID: id, CSRF: "tok2", Created: testNow, Expires: testNow.Add(3 * time.Hour)}
		if err := db.AdminSessionCreate(ctx, ss2); err != nil {
			t.Fatal(err)
		}
		if n, err := db.AdminSessionsExpire(ctx, testNow.Add(2*time.Hour)); err != nil || n != 1 {
			t.Errorf("AdminSessionsExpire = %d, %v; want 1", n, err)
		}
		if _, err := db.AdminSession(ctx, ss2.Hash, testNow.Add(2*time.Hour)); err != nil {
			t.Errorf("the live session was expired too: %v", err)
		}
		if err := db.AdminSessionDelete(ctx, ss2.Hash); err != nil {
			t.Fatal(err)
		}
		if err := db.AdminSessionDelete(ctx, ss2.Hash); err != nil {
			t.Errorf("deleting twice: %v", err)
		}
		if _, err := db.AdminSession(ctx, ss2.Hash, testNow); !errors.Is(err, ErrNotFound) {
			t.Errorf("a deleted session: %v, want ErrNotFound", err)
		}

		// A new password ends every session of the account.
		ss3 := AdminSession{Hash: Hash([]byte("session-3")), AdminID: id, CSRF: "tok3", Created: testNow, Expires: testNow.Add(time.Hour)}
		if err := db.AdminSessionCreate(ctx, ss3); err != nil {
			t.Fatal(err)
		}
		if err := db.AdminSetPassword(ctx, "admin", "new-hash"); err != nil {
			t.Fatal(err)
		}
		if _, err := db.AdminSession(ctx, ss3.Hash, testNow); !errors.Is(err, ErrNotFound) {
			t.Errorf("a session outlived a password change: %v", err)
		}
		if a, _ := db.AdminByName(ctx, "admin"); a.PasswordHash != "new-hash" {
			t.Errorf("password hash = %q, want new-hash", a.PasswordHash)
		}
		if err := db.AdminSetPassword(ctx, "nobody", "x"); !errors.Is(err, ErrNotFound) {
			t.Errorf("AdminSetPassword(nobody) = %v, want ErrNotFound", err)
		}
		// A session of an unknown account is refused by the database.
		if err := db.AdminSessionCreate(ctx, AdminSession{Hash: "x", AdminID: id + 100, Expires: testNow}); err == nil {
			t.Error("a session of an unknown account was stored")
		}
	})
}
