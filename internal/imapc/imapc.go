// Package imapc is a small IMAP client (RFC 9051, and RFC 3501's
// IMAP4rev1, which every server still speaks) that keeps a transcript of
// everything said, for diagnostics and the round-trip test: the greeting,
// CAPABILITY, STARTTLS (RFC 9051 §6.2.1), LOGIN, AUTHENTICATE PLAIN
// (RFC 4616, with the SASL-IR initial response of RFC 4959 when the server
// announces it), SELECT, UID SEARCH HEADER, UID FETCH of a message's
// header, UID STORE +FLAGS (\Deleted), UID EXPUNGE (RFC 4315 UIDPLUS),
// NOOP and LOGOUT.
//
// Every line is teed into a transcript marked "C:"/"S:"; passwords and
// SASL responses show as <redacted>. Literals are read within MaxLiteral
// and appear in the transcript by size only. Responses are bounded in line
// length (MaxLine) and in untagged lines per command (MaxUntagged).
//
// Not supported: IDLE, pipelining, literals in commands (arguments with
// 8-bit characters are refused: use AUTHENTICATE PLAIN), SASL mechanisms
// other than PLAIN, COMPRESS, ESEARCH and the rest of the protocol.
package imapc

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/mxray/mxray/internal/diag"
	"github.com/mxray/mxray/internal/probe/wire"
)

// Sentinel errors; test with errors.Is. The transport ones are wire's.
var (
	ErrTimeout     = wire.ErrTimeout     // no answer in time
	ErrClosed      = wire.ErrClosed      // the server hung up
	ErrProtocol    = wire.ErrProtocol    // not IMAP, or over the limits
	ErrTLS         = wire.ErrTLS         // the TLS handshake failed
	ErrBadArgument = wire.ErrBadArgument // an argument that cannot be sent
	// ErrUnsupported: the command needs a capability the server did not
	// announce, or a SASL mechanism this client does not implement.
	ErrUnsupported = errors.New("imapc: not supported")
	// ErrNo: the server answered NO or BAD (the Response says why).
	ErrNo = errors.New("imapc: command refused")
)

// Limits on what the server may send.
const (
	MaxLine     = 64 * 1024   // octets of one response line
	MaxLiteral  = 1024 * 1024 // octets of one literal (a message header)
	MaxUntagged = 10000       // untagged responses to one command
)

// Status is the condition of a status response (RFC 9051 §7.1).
type Status string

const (
	OK      Status = "OK"      // success
	NO      Status = "NO"      // operational error: the command failed
	BAD     Status = "BAD"     // protocol error: the command was not understood
	PREAUTH Status = "PREAUTH" // greeting only: already authenticated
	BYE     Status = "BYE"     // the server is closing the connection
)

// Response is the tagged completion of one command, with the untagged
// responses that came before it.
type Response struct {
	Tag    string `json:"tag"`
	Status Status `json:"status"`
	// Code is the response code between brackets, without them
	// ("CAPABILITY IMAP4rev1 …", "AUTHENTICATIONFAILED").
	Code string `json:"code,omitempty"`
	Text string `json:"text"`
	// Command is the command as the transcript shows it (secrets redacted).
	Command string `json:"command,omitempty"`
	// Untagged are the untagged lines ("* " removed), each literal
	// left as its "{N}" announcement; Literals[i] holds the literals of
	// Untagged[i], in order.
	Untagged []string   `json:"untagged,omitempty"`
	Literals [][][]byte `json:"-"`
}

// String shows the completion on one line: "a1 NO [AUTHENTICATIONFAILED] …".
func (r Response) String() string {
	s := strings.TrimSpace(r.Tag + " " + string(r.Status))
	if r.Code != "" {
		s += " [" + r.Code + "]"
	}
	if r.Text != "" {
		s += " " + r.Text
	}
	return s
}

