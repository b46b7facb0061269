package maillog

import (
	"bufio"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"
)

// MaxLineLength is the longest line counted; longer lines are counted as
// unparsed and skipped. Syslog daemons cut lines far shorter than this.
const MaxLineLength = 1 << 20

var (
	// ErrGzip is returned when a file starts with the gzip magic but
	// cannot be decompressed.
	ErrGzip = errors.New("maillog: bad gzip stream")
)

// NewReader returns r, or a decompressing reader when r starts with the
// gzip magic bytes (rotated logs such as mail.log.2.gz). Concatenated gzip
// members are read as one stream, as zcat does.
func NewReader(r io.Reader) (io.Reader, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	magic, err := br.Peek(2)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("maillog: read: %w", err)
	}
	if len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrGzip, err)
		}
		return &gzipErrReader{zr}, nil
	}
	return br, nil
}

type gzipErrReader struct{ z *gzip.Reader }

func (g *gzipErrReader) Read(p []byte) (int, error) {
	n, err := g.z.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		err = fmt.Errorf("%w: %v", ErrGzip, err)
	}
	return n, err
}

// Open opens a log file for reading, decompressing it when it is gzip
// (recognised by its magic bytes, not its name). The caller closes it.
// Reading standard input ("-") is the caller's business.
func Open(path string) (io.ReadCloser, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("maillog: %w", err)
	}
	r, err := NewReader(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("maillog: %s: %w", path, err)
	}
	return struct {
		io.Reader
		io.Closer
	}{r, f}, nil
}

// Summarize reads each reader to its end, in order, and returns the
// summary. Files are read in the order given, so rotated logs should be
// passed oldest first.
func Summarize(ctx context.Context, opts Options, rs ...io.Reader) (*Summary, error) {
	a := NewAccumulator(opts)
	var n int64
	for i, r := range rs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		m, err := a.ReadFrom(&ctxReader{ctx, r})
		n += m
		if err != nil {
			return nil, fmt.Errorf("maillog: input %d: %w", i+1, err)
		}
	}
	s := a.Summary()
	if opts.Logger != nil {
		// No duration: the package has no clock (see CONVENTIONS.md).
		opts.Logger.Debug("maillog summary", "inputs", len(rs), "bytes", n, "lines", s.Lines.Total,
			"postfix", s.Lines.Postfix, "dovecot", s.Lines.Dovecot, "unparsed", s.Lines.Unparsed)
	}
	return s, nil
}

// ctxReader stops reading when the context is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// journalEntry is the part of "journalctl -o json" that mxray reads.
type journalEntry struct {
	Realtime   string          `json:"__REALTIME_TIMESTAMP"`
	Hostname   string          `json:"_HOSTNAME"`
	Identifier string          `json:"SYSLOG_IDENTIFIER"`
	SyslogPID  string          `json:"SYSLOG_PID"`
	PID        string          `json:"_PID"`
	Message    json.RawMessage `json:"MESSAGE"`
}

// journalJSON turns one "journalctl -o json" record into an RFC 3339
// syslog-style line, so that the rest of the parser sees one format.
func (a *Accumulator) journalJSON(line []byte) ([]byte, bool) {
	var j journalEntry
	if err := json.Unmarshal(line, &j); err != nil || j.Identifier == "" {
		return nil, false
	}
	var msg string
	if err := json.Unmarshal(j.Message, &msg); err != nil {
		// journald writes non-UTF-8 messages as an array of bytes.
		var raw []byte
		var ints []int
		if json.Unmarshal(j.Message, &ints) != nil {
			return nil, false
		}
		for _, v := range ints {
			raw = append(raw, byte(v))
		}
		msg = string(raw)
	}
	us, err := strconv.ParseInt(j.Realtime, 10, 64)
	if err != nil {
		return nil, false
	}
	t := time.UnixMicro(us).In(a.loc)
	host := j.Hostname
	if host == "" {
		host = "localhost"
	}
	out := t.AppendFormat(a.jbuf[:0], "2006-01-02T15:04:05.000000-07:00")
	out = append(out, ' ')
	out = append(out, host...)
	out = append(out, ' ')
	out = append(out, j.Identifier...)
	pid := j.SyslogPID
	if pid == "" {
		pid = j.PID
	}
	if pid != "" {
		out = append(out, '[')
		out = append(out, pid...)
		out = append(out, ']')
	}
	out = append(out, ": "...)
	out = append(out, msg...)
	a.jbuf = out
	return out, true
}
