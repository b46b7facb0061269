// Package wire is the line-oriented connection under mxray's small IMAP
// (RFC 9051), POP3 (RFC 1939) and ManageSieve (RFC 5804) clients: it reads
// CRLF-terminated lines and counted literals within size limits, bounds
// every exchange by diag.Env's Command limit and the context, upgrades the
// connection to TLS (STARTTLS, RFC 2595 and RFC 5804 §2.2; implicit TLS,
// RFC 8314), and keeps a transcript of every line with direction marks
// "C:" and "S:", credentials replaced by <redacted> before they reach the
// transcript or the log.
//
// Transcript lines are smtpc.Line values, so that one probe can merge the
// transcripts of every protocol it speaks. It knows nothing of any one
// protocol: the clients do the parsing.
package wire

import (
	"bufio"
	"context"
	"crypto/tls"
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
	"github.com/mxray/mxray/internal/smtpc"
)

// Sentinel errors, wrapped with %w; the clients re-export them under
// their own names.
var (
	// ErrTimeout: the server did not answer within the command limit or
	// before the context's deadline.
	ErrTimeout = errors.New("wire: timeout waiting for the server")
	// ErrClosed: the server closed (or reset) the connection.
	ErrClosed = errors.New("wire: connection closed by the server")
	// ErrProtocol: the server sent something the protocol does not allow,
	// or more of it than the limits.
	ErrProtocol = errors.New("wire: protocol error")
	// ErrTLS: the TLS handshake failed.
	ErrTLS = errors.New("wire: TLS handshake failed")
	// ErrBadArgument: a command argument that would break out of its
	// command (line breaks, NUL), refused before sending.
	ErrBadArgument = errors.New("wire: invalid command argument")
)

// Redacted replaces credentials in transcripts and logs.
const Redacted = smtpc.Redacted

// Line is one transcript line: the same type as smtpc's.
type Line = smtpc.Line

// LevelTrace is the log level of protocol lines (--log-level trace).
const LevelTrace = slog.LevelDebug - 4

// DefaultMaxLine is the longest line accepted when Conn.MaxLine is 0.
const DefaultMaxLine = 16 * 1024

// Conn is one client connection. It is not safe for concurrent use, except
// that Transcript, Mark and Since may be called at any time.
type Conn struct {
	// Host is the server's name: the TLS server name and the name in logs.
	Host string
	// Proto names the protocol in log lines ("imap", "pop3", "sieve").
	Proto string
	// MaxLine is the longest line accepted, CRLF included (0:
	// DefaultMaxLine).
	MaxLine int

	env   diag.Env
	conn  net.Conn
	br    *bufio.Reader
	start time.Time

	mu    sync.Mutex
	lines []Line

	tlsState *tls.ConnectionState
}

// Dial connects to address (HOST:PORT) through env.Dialer, so that the
// connect map applies, within env.Limits.Connect. The error wraps
// dnsx.ErrConnRefused, ErrConnTimeout or ErrHostUnreachable when the cause
// is one of those.
func Dial(ctx context.Context, env diag.Env, proto, address string) (*Conn, error) {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadArgument, err)
	}
	if env.Dialer == nil {
		return nil, errors.New("wire: no dialer in env")
	}
	dctx, cancel := context.WithTimeout(ctx, diag.Fit(ctx, limit(env.Limits.Connect, diag.DefaultLimits.Connect)))
	defer cancel()
	conn, err := env.Dialer.DialContext(dctx, "tcp", address)
	if err != nil {
		return nil, fmt.Errorf("%s: connect %s: %w", proto, address, err)
	}
	return New(env, conn, proto, host), nil
}

// DialAddr connects to one address of the server named host, through
// env.Dialer (connect map applied), within env.Limits.Connect.
func DialAddr(ctx context.Context, env diag.Env, proto, host string, addr netip.AddrPort) (*Conn, error) {
	if env.Dialer == nil {
		return nil, errors.New("wire: no dialer in env")
	}
	dctx, cancel := context.WithTimeout(ctx, diag.Fit(ctx, limit(env.Limits.Connect, diag.DefaultLimits.Connect)))
	defer cancel()
	conn, err := env.Dialer.DialAddr(dctx, addr)
	if err != nil {
		return nil, fmt.Errorf("%s: connect %s: %w", proto, addr, err)
	}
	return New(env, conn, proto, host), nil
}

