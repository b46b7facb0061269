package servercheck

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
)

// MailPorts are the ports of mail services: SMTP (RFC 5321), submissions
// (RFC 8314), submission (RFC 6409), POP3 (RFC 1939), IMAP (RFC 9051),
// IMAPS, POP3S and ManageSieve (RFC 5804).
var MailPorts = []int{25, 465, 587, 110, 143, 993, 995, 4190}

// ErrBadProcNet: a /proc/net/tcp line could not be read.
var ErrBadProcNet = errors.New("servercheck: unreadable /proc/net/tcp line")

// Listener is one listening TCP socket.
type Listener struct {
	Addr string `json:"addr"` // "0.0.0.0", "::", "127.0.0.1"
	Port int    `json:"port"`
}

// Loopback reports whether the socket accepts connections from this host
// only.
func (l Listener) Loopback() bool {
	a, err := netip.ParseAddr(l.Addr)
	return err == nil && a.Unmap().IsLoopback()
}

// String is "addr:port" with IPv6 in brackets.
func (l Listener) String() string {
	a, err := netip.ParseAddr(l.Addr)
	if err != nil {
		return l.Addr + ":" + strconv.Itoa(l.Port)
	}
	return netip.AddrPortFrom(a, uint16(l.Port)).String()
}

// ParseProcNet reads /proc/net/tcp or /proc/net/tcp6 and returns the
// sockets in state 0A (LISTEN). Addresses are written as 32-bit words in
// the kernel's byte order; this host's order is assumed.
func ParseProcNet(b []byte) ([]Listener, error) {
	out := []Listener{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	first := true
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if first {
			first = false
			if len(f) > 0 && f[0] == "sl" {
				continue
			}
		}
		if len(f) < 4 {
			continue
		}
		if f[3] != "0A" {
			continue
		}
		l, err := parseProcAddr(f[1])
		if err != nil {
			return out, err
		}
		out = append(out, l)
	}
	return out, nil
}

func parseProcAddr(s string) (Listener, error) {
	host, port, ok := strings.Cut(s, ":")
	if !ok {
		return Listener{}, fmt.Errorf("%w: %q", ErrBadProcNet, s)
	}
	p, err := strconv.ParseUint(port, 16, 16)
	if err != nil {
		return Listener{}, fmt.Errorf("%w: port %q", ErrBadProcNet, port)
	}
	raw, err := hex.DecodeString(host)
	if err != nil || len(raw) != 4 && len(raw) != 16 {
		return Listener{}, fmt.Errorf("%w: address %q", ErrBadProcNet, host)
	}
	b := make([]byte, len(raw))
	for i := 0; i < len(raw); i += 4 {
		binary.NativeEndian.PutUint32(b[i:], binary.BigEndian.Uint32(raw[i:]))
	}
	a, _ := netip.AddrFromSlice(b)
	return Listener{Addr: a.Unmap().String(), Port: int(p)}, nil
}

// OnPorts returns the listeners on the given ports, sorted by port and
// address, once each.
func OnPorts(ls []Listener, ports []int) []Listener {
	want := map[int]bool{}
	for _, p := range ports {
		want[p] = true
	}
	seen := map[Listener]bool{}
	out := []Listener{}
	for _, l := range ls {
		if want[l.Port] && !seen[l] {
			seen[l] = true
			out = append(out, l)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Port != out[j].Port {
			return out[i].Port < out[j].Port
		}
		return out[i].Addr < out[j].Addr
	})
	return out
}
