package server

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
)

// smtpServer receives report mail (RFC 5321) for the configured
// recipients and imports every message accepted.
type smtpServer struct {
	srv   *Server
	cfg   SMTPConfig
	tls   *tls.Config
	rcpts map[string]bool
	sem   chan struct{}

	wg    sync.WaitGroup
	mu    sync.Mutex
	conns map[net.Conn]bool
	done  bool
}

func newSMTPServer(s *Server, tc *tls.Config) *smtpServer {
	m := &smtpServer{srv: s, cfg: s.cfg.SMTP, tls: tc, rcpts: map[string]bool{},
		sem: make(chan struct{}, s.cfg.SMTP.MaxConns), conns: map[net.Conn]bool{}}
	for _, r := range s.cfg.SMTP.Recipients {
		m.rcpts[strings.ToLower(strings.TrimSpace(r))] = true
	}
	return m
}

// Limits of one session.
const (
	maxCommandLine = 2048 // RFC 5321 §4.5.3.1.4 says 512; extensions need more
	maxRecipients  = 100  // RFC 5321 §4.5.3.1.8: at least 100 must be accepted
	maxBadCommands = 10
)

func (m *smtpServer) serve(ctx context.Context, ln net.Listener) error {
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("server: smtp: %w", err)
		}
		select {
		case m.sem <- struct{}{}:
		default:
			// RFC 5321 §3.8: 421 closes the connection; the client retries.
			c.SetWriteDeadline(m.srv.env.Clock().Add(10 * time.Second))
			fmt.Fprintf(c, "421 4.3.2 %s Too many connections, try again later\r\n", m.cfg.Hostname)
			c.Close()
			m.srv.env.Log().Warn("smtp: connection refused: too many", "remote", c.RemoteAddr().String(), "max", m.cfg.MaxConns)
			continue
		}
		m.mu.Lock()
		if m.done {
			m.mu.Unlock()
			c.Close()
			<-m.sem
			continue
		}
		m.conns[c] = true
		m.wg.Add(1)
		m.mu.Unlock()
		go func() {
			defer m.wg.Done()
			defer func() { <-m.sem }()
			se := &session{m: m, conn: c, ctx: ctx}
			se.run()
			c.Close()
			m.mu.Lock()
			delete(m.conns, c)
			m.mu.Unlock()
		}()
	}
}

// shutdown lets sessions finish the command under way, then ends idle
// ones: their next read times out and they are told 421.
func (m *smtpServer) shutdown(ctx context.Context) {
	m.mu.Lock()
	m.done = true
	for c := range m.conns {
		c.SetReadDeadline(m.srv.env.Clock())
	}
	m.mu.Unlock()
	done := make(chan struct{})
	go func() { m.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		m.mu.Lock()
		for c := range m.conns {
			c.Close()
		}
		m.mu.Unlock()
		<-done
	}
}

// session is one SMTP connection.
type session struct {
	m        *smtpServer
	ctx      context.Context
	conn     net.Conn
	r        *bufio.Reader
	w        *bufio.Writer
	deadline time.Time
	remote   string

	helo    string
	tls     bool
	from    string
	hasFrom bool
	rcpts   []string
	bad     int
}

// errLineTooLong: a command line longer than maxCommandLine.
var errLineTooLong = errors.New("line too long")

func (se *session) reply(code int, text string) error {
	lines := strings.Split(text, "\n")
	for i, l := range lines {
		sep := "-"
		if i == len(lines)-1 {
			sep = " "
		}
		fmt.Fprintf(se.w, "%d%s%s\r\n", code, sep, l)
	}
	se.conn.SetWriteDeadline(se.m.srv.env.Clock().Add(se.m.cfg.CommandTimeout))
	return se.w.Flush()
}

// arm sets the read deadline for the next line: the per-command limit,
// within the session's.
func (se *session) arm() {
	d := se.m.srv.env.Clock().Add(se.m.cfg.CommandTimeout)
	if d.After(se.deadline) {
		d = se.deadline
	}
	se.m.mu.Lock()
	if se.m.done {
		d = se.m.srv.env.Clock()
	}
	se.m.mu.Unlock()
	se.conn.SetReadDeadline(d)
}

func (se *session) readCommand() (string, error) {
	se.arm()
	line, err := se.r.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		// Skip the rest of the line, then refuse it.
		for errors.Is(err, bufio.ErrBufferFull) {
			_, err = se.r.ReadSlice('\n')
		}
		if err != nil {
			return "", err
		}
		return "", errLineTooLong
	}
	if err != nil {
		return "", err
	}
	return strings.TrimRight(string(line), "\r\n"), nil
}