// ParseStatus parses a status response line: "TAG COND [CODE] text" or an
// untagged "* COND …", where COND is OK, NO, BAD, PREAUTH or BYE
// (RFC 9051 §7.1, resp-cond-state / resp-cond-bye / resp-text).
func ParseStatus(line string) (Response, error) {
	tag, rest, ok := strings.Cut(line, " ")
	if !ok || tag == "" {
		return Response{}, fmt.Errorf("%w: not a status response: %q", ErrProtocol, wire.Shorten(line))
	}
	cond, text, _ := strings.Cut(rest, " ")
	r := Response{Tag: tag, Status: Status(strings.ToUpper(cond))}
	switch r.Status {
	case OK, NO, BAD, PREAUTH, BYE:
	default:
		return Response{}, fmt.Errorf("%w: unknown condition %q", ErrProtocol, wire.Shorten(cond))
	}
	if strings.HasPrefix(text, "[") {
		end := strings.IndexByte(text, ']')
		if end < 0 {
			return Response{}, fmt.Errorf("%w: response code without ']': %q", ErrProtocol, wire.Shorten(line))
		}
		r.Code = text[1:end]
		text = strings.TrimPrefix(text[end+1:], " ")
	}
	r.Text = wire.Clean(text)
	r.Code = wire.Clean(r.Code)
	return r, nil
}

// literalSize returns N when line ends with a literal announcement "{N}"
// (or the non-synchronizing "{N+}", RFC 7888), and -1 when it does not.
func literalSize(line string) (int, error) {
	if !strings.HasSuffix(line, "}") {
		return -1, nil
	}
	open := strings.LastIndexByte(line, '{')
	if open < 0 {
		return -1, nil
	}
	num := strings.TrimSuffix(line[open+1:len(line)-1], "+")
	if num == "" || len(num) > 10 {
		return -1, nil
	}
	for i := 0; i < len(num); i++ {
		if num[i] < '0' || num[i] > '9' {
			return -1, nil
		}
	}
	n, _ := strconv.Atoi(num)
	if n > MaxLiteral {
		return 0, fmt.Errorf("%w: literal of %d octets, more than %d", ErrProtocol, n, MaxLiteral)
	}
	return n, nil
}

// Client is one IMAP session.
type Client struct {
	*wire.Conn
	tag  int
	caps []string // nil: unknown
}

// Dial connects to address (HOST:PORT) through env.Dialer (connect map
// applied) within env.Limits.Connect. Read the greeting next (after
// ImplicitTLS on port 993).
func Dial(ctx context.Context, env diag.Env, address string) (*Client, error) {
	c, err := wire.Dial(ctx, env, "imap", address)
	if err != nil {
		return nil, err
	}
	c.MaxLine = MaxLine
	return &Client{Conn: c}, nil
}

// DialAddr connects to one address of the server named host.
func DialAddr(ctx context.Context, env diag.Env, host string, ap netip.AddrPort) (*Client, error) {
	c, err := wire.DialAddr(ctx, env, "imap", host, ap)
	if err != nil {
		return nil, err
	}
	c.MaxLine = MaxLine
	return &Client{Conn: c}, nil
}

// New wraps an established connection.
func New(env diag.Env, conn net.Conn, host string) *Client {
	c := wire.New(env, conn, "imap", host)
	c.MaxLine = MaxLine
	return &Client{Conn: c}
}

// Caps returns the capabilities last learnt (upper case), nil when unknown
// (before CAPABILITY, and after STARTTLS until asked again).
func (c *Client) Caps() []string { return c.caps }

// Has reports whether the capability (any case) was announced.
func (c *Client) Has(capability string) bool {
	return slices.Contains(c.caps, strings.ToUpper(capability))
}

// AuthMechs returns the SASL mechanisms announced as AUTH=… capabilities.
func (c *Client) AuthMechs() []string {
	var out []string
	for _, k := range c.caps {
		if m, ok := strings.CutPrefix(k, "AUTH="); ok {
			out = append(out, m)
		}
	}
	return out
}

func parseCaps(s string) []string {
	caps := []string{}
	for _, f := range strings.Fields(s) {
		caps = append(caps, strings.ToUpper(f))
	}
	return caps
}

