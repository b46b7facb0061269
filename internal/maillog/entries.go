package maillog

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// Each parses every line of the readers, in order, and calls fn with the
// line (without its newline; valid only during the call) and its Entry.
// Lines with a timestamp before since are skipped; lines without one are
// kept. Lines longer than MaxLineLength are skipped. An error from fn
// stops the reading and is returned.
func Each(ctx context.Context, opts Options, since time.Time, rs []io.Reader, fn func(line []byte, e Entry) error) error {
	for i, r := range rs {
		if err := eachLine(ctx, r, func(line []byte) error {
			e := ParseLine(line, opts)
			if !since.IsZero() && !e.Time.IsZero() && e.Time.Before(since) {
				return nil
			}
			return fn(line, e)
		}); err != nil {
			if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
				return err
			}
			return fmt.Errorf("maillog: input %d: %w", i+1, err)
		}
	}
	return nil
}

// eachLine calls fn for every line of r, skipping those longer than
// MaxLineLength, and checks ctx between reads.
func eachLine(ctx context.Context, r io.Reader, fn func([]byte) error) error {
	br := bufio.NewReaderSize(&ctxReader{ctx, r}, 64<<10)
	var long []byte
	tooLong := false
	for {
		chunk, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			if !tooLong {
				long = append(long, chunk...)
				if len(long) > MaxLineLength {
					tooLong, long = true, long[:0]
				}
			}
			continue
		}
		line := chunk
		if len(long) > 0 {
			long = append(long, chunk...)
			line = long
		}
		if len(line) > 0 && !tooLong {
			line = bytes.TrimSuffix(line, []byte("\n"))
			if len(line) <= MaxLineLength {
				if ferr := fn(line); ferr != nil {
					return ferr
				}
			}
		}
		long, tooLong = long[:0], false
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

// SinceReader returns the lines of r whose timestamp is not before since
// (lines without a timestamp are kept), for feeding Summarize a window of
// a log file. The caller closes it, which stops the filtering goroutine.
func SinceReader(ctx context.Context, r io.Reader, since time.Time, opts Options) io.ReadCloser {
	pr, pw := io.Pipe()
	go func() {
		bw := bufio.NewWriterSize(pw, 64<<10)
		err := eachLine(ctx, r, func(line []byte) error {
			if e := ParseLine(line, opts); !e.Time.IsZero() && e.Time.Before(since) {
				return nil
			}
			bw.Write(line)
			return bw.WriteByte('\n')
		})
		if err == nil {
			err = bw.Flush()
		}
		pw.CloseWithError(err)
	}()
	return pr
}