func (se *session) logInfo(msg string, args ...any) {
	se.m.srv.env.Log().Info(msg, append([]any{"remote", se.remote}, args...)...)
}

func (se *session) resetTx() {
	se.from, se.hasFrom, se.rcpts = "", false, nil
}

func (se *session) run() {
	se.remote = se.conn.RemoteAddr().String()
	se.deadline = se.m.srv.env.Clock().Add(se.m.cfg.SessionTimeout)
	se.r = bufio.NewReaderSize(se.conn, maxCommandLine)
	se.w = bufio.NewWriter(se.conn)
	host := se.m.cfg.Hostname
	if se.reply(220, host+" ESMTP mxray report receiver") != nil {
		return
	}
	for {
		line, err := se.readCommand()
		if errors.Is(err, errLineTooLong) {
			if se.badCommand(500, "5.5.2 Line too long") != nil {
				return
			}
			continue
		}
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				// RFC 5321 §4.5.3.2: the server may close after its
				// timeout, with 421.
				se.reply(421, "4.4.2 "+host+" Timeout or shutdown, closing connection")
			}
			return
		}
		verb, arg, _ := strings.Cut(line, " ")
		verb = strings.ToUpper(verb)
		arg = strings.TrimSpace(arg)
		var rerr error
		switch verb {
		case "EHLO", "HELO":
			if arg == "" {
				rerr = se.badCommand(501, "5.5.4 "+verb+" needs a domain or address literal")
				break
			}
			se.helo = arg
			se.resetTx()
			if verb == "HELO" {
				rerr = se.reply(250, host)
				break
			}
			ext := []string{host + " greets " + arg, "PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES",
				"SIZE " + strconv.FormatInt(se.m.cfg.MaxBytes, 10)}
			if se.m.tls != nil && !se.tls {
				ext = append(ext, "STARTTLS")
			}
			rerr = se.reply(250, strings.Join(ext, "\n"))
		case "STARTTLS":
			if se.m.tls == nil || se.tls {
				rerr = se.badCommand(502, "5.5.1 STARTTLS not available")
				break
			}
			if se.reply(220, "2.0.0 Ready to start TLS") != nil {
				return
			}
			tc := tls.Server(se.conn, se.m.tls)
			tc.SetDeadline(se.m.srv.env.Clock().Add(se.m.cfg.CommandTimeout))
			if err := tc.HandshakeContext(se.ctx); err != nil {
				se.logInfo("smtp: TLS handshake failed", "err", err)
				return
			}
			tc.SetDeadline(time.Time{})
			// RFC 3207 §4.2: all state from before TLS is discarded.
			se.conn, se.tls, se.helo = tc, true, ""
			se.resetTx()
			se.r = bufio.NewReaderSize(tc, maxCommandLine)
			se.w = bufio.NewWriter(tc)
		case "MAIL":
			rerr = se.mail(arg)
		case "RCPT":
			rerr = se.rcpt(arg)
		case "DATA":
			rerr = se.data()
		case "RSET":
			se.resetTx()
			rerr = se.reply(250, "2.0.0 OK")
		case "NOOP":
			rerr = se.reply(250, "2.0.0 OK")
		case "VRFY":
			rerr = se.reply(252, "2.5.0 Not verifying, try RCPT")
		case "QUIT":
			se.reply(221, "2.0.0 "+host+" closing connection")
			return
		default:
			rerr = se.badCommand(500, "5.5.2 Command unrecognized")
		}
		if rerr != nil {
			return
		}
	}
}

// badCommand answers an error; after too many, the session ends.
func (se *session) badCommand(code int, text string) error {
	se.bad++
	if se.bad > maxBadCommands {
		se.reply(421, "4.7.0 "+se.m.cfg.Hostname+" Too many errors, closing connection")
		return errors.New("too many errors")
	}
	return se.reply(code, text)
}

// path takes "<addr>" (and ESMTP parameters) after FROM: or TO:.
func path(arg, prefix string) (addr string, params []string, ok bool) {
	if len(arg) < len(prefix) || !strings.EqualFold(arg[:len(prefix)], prefix) {
		return "", nil, false
	}
	rest := strings.TrimSpace(arg[len(prefix):])
	if !strings.HasPrefix(rest, "<") {
		return "", nil, false
	}
	end := strings.IndexByte(rest, '>')
	if end < 0 {
		return "", nil, false
	}
	addr = rest[1:end]
	// RFC 5321 §4.1.2: a source route is accepted and ignored.
	if strings.HasPrefix(addr, "@") {
		if _, after, found := strings.Cut(addr, ":"); found {
			addr = after
		}
	}
	return addr, strings.Fields(rest[end+1:]), true
}