// learnCaps keeps capabilities from a [CAPABILITY …] response code or a
// "* CAPABILITY" untagged response.
func (c *Client) learnCaps(r Response) {
	if rest, ok := cutWord(r.Code, "CAPABILITY"); ok {
		c.caps = parseCaps(rest)
	}
	for _, u := range r.Untagged {
		if rest, ok := cutWord(u, "CAPABILITY"); ok {
			c.caps = parseCaps(rest)
		}
	}
}

// cutWord cuts a leading keyword (any case) followed by a space or the end.
func cutWord(s, word string) (string, bool) {
	if len(s) < len(word) || !strings.EqualFold(s[:len(word)], word) {
		return "", false
	}
	rest := s[len(word):]
	if rest != "" && rest[0] != ' ' {
		return "", false
	}
	return strings.TrimPrefix(rest, " "), true
}

// Greeting reads the server greeting (RFC 9051 §7.1.1: OK, PREAUTH or
// BYE); capabilities in its response code are kept.
func (c *Client) Greeting(ctx context.Context) (Response, error) {
	cctx, release := c.Bound(ctx)
	defer release()
	line, err := c.ReadLine(cctx)
	if err != nil {
		return Response{}, err
	}
	r, err := ParseStatus(line)
	if err != nil {
		return r, err
	}
	if r.Tag != "*" {
		return r, fmt.Errorf("%w: greeting is not untagged: %q", ErrProtocol, wire.Shorten(line))
	}
	c.learnCaps(r)
	return r, nil
}

// readResponse reads untagged lines (with their literals) until the line
// tagged tag.
func (c *Client) readResponse(ctx context.Context, tag string) (Response, error) {
	var untagged []string
	var literals [][][]byte
	for {
		line, lits, err := c.readLogical(ctx)
		if err != nil {
			return Response{Untagged: untagged, Literals: literals}, err
		}
		if rest, ok := strings.CutPrefix(line, "* "); ok {
			if len(untagged) == MaxUntagged {
				return Response{}, fmt.Errorf("%w: more than %d untagged responses", ErrProtocol, MaxUntagged)
			}
			untagged = append(untagged, rest)
			literals = append(literals, lits)
			continue
		}
		if strings.HasPrefix(line, "+") {
			return Response{}, fmt.Errorf("%w: unexpected continuation request: %q", ErrProtocol, wire.Shorten(line))
		}
		r, err := ParseStatus(line)
		if err != nil {
			return r, err
		}
		if r.Tag != tag {
			return r, fmt.Errorf("%w: response tagged %q, want %q", ErrProtocol, wire.Shorten(r.Tag), tag)
		}
		r.Untagged, r.Literals = untagged, literals
		return r, nil
	}
}

// readLogical reads one response line, following literals: "… {N}" CRLF,
// N octets, then the rest of the line. Each literal is appended to lits
// and left in the line as "{N}".
func (c *Client) readLogical(ctx context.Context) (string, [][]byte, error) {
	var b strings.Builder
	var lits [][]byte
	for {
		line, err := c.ReadLine(ctx)
		if err != nil {
			return "", nil, err
		}
		if b.Len()+len(line) > MaxLine*4 {
			return "", nil, fmt.Errorf("%w: response longer than %d octets without its literals", ErrProtocol, MaxLine*4)
		}
		b.WriteString(line)
		n, err := literalSize(line)
		if err != nil {
			return "", nil, err
		}
		if n < 0 {
			return b.String(), lits, nil
		}
		if len(lits) == maxLiterals {
			return "", nil, fmt.Errorf("%w: more than %d literals in one response", ErrProtocol, maxLiterals)
		}
		lit, err := c.ReadFull(ctx, n)
		if err != nil {
			return "", nil, err
		}
		c.Record(ctx, "S", fmt.Sprintf("<literal: %d octets>", n))
		lits = append(lits, lit)
	}
}

