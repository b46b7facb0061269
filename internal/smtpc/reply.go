package smtpc

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
)

// Reply limits. RFC 5321 §4.5.3.1.5 allows a reply line of 512 octets;
// real servers send longer ones (long EHLO AUTH lines, verbose rejections),
// so the limit is four times that. A server that sends more lines or longer
// ones than this is broken or hostile, and the read fails with ErrProtocol
// instead of filling memory.
const (
	MaxLineLen    = 2048 // octets of one reply line, CRLF included
	MaxReplyLines = 128  // lines of one multi-line reply
)

// Reply is one SMTP reply (RFC 5321 §4.2): its code, the RFC 3463 enhanced
// status code when the server gave one, and its text lines.
type Reply struct {
	Code int `json:"code"`
	// Enhanced is the RFC 3463 status code ("5.1.1") from the first line,
	// when present and of the same class as Code (RFC 2034 §4).
	Enhanced string `json:"enhanced,omitempty"`
	// Lines are the text of each line, after the code and the enhanced
	// code; control characters are shown as \xNN.
	Lines []string `json:"lines"`
	// Command is the command this replies to, as the transcript shows it
	// (secrets redacted); empty for the greeting.
	Command string `json:"command,omitempty"`
}

// Temporary reports a 4yz reply: "transient negative completion", the
// client may try again later (RFC 5321 §4.2.1).
func (r Reply) Temporary() bool { return r.Code >= 400 && r.Code < 500 }

// Permanent reports a 5yz reply: "permanent negative completion", the
// client should not repeat the same request (RFC 5321 §4.2.1).
func (r Reply) Permanent() bool { return r.Code >= 500 && r.Code < 600 }

// Positive reports a 2yz or 3yz reply.
func (r Reply) Positive() bool { return r.Code >= 200 && r.Code < 400 }

// Text returns the reply's lines joined by spaces.
func (r Reply) Text() string { return strings.Join(r.Lines, " ") }

// String shows the reply on one line: "550 5.1.1 text…".
func (r Reply) String() string {
	var b strings.Builder
	b.WriteString(strconv.Itoa(r.Code))
	if r.Enhanced != "" {
		b.WriteByte(' ')
		b.WriteString(r.Enhanced)
	}
	if t := r.Text(); t != "" {
		b.WriteByte(' ')
		b.WriteString(t)
	}
	return b.String()
}

// ReadReply reads one reply, single- or multi-line, from r. A malformed
// line, a line longer than MaxLineLen, more than MaxReplyLines lines or
// lines with differing codes give an error wrapping ErrProtocol; a
// connection that ends mid-reply gives one wrapping ErrClosed.
func ReadReply(r *bufio.Reader) (Reply, error) {
	return readReply(r, nil)
}

// readReply is ReadReply calling raw with each line as received (without
// CRLF, control characters escaped), for the transcript.
func readReply(r *bufio.Reader, raw func(string)) (Reply, error) {
	var rep Reply
	for n := 0; ; n++ {
		if n == MaxReplyLines {
			return rep, fmt.Errorf("%w: reply longer than %d lines", ErrProtocol, MaxReplyLines)
		}
		line, err := readLine(r)
		if line != "" && raw != nil {
			raw(clean(line))
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				if n > 0 || line != "" {
					return rep, fmt.Errorf("%w (mid-reply)", ErrClosed)
				}
				return rep, fmt.Errorf("%w: %w", ErrClosed, err)
			}
			return rep, err
		}
		code, text, last, err := parseLine(line)
		if err != nil {
			return rep, err
		}
		if n == 0 {
			rep.Code = code
		} else if code != rep.Code {
			// RFC 5321 §4.2.1: every line of a multi-line reply carries
			// the same code.
			return rep, fmt.Errorf("%w: reply code changed from %d to %d mid-reply", ErrProtocol, rep.Code, code)
		}
		rep.Lines = append(rep.Lines, clean(text))
		if last {
			break
		}
	}
	rep.Enhanced = enhancedCode(rep.Code, rep.Lines[0])
	if rep.Enhanced != "" {
		// RFC 2034 §4: every line of the reply begins with the enhanced
		// code; show the text without it.
		for i, l := range rep.Lines {
			if rest, ok := strings.CutPrefix(l, rep.Enhanced); ok && (rest == "" || rest[0] == ' ') {
				rep.Lines[i] = strings.TrimPrefix(rest, " ")
			}
		}
	}
	return rep, nil
}

// readLine reads one line of at most MaxLineLen octets and returns it
// without its line ending. A bare LF is accepted as the end of a line: being
// lenient in what we read shows the reply instead of a parse error. io.EOF
// is returned only when the connection ended (with any partial line).
func readLine(r *bufio.Reader) (string, error) {
	var buf []byte
	for {
		chunk, err := r.ReadSlice('\n')
		if len(buf)+len(chunk) > MaxLineLen {
			return "", fmt.Errorf("%w: reply line longer than %d octets", ErrProtocol, MaxLineLen)
		}
		buf = append(buf, chunk...)
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err != nil {
			return strings.TrimRight(string(buf), "\r\n"), err
		}
		return strings.TrimRight(string(buf), "\r\n"), nil
	}
}

