package imapc

// The commands a report fetcher needs on top of the probe's: the
// hierarchy delimiter (LIST "" "", RFC 9051 §6.3.9), CREATE (§6.3.4),
// UID SEARCH over a window of sequence numbers (§6.4.4), the size of a
// message (RFC822.SIZE) and the whole message without setting \Seen
// (BODY.PEEK[], §6.4.5) within a size limit larger than MaxLiteral, and
// moving a message: UID MOVE (RFC 6851) when the server announces MOVE,
// else UID COPY (§6.4.7) then UID STORE \Deleted and, with UIDPLUS
// (RFC 4315), UID EXPUNGE of that message only.

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/mxray/mxray/internal/probe/wire"
)

// More sentinel errors of the fetch commands.
var (
	// ErrTooLarge: a message is larger than the caller's limit; its
	// octets were read and dropped, and the session goes on.
	ErrTooLarge = errors.New("imapc: message larger than the limit")
	// ErrNoMessage: the server sent no FETCH data for the UID (another
	// client expunged the message).
	ErrNoMessage = errors.New("imapc: no such message")
)

// MoveMethod says how Move took a message out of the selected mailbox.
type MoveMethod string

const (
	Moved        MoveMethod = "move"         // UID MOVE (RFC 6851): atomic
	CopyExpunged MoveMethod = "copy+expunge" // UID COPY, \Deleted, UID EXPUNGE (RFC 4315)
	CopyFlagged  MoveMethod = "copy+deleted" // UID COPY and \Deleted: left for the next EXPUNGE
)

// Delimiter returns the server's hierarchy delimiter ("/" or "."; "" for
// a flat namespace) from LIST "" "" (RFC 9051 §6.3.9).
func (c *Client) Delimiter(ctx context.Context) (string, Response, error) {
	r, err := c.cmd(ctx, `LIST "" ""`, "")
	if err != nil {
		return "", r, err
	}
	if r.Status != OK {
		return "", r, fmt.Errorf("%w: %s", ErrNo, r)
	}
	for _, u := range r.Untagged {
		rest, ok := cutWord(u, "LIST")
		if !ok {
			continue
		}
		d, ok := ParseListDelimiter(rest)
		if !ok {
			return "", r, fmt.Errorf("%w: bad LIST response %q", ErrProtocol, wire.Shorten(u))
		}
		return d, r, nil
	}
	return "", r, fmt.Errorf("%w: no LIST response to LIST \"\" \"\"", ErrProtocol)
}

// ParseListDelimiter reads the delimiter of a LIST response after the word
// LIST: "(\Noselect) "/" """ gives "/", NIL gives "".
func ParseListDelimiter(s string) (string, bool) {
	if !strings.HasPrefix(s, "(") {
		return "", false
	}
	end := strings.IndexByte(s, ')')
	if end < 0 {
		return "", false
	}
	rest := strings.TrimPrefix(s[end+1:], " ")
	if _, ok := cutWord(rest, "NIL"); ok {
		return "", true
	}
	// RFC 9051 §9: QUOTED-CHAR is a plain character or a quoted-special
	// escaped with a backslash.
	switch {
	case len(rest) >= 4 && rest[0] == '"' && rest[1] == '\\' && rest[3] == '"':
		return rest[2:3], true
	case len(rest) >= 3 && rest[0] == '"' && rest[2] == '"' && rest[1] != '\\' && rest[1] != '"':
		return rest[1:2], true
	}
	return "", false
}

// Create creates a mailbox (RFC 9051 §6.3.4). One that already exists
// (NO [ALREADYEXISTS], RFC 5530) is not an error: existed is true.
func (c *Client) Create(ctx context.Context, name string) (existed bool, r Response, err error) {
	q, err := quote(name)
	if err != nil {
		return false, Response{}, err
	}
	r, err = c.cmd(ctx, "CREATE "+q, "")
	if err != nil {
		return false, r, err
	}
	switch {
	case r.Status == OK:
		return false, r, nil
	case r.Status == NO && strings.EqualFold(r.Code, "ALREADYEXISTS"):
		return true, r, nil
	}
	return false, r, fmt.Errorf("%w: %s", ErrNo, r)
}

