// Package sievec is a small ManageSieve client (RFC 5804) that keeps a
// transcript of everything said, for diagnostics: the greeting with its
// capabilities (§1.7), CAPABILITY, STARTTLS (§2.2, with the capabilities
// the server must send again after the handshake), AUTHENTICATE "PLAIN"
// with an initial response (§2.1, RFC 4616) and LOGOUT.
//
// Every line is teed into a transcript marked "C:"/"S:"; SASL responses
// show as <redacted>. Strings may be quoted or literals ({N} and {N+});
// lines are bounded by MaxLine, literals by MaxLiteral and a response by
// MaxLines.
//
// Not supported: script management (PUTSCRIPT, LISTSCRIPTS, …), SASL
// mechanisms other than PLAIN, SASL continuations (the initial response is
// always sent), and referrals (reported, not followed).
package sievec

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strconv"
	"strings"

	"github.com/mxray/mxray/internal/diag"
	"github.com/mxray/mxray/internal/probe/wire"
)

// Sentinel errors; test with errors.Is. The transport ones are wire's.
var (
	ErrTimeout     = wire.ErrTimeout     // no answer in time
	ErrClosed      = wire.ErrClosed      // the server hung up
	ErrProtocol    = wire.ErrProtocol    // not ManageSieve, or over the limits
	ErrTLS         = wire.ErrTLS         // the TLS handshake failed
	ErrBadArgument = wire.ErrBadArgument // an argument that cannot be sent
	// ErrUnsupported: a SASL mechanism this client does not implement.
	ErrUnsupported = errors.New("sievec: not supported")
)

// Limits on what the server may send.
const (
	MaxLine    = 8192      // octets of one line
	MaxLiteral = 64 * 1024 // octets of one literal string
	MaxLines   = 200       // lines of one response
)

// Status is the condition of a final response (RFC 5804 §1.2).
type Status string

const (
	OK  Status = "OK"  // success
	NO  Status = "NO"  // failure
	BYE Status = "BYE" // the server is closing the connection
)

// Response is a final response with the data lines before it.
type Response struct {
	Status Status `json:"status"`
	// Code is the response code between parentheses, without them
	// ("AUTH-TOO-WEAK", `SASL "…"`).
	Code    string `json:"code,omitempty"`
	Text    string `json:"text,omitempty"`
	Command string `json:"command,omitempty"` // as the transcript shows it
	// Lines are the data lines before the final response, each a list of
	// strings (the capability lines: ["SASL", "PLAIN LOGIN"]).
	Lines [][]string `json:"lines,omitempty"`
}

// String shows the final response on one line: `NO (AUTH-TOO-WEAK) "…"`.
func (r Response) String() string {
	s := string(r.Status)
	if r.Code != "" {
		s += " (" + r.Code + ")"
	}
	if r.Text != "" {
		s += " " + strconv.Quote(r.Text)
	}
	return s
}

// Kind is the kind of a token.
type Kind int

const (
	Atom   Kind = iota // OK, NO, BYE and other bare words
	String             // a quoted string or a literal, unescaped
	Code               // a parenthesised response code, without the parentheses
)

// Token is one element of a response line.
type Token struct {
	Kind Kind
	Text string
}

// Tokenize splits a response line (without literals; see Client) into
// atoms, strings and a response code (RFC 5804 §4: quoted strings with
// backslash escapes of '"' and '\').
func Tokenize(s string) ([]Token, error) {
	var out []Token
	for i := 0; i < len(s); {
		switch ch := s[i]; {
		case ch == ' ':
			i++
		case ch == '"':
			var b strings.Builder
			j := i + 1
			for ; j < len(s) && s[j] != '"'; j++ {
				if s[j] == '\\' {
					j++
					if j == len(s) || s[j] != '"' && s[j] != '\\' {
						return nil, fmt.Errorf("%w: bad escape in quoted string", ErrProtocol)
					}
				}
				b.WriteByte(s[j])
			}
			if j == len(s) {
				return nil, fmt.Errorf("%w: unterminated quoted string: %q", ErrProtocol, wire.Shorten(s))
			}
			out = append(out, Token{String, b.String()})
			i = j + 1
		case ch == '(':
			j, inq := i+1, false
			for ; j < len(s) && (inq || s[j] != ')'); j++ {
				switch {
				case s[j] == '\\' && inq:
					j++
				case s[j] == '"':
					inq = !inq
				}
			}
			if j >= len(s) {
				return nil, fmt.Errorf("%w: response code without ')': %q", ErrProtocol, wire.Shorten(s))
			}
			out = append(out, Token{Code, s[i+1 : j]})
			i = j + 1
		default:
			j := i
			for j < len(s) && s[j] != ' ' && s[j] != '"' && s[j] != '(' {
				j++
			}
			out = append(out, Token{Atom, s[i:j]})
			i = j
		}
	}
	return out, nil
}