func (se *session) mail(arg string) error {
	if se.helo == "" {
		return se.badCommand(503, "5.5.1 Send EHLO or HELO first")
	}
	if se.hasFrom {
		return se.badCommand(503, "5.5.1 Nested MAIL command")
	}
	addr, params, ok := path(arg, "FROM:")
	if !ok {
		return se.badCommand(501, "5.5.4 Syntax: MAIL FROM:<address>")
	}
	for _, p := range params {
		k, v, _ := strings.Cut(p, "=")
		if strings.EqualFold(k, "SIZE") {
			// RFC 1870 §6.1: a declared size beyond the limit is refused
			// at once.
			if n, err := strconv.ParseInt(v, 10, 64); err == nil && n > se.m.cfg.MaxBytes {
				return se.reply(552, "5.3.4 Message size exceeds the limit of "+strconv.FormatInt(se.m.cfg.MaxBytes, 10)+" bytes")
			}
		}
	}
	se.from, se.hasFrom = addr, true
	return se.reply(250, "2.1.0 OK")
}

func (se *session) rcpt(arg string) error {
	if !se.hasFrom {
		return se.badCommand(503, "5.5.1 Send MAIL first")
	}
	addr, _, ok := path(arg, "TO:")
	if !ok {
		return se.badCommand(501, "5.5.4 Syntax: RCPT TO:<address>")
	}
	if len(se.rcpts) >= maxRecipients {
		return se.reply(452, "4.5.3 Too many recipients")
	}
	if !se.m.rcpts[strings.ToLower(addr)] {
		se.logInfo("smtp: recipient refused", "rcpt", addr)
		return se.reply(550, "5.1.1 <"+addr+">: Recipient address rejected: not a report mailbox here")
	}
	se.rcpts = append(se.rcpts, addr)
	return se.reply(250, "2.1.5 OK")
}

// errTooBig: the message is larger than the limit.
var errTooBig = errors.New("message too big")

// readData reads the message up to the lone ".", undoing dot-stuffing.
// Past the size limit it keeps reading, so that the reply comes at the
// end as the client expects, and returns errTooBig.
func (se *session) readData() ([]byte, error) {
	var buf bytes.Buffer
	max := se.m.cfg.MaxBytes
	over := false
	lineStart := true
	for {
		se.arm()
		line, err := se.r.ReadSlice('\n')
		partial := errors.Is(err, bufio.ErrBufferFull)
		if err != nil && !partial {
			return nil, err
		}
		if lineStart {
			if !partial && (string(line) == ".\r\n" || string(line) == ".\n") {
				break
			}
			// RFC 5321 §4.5.2: a leading period is removed.
			if len(line) > 0 && line[0] == '.' {
				line = line[1:]
			}
		}
		lineStart = !partial
		if over {
			continue
		}
		if int64(buf.Len()+len(line)) > max {
			over = true
			buf = bytes.Buffer{}
			continue
		}
		buf.Write(line)
	}
	if over {
		return nil, errTooBig
	}
	return buf.Bytes(), nil
}

func (se *session) data() error {
	if !se.hasFrom || len(se.rcpts) == 0 {
		return se.badCommand(503, "5.5.1 Send MAIL and RCPT first")
	}
	if err := se.reply(354, "Send the message, end with <CRLF>.<CRLF>"); err != nil {
		return err
	}
	msg, err := se.readData()
	defer se.resetTx()
	if errors.Is(err, errTooBig) {
		se.logInfo("smtp: message refused: too big", "from", se.from, "max", se.m.cfg.MaxBytes)
		return se.reply(552, "5.3.4 Message size exceeds the limit of "+strconv.FormatInt(se.m.cfg.MaxBytes, 10)+" bytes")
	}
	if err != nil {
		return err
	}
	host, _, _ := net.SplitHostPort(se.remote)
	// The import finishes even when a shutdown begins: the sender has sent
	// the whole message and waits for the answer.
	ictx, cancel := context.WithTimeout(context.WithoutCancel(se.ctx), time.Minute)
	defer cancel()
	outs, err := se.m.srv.importBlob(ictx, "smtp:"+host, msg)
	if err != nil {
		// RFC 5321 §4.2.5: a 4yz answer after DATA keeps the message at
		// the sender, which tries again later.
		return se.reply(451, "4.3.0 Report store unavailable, try again later")
	}
	var parts []string
	for _, o := range outs {
		parts = append(parts, fmt.Sprintf("%s %d", o.Result, o.ID))
	}
	se.logInfo("smtp: message accepted", "from", se.from, "rcpts", len(se.rcpts), "bytes", len(msg), "outcome", strings.Join(parts, ", "))
	return se.reply(250, "2.0.0 OK: "+strings.Join(parts, ", "))
}
