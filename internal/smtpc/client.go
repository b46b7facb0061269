// Package smtpc is a small SMTP client (RFC 5321) that keeps a transcript
// of everything said, for diagnostics: the greeting, EHLO with its service
// extensions and the HELO fallback (RFC 5321 §4.1.1.1, §3.2), STARTTLS
// (RFC 3207), AUTH PLAIN (RFC 4616) and LOGIN (RFC 4954), MAIL FROM with
// the SIZE (RFC 1870) and SMTPUTF8 (RFC 6531) parameters, RCPT TO, RSET,
// NOOP and QUIT. Replies carry their RFC 3463 enhanced status codes
// (RFC 2034).
//
// Every line sent and received is kept with its time offset, marked "C:"
// or "S:"; credentials are replaced by <redacted> before they reach the
// transcript or the log. Every command is bounded by diag.Env's Command
// limit and the context's deadline.
//
// The client cannot send a message: there is deliberately no DATA or BDAT,
// so that a diagnostic built on it can never deliver mail by mistake. The
// single exception is the separate function SendMessageForRoundTrip, used
// only by `mxray roundtrip` (internal/probe); a test pins that.
//
// Not supported either: PIPELINING (commands go one at a time), CHUNKING,
// SASL mechanisms other than PLAIN and LOGIN, SASL security layers, and
// quoted local parts containing spaces.
package smtpc

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mxray/mxray/internal/diag"
)

// Sentinel errors, wrapped with %w; test with errors.Is.
var (
	// ErrTimeout: the server did not answer within the command limit or
	// before the context's deadline.
	ErrTimeout = errors.New("smtpc: timeout waiting for the server")
	// ErrClosed: the server closed (or reset) the connection.
	ErrClosed = errors.New("smtpc: connection closed by the server")
	// ErrProtocol: the server sent something that is not an SMTP reply,
	// or too much of it.
	ErrProtocol = errors.New("smtpc: protocol error")
	// ErrTLS: the TLS handshake after STARTTLS failed.
	ErrTLS = errors.New("smtpc: TLS handshake failed")
	// ErrBadArgument: an address or name that cannot go into a command
	// (line breaks, angle brackets, spaces), refused before sending.
	ErrBadArgument = errors.New("smtpc: invalid command argument")
	// ErrUnsupported: the command needs an extension the server did not
	// announce, or an unknown SASL mechanism was asked for.
	ErrUnsupported = errors.New("smtpc: not supported")
)

// Redacted replaces credentials in transcripts and logs.
const Redacted = "<redacted>"

// levelTrace is the log level of protocol lines (--log-level trace).
const levelTrace = slog.LevelDebug - 4

// Line is one line of a transcript.
type Line struct {
	Offset time.Duration `json:"offset"` // since the connection was made
	Dir    string        `json:"dir"`    // "C" (client) or "S" (server)
	Text   string        `json:"text"`
}

// String gives the line as transcripts show it: "C: EHLO x".
func (l Line) String() string { return l.Dir + ": " + l.Text }

// Client is one SMTP session. It is not safe for concurrent use, except
// that Transcript may be called at any time.
type Client struct {
	// Host is the server's name: the TLS server name for STARTTLS, and
	// the name in log lines.
	Host string

	env   diag.Env
	conn  net.Conn
	br    *bufio.Reader
	start time.Time

	mu    sync.Mutex
	lines []Line

	ext      *Extensions
	tlsState *tls.ConnectionState
}

// Dial connects to address (HOST:PORT) through env.Dialer, so that the
// connect map applies, within env.Limits.Connect. It does not read the
// greeting: call Greeting next.
func Dial(ctx context.Context, env diag.Env, address string) (*Client, error) {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadArgument, err)
	}
	if env.Dialer == nil {
		return nil, errors.New("smtpc: no dialer in env")
	}
	dctx, cancel := context.WithTimeout(ctx, diag.Fit(ctx, limit(env.Limits.Connect, diag.DefaultLimits.Connect)))
	defer cancel()
	conn, err := env.Dialer.DialContext(dctx, "tcp", address)
	if err != nil {
		return nil, fmt.Errorf("smtpc: connect %s: %w", address, err)
	}
	return New(env, conn, host), nil
}