// parseLine splits "250-text" into its code, text and whether it is the
// last line. RFC 5321 §4.2: Reply-code = %x32-35 %x30-35 %x30-39, then SP
// (last line) or "-" (more follow), then the text, which may be absent.
func parseLine(line string) (code int, text string, last bool, err error) {
	if len(line) < 3 || line[0] < '2' || line[0] > '5' || line[1] < '0' || line[1] > '5' ||
		line[2] < '0' || line[2] > '9' {
		return 0, "", false, fmt.Errorf("%w: not an SMTP reply line: %q", ErrProtocol, shorten(line))
	}
	code = int(line[0]-'0')*100 + int(line[1]-'0')*10 + int(line[2]-'0')
	if len(line) == 3 {
		return code, "", true, nil
	}
	switch line[3] {
	case ' ':
		return code, line[4:], true, nil
	case '-':
		return code, line[4:], false, nil
	}
	return 0, "", false, fmt.Errorf("%w: want space or hyphen after the reply code: %q", ErrProtocol, shorten(line))
}

// enhancedCode returns the RFC 3463 status code at the start of text, when
// its class matches the reply code's first digit (RFC 2034 §4).
// RFC 3463 §2: status-code = class "." subject "." detail; class is 2, 4
// or 5; subject and detail are 1 to 3 digits.
func enhancedCode(code int, text string) string {
	word, _, _ := strings.Cut(text, " ")
	parts := strings.Split(word, ".")
	if len(parts) != 3 || len(parts[0]) != 1 || parts[0][0] != byte('0'+code/100) {
		return ""
	}
	for _, p := range parts[1:] {
		if len(p) < 1 || len(p) > 3 {
			return ""
		}
		for i := 0; i < len(p); i++ {
			if p[i] < '0' || p[i] > '9' {
				return ""
			}
		}
	}
	return word
}

// clean escapes control characters, so that a hostile server cannot drive
// the user's terminal through the transcript.
func clean(s string) string {
	ok := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 && c != '\t' || c == 0x7f {
			ok = false
			break
		}
	}
	if ok {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 && c != '\t' || c == 0x7f {
			fmt.Fprintf(&b, `\x%02x`, c)
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}

func shorten(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

// Extensions are the service extensions a server announced in its EHLO
// reply (RFC 5321 §4.1.1.1, §2.2.2).
type Extensions struct {
	// Domain is the name the server gave for itself on the first line.
	Domain string `json:"domain"`
	// Keywords maps each announced keyword, upper case, to its parameters
	// ("" when none): "SIZE" → "10240000", "AUTH" → "PLAIN LOGIN".
	Keywords map[string]string `json:"keywords"`
}

// ParseEHLO reads the extensions from a 250 EHLO reply.
func ParseEHLO(r Reply) Extensions {
	e := Extensions{Keywords: map[string]string{}}
	if len(r.Lines) == 0 {
		return e
	}
	e.Domain, _, _ = strings.Cut(r.Lines[0], " ")
	for _, l := range r.Lines[1:] {
		kw, params, _ := strings.Cut(strings.TrimSpace(l), " ")
		kw = strings.ToUpper(kw)
		// Some old servers announce "AUTH=LOGIN PLAIN" for pre-standard
		// clients, usually next to a proper AUTH line.
		if rest, ok := strings.CutPrefix(kw, "AUTH="); ok {
			if _, seen := e.Keywords["AUTH"]; !seen {
				e.Keywords["AUTH"] = strings.TrimSpace(rest + " " + params)
			}
			continue
		}
		if kw == "" {
			continue
		}
		e.Keywords[kw] = strings.TrimSpace(params)
	}
	return e
}

// Has reports whether the keyword (any case) was announced.
func (e Extensions) Has(keyword string) bool {
	_, ok := e.Keywords[strings.ToUpper(keyword)]
	return ok
}

// Size returns the SIZE limit (RFC 1870 §4): ok is false when SIZE was not
// announced; limit 0 means no fixed limit.
func (e Extensions) Size() (limit int64, ok bool) {
	p, ok := e.Keywords["SIZE"]
	if !ok {
		return 0, false
	}
	n, _ := strconv.ParseInt(strings.TrimSpace(p), 10, 64)
	return max(n, 0), true
}

// Auth returns the SASL mechanisms announced by AUTH (RFC 4954 §3), upper
// case.
func (e Extensions) Auth() []string {
	var out []string
	for _, m := range strings.Fields(e.Keywords["AUTH"]) {
		out = append(out, strings.ToUpper(m))
	}
	return out
}

// List returns the keywords with their parameters, sorted, as the server
// would show them ("SIZE 10240000").
func (e Extensions) List() []string {
	out := make([]string, 0, len(e.Keywords))
	for k, v := range e.Keywords {
		if v != "" {
			k += " " + v
		}
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
