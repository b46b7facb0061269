package maillog

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

// AuthGroup is what one client address or one user name did: failed
// SASL (Postfix) or login (Dovecot) attempts and successful logins.
type AuthGroup struct {
	Key      string    `json:"key"`      // the client IP or the user name
	Failures int64     `json:"failures"` // failure lines (a Dovecot line may stand for several attempts)
	Logins   int64     `json:"logins"`   // successful logins in the same input: a failure streak that ends in one is a break-in to check
	First    time.Time `json:"first,omitzero"`
	Last     time.Time `json:"last,omitzero"`
	// Distinct is how many different users (for an IP) or IPs (for a
	// user) the failures involved; Examples names up to five of them.
	Distinct int      `json:"distinct"`
	Examples []string `json:"examples,omitempty"`
	// Services are the programs that logged the failures:
	// "postfix/submission/smtpd", "dovecot/imap-login", ...
	Services []string `json:"services"`
}

// AuthReport groups authentication failures by client IP and by user.
type AuthReport struct {
	Failures int64 `json:"failures"` // all failure lines
	// Unavailable counts failures because the authentication server
	// could not be reached: a server problem, not an attack.
	Unavailable int64       `json:"unavailable"`
	Logins      int64       `json:"logins"`  // successful logins seen
	NoUser      int64       `json:"no_user"` // failures whose line names no user (Postfix usually does not)
	IPs         int         `json:"ips"`     // distinct client addresses with failures
	Users       int         `json:"users"`   // distinct user names with failures
	First       time.Time   `json:"first,omitzero"`
	Last        time.Time   `json:"last,omitzero"`
	ByIP        []AuthGroup `json:"by_ip"`   // most failures first, at most Top
	ByUser      []AuthGroup `json:"by_user"` // most failures first, at most Top
}

type authAcc struct {
	g        AuthGroup
	others   map[string]bool
	services map[string]bool
}

// AuthCounter accumulates authentication events line by line.
type AuthCounter struct {
	r      AuthReport
	byIP   map[string]*authAcc
	byUser map[string]*authAcc
	// logins are counted for every key, so that a success before the
	// first failure is not lost.
	loginIP, loginUser map[string]int64
}

// NewAuthCounter returns an empty counter.
func NewAuthCounter() *AuthCounter {
	return &AuthCounter{byIP: map[string]*authAcc{}, byUser: map[string]*authAcc{}, loginIP: map[string]int64{}, loginUser: map[string]int64{}}
}

// Auth reads the inputs and reports authentication failures, the top
// entries of each table first.
func Auth(ctx context.Context, opts Options, since time.Time, top int, rs ...io.Reader) (*AuthReport, error) {
	c := NewAuthCounter()
	lines := 0
	if err := Each(ctx, opts, since, rs, func(_ []byte, e Entry) error {
		lines++
		c.Add(e)
		return nil
	}); err != nil {
		return nil, err
	}
	r := c.Report(top)
	if opts.Logger != nil {
		opts.Logger.Debug("maillog auth", "lines", lines, "failures", r.Failures, "ips", r.IPs, "users", r.Users)
	}
	return r, nil
}

func serviceName(e *Entry) string {
	if e.Daemon == DaemonDovecot {
		return "dovecot/" + e.Service
	}
	return e.Program
}

// Add counts one entry.
func (c *AuthCounter) Add(e Entry) {
	switch {
	case e.Event == EventLogin && e.Daemon == DaemonDovecot,
		e.Event == EventClient && e.Daemon == DaemonPostfix && e.SASLUsername != "":
		c.r.Logins++
		if e.Client.IP != "" {
			c.loginIP[e.Client.IP]++
		}
		if e.SASLUsername != "" {
			c.loginUser[strings.ToLower(e.SASLUsername)]++
		}
		return
	case e.Event == EventAuthUnavailable:
		c.r.Unavailable++
		return
	case e.Event != EventAuthFailure:
		return
	}
	c.r.Failures++
	if !e.Time.IsZero() {
		if c.r.First.IsZero() || e.Time.Before(c.r.First) {
			c.r.First = e.Time
		}
		if e.Time.After(c.r.Last) {
			c.r.Last = e.Time
		}
	}
	ip, user := e.Client.IP, strings.ToLower(e.SASLUsername)
	if user == "" {
		c.r.NoUser++
	}
	svc := serviceName(&e)
	if ip != "" {
		addAuth(c.byIP, ip, user, svc, e.Time)
	}
	if user != "" {
		addAuth(c.byUser, user, ip, svc, e.Time)
	}
}

