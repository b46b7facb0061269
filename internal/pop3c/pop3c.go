// Package pop3c is a small POP3 client (RFC 1939) that keeps a transcript
// of everything said, for diagnostics: the greeting, CAPA (RFC 2449), STLS
// (RFC 2595 §4), USER and PASS (RFC 1939 §7), AUTH PLAIN (RFC 5034 with
// the RFC 4616 mechanism), STAT and QUIT.
//
// Every line is teed into a transcript marked "C:"/"S:"; the password and
// SASL responses show as <redacted>. Lines are bounded by MaxLine and
// multi-line responses by MaxLines.
//
// Not supported: APOP, RETR/TOP/DELE (message access), pipelining, SASL
// mechanisms other than PLAIN.
package pop3c

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/mxray/mxray/internal/diag"
	"github.com/mxray/mxray/internal/probe/wire"
)

// Sentinel errors; test with errors.Is. The transport ones are wire's.
var (
	ErrTimeout     = wire.ErrTimeout     // no answer in time
	ErrClosed      = wire.ErrClosed      // the server hung up
	ErrProtocol    = wire.ErrProtocol    // not POP3, or over the limits
	ErrTLS         = wire.ErrTLS         // the TLS handshake failed
	ErrBadArgument = wire.ErrBadArgument // an argument that cannot be sent
	// ErrUnsupported: a SASL mechanism this client does not implement.
	ErrUnsupported = errors.New("pop3c: not supported")
)

// Limits on what the server may send. RFC 2449 §4 allows response lines
// of 512 octets; real servers exceed it a little.
const (
	MaxLine  = 4096 // octets of one line
	MaxLines = 1000 // lines of one multi-line response
)

// Reply is one POP3 status response: "+OK text" or "-ERR text"
// (RFC 1939 §3), with the RFC 2449 §8 response code, and the lines of a
// multi-line response.
type Reply struct {
	OK bool `json:"ok"`
	// Code is the extended response code between brackets ("AUTH",
	// "IN-USE", "SYS/TEMP"), without them.
	Code    string   `json:"code,omitempty"`
	Text    string   `json:"text"`
	Command string   `json:"command,omitempty"` // as the transcript shows it
	Lines   []string `json:"lines,omitempty"`   // of a multi-line response, dot-unstuffed
}

// String shows the reply on one line: "-ERR [AUTH] Authentication failed.".
func (r Reply) String() string {
	s := "-ERR"
	if r.OK {
		s = "+OK"
	}
	if r.Code != "" {
		s += " [" + r.Code + "]"
	}
	if r.Text != "" {
		s += " " + r.Text
	}
	return s
}

// ParseReply parses a status line.
func ParseReply(line string) (Reply, error) {
	var r Reply
	var rest string
	switch {
	case line == "+OK" || strings.HasPrefix(line, "+OK "):
		r.OK, rest = true, strings.TrimPrefix(line[3:], " ")
	case line == "-ERR" || strings.HasPrefix(line, "-ERR "):
		rest = strings.TrimPrefix(line[4:], " ")
	default:
		return Reply{}, fmt.Errorf("%w: not a POP3 status line: %q", ErrProtocol, wire.Shorten(line))
	}
	if strings.HasPrefix(rest, "[") {
		if end := strings.IndexByte(rest, ']'); end > 0 {
			r.Code = wire.Clean(rest[1:end])
			rest = strings.TrimPrefix(rest[end+1:], " ")
		}
	}
	r.Text = wire.Clean(rest)
	return r, nil
}

// Client is one POP3 session.
type Client struct {
	*wire.Conn
	caps []string // nil: unknown
}

// Dial connects to address (HOST:PORT) through env.Dialer.
func Dial(ctx context.Context, env diag.Env, address string) (*Client, error) {
	c, err := wire.Dial(ctx, env, "pop3", address)
	if err != nil {
		return nil, err
	}
	c.MaxLine = MaxLine
	return &Client{Conn: c}, nil
}

// DialAddr connects to one address of the server named host.
func DialAddr(ctx context.Context, env diag.Env, host string, ap netip.AddrPort) (*Client, error) {
	c, err := wire.DialAddr(ctx, env, "pop3", host, ap)
	if err != nil {
		return nil, err
	}
	c.MaxLine = MaxLine
	return &Client{Conn: c}, nil
}

// New wraps an established connection.
func New(env diag.Env, conn net.Conn, host string) *Client {
	c := wire.New(env, conn, "pop3", host)
	c.MaxLine = MaxLine
	return &Client{Conn: c}
}

// Caps returns the capabilities of the last CAPA (upper-case keywords with
// their arguments: "SASL PLAIN LOGIN"), nil when unknown.
func (c *Client) Caps() []string { return c.caps }

// Has reports whether a capability keyword (any case) was announced.
func (c *Client) Has(keyword string) bool {
	return slices.ContainsFunc(c.caps, func(s string) bool {
		k, _, _ := strings.Cut(s, " ")
		return strings.EqualFold(k, keyword)
	})
}