// New wraps an established connection to the server named host.
func New(env diag.Env, conn net.Conn, proto, host string) *Conn {
	return &Conn{Host: host, Proto: proto, env: env, conn: conn,
		br: bufio.NewReaderSize(conn, 4096), start: env.Clock()}
}

func limit(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

func (c *Conn) maxLine() int {
	if c.MaxLine > 0 {
		return c.MaxLine
	}
	return DefaultMaxLine
}

// RemoteAddr is the address actually connected to (after the connect map).
func (c *Conn) RemoteAddr() net.Addr { return c.conn.RemoteAddr() }

// Env returns the Env the connection was made with.
func (c *Conn) Env() diag.Env { return c.env }

// TLS returns the state of the TLS session, or nil in cleartext.
func (c *Conn) TLS() *tls.ConnectionState { return c.tlsState }

// Transcript returns every line so far.
func (c *Conn) Transcript() []Line {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Line(nil), c.lines...)
}

// Mark returns a position in the transcript, for Since.
func (c *Conn) Mark() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.lines)
}

// Since returns the transcript lines after mark as "C: …"/"S: …" strings.
func (c *Conn) Since(mark int) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, l := range c.lines[min(mark, len(c.lines)):] {
		out = append(out, l.String())
	}
	return out
}

// Record adds a line to the transcript and logs it at trace level. Clients
// use it for lines they summarise (a literal's size instead of its octets).
func (c *Conn) Record(ctx context.Context, dir, text string) {
	l := Line{Offset: c.env.Clock().Sub(c.start), Dir: dir, Text: text}
	c.mu.Lock()
	c.lines = append(c.lines, l)
	c.mu.Unlock()
	c.env.Log().Log(ctx, LevelTrace, c.Proto, "host", c.Host, "line", l.String(), "offset", l.Offset)
}

// Bound limits one exchange to the Command limit and ctx: when either
// passes, the connection's deadline is set in the past, which wakes any
// blocked read or write. Call the returned func when the exchange is over.
func (c *Conn) Bound(ctx context.Context) (context.Context, func()) {
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
			mu.Lock()
			conn.SetDeadline(time.Time{})
			mu.Unlock()
		}
		cancel()
	}
}

// Classify maps a network error onto the package's sentinels.
func Classify(ctx context.Context, err error) error {
	var ne net.Error
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrProtocol) || errors.Is(err, ErrClosed) || errors.Is(err, ErrTimeout) ||
		errors.Is(err, ErrTLS) || errors.Is(err, ErrBadArgument):
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

// CheckArg refuses what would end a command line early: CR, LF and NUL.
func CheckArg(s string) error {
	if strings.ContainsAny(s, "\r\n\x00") {
		return fmt.Errorf("%w: line break or NUL in %q", ErrBadArgument, Shorten(s))
	}
	return nil
}

// WriteLine sends line and CRLF; shown is what the transcript and the log
// show instead (the line itself when empty), so that a password never
// reaches them.
func (c *Conn) WriteLine(ctx context.Context, line, shown string) error {
	if err := CheckArg(line); err != nil {
		return err
	}
	if shown == "" {
		shown = line
	}
	c.Record(ctx, "C", shown)
	if _, err := io.WriteString(c.conn, line+"\r\n"); err != nil {
		return Classify(ctx, err)
	}
	return nil
}

// ReadLine reads one line of at most MaxLine octets and returns it without
// its line ending (a bare LF is accepted), recording it with control
// characters escaped. A connection that ends gives ErrClosed.
func (c *Conn) ReadLine(ctx context.Context) (string, error) {
	line, err := ReadLine(c.br, c.maxLine())
	if line != "" {
		c.Record(ctx, "S", Clean(line))
	}
	if err != nil {
		return line, Classify(ctx, err)
	}
	return line, nil
}

