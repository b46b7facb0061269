package smtpc

import (
	"bytes"
	"context"
	"fmt"
)

// MaxRoundTripMessage bounds the one message SendMessageForRoundTrip may
// send: a round-trip test message is a few hundred octets.
const MaxRoundTripMessage = 64 * 1024

// SendMessageForRoundTrip is the only way mxray sends message content, and
// it exists for one feature: `mxray roundtrip`, which the user runs to
// send one test message to a mailbox of their own. It sends DATA
// (RFC 5321 §4.1.1.4) on a session whose MAIL and RCPT were accepted,
// then msg (line endings made CRLF, dot-stuffed per §4.5.2, at most
// MaxRoundTripMessage octets) and the final ".", and returns the reply to
// the message (250 when queued), or the refusal of DATA itself.
//
// It is a function, not a Client method, so that the Client keeps no way
// to send mail (TestCannotSendMessages), and TestOnlyRoundTripSends pins
// its one caller, internal/probe. The message shows in the transcript as
// its size only.
func SendMessageForRoundTrip(ctx context.Context, c *Client, msg []byte) (Reply, error) {
	if len(msg) > MaxRoundTripMessage {
		return Reply{}, fmt.Errorf("%w: message of %d octets, more than %d", ErrBadArgument, len(msg), MaxRoundTripMessage)
	}
	r, err := c.cmd(ctx, "DATA", "")
	if err != nil || r.Code != 354 {
		return r, err
	}
	body := DotStuff(msg)
	cctx, release := c.bound(ctx)
	defer release()
	c.record(cctx, "C", fmt.Sprintf("<message: %d octets>", len(body)))
	c.record(cctx, "C", ".")
	if _, err := c.conn.Write(append(body, ".\r\n"...)); err != nil {
		return Reply{Command: "."}, classify(cctx, err)
	}
	return c.read(cctx, ".")
}

// DotStuff returns msg with every line ending made CRLF, a "." doubled at
// the start of each line (RFC 5321 §4.5.2), and a final CRLF.
func DotStuff(msg []byte) []byte {
	msg = bytes.ReplaceAll(msg, []byte("\r\n"), []byte("\n"))
	msg = bytes.TrimSuffix(msg, []byte("\n"))
	var b bytes.Buffer
	for _, l := range bytes.Split(msg, []byte("\n")) {
		l = bytes.TrimSuffix(l, []byte("\r"))
		if bytes.HasPrefix(l, []byte(".")) {
			b.WriteByte('.')
		}
		b.Write(l)
		b.WriteString("\r\n")
	}
	return b.Bytes()
}
