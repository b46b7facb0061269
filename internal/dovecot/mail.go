package dovecot

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/mxray/mxray/internal/diag"
)

// ErrNoHome: a mail path starts with ~ but no home directory template is
// configured (mail_home, or home in a static userdb).
var ErrNoHome = errors.New("dovecot: mail path is relative to a home directory that the configuration does not name")

// Location is where Dovecot keeps a user's mail.
type Location struct {
	// Driver is maildir, mbox, sdbox, mdbox, imapc, ...; "" means Dovecot
	// autodetects (2.3 with mail_location unset).
	Driver string `json:"driver"`
	Path   string `json:"path,omitempty"`  // the mail root template: "~/Maildir", "/var/vmail/%d/%n/Maildir"
	Inbox  string `json:"inbox,omitempty"` // INBOX= or mail_inbox_path, e.g. "/var/mail/%u"
	Home   string `json:"home,omitempty"`  // mail_home or the userdb's home template
	// Source names the settings read: "mail_location" (2.3) or
	// "mail_driver/mail_path" (2.4).
	Source string `json:"source"`
	Raw    string `json:"raw,omitempty"`
}

// Location returns the configured mail location.
func (c *Config) Location() Location {
	var l Location
	if drv, ok := c.Get("mail_driver"); ok || c.V24() {
		l.Source = "mail_driver/mail_path"
		l.Driver = drv
		l.Path, _ = c.Get("mail_path")
		l.Inbox, _ = c.Get("mail_inbox_path")
		l.Raw = strings.TrimSpace(drv + ":" + l.Path)
	} else {
		l.Source = "mail_location"
		raw, _ := c.Get("mail_location")
		l.Raw = raw
		if raw != "" {
			parts := strings.Split(raw, ":")
			l.Driver = parts[0]
			if len(parts) > 1 {
				l.Path = parts[1]
			}
			for i := 2; i < len(parts); i++ {
				kv := parts[i]
				if k, v, ok := strings.Cut(kv, "="); ok && strings.EqualFold(k, "INBOX") {
					l.Inbox = v
				}
			}
		}
	}
	l.Home = c.homeTemplate()
	return l
}

// homeTemplate is mail_home, or the home a static userdb assigns (2.3
// "args = ... home=..."; 2.4 "fields { home = ... }").
func (c *Config) homeTemplate() string {
	if h, ok := c.Get("mail_home"); ok && h != "" {
		return h
	}
	for _, db := range c.Root.Find("userdb") {
		if h := argValue(db, "home"); h != "" {
			return h
		}
	}
	return ""
}

// MailUID is the system user mail is stored as when every user shares one
// (mail_uid, or uid in a static userdb); "" when users have their own.
func (c *Config) MailUID() string {
	if u, ok := c.Get("mail_uid"); ok && u != "" {
		return u
	}
	for _, db := range c.Root.Find("userdb") {
		if u := argValue(db, "uid"); u != "" {
			return u
		}
	}
	return ""
}

// argValue finds name=value in a userdb's args (2.3) or name in its
// fields section (2.4).
func argValue(db *Section, name string) string {
	if args, ok := db.Get("args"); ok {
		for _, f := range strings.Fields(args) {
			if k, v, ok := strings.Cut(f, "="); ok && k == name {
				return v
			}
		}
	}
	for _, f := range db.Find("fields") {
		if v, ok := f.Get(name); ok {
			return v
		}
	}
	return ""
}

// Glob turns a mail path template into a filepath.Glob pattern: every
// variable (%u, %Ld, %{user}, %{user | domain}) becomes *, "~" the home
// template's pattern.
func (l Location) Glob(path string) (string, error) {
	if strings.HasPrefix(path, "~") || strings.Contains(path, "%h") || strings.Contains(path, "%{home}") {
		if l.Home == "" {
			return "", ErrNoHome
		}
		home := strings.TrimSuffix(l.Home, "/")
		path = strings.Replace(path, "~", home, 1)
		path = strings.ReplaceAll(strings.ReplaceAll(path, "%{home}", home), "%h", home)
	}
	var b strings.Builder
	for i := 0; i < len(path); i++ {
		c := path[i]
		if c != '%' {
			if c == '*' || c == '?' || c == '[' || c == '\\' {
				b.WriteByte('\\')
			}
			b.WriteByte(c)
			continue
		}
		if i+1 < len(path) && path[i+1] == '%' {
			b.WriteByte('%')
			i++
			continue
		}
		if i+1 < len(path) && path[i+1] == '{' {
			end := strings.IndexByte(path[i:], '}')
			if end < 0 {
				return "", fmt.Errorf("dovecot: unterminated variable in %q", path)
			}
			i += end
		} else {
			// %Lu, %2.256Nu, %d: modifiers, digits and dots, then the letter.
			j := i + 1
			for j < len(path) && strings.IndexByte("0123456789.-LUEHNX", path[j]) >= 0 {
				j++
			}
			i = j
		}
		b.WriteByte('*')
	}
	return filepath.Clean(b.String()), nil
}

