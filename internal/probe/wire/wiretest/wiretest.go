// Package wiretest runs scripted line-protocol servers on 127.0.0.1:0 for
// the tests of mxray's IMAP, POP3 and ManageSieve clients.
package wiretest

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mxray/mxray/internal/diag"
	"github.com/mxray/mxray/internal/dnsx"
)

// Session is one accepted connection.
type Session struct {
	Conn net.Conn
	R    *bufio.Reader
}

// StartTLS turns the session into a TLS server session.
func (s *Session) StartTLS(cfg *tls.Config) error {
	tc := tls.Server(s.Conn, cfg)
	if err := tc.Handshake(); err != nil {
		return err
	}
	s.Conn, s.R = tc, bufio.NewReader(tc)
	return nil
}

// Handler answers one client line: reply is written as is ("" writes
// nothing), close ends the session.
type Handler func(s *Session, line string) (reply string, close bool)

// Server is a scripted server.
type Server struct {
	Addr string
	mu   sync.Mutex
	seen []string
}

// Start serves greeting and then handler on 127.0.0.1:0 until the test
// ends. With tlsCfg, every connection starts with a TLS handshake.
func Start(t *testing.T, greeting string, tlsCfg *tls.Config, h Handler) *Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	srv := &Server{Addr: ln.Addr().String()}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go srv.serve(c, greeting, tlsCfg, h)
		}
	}()
	return srv
}

func (srv *Server) serve(c net.Conn, greeting string, tlsCfg *tls.Config, h Handler) {
	defer c.Close()
	s := &Session{Conn: c, R: bufio.NewReader(c)}
	if tlsCfg != nil {
		if err := s.StartTLS(tlsCfg); err != nil {
			return
		}
	}
	io.WriteString(s.Conn, greeting)
	for {
		line, err := s.R.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		srv.mu.Lock()
		srv.seen = append(srv.seen, line)
		srv.mu.Unlock()
		reply, done := h(s, line)
		if reply != "" {
			io.WriteString(s.Conn, reply)
		}
		if done {
			return
		}
	}
}

// Lines returns every line the server received.
func (srv *Server) Lines() []string {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	return append([]string(nil), srv.seen...)
}

// Env is a test Env with short limits; logw, when not nil, receives the
// trace log.
func Env(logw io.Writer) diag.Env {
	env := diag.Env{
		Dialer: &dnsx.Dialer{},
		Limits: diag.Limits{Connect: 2 * time.Second, Command: 2 * time.Second},
	}
	if logw != nil {
		env.Logger = slogTrace(logw)
	}
	return env
}

// Pipe returns a client connection whose server side writes data and then
// closes, for fuzzing response readers without a network.
func Pipe(data []byte) net.Conn {
	c, s := net.Pipe()
	go func() {
		// Drain what the client writes, so that its commands never block.
		go io.Copy(io.Discard, s)
		s.Write(data)
		s.Close()
	}()
	return c
}

// Ctx is a context that ends with the test.
func Ctx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}