// literalAt returns where a trailing literal announcement "{N}" or "{N+}"
// starts and N, or -1.
func literalAt(line string) (int, int, error) {
	if !strings.HasSuffix(line, "}") {
		return -1, 0, nil
	}
	open := strings.LastIndexByte(line, '{')
	if open < 0 {
		return -1, 0, nil
	}
	num := strings.TrimSuffix(line[open+1:len(line)-1], "+")
	n, err := strconv.Atoi(num)
	if err != nil || n < 0 || len(num) > 10 {
		return -1, 0, nil
	}
	if n > MaxLiteral {
		return 0, 0, fmt.Errorf("%w: literal of %d octets, more than %d", ErrProtocol, n, MaxLiteral)
	}
	return open, n, nil
}

// Final interprets tokens as a final response when they start with OK, NO
// or BYE (RFC 5804 §4: response-oknobye).
func Final(toks []Token) (Response, bool) {
	if len(toks) == 0 || toks[0].Kind != Atom {
		return Response{}, false
	}
	r := Response{Status: Status(strings.ToUpper(toks[0].Text))}
	switch r.Status {
	case OK, NO, BYE:
	default:
		return Response{}, false
	}
	for _, t := range toks[1:] {
		switch t.Kind {
		case Code:
			r.Code = wire.Clean(t.Text)
		case String:
			r.Text = wire.Clean(t.Text)
		}
	}
	return r, true
}

// Client is one ManageSieve session.
type Client struct {
	*wire.Conn
	caps map[string]string // nil: unknown
}

// Dial connects to address (HOST:PORT) through env.Dialer.
func Dial(ctx context.Context, env diag.Env, address string) (*Client, error) {
	c, err := wire.Dial(ctx, env, "sieve", address)
	if err != nil {
		return nil, err
	}
	c.MaxLine = MaxLine
	return &Client{Conn: c}, nil
}

// DialAddr connects to one address of the server named host.
func DialAddr(ctx context.Context, env diag.Env, host string, ap netip.AddrPort) (*Client, error) {
	c, err := wire.DialAddr(ctx, env, "sieve", host, ap)
	if err != nil {
		return nil, err
	}
	c.MaxLine = MaxLine
	return &Client{Conn: c}, nil
}

// New wraps an established connection.
func New(env diag.Env, conn net.Conn, host string) *Client {
	c := wire.New(env, conn, "sieve", host)
	c.MaxLine = MaxLine
	return &Client{Conn: c}
}

// Caps returns the capabilities last announced, upper-case names to their
// values ("SASL" → "PLAIN LOGIN"; "STARTTLS" → ""), nil when unknown.
func (c *Client) Caps() map[string]string { return c.caps }

// CapList returns the capabilities as sorted "NAME value" strings.
func (c *Client) CapList() []string {
	var out []string
	for k, v := range c.caps {
		out = append(out, strings.TrimSpace(k+" "+v))
	}
	sort.Strings(out)
	return out
}

// Has reports whether the capability (any case) was announced.
func (c *Client) Has(name string) bool {
	_, ok := c.caps[strings.ToUpper(name)]
	return ok
}

// SASL returns the mechanisms of the SASL capability.
func (c *Client) SASL() []string { return strings.Fields(strings.ToUpper(c.caps["SASL"])) }

// readResponse reads data lines until a final response.
func (c *Client) readResponse(ctx context.Context) (Response, error) {
	var lines [][]string
	for {
		toks, err := c.readTokens(ctx)
		if err != nil {
			return Response{Lines: lines}, err
		}
		if r, ok := Final(toks); ok {
			r.Lines = lines
			return r, nil
		}
		if len(lines) == MaxLines {
			return Response{}, fmt.Errorf("%w: response longer than %d lines", ErrProtocol, MaxLines)
		}
		var l []string
		for _, t := range toks {
			l = append(l, wire.Clean(t.Text))
		}
		lines = append(lines, l)
	}
}