// DialAddr connects to one address of the server named host, through
// env.Dialer (connect map applied), within env.Limits.Connect. The error
// wraps dnsx.ErrConnRefused, ErrConnTimeout or ErrHostUnreachable when the
// cause is one of those.
func DialAddr(ctx context.Context, env diag.Env, host string, addr netip.AddrPort) (*Client, error) {
	if env.Dialer == nil {
		return nil, errors.New("smtpc: no dialer in env")
	}
	dctx, cancel := context.WithTimeout(ctx, diag.Fit(ctx, limit(env.Limits.Connect, diag.DefaultLimits.Connect)))
	defer cancel()
	conn, err := env.Dialer.DialAddr(dctx, addr)
	if err != nil {
		return nil, fmt.Errorf("smtpc: connect %s: %w", addr, err)
	}
	return New(env, conn, host), nil
}

// New wraps an established connection to the server named host.
func New(env diag.Env, conn net.Conn, host string) *Client {
	return &Client{
		Host:  host,
		env:   env,
		conn:  conn,
		br:    bufio.NewReaderSize(conn, MaxLineLen),
		start: env.Clock(),
	}
}

func limit(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// RemoteAddr is the address actually connected to (after the connect map).
func (c *Client) RemoteAddr() net.Addr { return c.conn.RemoteAddr() }

// Extensions returns what the last successful EHLO announced; ok is false
// before EHLO, after HELO, and after STARTTLS until the next EHLO
// (RFC 3207 §4.2: the client must forget what it knew).
func (c *Client) Extensions() (Extensions, bool) {
	if c.ext == nil {
		return Extensions{}, false
	}
	return *c.ext, true
}

// TLS returns the state of the TLS session, or nil before STARTTLS.
func (c *Client) TLS() *tls.ConnectionState { return c.tlsState }

// Transcript returns every line so far.
func (c *Client) Transcript() []Line {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Line(nil), c.lines...)
}

// Mark returns a position in the transcript, for Since.
func (c *Client) Mark() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.lines)
}

// Since returns the transcript lines after mark, as "C: …"/"S: …" strings
// (the form diag.Step.Transcript holds).
func (c *Client) Since(mark int) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, l := range c.lines[min(mark, len(c.lines)):] {
		out = append(out, l.String())
	}
	return out
}

func (c *Client) record(ctx context.Context, dir, text string) {
	l := Line{Offset: c.env.Clock().Sub(c.start), Dir: dir, Text: text}
	c.mu.Lock()
	c.lines = append(c.lines, l)
	c.mu.Unlock()
	c.env.Log().Log(ctx, levelTrace, "smtp", "host", c.Host, "line", l.String(), "offset", l.Offset)
}

// bound limits one operation to the Command limit and ctx: when either
// passes, the connection's deadline is set in the past, which wakes any
// blocked read or write. The returned func releases it.
func (c *Client) bound(ctx context.Context) (context.Context, func()) {
	cctx, cancel := context.WithTimeout(ctx, diag.Fit(ctx, limit(c.env.Limits.Command, diag.DefaultLimits.Command)))
	conn := c.conn
	var mu sync.Mutex
	stop := context.AfterFunc(cctx, func() {
		mu.Lock()
		conn.SetDeadline(time.Unix(1, 0))
		mu.Unlock()
	})
	return cctx, func() {
		if !stop() {
			// The deadline fired, perhaps just after the operation
			// succeeded: clear it, so that the next command starts clean.
			mu.Lock()
			conn.SetDeadline(time.Time{})
			mu.Unlock()
		}
		cancel()
	}
}

// classify maps a network error onto the package's sentinels.
func classify(ctx context.Context, err error) error {
	var ne net.Error
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrProtocol) || errors.Is(err, ErrClosed) || errors.Is(err, ErrTimeout) || errors.Is(err, ErrTLS):
		return err
	case errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) ||
		errors.As(err, &ne) && ne.Timeout() || ctx.Err() != nil:
		if cerr := context.Cause(ctx); cerr != nil {
			return fmt.Errorf("%w (%w)", ErrTimeout, cerr)
		}
		return ErrTimeout
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNABORTED):
		return fmt.Errorf("%w: %w", ErrClosed, err)
	}
	return err
}

// Greeting reads the server's greeting (RFC 5321 §4.3.1: 220, or 554 when
// the server refuses service; 421 when it is shutting down).
func (c *Client) Greeting(ctx context.Context) (Reply, error) {
	cctx, release := c.bound(ctx)
	defer release()
	return c.read(cctx, "")
}

func (c *Client) read(ctx context.Context, command string) (Reply, error) {
	r, err := readReply(c.br, func(line string) { c.record(ctx, "S", line) })
	r.Command = command
	if err != nil {
		return r, classify(ctx, err)
	}
	return r, nil
}

