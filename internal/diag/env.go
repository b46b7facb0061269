package diag

import (
	"context"
	"crypto/x509"
	"log/slog"
	"time"

	"github.com/mxray/mxray/internal/dnsx"
)

// Limits are the per-operation time limits of a run. Each is cut down to
// the time left before the run's deadline (see Fit).
type Limits struct {
	Connect time.Duration // one TCP connect
	Command time.Duration // one SMTP/IMAP/POP3 command and its reply
	DNS     time.Duration // one DNS try on one server
	DNSTry  int           // DNS tries over all servers
	HTTP    time.Duration // one HTTPS fetch (MTA-STS policy, autoconfig)
}

// DefaultLimits are DESIGN.md's: TCP connect 10 s, one command 30 s, DNS
// 3 s × 2 tries, and RFC 8461 §3.3's advice for policy fetches.
var DefaultLimits = Limits{
	Connect: 10 * time.Second,
	Command: 30 * time.Second,
	DNS:     3 * time.Second,
	DNSTry:  2,
	HTTP:    60 * time.Second,
}

// Fit returns d, or the time left before ctx's deadline if that is
// shorter; never less than a millisecond, so that a late operation fails
// with a timeout of its own rather than not starting.
func Fit(ctx context.Context, d time.Duration) time.Duration {
	if dl, ok := ctx.Deadline(); ok {
		if left := time.Until(dl); left < d {
			d = left
		}
	}
	return max(d, time.Millisecond)
}

// Env is the injected world of a diagnostic. Nothing below cmd/ reaches the
// network, DNS or the clock except through it, so tests swap in the lab.
type Env struct {
	Resolver dnsx.Resolver
	Dialer   *dnsx.Dialer
	// Roots are the trusted CAs: the system's plus --tls-ca. Nil means the
	// system's alone.
	Roots  *x509.CertPool
	Now    func() time.Time
	Logger *slog.Logger
	Limits Limits
}

// Clock returns Env.Now, or time.Now when unset.
func (e Env) Clock() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

// Log returns Env.Logger, or a logger that discards when unset.
func (e Env) Log() *slog.Logger {
	if e.Logger != nil {
		return e.Logger
	}
	return slog.New(slog.DiscardHandler)
}