// readTokens reads one response line, following literals.
func (c *Client) readTokens(ctx context.Context) ([]Token, error) {
	var toks []Token
	for n := 0; ; n++ {
		line, err := c.ReadLine(ctx)
		if err != nil {
			return nil, err
		}
		at, size, err := literalAt(line)
		if err != nil {
			return nil, err
		}
		part := line
		if at >= 0 {
			part = line[:at]
		}
		t, err := Tokenize(part)
		if err != nil {
			return nil, err
		}
		toks = append(toks, t...)
		if at < 0 {
			return toks, nil
		}
		if n == 16 {
			return nil, fmt.Errorf("%w: too many literals in one line", ErrProtocol)
		}
		lit, err := c.ReadFull(ctx, size)
		if err != nil {
			return nil, err
		}
		c.Record(ctx, "S", fmt.Sprintf("<literal: %d octets>", size))
		toks = append(toks, Token{String, string(lit)})
	}
}

// learnCaps keeps the capability lines of a response.
func (c *Client) learnCaps(r Response) {
	if len(r.Lines) == 0 {
		return
	}
	c.caps = map[string]string{}
	for _, l := range r.Lines {
		if len(l) == 0 {
			continue
		}
		v := ""
		if len(l) > 1 {
			v = l[1]
		}
		c.caps[strings.ToUpper(l[0])] = v
	}
}

// Greeting reads the capabilities the server sends on connecting and its
// OK (RFC 5804 §1.7).
func (c *Client) Greeting(ctx context.Context) (Response, error) {
	cctx, release := c.Bound(ctx)
	defer release()
	r, err := c.readResponse(cctx)
	if err == nil {
		c.learnCaps(r)
	}
	return r, err
}

func (c *Client) cmd(ctx context.Context, line, shown string) (Response, error) {
	if shown == "" {
		shown = line
	}
	start := c.Env().Clock()
	cctx, release := c.Bound(ctx)
	defer release()
	if err := c.WriteLine(cctx, line, shown); err != nil {
		return Response{Command: shown}, err
	}
	r, err := c.readResponse(cctx)
	r.Command = shown
	c.Env().Log().Debug("sieve command", "host", c.Host, "command", shown, "status", r.Status,
		"elapsed", c.Env().Clock().Sub(start), "err", err)
	return r, err
}

// Capability asks for the capabilities again (RFC 5804 §2.4).
func (c *Client) Capability(ctx context.Context) (Response, error) {
	r, err := c.cmd(ctx, "CAPABILITY", "")
	if err == nil && r.Status == OK {
		c.learnCaps(r)
	}
	return r, err
}

// StartTLS sends STARTTLS and on OK performs the handshake with cfg (nil:
// full verification against env.Roots), then reads the capabilities the
// server sends after it (RFC 5804 §2.2). That last response is returned.
func (c *Client) StartTLS(ctx context.Context, cfg *tls.Config) (Response, error) {
	r, err := c.cmd(ctx, "STARTTLS", "")
	if err != nil || r.Status != OK {
		return r, err
	}
	c.caps = nil
	if cfg == nil {
		cfg = &tls.Config{ServerName: c.Host, RootCAs: c.Env().Roots}
	}
	if err := c.Conn.StartTLS(ctx, cfg); err != nil {
		return r, err
	}
	return c.Greeting(ctx)
}

// Authenticate runs AUTHENTICATE "PLAIN" with the initial response
// (RFC 5804 §2.1). The response shows as <redacted>. A NO is a Response,
// not an error.
func (c *Client) Authenticate(ctx context.Context, mech, user, pass string) (Response, error) {
	if !strings.EqualFold(mech, "PLAIN") {
		return Response{}, fmt.Errorf("%w: SASL mechanism %q", ErrUnsupported, mech)
	}
	if strings.ContainsAny(user+pass, "\x00") {
		return Response{}, fmt.Errorf("%w: NUL in the credentials", ErrBadArgument)
	}
	ir := base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + pass))
	return c.cmd(ctx, `AUTHENTICATE "PLAIN" "`+ir+`"`, `AUTHENTICATE "PLAIN" `+wire.Redacted)
}

// Logout sends LOGOUT, reads the reply and closes.
func (c *Client) Logout(ctx context.Context) (Response, error) {
	r, err := c.cmd(ctx, "LOGOUT", "")
	c.Close()
	return r, err
}