// Cmd sends one command line and reads the reply. shown is the line as the
// transcript and log show it (the line itself when empty). Reply codes are
// the caller's to judge: err is non-nil only when no reply was read.
func (c *Client) cmd(ctx context.Context, line, shown string) (Reply, error) {
	if strings.ContainsAny(line, "\r\n\x00") {
		return Reply{}, fmt.Errorf("%w: line break in command", ErrBadArgument)
	}
	if shown == "" {
		shown = line
	}
	start := c.env.Clock()
	cctx, release := c.bound(ctx)
	defer release()
	c.record(cctx, "C", shown)
	if _, err := io.WriteString(c.conn, line+"\r\n"); err != nil {
		err = classify(cctx, err)
		c.env.Log().Debug("smtp command", "host", c.Host, "command", shown, "elapsed", c.env.Clock().Sub(start), "err", err)
		return Reply{Command: shown}, err
	}
	r, err := c.read(cctx, shown)
	c.env.Log().Debug("smtp command", "host", c.Host, "command", shown, "code", r.Code,
		"elapsed", c.env.Clock().Sub(start), "err", err)
	return r, err
}

// Ehlo sends EHLO name; on a 250 reply the announced extensions are kept
// (see Extensions).
func (c *Client) Ehlo(ctx context.Context, name string) (Reply, error) {
	if err := checkArg(name); err != nil || name == "" {
		return Reply{}, fmt.Errorf("%w: EHLO name %q", ErrBadArgument, name)
	}
	r, err := c.cmd(ctx, "EHLO "+name, "")
	if err == nil && r.Code == 250 {
		e := ParseEHLO(r)
		c.ext = &e
	} else {
		c.ext = nil
	}
	return r, err
}

// Helo sends HELO name (for servers that do not know EHLO). The server
// then announces no extensions.
func (c *Client) Helo(ctx context.Context, name string) (Reply, error) {
	if err := checkArg(name); err != nil || name == "" {
		return Reply{}, fmt.Errorf("%w: HELO name %q", ErrBadArgument, name)
	}
	c.ext = nil
	return c.cmd(ctx, "HELO "+name, "")
}

// Hello sends EHLO and, when the server refuses it with a 5yz reply
// ("command not recognized"), HELO, as RFC 5321 §3.2 tells a client to.
// usedHelo reports the fallback.
func (c *Client) Hello(ctx context.Context, name string) (r Reply, usedHelo bool, err error) {
	r, err = c.Ehlo(ctx, name)
	if err != nil || !r.Permanent() {
		return r, false, err
	}
	r, err = c.Helo(ctx, name)
	return r, true, err
}

// StartTLS sends STARTTLS (RFC 3207) and, on a 220 reply, performs the TLS
// handshake with cfg (nil: ServerName Host and RootCAs env.Roots, full
// verification). A reply other than 220 is returned with no error and the
// session stays in cleartext. A failed handshake returns an error wrapping
// ErrTLS; the connection is then unusable. After a handshake the client
// forgets the extensions (RFC 3207 §4.2): send EHLO again.
func (c *Client) StartTLS(ctx context.Context, cfg *tls.Config) (Reply, error) {
	if c.tlsState != nil {
		return Reply{}, fmt.Errorf("%w: STARTTLS inside TLS", ErrUnsupported)
	}
	r, err := c.cmd(ctx, "STARTTLS", "")
	if err != nil || r.Code != 220 {
		return r, err
	}
	// RFC 3207 §5: anything the server sent after its 220 arrived before
	// TLS and would later be read as if it had been protected: the
	// STARTTLS response-injection attack. Refuse it.
	if n := c.br.Buffered(); n > 0 {
		return r, fmt.Errorf("%w: server sent %d octets after its STARTTLS reply, before the handshake", ErrProtocol, n)
	}
	if cfg == nil {
		cfg = &tls.Config{ServerName: c.Host, RootCAs: c.env.Roots}
	}
	start := c.env.Clock()
	cctx, release := c.bound(ctx)
	tc := tls.Client(c.conn, cfg)
	herr := tc.HandshakeContext(cctx)
	if herr != nil {
		// Classified before release, which cancels cctx: afterwards every
		// failure would look like a timeout.
		herr = fmt.Errorf("%w: %w", ErrTLS, classify(cctx, herr))
	}
	release()
	c.ext = nil
	if herr != nil {
		c.env.Log().Debug("smtp tls handshake", "host", c.Host, "elapsed", c.env.Clock().Sub(start), "err", herr)
		return r, herr
	}
	st := tc.ConnectionState()
	c.tlsState = &st
	c.conn = tc
	c.br = bufio.NewReaderSize(tc, MaxLineLen)
	c.env.Log().Debug("smtp tls handshake", "host", c.Host, "version", tls.VersionName(st.Version),
		"cipher", tls.CipherSuiteName(st.CipherSuite), "elapsed", c.env.Clock().Sub(start))
	return r, nil
}

