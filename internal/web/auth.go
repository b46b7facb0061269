package web

import (
	"context"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/argon2"

	"github.com/mxray/mxray/internal/store"
)

// AdminName is the account EnsureAdmin creates.
const AdminName = "admin"

// Password hashing. New hashes are Argon2id (RFC 9106) in the PHC string
// format $argon2id$v=19$m=KiB,t=passes,p=lanes$SALT$KEY (salt and key in
// unpadded standard base64). Hashes stored before Argon2id, RFC 8018 §5.2
// PBKDF2-HMAC-SHA256 as pbkdf2-sha256$ITERATIONS$SALT$KEY, are still
// verified, and replaced by an Argon2id hash at the next successful login.
const (
	argonScheme = "argon2id"
	pbkdfScheme = "pbkdf2-sha256"

	// RFC 9106 §4: the second recommended option (t=3, m=64 MiB, p=4),
	// for when the first (t=1, m=2 GiB) is more memory than a login may
	// take; ~0.2 s a hash on a 2-core machine.
	defaultArgonTime    = 3
	defaultArgonMemory  = 64 * 1024 // KiB
	defaultArgonThreads = 4

	saltBytes = 16 // RFC 9106 §3.1: 128 bits is enough for all uses
	keyBytes  = 32 // RFC 9106 §4: tag length 256 bits

	// Limits on stored hashes, so a tampered row cannot stall or exhaust
	// the server at login.
	maxArgonTime    = 10
	maxArgonMemory  = 1 << 20 // KiB: 1 GiB
	maxArgonThreads = 16
	maxIterations   = 10_000_000
	maxKeyBytes     = 64
)

// The work factor of new hashes; tests lower it. iterations is the
// PBKDF2 count, used only to make legacy hashes in tests.
var (
	argonTime    uint32 = defaultArgonTime
	argonMemory  uint32 = defaultArgonMemory
	argonThreads uint8  = defaultArgonThreads
	iterations          = 600_000
)

// hashSlots bounds the hashes computed at once: each Argon2id hash holds
// its memory (64 MiB) while it runs.
var hashSlots = make(chan struct{}, 4)

func argonKey(password string, salt []byte, t, m uint32, p uint8, n uint32) []byte {
	hashSlots <- struct{}{}
	defer func() { <-hashSlots }()
	return argon2.IDKey([]byte(password), salt, t, m, p, n)
}