// maxLiterals bounds the literals of one response line.
const maxLiterals = 16

// cmd sends "TAG args" (shown instead in the transcript when not empty)
// and reads the response. A NO or BAD is a Response, not an error.
func (c *Client) cmd(ctx context.Context, args, shown string) (Response, error) {
	c.tag++
	tag := "a" + strconv.Itoa(c.tag)
	if shown == "" {
		shown = args
	}
	start := c.Env().Clock()
	cctx, release := c.Bound(ctx)
	defer release()
	if err := c.WriteLine(cctx, tag+" "+args, tag+" "+shown); err != nil {
		return Response{Tag: tag, Command: shown}, err
	}
	r, err := c.readResponse(cctx, tag)
	r.Command = shown
	c.Env().Log().Debug("imap command", "host", c.Host, "command", shown, "status", r.Status,
		"elapsed", c.Env().Clock().Sub(start), "err", err)
	if err == nil {
		c.learnCaps(r)
	}
	return r, err
}

// Capability asks for the capabilities (RFC 9051 §6.1.1).
func (c *Client) Capability(ctx context.Context) ([]string, Response, error) {
	r, err := c.cmd(ctx, "CAPABILITY", "")
	if err != nil {
		return nil, r, err
	}
	return c.caps, r, nil
}

// StartTLS sends STARTTLS and on OK performs the handshake with cfg (nil:
// full verification against env.Roots). The capabilities are forgotten
// (RFC 9051 §6.2.1: the client must discard what it learnt before TLS).
// A NO or BAD is returned without error and the session stays in
// cleartext; a failed handshake wraps ErrTLS.
func (c *Client) StartTLS(ctx context.Context, cfg *tls.Config) (Response, error) {
	r, err := c.cmd(ctx, "STARTTLS", "")
	if err != nil || r.Status != OK {
		return r, err
	}
	c.caps = nil
	if cfg == nil {
		cfg = &tls.Config{ServerName: c.Host, RootCAs: c.Env().Roots}
	}
	return r, c.Conn.StartTLS(ctx, cfg)
}