// Lint checks Dovecot's TLS and cleartext-login settings; a Dovecot
// that listens on loopback only is judged more leniently.
func Lint(c *Config) []diag.Step {
	return []diag.Step{lintTLS(c), lintCleartext(c)}
}

// loopbackOnly reports whether Dovecot listens only on loopback addresses.
func loopbackOnly(c *Config) bool {
	v, ok := c.Get("listen")
	if !ok {
		return false
	}
	items := strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' })
	if len(items) == 0 {
		return false
	}
	for _, it := range items {
		a, err := netip.ParseAddr(strings.Trim(it, "[]"))
		if err != nil || !a.IsLoopback() {
			return false
		}
	}
	return true
}

func sslMode(c *Config) string {
	if v, ok := c.Get("ssl"); ok {
		return v
	}
	return "yes" // the default in 2.3 and 2.4
}

func certFile(c *Config) string {
	for _, k := range []string{"ssl_server_cert_file", "ssl_cert"} {
		if v, ok := c.Get(k); ok && v != "" {
			return strings.TrimPrefix(v, "<")
		}
	}
	return ""
}

func lintTLS(c *Config) diag.Step {
	st := diag.Step{ID: "dovecot.tls", Title: "Dovecot offers TLS", Status: diag.OK, RFC: "RFC 8314 §3"}
	mode, cert := sslMode(c), certFile(c)
	st.Data = map[string]string{"ssl": mode, "cert": cert}
	st.Detail = fmt.Sprintf("ssl = %s, certificate %s", mode, orNone(cert))
	switch {
	case mode == "no" && loopbackOnly(c):
		st.Status, st.Title = diag.Info, "Dovecot has no TLS, but listens on loopback only"
	case mode == "no":
		st.Status, st.Title = diag.Warn, "No TLS: Dovecot has ssl = no"
		st.Detail += "\nIMAP and POP3 clients connect in clear text"
		key := "ssl_cert = </etc/letsencrypt/live/mail.example.com/fullchain.pem and ssl_key = <…/privkey.pem"
		if c.V24() {
			key = "ssl_server_cert_file = /etc/letsencrypt/live/mail.example.com/fullchain.pem and ssl_server_key_file = …/privkey.pem"
		}
		st.Hint = "set ssl = required, " + key
	case cert == "":
		st.Status, st.Title = diag.Info, "Dovecot TLS is on; no certificate named in the non-default settings"
	}
	return st
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// CleartextAllowed reports whether logins with a cleartext password
// (PLAIN, LOGIN, USER/PASS) are allowed before TLS: 2.3's
// disable_plaintext_auth = no, 2.4's auth_allow_cleartext = yes.
func CleartextAllowed(c *Config) (bool, string) {
	if v, ok := c.Get("auth_allow_cleartext"); ok {
		return v == "yes", "auth_allow_cleartext = " + v
	}
	if v, ok := c.Get("disable_plaintext_auth"); ok {
		return v == "no", "disable_plaintext_auth = " + v
	}
	if c.V24() {
		return false, "auth_allow_cleartext = no (default)"
	}
	return false, "disable_plaintext_auth = yes (default)"
}

func lintCleartext(c *Config) diag.Step {
	st := diag.Step{ID: "dovecot.cleartext", Title: "Cleartext logins only after TLS", Status: diag.OK, RFC: "RFC 8314 §3"}
	allowed, setting := CleartextAllowed(c)
	mode := sslMode(c)
	st.Detail = setting + ", ssl = " + mode
	st.Data = map[string]any{"cleartext_allowed": allowed, "ssl": mode}
	hint := "set disable_plaintext_auth = yes"
	if c.V24() {
		hint = "set auth_allow_cleartext = no"
	}
	switch {
	case !allowed || mode == "required":
	case loopbackOnly(c):
		st.Status, st.Title = diag.Info, "Cleartext logins are allowed, on loopback only"
	case mode == "no":
		st.Status, st.Title = diag.Fail, "Passwords travel in clear text: no TLS and cleartext logins allowed"
		st.Hint = "enable TLS (ssl = required) and " + hint
	default:
		st.Status, st.Title = diag.Warn, "Cleartext logins are allowed before STARTTLS"
		st.Hint = hint
	}
	return st
}

// MaildirCheck is the verdict on one Maildir's permissions and owner.
type MaildirCheck struct {
	Path     string      `json:"path"`
	Mode     string      `json:"mode"` // "0700"
	UID      int         `json:"uid"`
	GID      int         `json:"gid"`
	WantUID  int         `json:"want_uid"` // -1: not known
	Status   diag.Status `json:"status"`
	Problems []string    `json:"problems,omitempty"`
}

// CheckMaildir checks a Maildir (the directory holding cur, new and tmp):
// it and its subdirectories should be mode 0700, owned by the user mail is
// stored as (wantUID; -1 when not known: then only a consistent, non-root
// owner is asked for).
func CheckMaildir(path string, wantUID int) (MaildirCheck, error) {
	r := MaildirCheck{Path: path, WantUID: wantUID, Status: diag.OK}
	fi, err := os.Stat(path)
	if err != nil {
		return r, err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return r, fmt.Errorf("dovecot: no owner information for %s", path)
	}
	r.UID, r.GID = int(st.Uid), int(st.Gid)
	r.Mode = fmt.Sprintf("%04o", fi.Mode().Perm())
	worse := func(s diag.Status, msg string) {
		if s.Worse(r.Status) {
			r.Status = s
		}
		r.Problems = append(r.Problems, msg)
	}
	// Problems name "the Maildir" or its subdirectory; the caller names
	// the path.
	perm := func(name string, m os.FileMode) {
		switch {
		case m&0o002 != 0:
			worse(diag.Fail, fmt.Sprintf("%s is world-writable (%04o): any local user can read, plant or delete mail", name, m))
		case m&0o077 != 0:
			worse(diag.Warn, fmt.Sprintf("%s is mode %04o: other users can read it; want 0700", name, m))
		}
	}
	perm("the Maildir", fi.Mode().Perm())
	switch {
	case wantUID >= 0 && r.UID != wantUID:
		worse(diag.Fail, fmt.Sprintf("owned by uid %d, not by uid %d that mail is stored as: Dovecot cannot write it (Permission denied)", r.UID, wantUID))
	case wantUID < 0 && r.UID == 0:
		worse(diag.Warn, "owned by root: Dovecot never accesses mail as root (first_valid_uid)")
	}
	for _, sub := range []string{"cur", "new", "tmp"} {
		sfi, err := os.Stat(filepath.Join(path, sub))
		if err != nil {
			continue // Dovecot creates missing ones
		}
		perm(sub, sfi.Mode().Perm())
		if sst, ok := sfi.Sys().(*syscall.Stat_t); ok && int(sst.Uid) != r.UID {
			worse(diag.Fail, fmt.Sprintf("%s is owned by uid %d, the Maildir by uid %d", sub, sst.Uid, r.UID))
		}
	}
	return r, nil
}

// IsMaildir reports whether dir has cur, new and tmp subdirectories.
func IsMaildir(dir string) bool {
	for _, sub := range []string{"cur", "new", "tmp"} {
		fi, err := os.Stat(filepath.Join(dir, sub))
		if err != nil || !fi.IsDir() {
			return false
		}
	}
	return true
}

// FindMaildirs returns the Maildirs under root, at most depth levels
// down and at most limit of them, sorted. A Maildir's own folders
// (.Sent, ...) are not listed separately.
func FindMaildirs(root string, depth, limit int) []string {
	var out []string
	var walk func(dir string, d int)
	walk = func(dir string, d int) {
		if len(out) >= limit {
			return
		}
		if IsMaildir(dir) {
			out = append(out, dir)
			return
		}
		if d >= depth {
			return
		}
		ents, err := os.ReadDir(dir)
		if err != nil {
			return
		}
		for _, e := range ents {
			if e.IsDir() {
				walk(filepath.Join(dir, e.Name()), d+1)
			}
		}
	}
	walk(root, 0)
	sort.Strings(out)
	return out
}

// ResolveUID turns a user name or number into a uid; -1 when unknown.
func ResolveUID(u string, lookup func(string) (string, error)) int {
	if u == "" {
		return -1
	}
	if n, err := strconv.Atoi(u); err == nil {
		return n
	}
	if lookup == nil {
		return -1
	}
	s, err := lookup(u)
	if err != nil {
		return -1
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return -1
	}
	return n
}