// SASL returns the mechanisms of the SASL capability (RFC 2449 §6.3).
func (c *Client) SASL() []string {
	for _, s := range c.caps {
		if k, rest, _ := strings.Cut(s, " "); strings.EqualFold(k, "SASL") {
			return strings.Fields(strings.ToUpper(rest))
		}
	}
	return nil
}

func (c *Client) readReply(ctx context.Context) (Reply, error) {
	line, err := c.ReadLine(ctx)
	if err != nil {
		return Reply{}, err
	}
	return ParseReply(line)
}

// readLines reads the body of a multi-line response up to the "." line,
// removing dot-stuffing (RFC 1939 §3).
func (c *Client) readLines(ctx context.Context) ([]string, error) {
	var out []string
	for {
		line, err := c.ReadLine(ctx)
		if err != nil {
			return out, err
		}
		if line == "." {
			return out, nil
		}
		if len(out) == MaxLines {
			return out, fmt.Errorf("%w: multi-line response longer than %d lines", ErrProtocol, MaxLines)
		}
		out = append(out, wire.Clean(strings.TrimPrefix(line, ".")))
	}
}

// Greeting reads the server greeting.
func (c *Client) Greeting(ctx context.Context) (Reply, error) {
	cctx, release := c.Bound(ctx)
	defer release()
	return c.readReply(cctx)
}

func (c *Client) cmd(ctx context.Context, line, shown string, multi bool) (Reply, error) {
	if shown == "" {
		shown = line
	}
	start := c.Env().Clock()
	cctx, release := c.Bound(ctx)
	defer release()
	if err := c.WriteLine(cctx, line, shown); err != nil {
		return Reply{Command: shown}, err
	}
	r, err := c.readReply(cctx)
	r.Command = shown
	if err == nil && r.OK && multi {
		r.Lines, err = c.readLines(cctx)
	}
	c.Env().Log().Debug("pop3 command", "host", c.Host, "command", shown, "ok", r.OK,
		"elapsed", c.Env().Clock().Sub(start), "err", err)
	return r, err
}

// Capa asks for the capabilities (RFC 2449 §5). A server without CAPA
// answers -ERR: the reply, with Caps left nil.
func (c *Client) Capa(ctx context.Context) ([]string, Reply, error) {
	r, err := c.cmd(ctx, "CAPA", "", true)
	if err != nil || !r.OK {
		return nil, r, err
	}
	c.caps = []string{}
	for _, l := range r.Lines {
		if l = strings.TrimSpace(l); l != "" {
			k, rest, _ := strings.Cut(l, " ")
			c.caps = append(c.caps, strings.TrimSpace(strings.ToUpper(k)+" "+rest))
		}
	}
	return c.caps, r, nil
}

// StartTLS sends STLS (RFC 2595 §4) and on +OK performs the handshake
// with cfg (nil: full verification against env.Roots). The capabilities
// are forgotten: ask again.
func (c *Client) StartTLS(ctx context.Context, cfg *tls.Config) (Reply, error) {
	r, err := c.cmd(ctx, "STLS", "", false)
	if err != nil || !r.OK {
		return r, err
	}
	c.caps = nil
	if cfg == nil {
		cfg = &tls.Config{ServerName: c.Host, RootCAs: c.Env().Roots}
	}
	return r, c.Conn.StartTLS(ctx, cfg)
}

// UserPass logs in with USER and PASS (RFC 1939 §7). PASS shows as
// "PASS <redacted>". The last reply is returned; a -ERR is a reply, not an
// error.
func (c *Client) UserPass(ctx context.Context, user, pass string) (Reply, error) {
	if err := wire.CheckArg(user); err != nil {
		return Reply{}, err
	}
	if err := wire.CheckArg(pass); err != nil {
		return Reply{}, fmt.Errorf("%w: line break or NUL in the password", ErrBadArgument)
	}
	r, err := c.cmd(ctx, "USER "+user, "", false)
	if err != nil || !r.OK {
		return r, err
	}
	return c.cmd(ctx, "PASS "+pass, "PASS "+wire.Redacted, false)
}

// Auth logs in with AUTH PLAIN and an initial response (RFC 5034 §4). The
// response shows as <redacted>.
func (c *Client) Auth(ctx context.Context, mech, user, pass string) (Reply, error) {
	if !strings.EqualFold(mech, "PLAIN") {
		return Reply{}, fmt.Errorf("%w: SASL mechanism %q", ErrUnsupported, mech)
	}
	if strings.ContainsAny(user+pass, "\x00") {
		return Reply{}, fmt.Errorf("%w: NUL in the credentials", ErrBadArgument)
	}
	ir := base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + pass))
	return c.cmd(ctx, "AUTH PLAIN "+ir, "AUTH PLAIN "+wire.Redacted, false)
}

// Stat asks for the maildrop's size (RFC 1939 §5): "+OK nn mm".
func (c *Client) Stat(ctx context.Context) (Reply, error) { return c.cmd(ctx, "STAT", "", false) }

// Quit sends QUIT, reads the reply and closes.
func (c *Client) Quit(ctx context.Context) (Reply, error) {
	r, err := c.cmd(ctx, "QUIT", "", false)
	c.Close()
	return r, err
}