// quote makes an IMAP quoted string (RFC 9051 §4.3): backslash and double
// quote escaped; CR, LF, NUL and 8-bit octets cannot be quoted.
func quote(s string) (string, error) {
	for i := 0; i < len(s); i++ {
		if b := s[i]; b == '\r' || b == '\n' || b == 0 || b >= 0x80 {
			return "", fmt.Errorf("%w: %q cannot be an IMAP quoted string (use AUTHENTICATE PLAIN)", ErrBadArgument, wire.Shorten(s))
		}
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`, nil
}

// Login sends LOGIN (RFC 9051 §6.2.3). The password shows as <redacted>.
// A server that announced LOGINDISABLED gets nothing: ErrUnsupported.
func (c *Client) Login(ctx context.Context, user, pass string) (Response, error) {
	if c.Has("LOGINDISABLED") {
		return Response{}, fmt.Errorf("%w: the server announced LOGINDISABLED", ErrUnsupported)
	}
	qu, err := quote(user)
	if err != nil {
		return Response{}, err
	}
	qp, err := quote(pass)
	if err != nil {
		return Response{}, fmt.Errorf("%w: the password cannot be an IMAP quoted string (use AUTHENTICATE PLAIN)", ErrBadArgument)
	}
	return c.cmd(ctx, "LOGIN "+qu+" "+qp, "LOGIN "+qu+" "+wire.Redacted)
}

// Authenticate runs AUTHENTICATE PLAIN (RFC 9051 §6.2.2, RFC 4616): with
// the initial response on the command line when the server announced
// SASL-IR (RFC 4959), else after the "+" continuation. The response shows
// as <redacted>.
func (c *Client) Authenticate(ctx context.Context, mech, user, pass string) (Response, error) {
	if !strings.EqualFold(mech, "PLAIN") {
		return Response{}, fmt.Errorf("%w: SASL mechanism %q", ErrUnsupported, mech)
	}
	ir := base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + pass))
	if strings.ContainsAny(user+pass, "\x00") {
		return Response{}, fmt.Errorf("%w: NUL in the credentials", ErrBadArgument)
	}
	if c.Has("SASL-IR") {
		return c.cmd(ctx, "AUTHENTICATE PLAIN "+ir, "AUTHENTICATE PLAIN "+wire.Redacted)
	}
	c.tag++
	tag := "a" + strconv.Itoa(c.tag)
	cctx, release := c.Bound(ctx)
	defer release()
	shown := "AUTHENTICATE PLAIN"
	if err := c.WriteLine(cctx, tag+" "+shown, ""); err != nil {
		return Response{Tag: tag, Command: shown}, err
	}
	line, err := c.ReadLine(cctx)
	if err != nil {
		return Response{Tag: tag, Command: shown}, err
	}
	if !strings.HasPrefix(line, "+") {
		r, perr := ParseStatus(line)
		r.Command = shown
		if perr != nil {
			return r, perr
		}
		return r, nil
	}
	if err := c.WriteLine(cctx, ir, wire.Redacted); err != nil {
		return Response{Tag: tag, Command: shown}, err
	}
	r, err := c.readResponse(cctx, tag)
	r.Command = shown
	if err == nil {
		c.learnCaps(r)
	}
	return r, err
}

// Mailbox is what SELECT reports (RFC 9051 §6.3.2).
type Mailbox struct {
	Name        string `json:"name"`
	Exists      int    `json:"exists"`
	UIDValidity uint32 `json:"uid_validity"`
	UIDNext     uint32 `json:"uid_next,omitempty"`
}

// Select opens a mailbox. A NO (no such mailbox) comes back as ErrNo with
// the response.
func (c *Client) Select(ctx context.Context, name string) (Mailbox, Response, error) {
	q, err := quote(name)
	if err != nil {
		return Mailbox{}, Response{}, err
	}
	r, err := c.cmd(ctx, "SELECT "+q, "")
	if err != nil {
		return Mailbox{}, r, err
	}
	if r.Status != OK {
		return Mailbox{}, r, fmt.Errorf("%w: %s", ErrNo, r)
	}
	mb := Mailbox{Name: name}
	for _, u := range r.Untagged {
		if n, rest, ok := strings.Cut(u, " "); ok && strings.EqualFold(rest, "EXISTS") {
			mb.Exists, _ = strconv.Atoi(n)
		}
		if st, err := ParseStatus("* " + u); err == nil && st.Status == OK {
			if v, ok := cutWord(st.Code, "UIDVALIDITY"); ok {
				n, _ := strconv.ParseUint(v, 10, 32)
				mb.UIDValidity = uint32(n)
			}
			if v, ok := cutWord(st.Code, "UIDNEXT"); ok {
				n, _ := strconv.ParseUint(v, 10, 32)
				mb.UIDNext = uint32(n)
			}
		}
	}
	return mb, r, nil
}

// Noop asks the server for news (new messages) and nothing else
// (RFC 9051 §6.1.2).
func (c *Client) Noop(ctx context.Context) (Response, error) { return c.cmd(ctx, "NOOP", "") }

// SearchHeader returns the UIDs of the messages in the selected mailbox
// whose header field contains value (RFC 9051 §6.4.4, SEARCH HEADER).
func (c *Client) SearchHeader(ctx context.Context, field, value string) ([]uint32, Response, error) {
	qf, err := quote(field)
	if err != nil {
		return nil, Response{}, err
	}
	qv, err := quote(value)
	if err != nil {
		return nil, Response{}, err
	}
	r, err := c.cmd(ctx, "UID SEARCH HEADER "+qf+" "+qv, "")
	if err != nil {
		return nil, r, err
	}
	if r.Status != OK {
		return nil, r, fmt.Errorf("%w: %s", ErrNo, r)
	}
	uids, err := ParseSearch(r.Untagged)
	return uids, r, err
}

// ParseSearch reads the numbers of "SEARCH n n …" untagged responses.
func ParseSearch(untagged []string) ([]uint32, error) {
	var out []uint32
	for _, u := range untagged {
		rest, ok := cutWord(u, "SEARCH")
		if !ok {
			continue
		}
		for _, f := range strings.Fields(rest) {
			n, err := strconv.ParseUint(f, 10, 32)
			if err != nil || n == 0 {
				return nil, fmt.Errorf("%w: bad number %q in SEARCH", ErrProtocol, wire.Shorten(f))
			}
			out = append(out, uint32(n))
		}
	}
	return out, nil
}

// FetchHeader returns the header of the message with the given UID,
// without setting \Seen (BODY.PEEK, RFC 9051 §6.4.5).
func (c *Client) FetchHeader(ctx context.Context, uid uint32) ([]byte, Response, error) {
	r, err := c.cmd(ctx, fmt.Sprintf("UID FETCH %d (BODY.PEEK[HEADER])", uid), "")
	if err != nil {
		return nil, r, err
	}
	if r.Status != OK {
		return nil, r, fmt.Errorf("%w: %s", ErrNo, r)
	}
	h, ok := ParseFetchHeader(r.Untagged, r.Literals, uid)
	if !ok {
		return nil, r, fmt.Errorf("%w: no header in the FETCH response for UID %d", ErrProtocol, uid)
	}
	return h, r, nil
}

// ParseFetchHeader finds, among untagged responses and their literals, the
// BODY[HEADER] literal of the FETCH response for uid.
func ParseFetchHeader(untagged []string, lits [][][]byte, uid uint32) ([]byte, bool) {
	for i, u := range untagged {
		_, rest, _ := strings.Cut(u, " ")
		body, ok := cutWord(rest, "FETCH")
		if !ok || i >= len(lits) || len(lits[i]) == 0 {
			continue
		}
		up := strings.ToUpper(body)
		at := strings.Index(up, "BODY[HEADER]")
		if at < 0 || fetchUID(up) != uid {
			continue
		}
		// The literal that follows BODY[HEADER] is the one after as many
		// literals as come before it in the line.
		n := strings.Count(up[:at], "}")
		if n < len(lits[i]) {
			return lits[i][n], true
		}
	}
	return nil, false
}

// fetchUID reads "UID n" from a FETCH response's attribute list.
func fetchUID(attrs string) uint32 {
	f := strings.Fields(strings.Trim(attrs, "()"))
	for i := 0; i+1 < len(f); i++ {
		if f[i] == "UID" || f[i] == "(UID" {
			n, err := strconv.ParseUint(strings.TrimRight(f[i+1], ")"), 10, 32)
			if err == nil {
				return uint32(n)
			}
		}
	}
	return 0
}

// Delete flags the message with the given UID \Deleted and, when the
// server supports UIDPLUS (RFC 4315), expunges that message only. Without
// UIDPLUS the message stays flagged (expunged stays false): a plain
// EXPUNGE would also remove every other message the user flagged.
func (c *Client) Delete(ctx context.Context, uid uint32) (expunged bool, r Response, err error) {
	r, err = c.cmd(ctx, fmt.Sprintf(`UID STORE %d +FLAGS.SILENT (\Deleted)`, uid), "")
	if err != nil {
		return false, r, err
	}
	if r.Status != OK {
		return false, r, fmt.Errorf("%w: %s", ErrNo, r)
	}
	if !c.Has("UIDPLUS") {
		return false, r, nil
	}
	r, err = c.cmd(ctx, fmt.Sprintf("UID EXPUNGE %d", uid), "")
	if err != nil {
		return false, r, err
	}
	if r.Status != OK {
		return false, r, fmt.Errorf("%w: %s", ErrNo, r)
	}
	return true, r, nil
}

// Logout sends LOGOUT, reads the BYE and the completion, and closes.
func (c *Client) Logout(ctx context.Context) (Response, error) {
	r, err := c.cmd(ctx, "LOGOUT", "")
	c.Close()
	return r, err
}
