package web

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

func init() {
	// The production Argon2id cost (64 MiB, 3 passes) takes ~0.2 s a
	// hash; tests that are not about hashing use a small one
	// (TestPasswordHash checks the real one).
	argonTime, argonMemory, argonThreads = 1, 64, 1
}

// withProductionCost runs f with the production work factors.
func withProductionCost(f func()) {
	t, m, p := argonTime, argonMemory, argonThreads
	argonTime, argonMemory, argonThreads = defaultArgonTime, defaultArgonMemory, defaultArgonThreads
	defer func() { argonTime, argonMemory, argonThreads = t, m, p }()
	f()
}

func TestPasswordHash(t *testing.T) {
	var h string
	var ok, rehash bool
	withProductionCost(func() {
		var err error
		if h, err = hashPassword("correct horse"); err != nil {
			t.Fatal(err)
		}
		ok, rehash = verifyPassword(h, "correct horse")
	})
	parts := strings.Split(h, "$")
	// PHC string format: 16-byte salt and 32-byte key in unpadded base64.
	if len(parts) != 6 || parts[1] != "argon2id" || parts[2] != "v=19" || parts[3] != "m=65536,t=3,p=4" ||
		len(parts[4]) != 22 || len(parts[5]) != 43 {
		t.Errorf("hash %q is not $argon2id$v=19$m=65536,t=3,p=4$<16-byte salt>$<32-byte key>", h)
	}
	if !ok || rehash {
		t.Errorf("the right password: ok %v, rehash %v; want true, false", ok, rehash)
	}
	h2, _ := hashPassword("correct horse")
	if !checkPassword(h2, "correct horse") {
		t.Error("the right password does not match a test-cost hash")
	}
	if h2 == h || strings.Split(h2, "$")[4] == parts[4] {
		t.Error("two hashes of one password share a salt")
	}
	p2 := strings.Split(h2, "$")
	salt, key := p2[4], p2[5]
	for _, tc := range []struct{ name, hash, pw string }{
		{"wrong password", h2, "correct horsf"},
		{"empty password", h2, ""},
		{"other scheme", strings.Replace(h2, "argon2id", "argon2i", 1), "correct horse"},
		{"other version", strings.Replace(h2, "v=19", "v=16", 1), "correct horse"},
		{"no version", "$argon2id$m=64,t=1,p=1$" + salt + "$" + key, "correct horse"},
		{"params out of order", "$argon2id$v=19$t=1,m=64,p=1$" + salt + "$" + key, "correct horse"},
		{"extra param", "$argon2id$v=19$m=64,t=1,p=1,x=1$" + salt + "$" + key, "correct horse"},
		{"missing param", "$argon2id$v=19$m=64,t=1$" + salt + "$" + key, "correct horse"},
		{"memory too large", "$argon2id$v=19$m=4294967295,t=1,p=1$" + salt + "$" + key, "correct horse"},
		{"memory over 32 bits", "$argon2id$v=19$m=99999999999,t=1,p=1$" + salt + "$" + key, "correct horse"},
		{"memory below 8p", "$argon2id$v=19$m=7,t=1,p=1$" + salt + "$" + key, "correct horse"},
		{"too many passes", "$argon2id$v=19$m=64,t=1000,p=1$" + salt + "$" + key, "correct horse"},
		{"zero passes", "$argon2id$v=19$m=64,t=0,p=1$" + salt + "$" + key, "correct horse"},
		{"zero lanes", "$argon2id$v=19$m=64,t=1,p=0$" + salt + "$" + key, "correct horse"},
		{"too many lanes", "$argon2id$v=19$m=64,t=1,p=255$" + salt + "$" + key, "correct horse"},
		{"negative", "$argon2id$v=19$m=-64,t=1,p=1$" + salt + "$" + key, "correct horse"},
		{"bad salt base64", "$argon2id$v=19$m=64,t=1,p=1$!!$" + key, "correct horse"},
		{"bad key base64", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$!!", "correct horse"},
		{"padded base64", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "==$" + key, "correct horse"},
		{"empty key", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$", "correct horse"},
		{"short salt", "$argon2id$v=19$m=64,t=1,p=1$AAAA$" + key, "correct horse"},
		{"huge key", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + strings.Repeat("A", 200), "correct horse"},
		{"truncated", "$argon2id$v=19$m=64,t=1,p=1", "correct horse"},
		{"trailing field", h2 + "$", "correct horse"},
		{"scheme only", "$argon2id$", ""},
		{"pbkdf2 too many iterations", "pbkdf2-sha256$99999999$AAAAAAAAAAAAAAAAAAAAAA$" + key, "correct horse"},
		{"pbkdf2 bad base64", "pbkdf2-sha256$1000$!!$!!", "correct horse"},
		{"pbkdf2 truncated", "pbkdf2-sha256$1000", "correct horse"},
		{"plain text", "correct horse", "correct horse"},
		{"empty", "", ""},
	} {
		if ok, rehash := verifyPassword(tc.hash, tc.pw); ok || rehash {
			t.Errorf("%s: %q matched (ok %v, rehash %v)", tc.name, tc.hash, ok, rehash)
		}
	}
}

// A hash made before Argon2id (RFC 8018 PBKDF2-HMAC-SHA256) still
// verifies and asks to be rehashed; so does an Argon2id hash of another cost.
func TestPasswordHashLegacy(t *testing.T) {
	old, err := hashPBKDF2("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(old, fmt.Sprintf("pbkdf2-sha256$%d$", iterations)) {
		t.Fatalf("legacy hash %q", old)
	}
	for _, tc := range []struct {
		name, hash, pw     string
		wantOK, wantRehash bool
	}{
		{"pbkdf2 right", old, "correct horse", true, true},
		{"pbkdf2 wrong", old, "correct horsf", false, false},
		// PBKDF2-HMAC-SHA256, 600000 iterations, made independently
		// (Python hashlib.pbkdf2_hmac), as the previous release stored.
		{"pbkdf2 stored", "pbkdf2-sha256$600000$bXhyYXktbGVnYWN5LXNhbA$dEljtKO2RGliootsh4bYnpMmY-ceekPHQpjEiDxyvZI", "correct horse", true, true},
	} {
		ok, rehash := verifyPassword(tc.hash, tc.pw)
		if ok != tc.wantOK || rehash != tc.wantRehash {
			t.Errorf("%s: ok %v rehash %v, want %v %v", tc.name, ok, rehash, tc.wantOK, tc.wantRehash)
		}
	}
	var other string
	withProductionCost(func() { other, _ = hashPassword("correct horse") })
	if ok, rehash := verifyPassword(other, "correct horse"); !ok || !rehash {
		t.Errorf("argon2id of another cost: ok %v rehash %v, want true true", ok, rehash)
	}
}

// A login with a legacy hash succeeds and leaves an Argon2id hash behind.
func TestLoginRehashes(t *testing.T) {
	f := newFixture(t, noEnv, nil)
	ctx := context.Background()
	old, _ := hashPBKDF2("old secret")
	if err := f.db.AdminSetPassword(ctx, AdminName, old); err != nil {
		t.Fatal(err)
	}
	b := f.browser(t, "192.0.2.1")
	if w := b.login(AdminName, "wrong"); w.Code != http.StatusUnauthorized {
		t.Fatalf("wrong password: %d", w.Code)
	}
	if a, _ := f.db.AdminByName(ctx, AdminName); a.PasswordHash != old {
		t.Errorf("a failed login changed the hash to %q", a.PasswordHash)
	}
	b.mustLogin("old secret")
	a, err := f.db.AdminByName(ctx, AdminName)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(a.PasswordHash, "$argon2id$v=19$") || !checkPassword(a.PasswordHash, "old secret") {
		t.Errorf("after login the hash is %q, want argon2id of the password", a.PasswordHash)
	}
	// The session just made survives the rehash.
	if w := b.get("/troubleshoot/delivery"); w.Code != http.StatusOK {
		t.Errorf("after login: %d", w.Code)
	}
	// The next login keeps the hash.
	b2 := f.browser(t, "192.0.2.2")
	b2.mustLogin("old secret")
	if a2, _ := f.db.AdminByName(ctx, AdminName); a2.PasswordHash != a.PasswordHash {
		t.Error("a second login rehashed again")
	}
}

// The unknown-user path checks against an Argon2id hash of the current
// cost, so it costs what a known user's login does.
func TestDummyHashIsArgon2id(t *testing.T) {
	if h := dummyHash(); !strings.HasPrefix(h, fmt.Sprintf("$argon2id$v=19$m=%d,t=%d,p=%d$", argonMemory, argonTime, argonThreads)) {
		t.Errorf("dummy hash %q", h)
	}
}

func FuzzCheckPassword(f *testing.F) {
	f.Add("$argon2id$v=19$m=64,t=1,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "x")
	f.Add("pbkdf2-sha256$1000$AAAA$AAAA", "x")
	f.Add("$argon2id$v=19$m=8,t=1,p=1$$", "")
	f.Fuzz(func(t *testing.T, hash, pw string) {
		verifyPassword(hash, pw) // must not panic
	})
}