// hashPassword returns a new Argon2id hash of password in the PHC format.
func hashPassword(password string) (string, error) {
	salt := make([]byte, saltBytes)
	rand.Read(salt) // never fails (crypto/rand, Go 1.24+)
	key := argonKey(password, salt, argonTime, argonMemory, argonThreads, keyBytes)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$%s$v=%d$m=%d,t=%d,p=%d$%s$%s", argonScheme, argon2.Version,
		argonMemory, argonTime, argonThreads, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// hashPBKDF2 returns a legacy pbkdf2-sha256$ITERATIONS$SALT$KEY hash (salt
// and key in unpadded base64url); only tests make new ones.
func hashPBKDF2(password string) (string, error) {
	salt := make([]byte, saltBytes)
	rand.Read(salt)
	key, err := pbkdf2.Key(sha256.New, password, salt, iterations, keyBytes)
	if err != nil {
		return "", fmt.Errorf("web: hashing password: %w", err)
	}
	b64 := base64.RawURLEncoding
	return fmt.Sprintf("%s$%d$%s$%s", pbkdfScheme, iterations, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// checkPassword reports whether password matches an encoded hash, in
// time that does not depend on where they differ. A malformed hash, or
// one whose cost is beyond the limits above, matches nothing.
func checkPassword(encoded, password string) bool {
	ok, _ := verifyPassword(encoded, password)
	return ok
}

// verifyPassword is checkPassword that also tells whether the hash should
// be replaced by a new one (a legacy scheme, or other Argon2id costs).
func verifyPassword(encoded, password string) (ok, rehash bool) {
	switch {
	case strings.HasPrefix(encoded, "$"+argonScheme+"$"):
		return checkArgon2id(encoded, password)
	case strings.HasPrefix(encoded, pbkdfScheme+"$"):
		ok = checkPBKDF2(encoded, password)
		return ok, ok
	}
	return false, false
}

// checkArgon2id verifies a PHC string $argon2id$v=19$m=M,t=T,p=P$SALT$KEY.
func checkArgon2id(encoded, password string) (ok, rehash bool) {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != argonScheme || parts[2] != fmt.Sprintf("v=%d", argon2.Version) {
		return false, false
	}
	var m, t, p uint64
	var err error
	for i, kv := range strings.Split(parts[3], ",") {
		name, val, found := strings.Cut(kv, "=")
		want := [...]string{"m", "t", "p", ""}[min(i, 3)]
		if !found || name != want {
			return false, false
		}
		dst := [...]*uint64{&m, &t, &p}[i]
		if *dst, err = strconv.ParseUint(val, 10, 32); err != nil {
			return false, false
		}
	}
	if t < 1 || t > maxArgonTime || p < 1 || p > maxArgonThreads || m < 8*p || m > maxArgonMemory {
		return false, false
	}
	b64 := base64.RawStdEncoding
	salt, err1 := b64.DecodeString(parts[4])
	want, err2 := b64.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(salt) < 8 || len(want) < 16 || len(want) > maxKeyBytes {
		return false, false
	}
	got := argonKey(password, salt, uint32(t), uint32(m), uint8(p), uint32(len(want)))
	ok = subtle.ConstantTimeCompare(got, want) == 1
	rehash = uint32(t) != argonTime || uint32(m) != argonMemory || uint8(p) != argonThreads
	return ok, ok && rehash
}

// checkPBKDF2 verifies a legacy pbkdf2-sha256$ITERATIONS$SALT$KEY hash.
func checkPBKDF2(encoded, password string) bool {
	parts := strings.Split(encoded, "$")
	if len(parts) != 4 || parts[0] != pbkdfScheme {
		return false
	}
	iter, err := strconv.Atoi(parts[1])
	if err != nil || iter < 1 || iter > maxIterations {
		return false
	}
	b64 := base64.RawURLEncoding
	salt, err1 := b64.DecodeString(parts[2])
	want, err2 := b64.DecodeString(parts[3])
	if err1 != nil || err2 != nil || len(want) == 0 || len(want) > maxKeyBytes {
		return false
	}
	got, err := pbkdf2.Key(sha256.New, password, salt, iter, len(want))
	return err == nil && subtle.ConstantTimeCompare(got, want) == 1
}

// dummyHash is checked against when the account does not exist, so that a
// login for an unknown name takes as long as one for a known name.
var dummyHash = sync.OnceValue(func() string {
	h, _ := hashPassword(randomToken())
	return h
})

// randomToken returns 32 random bytes in unpadded base64url (43
// characters): session ids, CSRF tokens and first passwords.
func randomToken() string {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand, Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}

// tokenHash is how the store knows a session: SHA-256, hex.
func tokenHash(token string) string { return store.Hash([]byte(token)) }

// EnsureAdmin creates the account "admin" with a random password when the
// store has no account at all, and returns that password, to be shown
// once (the store keeps only its hash). When an account exists it
// returns "", false, nil. at stamps the account's creation.
func EnsureAdmin(ctx context.Context, accounts Accounts, at time.Time) (password string, created bool, err error) {
	n, err := accounts.AdminCount(ctx)
	if err != nil || n > 0 {
		return "", false, err
	}
	password = randomToken()
	hash, err := hashPassword(password)
	if err != nil {
		return "", false, err
	}
	if _, created, err = accounts.AdminCreate(ctx, AdminName, hash, at); err != nil || !created {
		return "", false, err
	}
	return password, true, nil
}

// ResetPassword gives account name a new random password, returned to be
// shown once, and ends its sessions.
func ResetPassword(ctx context.Context, accounts Accounts, name string) (string, error) {
	password := randomToken()
	hash, err := hashPassword(password)
	if err != nil {
		return "", err
	}
	if err := accounts.AdminSetPassword(ctx, name, hash); err != nil {
		return "", err
	}
	return password, nil
}

// Cookies. Under TLS the session cookie takes the __Host- prefix, which
// browsers accept only with Secure, Path=/ and no Domain (RFC 6265bis
// §4.1.3.2), so no sibling host can plant one.
const (
	sessionCookie = "mxray_session"
	loginCookie   = "mxray_login" // the login form's double-submit token
)

func (s *server) cookieName(base string) string {
	if s.cfg.Secure {
		return "__Host-" + base
	}
	return base
}

func (s *server) setCookie(w http.ResponseWriter, base, value string, maxAge time.Duration) {
	c := &http.Cookie{Name: s.cookieName(base), Value: value, Path: "/", HttpOnly: true,
		Secure: s.cfg.Secure, SameSite: http.SameSiteLaxMode, MaxAge: int(maxAge.Seconds())}
	if maxAge < 0 {
		c.MaxAge = -1
	}
	if base == loginCookie {
		c.SameSite = http.SameSiteStrictMode
	}
	http.SetCookie(w, c)
}

// session returns the request's live session, or nil.
func (s *server) session(r *http.Request) *store.AdminSession {
	c, err := r.Cookie(s.cookieName(sessionCookie))
	if err != nil || c.Value == "" {
		return nil
	}
	sess, err := s.cfg.Store.AdminSession(r.Context(), tokenHash(c.Value), s.now())
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			s.log.Error("web: session lookup", "err", err)
		}
		return nil
	}
	return &sess
}

type authHandler func(http.ResponseWriter, *http.Request, *store.AdminSession)

// auth lets logged-in requests through to h. Without a session a page
// redirects to the login, the event stream gets 401. A POST must carry
// the session's CSRF token in the form field "csrf", else 403.
func (s *server) auth(h authHandler) http.HandlerFunc { return s.authBody(h, maxFormBytes) }

// authBody is auth with a larger limit on the POST body (a message
// upload); multipart bodies are parsed with at most 1 MiB in memory, the
// rest in temporary files. A body over limit is refused with 413.
func (s *server) authBody(h authHandler, limit int64) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		sess := s.session(r)
		if sess == nil {
			if r.Method != http.MethodGet || strings.HasSuffix(r.URL.Path, "/run") {
				http.Error(w, "not logged in", http.StatusUnauthorized)
				return
			}
			http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, limit)
			var err error
			if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt == "multipart/form-data" {
				err = r.ParseMultipartForm(multipartMemory)
			} else {
				err = r.ParseForm()
			}
			if tooBig := (*http.MaxBytesError)(nil); errors.As(err, &tooBig) {
				http.Error(w, "The form is too large: at most "+sizeText(limit)+".", http.StatusRequestEntityTooLarge)
				return
			}
			if !sameToken(r.PostFormValue("csrf"), sess.CSRF) {
				http.Error(w, "form token missing or wrong (CSRF protection): reload the page and try again", http.StatusForbidden)
				return
			}
		}
		h(w, r, sess)
	}
}

