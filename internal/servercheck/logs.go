package servercheck

import (
	"bytes"
	"io"
	"net/netip"
	"os"
	"sort"

	"github.com/mxray/mxray/internal/maillog"
)

// Tail returns the last n lines of a file, reading at most maxBytes from
// its end (a log with absurdly long lines is cut rather than read whole).
func Tail(path string, n int, maxBytes int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return nil, err
	}
	const chunk = 64 * 1024
	var buf []byte
	pos := size
	for pos > 0 && size-pos < maxBytes {
		step := min(int64(chunk), pos)
		pos -= step
		b := make([]byte, step)
		if _, err := f.ReadAt(b, pos); err != nil && err != io.EOF {
			return nil, err
		}
		buf = append(b, buf...)
		if bytes.Count(buf, []byte("\n")) > n {
			break
		}
	}
	// Drop a partial first line, unless the whole file was read.
	if pos > 0 {
		if i := bytes.IndexByte(buf, '\n'); i >= 0 {
			buf = buf[i+1:]
		}
	}
	lines := bytes.SplitAfter(buf, []byte("\n"))
	if len(lines) > 0 && len(lines[len(lines)-1]) == 0 {
		lines = lines[:len(lines)-1]
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return bytes.Join(lines, nil), nil
}

// ClientIPs counts the client addresses of Postfix smtpd's "connect from"
// lines.
type ClientIPs struct {
	Connects int            `json:"connects"`
	ByIP     map[string]int `json:"by_ip"`
	Top      string         `json:"top,omitempty"` // the most frequent address
	TopShare float64        `json:"top_share"`     // its share of Connects, 0..1
}

// CountClients parses log lines with maillog.ParseLine and counts
// smtpd connects by client address.
func CountClients(logs []byte) ClientIPs {
	c := ClientIPs{ByIP: map[string]int{}}
	for _, line := range bytes.Split(logs, []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		e := maillog.ParseLine(line, maillog.Options{})
		if e.Daemon != maillog.DaemonPostfix || e.Event != maillog.EventConnect || e.Service != "smtpd" || e.Client.IP == "" {
			continue
		}
		c.Connects++
		c.ByIP[e.Client.IP]++
	}
	ips := make([]string, 0, len(c.ByIP))
	for ip := range c.ByIP {
		ips = append(ips, ip)
	}
	sort.Slice(ips, func(i, j int) bool {
		if c.ByIP[ips[i]] != c.ByIP[ips[j]] {
			return c.ByIP[ips[i]] > c.ByIP[ips[j]]
		}
		return ips[i] < ips[j]
	})
	if len(ips) > 0 {
		c.Top = ips[0]
		c.TopShare = float64(c.ByIP[c.Top]) / float64(c.Connects)
	}
	return c
}

// Gateway reports whether ip is an address a proxy or a container network
// would show instead of the real client: RFC 1918 and RFC 4193 private
// space, RFC 6598 shared space. Loopback is not counted: local submission
// and webmail connect from there legitimately.
func Gateway(ip string) bool {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return false
	}
	a = a.Unmap()
	return a.IsPrivate() || netip.MustParsePrefix("100.64.0.0/10").Contains(a)
}