// ReadFull reads exactly n octets (a literal). It records nothing: the
// caller summarises.
func (c *Conn) ReadFull(ctx context.Context, n int) ([]byte, error) {
	buf := make([]byte, n)
	if _, err := io.ReadFull(c.br, buf); err != nil {
		return nil, Classify(ctx, err)
	}
	return buf, nil
}

// ReadLine reads one line of at most max octets from r, without its line
// ending. A longer line gives ErrProtocol; the end of the stream gives
// io.EOF with any partial line.
func ReadLine(r *bufio.Reader, max int) (string, error) {
	var buf []byte
	for {
		chunk, err := r.ReadSlice('\n')
		if len(buf)+len(chunk) > max {
			return "", fmt.Errorf("%w: line longer than %d octets", ErrProtocol, max)
		}
		buf = append(buf, chunk...)
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		line := strings.TrimSuffix(strings.TrimSuffix(string(buf), "\n"), "\r")
		if err == nil {
			return line, nil
		}
		if errors.Is(err, io.EOF) && line != "" {
			return line, fmt.Errorf("%w (mid-line)", io.ErrUnexpectedEOF)
		}
		return line, err
	}
}

// StartTLS performs the TLS handshake on the connection, after the
// server's go-ahead to STARTTLS/STLS. cfg nil means ServerName Host, roots
// env.Roots and full verification. Octets the server sent before the
// handshake are refused (ErrProtocol): they would be read as if protected
// (RFC 3207 §5's response injection, which applies to every STARTTLS).
func (c *Conn) StartTLS(ctx context.Context, cfg *tls.Config) error {
	if c.tlsState != nil {
		return fmt.Errorf("%w: STARTTLS inside TLS", ErrProtocol)
	}
	if n := c.br.Buffered(); n > 0 {
		return fmt.Errorf("%w: server sent %d octets after its go-ahead, before the handshake", ErrProtocol, n)
	}
	return c.handshake(ctx, cfg)
}

// ImplicitTLS performs the handshake at the start of the connection
// (RFC 8314 §3: ports 465, 993, 995).
func (c *Conn) ImplicitTLS(ctx context.Context, cfg *tls.Config) error {
	if c.tlsState != nil {
		return fmt.Errorf("%w: already in TLS", ErrProtocol)
	}
	return c.handshake(ctx, cfg)
}

func (c *Conn) handshake(ctx context.Context, cfg *tls.Config) error {
	if cfg == nil {
		cfg = &tls.Config{ServerName: c.Host, RootCAs: c.env.Roots}
	}
	start := c.env.Clock()
	cctx, release := c.Bound(ctx)
	tc := tls.Client(c.conn, cfg)
	err := tc.HandshakeContext(cctx)
	if err != nil {
		// Classified before release, which cancels cctx: afterwards every
		// failure would look like a timeout.
		err = fmt.Errorf("%w: %w", ErrTLS, Classify(cctx, err))
	}
	release()
	if err != nil {
		c.env.Log().Debug(c.Proto+" tls handshake", "host", c.Host, "elapsed", c.env.Clock().Sub(start), "err", err)
		return err
	}
	st := tc.ConnectionState()
	c.tlsState = &st
	c.conn = tc
	c.br = bufio.NewReaderSize(tc, 4096)
	c.env.Log().Debug(c.Proto+" tls handshake", "host", c.Host, "version", tls.VersionName(st.Version),
		"cipher", tls.CipherSuiteName(st.CipherSuite), "elapsed", c.env.Clock().Sub(start))
	return nil
}

// Close closes the connection.
func (c *Conn) Close() error { return c.conn.Close() }

// Clean escapes control characters, so that a hostile server cannot drive
// the user's terminal through the transcript.
func Clean(s string) string {
	ok := true
	for i := 0; i < len(s); i++ {
		if b := s[i]; b < 0x20 && b != '\t' || b == 0x7f {
			ok = false
			break
		}
	}
	if ok {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if ch := s[i]; ch < 0x20 && ch != '\t' || ch == 0x7f {
			fmt.Fprintf(&b, `\x%02x`, ch)
		} else {
			b.WriteByte(ch)
		}
	}
	return b.String()
}

// Shorten cuts s to 80 octets for error messages.
func Shorten(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}