// Auth authenticates with mech "PLAIN" (RFC 4616, initial response per
// RFC 4954 §4) or "LOGIN". The credentials never reach the transcript or
// the log: their lines show <redacted>. The final reply (235 on success)
// is returned; a refusal is a reply, not an error.
func (c *Client) Auth(ctx context.Context, mech, user, pass string) (Reply, error) {
	enc := base64.StdEncoding.EncodeToString
	switch strings.ToUpper(mech) {
	case "PLAIN":
		ir := enc([]byte("\x00" + user + "\x00" + pass))
		return c.cmd(ctx, "AUTH PLAIN "+ir, "AUTH PLAIN "+Redacted)
	case "LOGIN":
		r, err := c.cmd(ctx, "AUTH LOGIN", "")
		for _, secret := range []string{user, pass} {
			if err != nil || r.Code != 334 {
				return r, err
			}
			r, err = c.cmd(ctx, enc([]byte(secret)), Redacted)
		}
		return r, err
	}
	return Reply{}, fmt.Errorf("%w: SASL mechanism %q", ErrUnsupported, mech)
}

// MailParams are the optional parameters of MAIL FROM.
type MailParams struct {
	// Size declares the message size (RFC 1870 §6); sent only when the
	// server announced SIZE and Size > 0.
	Size int64
	// SMTPUTF8 declares that the transaction uses UTF-8 addresses
	// (RFC 6531 §3.4). If the server did not announce SMTPUTF8, Mail fails
	// with ErrUnsupported without sending anything.
	SMTPUTF8 bool
}

// Mail sends MAIL FROM:<from>; from "" is the null reverse-path
// (RFC 5321 §4.5.5).
func (c *Client) Mail(ctx context.Context, from string, p MailParams) (Reply, error) {
	if err := checkArg(from); err != nil {
		return Reply{}, err
	}
	line := "MAIL FROM:<" + from + ">"
	ext, _ := c.Extensions()
	if p.Size > 0 && ext.Has("SIZE") {
		line += fmt.Sprintf(" SIZE=%d", p.Size)
	}
	if p.SMTPUTF8 {
		if !ext.Has("SMTPUTF8") {
			return Reply{}, fmt.Errorf("%w: the server did not announce SMTPUTF8 (RFC 6531)", ErrUnsupported)
		}
		line += " SMTPUTF8"
	}
	return c.cmd(ctx, line, "")
}

// Rcpt sends RCPT TO:<to>.
func (c *Client) Rcpt(ctx context.Context, to string) (Reply, error) {
	if err := checkArg(to); err != nil || to == "" {
		return Reply{}, fmt.Errorf("%w: recipient %q", ErrBadArgument, to)
	}
	return c.cmd(ctx, "RCPT TO:<"+to+">", "")
}

// Rset aborts the current transaction (RFC 5321 §4.1.1.5).
func (c *Client) Rset(ctx context.Context) (Reply, error) { return c.cmd(ctx, "RSET", "") }

// Noop asks for a 250 and nothing else (RFC 5321 §4.1.1.9).
func (c *Client) Noop(ctx context.Context) (Reply, error) { return c.cmd(ctx, "NOOP", "") }

// Quit sends QUIT, reads the 221 and closes the connection. A server that
// closes without replying gives an error wrapping ErrClosed.
func (c *Client) Quit(ctx context.Context) (Reply, error) {
	r, err := c.cmd(ctx, "QUIT", "")
	c.Close()
	return r, err
}

// Close closes the connection without QUIT.
func (c *Client) Close() error { return c.conn.Close() }

// checkArg refuses what would break out of a command: line breaks (which
// would smuggle another command, such as DATA), angle brackets, spaces and
// other controls.
func checkArg(s string) error {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c == 0x7f || c == '<' || c == '>' {
			return fmt.Errorf("%w: %q", ErrBadArgument, s)
		}
	}
	return nil
}