// SearchWindow returns the UIDs of the undeleted messages with sequence
// numbers first to last (RFC 9051 §6.4.4: UID SEARCH first:last
// UNDELETED). Windows keep each answer within the line limit however
// full the mailbox is; messages flagged \Deleted are left out, so that
// one copied but not expunged (CopyFlagged) is not taken twice.
func (c *Client) SearchWindow(ctx context.Context, first, last int) ([]uint32, Response, error) {
	if first < 1 || last < first {
		return nil, Response{}, fmt.Errorf("%w: sequence window %d:%d", ErrBadArgument, first, last)
	}
	r, err := c.cmd(ctx, fmt.Sprintf("UID SEARCH %d:%d UNDELETED", first, last), "")
	if err != nil {
		return nil, r, err
	}
	if r.Status != OK {
		return nil, r, fmt.Errorf("%w: %s", ErrNo, r)
	}
	uids, err := ParseSearch(r.Untagged)
	return uids, r, err
}

// FetchSize returns a message's size in octets (RFC822.SIZE).
func (c *Client) FetchSize(ctx context.Context, uid uint32) (int64, Response, error) {
	r, err := c.cmd(ctx, fmt.Sprintf("UID FETCH %d (RFC822.SIZE)", uid), "")
	if err != nil {
		return 0, r, err
	}
	if r.Status != OK {
		return 0, r, fmt.Errorf("%w: %s", ErrNo, r)
	}
	for _, u := range r.Untagged {
		_, rest, _ := strings.Cut(u, " ")
		attrs, ok := cutWord(rest, "FETCH")
		if !ok || fetchUID(strings.ToUpper(attrs)) != uid {
			continue
		}
		f := strings.Fields(strings.ToUpper(strings.Trim(attrs, "()")))
		for i := 0; i+1 < len(f); i++ {
			if f[i] == "RFC822.SIZE" {
				n, err := strconv.ParseInt(strings.TrimRight(f[i+1], ")"), 10, 64)
				if err != nil || n < 0 {
					return 0, r, fmt.Errorf("%w: bad RFC822.SIZE %q", ErrProtocol, wire.Shorten(f[i+1]))
				}
				return n, r, nil
			}
		}
	}
	return 0, r, fmt.Errorf("%w: UID %d", ErrNoMessage, uid)
}

// FetchMessage returns the whole message with the given UID without
// setting \Seen (UID FETCH uid (BODY.PEEK[]), RFC 9051 §6.4.5), read
// within limit octets: a larger one is read and dropped, and the error wraps
// ErrTooLarge. The transcript shows the literal by size only.
func (c *Client) FetchMessage(ctx context.Context, uid uint32, limit int64) ([]byte, Response, error) {
	c.tag++
	tag := "a" + strconv.Itoa(c.tag)
	shown := fmt.Sprintf("UID FETCH %d (BODY.PEEK[])", uid)
	start := c.Env().Clock()
	cctx, release := c.Bound(ctx)
	defer release()
	r := Response{Tag: tag, Command: shown}
	if err := c.WriteLine(cctx, tag+" "+shown, ""); err != nil {
		return nil, r, err
	}
	var body []byte
	var tooBig error
	found := false
	limit = min(max(limit, 0), maxMessage)
	for n := 0; ; n++ {
		if n > MaxUntagged {
			return nil, r, fmt.Errorf("%w: more than %d untagged responses", ErrProtocol, MaxUntagged)
		}
		line, err := c.ReadLine(cctx)
		if err != nil {
			return nil, r, err
		}
		rest, untagged := strings.CutPrefix(line, "* ")
		if !untagged {
			st, err := ParseStatus(line)
			if err != nil {
				return nil, r, err
			}
			if st.Tag != tag {
				return nil, r, fmt.Errorf("%w: response tagged %q, want %q", ErrProtocol, wire.Shorten(st.Tag), tag)
			}
			st.Command, st.Untagged = shown, r.Untagged
			r = st
			break
		}
		// A FETCH response: "N FETCH (UID u BODY[] {size}" CRLF, the
		// octets, then the rest of the response, ")" usually. Other
		// untagged data (EXISTS, FLAGS updates) come as they are.
		full, lits, err := c.readFetchLine(cctx, rest, limit)
		if err != nil {
			return nil, r, err
		}
		r.Untagged = append(r.Untagged, full)
		if i, ok := bodyLiteral(full, uid); ok && i < len(lits) {
			if lits[i] == nil {
				tooBig = fmt.Errorf("%w: UID %d, limit %d octets", ErrTooLarge, uid, limit)
			} else {
				body, found = lits[i], true
			}
		}
	}
	c.Env().Log().Debug("imap command", "host", c.Host, "command", shown, "status", r.Status,
		"octets", len(body), "elapsed", c.Env().Clock().Sub(start))
	if r.Status != OK {
		return nil, r, fmt.Errorf("%w: %s", ErrNo, r)
	}
	if tooBig != nil {
		return nil, r, tooBig
	}
	if !found {
		return nil, r, fmt.Errorf("%w: UID %d", ErrNoMessage, uid)
	}
	return body, r, nil
}