func addAuth(m map[string]*authAcc, key, other, svc string, t time.Time) {
	a := m[key]
	if a == nil {
		a = &authAcc{g: AuthGroup{Key: key}, others: map[string]bool{}, services: map[string]bool{}}
		m[key] = a
	}
	a.g.Failures++
	if !t.IsZero() {
		if a.g.First.IsZero() || t.Before(a.g.First) {
			a.g.First = t
		}
		if t.After(a.g.Last) {
			a.g.Last = t
		}
	}
	if other != "" && len(a.others) < 10000 {
		a.others[other] = true
	}
	a.services[svc] = true
}

// Report returns the counts so far with at most top rows per table
// (0: all).
func (c *AuthCounter) Report(top int) *AuthReport {
	r := c.r
	r.IPs, r.Users = len(c.byIP), len(c.byUser)
	r.ByIP = authList(c.byIP, c.loginIP, top)
	r.ByUser = authList(c.byUser, c.loginUser, top)
	return &r
}

func authList(m map[string]*authAcc, logins map[string]int64, top int) []AuthGroup {
	out := make([]AuthGroup, 0, len(m))
	for _, a := range m {
		g := a.g
		g.Logins = logins[g.Key]
		g.Distinct = len(a.others)
		for o := range a.others {
			g.Examples = append(g.Examples, o)
		}
		sort.Strings(g.Examples)
		if len(g.Examples) > 5 {
			g.Examples = g.Examples[:5]
		}
		for s := range a.services {
			g.Services = append(g.Services, s)
		}
		sort.Strings(g.Services)
		out = append(out, g)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Failures != out[j].Failures {
			return out[i].Failures > out[j].Failures
		}
		return out[i].Key < out[j].Key
	})
	if top > 0 && len(out) > top {
		out = out[:top]
	}
	return out
}

// WriteAuth writes the report as tables for people. Rows with logins
// after failures are marked, because a guessed password looks like that.
func WriteAuth(w io.Writer, r *AuthReport) error {
	ew := &errWriter{w: w}
	fmt.Fprintf(ew, "Authentication failures: %d (%d client addresses, %d user names", r.Failures, r.IPs, r.Users)
	if r.NoUser > 0 {
		fmt.Fprintf(ew, "; %d without a user name", r.NoUser)
	}
	fmt.Fprintln(ew, ")")
	if !r.First.IsZero() {
		fmt.Fprintf(ew, "From %s to %s\n", r.First.Format(time.DateTime), r.Last.Format(time.DateTime))
	}
	if r.Unavailable > 0 {
		fmt.Fprintf(ew, "Authentication server unreachable: %d time(s) — a server problem, not a client's fault\n", r.Unavailable)
	}
	fmt.Fprintf(ew, "Successful logins: %d\n", r.Logins)
	table := func(title, other string, gs []AuthGroup) {
		if len(gs) == 0 {
			return
		}
		fmt.Fprintf(ew, "\n%s\n", title)
		fmt.Fprintf(ew, "  %8s  %-32s  %6s  %-19s  %-19s  %s\n", "failures", "key", "logins", "first", "last", other)
		for _, g := range gs {
			mark := ""
			if g.Logins > 0 {
				mark = "  ← has successful logins too"
			}
			ex := strings.Join(g.Examples, ", ")
			if g.Distinct > len(g.Examples) {
				ex += fmt.Sprintf(" … (%d)", g.Distinct)
			}
			fmt.Fprintf(ew, "  %8d  %-32s  %6d  %-19s  %-19s  %s%s\n", g.Failures, g.Key, g.Logins,
				fmtTime(g.First), fmtTime(g.Last), ex, mark)
		}
	}
	table("By client address", "users tried", r.ByIP)
	table("By user", "from addresses", r.ByUser)
	return ew.err
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Format(time.DateTime)
}