func sameToken(got, want string) bool {
	return got != "" && want != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

func (s *server) loginPage(w http.ResponseWriter, r *http.Request) {
	if s.session(r) != nil {
		http.Redirect(w, r, localPath(r.URL.Query().Get("next")), http.StatusSeeOther)
		return
	}
	s.renderLogin(w, r, http.StatusOK, "", "")
}

// renderLogin shows the login form with a fresh double-submit token.
func (s *server) renderLogin(w http.ResponseWriter, r *http.Request, code int, name, msg string) {
	tok := randomToken()
	s.setCookie(w, loginCookie, tok, time.Hour)
	next := r.URL.Query().Get("next")
	if r.Method == http.MethodPost {
		next = r.PostFormValue("next")
	}
	s.render(w, code, "login", page{Title: "Log in", CSRF: tok, Error: msg, Name: name, Next: localPath(next)})
}

func (s *server) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	c, err := r.Cookie(s.cookieName(loginCookie))
	if err != nil || !sameToken(r.PostFormValue("csrf"), c.Value) {
		http.Error(w, "form token missing or wrong (CSRF protection): reload the login page and try again", http.StatusForbidden)
		return
	}
	name := strings.TrimSpace(r.PostFormValue("name"))
	password := r.PostFormValue("password")
	ip := clientKey(r)
	userKey := "user:" + strings.ToLower(name)
	if wait, blocked := s.loginIP.blocked(ip); blocked {
		s.tooMany(w, r, name, wait)
		return
	}
	if wait, blocked := s.loginUser.blocked(userKey); blocked {
		s.tooMany(w, r, name, wait)
		return
	}
	ctx := r.Context()
	acct, err := s.cfg.Store.AdminByName(ctx, name)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		s.log.Error("web: login", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	hash := acct.PasswordHash
	if err != nil {
		hash = dummyHash()
	}
	ok, rehash := verifyPassword(hash, password)
	if !ok || err != nil {
		s.loginIP.add(ip)
		s.loginUser.add(userKey)
		s.log.Info("web: login failed", "name", name, "client", ip)
		s.renderLogin(w, r, http.StatusUnauthorized, name, "Wrong account name or password.")
		return
	}
	s.loginIP.reset(ip)
	s.loginUser.reset(userKey)
	if rehash {
		// An older scheme or cost: store a new Argon2id hash now that the
		// password is known. This ends the account's other sessions.
		if h, err := hashPassword(password); err == nil {
			if err := s.cfg.Store.AdminSetPassword(ctx, acct.Name, h); err != nil {
				s.log.Warn("web: rehashing password", "err", err)
			} else {
				s.log.Info("web: password rehashed to argon2id", "name", acct.Name)
			}
		}
	}

	now := s.now()
	if _, err := s.cfg.Store.AdminSessionsExpire(ctx, now); err != nil {
		s.log.Warn("web: expiring sessions", "err", err)
	}
	id := randomToken()
	sess := store.AdminSession{Hash: tokenHash(id), AdminID: acct.ID, CSRF: randomToken(), Created: now, Expires: now.Add(s.cfg.SessionTTL)}
	if err := s.cfg.Store.AdminSessionCreate(ctx, sess); err != nil {
		s.log.Error("web: login", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	if err := s.cfg.Store.AdminLoggedIn(ctx, acct.ID, now); err != nil {
		s.log.Warn("web: login", "err", err)
	}
	s.log.Info("web: login", "name", acct.Name, "client", ip)
	s.setCookie(w, loginCookie, "", -1)
	s.setCookie(w, sessionCookie, id, s.cfg.SessionTTL)
	http.Redirect(w, r, localPath(r.PostFormValue("next")), http.StatusSeeOther)
}

func (s *server) tooMany(w http.ResponseWriter, r *http.Request, name string, wait time.Duration) {
	mins := int(wait.Round(time.Minute) / time.Minute)
	w.Header().Set("Retry-After", strconv.Itoa(int(wait.Round(time.Second)/time.Second)))
	s.renderLogin(w, r, http.StatusTooManyRequests, name,
		fmt.Sprintf("Too many failed logins: try again in %d minute(s).", max(mins, 1)))
}

func (s *server) logout(w http.ResponseWriter, r *http.Request, sess *store.AdminSession) {
	if err := s.cfg.Store.AdminSessionDelete(r.Context(), sess.Hash); err != nil {
		s.log.Error("web: logout", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	s.setCookie(w, sessionCookie, "", -1)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// localPath keeps a redirect target on this site: an absolute path, not
// "//host" nor "/\host" (which browsers read as another host).
func localPath(p string) string {
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.HasPrefix(p, "/\\") || strings.ContainsAny(p, "\r\n") {
		return "/troubleshoot/delivery"
	}
	return p
}

// clientKey is the rate limiters' key of a request: its IPv4 address, or
// its IPv6 /64 (one host usually holds a whole /64).
func clientKey(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return "ip:" + host
	}
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return "ip:" + p.String()
	}
	return "ip:" + a.String()
}

// sizeText writes a byte count as KiB or MiB.
func sizeText(n int64) string {
	if n >= 1<<20 {
		return strconv.FormatInt(n>>20, 10) + " MiB"
	}
	return strconv.FormatInt(n>>10, 10) + " KiB"
}