// bodyLiteral returns, for the FETCH response of uid carrying BODY[]
// (literals shown as {N}), the index of BODY[]'s literal among the line's.
func bodyLiteral(u string, uid uint32) (int, bool) {
	_, rest, _ := strings.Cut(u, " ")
	attrs, ok := cutWord(rest, "FETCH")
	if !ok {
		return 0, false
	}
	up := strings.ToUpper(attrs)
	at := strings.Index(up, "BODY[] {")
	if at < 0 || fetchUID(up) != uid {
		return 0, false
	}
	return strings.Count(up[:at], "}"), true
}

// readFetchLine completes an untagged response line: while it ends with a
// literal, the literal is read and the line goes on. Each literal is held
// to max octets: a larger one is read and dropped, and its place in lits
// is nil.
func (c *Client) readFetchLine(ctx context.Context, line string, max int64) (string, [][]byte, error) {
	var b strings.Builder
	var lits [][]byte
	for {
		if b.Len()+len(line) > MaxLine*4 {
			return "", nil, fmt.Errorf("%w: response longer than %d octets without its literals", ErrProtocol, MaxLine*4)
		}
		b.WriteString(line)
		n, err := fetchLiteralSize(line)
		if err != nil {
			return "", nil, err
		}
		if n < 0 {
			return b.String(), lits, nil
		}
		if len(lits) == maxLiterals {
			return "", nil, fmt.Errorf("%w: more than %d literals in one response", ErrProtocol, maxLiterals)
		}
		if n > max {
			if err := c.discard(ctx, n); err != nil {
				return "", nil, err
			}
			c.Record(ctx, "S", fmt.Sprintf("<literal: %d octets, dropped>", n))
			lits = append(lits, nil)
		} else {
			lit, err := c.ReadFull(ctx, int(n))
			if err != nil {
				return "", nil, err
			}
			c.Record(ctx, "S", fmt.Sprintf("<literal: %d octets>", n))
			lits = append(lits, lit)
		}
		if line, err = c.ReadLine(ctx); err != nil {
			return "", nil, err
		}
	}
}

// maxMessage bounds FetchMessage's limit: ReadFull allocates the size.
const maxMessage = 1 << 30

// discard reads and drops n octets, in pieces.
func (c *Client) discard(ctx context.Context, n int64) error {
	for n > 0 {
		k := min(n, 64<<10)
		if _, err := c.ReadFull(ctx, int(k)); err != nil {
			return err
		}
		n -= k
	}
	return nil
}

// fetchLiteralSize is literalSize without the MaxLiteral bound: N when the
// line ends with "{N}" or "{N+}", else -1.
func fetchLiteralSize(line string) (int64, error) {
	if !strings.HasSuffix(line, "}") {
		return -1, nil
	}
	open := strings.LastIndexByte(line, '{')
	if open < 0 {
		return -1, nil
	}
	num := strings.TrimSuffix(line[open+1:len(line)-1], "+")
	if num == "" || len(num) > 18 {
		return -1, nil
	}
	for i := 0; i < len(num); i++ {
		if num[i] < '0' || num[i] > '9' {
			return -1, nil
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil {
		return -1, nil
	}
	return n, nil
}

// Move takes the message with the given UID out of the selected mailbox
// into mailbox: UID MOVE when the server announced MOVE (RFC 6851 §3.1),
// else UID COPY and Delete (UID STORE \Deleted, and UID EXPUNGE of that
// message alone with UIDPLUS). The method used is returned; without
// UIDPLUS the original stays flagged \Deleted (CopyFlagged), since a
// plain EXPUNGE would remove whatever else the user flagged.
func (c *Client) Move(ctx context.Context, uid uint32, mailbox string) (MoveMethod, Response, error) {
	q, err := quote(mailbox)
	if err != nil {
		return "", Response{}, err
	}
	if c.Has("MOVE") {
		r, err := c.cmd(ctx, fmt.Sprintf("UID MOVE %d %s", uid, q), "")
		if err == nil && r.Status != OK {
			err = fmt.Errorf("%w: %s", ErrNo, r)
		}
		return Moved, r, err
	}
	r, err := c.cmd(ctx, fmt.Sprintf("UID COPY %d %s", uid, q), "")
	if err == nil && r.Status != OK {
		err = fmt.Errorf("%w: %s", ErrNo, r)
	}
	if err != nil {
		return "", r, err
	}
	expunged, r, err := c.Delete(ctx, uid)
	if err != nil {
		return "", r, err
	}
	if expunged {
		return CopyExpunged, r, nil
	}
	return CopyFlagged, r, nil
}
