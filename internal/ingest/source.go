package ingest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Sources. Walk turns paths into blobs for Decode: a file is one blob; a
// directory is read recursively, in name order, skipping names that start
// with a dot; an mbox file (one starting with a "From " line) gives one
// blob per message; a Maildir (a directory with cur/ and new/) gives one
// blob per message file in cur/ and new/, and its Maildir++ sub-folders
// (".Name") are read too. Symbolic links to files are followed; symbolic
// links to directories are not, so that a loop cannot make the walk endless.

// ErrUnreadable is wrapped by Walk's error for each path that could not be
// read; the other paths are still read.
var ErrUnreadable = errors.New("ingest: unreadable source")

// Blob is one unit of input for Decode.
type Blob struct {
	// Origin says where the blob came from: the file's path, or
	// "PATH#N" for the Nth message of an mbox file.
	Origin string
	Data   []byte
	// Err is set when the blob could not be read whole (it is larger than
	// the input limit); Data is then empty. The importer quarantines it
	// with this reason.
	Err error
}

// Walk reads the sources at paths in order and calls fn for every blob.
// An error from fn stops the walk and is returned as is. Paths that could
// not be read are reported together at the end, each wrapping
// ErrUnreadable. maxBytes bounds one blob (DefaultLimits().MaxInputBytes
// when 0).
func Walk(ctx context.Context, paths []string, maxBytes int64, fn func(Blob) error) error {
	if maxBytes <= 0 {
		maxBytes = DefaultLimits().MaxInputBytes
	}
	w := &walker{ctx: ctx, max: maxBytes, fn: fn}
	for _, p := range paths {
		if err := w.path(p); err != nil {
			return err
		}
	}
	return errors.Join(w.bad...)
}

type walker struct {
	ctx context.Context
	max int64
	fn  func(Blob) error
	bad []error
}

// fail records an unreadable path.
func (w *walker) fail(path string, err error) {
	w.bad = append(w.bad, fmt.Errorf("%w: %s: %w", ErrUnreadable, path, unwrapPath(err)))
}

// unwrapPath drops the path that os errors repeat.
func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func (w *walker) path(p string) error {
	if err := w.ctx.Err(); err != nil {
		return err
	}
	fi, err := os.Stat(p)
	if err != nil {
		w.fail(p, err)
		return nil
	}
	if !fi.IsDir() {
		return w.file(p)
	}
	if isMaildir(p) {
		return w.maildir(p)
	}
	entries, err := os.ReadDir(p)
	if err != nil {
		w.fail(p, err)
		return nil
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		child := filepath.Join(p, e.Name())
		if e.Type()&os.ModeSymlink != 0 {
			if fi, err := os.Stat(child); err == nil && fi.IsDir() {
				continue
			}
		}
		if err := w.path(child); err != nil {
			return err
		}
	}
	return nil
}

func isMaildir(p string) bool {
	for _, sub := range []string{"cur", "new"} {
		if fi, err := os.Stat(filepath.Join(p, sub)); err != nil || !fi.IsDir() {
			return false
		}
	}
	return true
}

// maildir reads cur/ and new/ (tmp/ holds messages still being written),
// then the Maildir++ sub-folders.
func (w *walker) maildir(p string) error {
	for _, sub := range []string{"cur", "new"} {
		dir := filepath.Join(p, sub)
		entries, err := os.ReadDir(dir)
		if err != nil {
			w.fail(dir, err)
			continue
		}
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), ".") || e.IsDir() {
				continue
			}
			if err := w.whole(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	entries, err := os.ReadDir(p)
	if err != nil {
		return nil // already read cur/ and new/ through it
	}
	for _, e := range entries {
		sub := filepath.Join(p, e.Name())
		if e.IsDir() && strings.HasPrefix(e.Name(), ".") && e.Name() != "." && e.Name() != ".." && isMaildir(sub) {
			if err := w.maildir(sub); err != nil {
				return err
			}
		}
	}
	return nil
}

// file reads a regular file: an mbox when it starts with a From_ line,
// otherwise one blob.
func (w *walker) file(p string) error {
	f, err := os.Open(p)
	if err != nil {
		w.fail(p, err)
		return nil
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 64<<10)
	head, _ := br.Peek(5)
	if string(head) == "From " {
		if err := w.mbox(p, br); err != nil {
			var rerr readErr
			if errors.As(err, &rerr) {
				w.fail(p, rerr.err)
				return nil
			}
			return err
		}
		return nil
	}
	data, err := io.ReadAll(io.LimitReader(br, w.max+1))
	if err != nil {
		w.fail(p, err)
		return nil
	}
	if int64(len(data)) > w.max {
		return w.fn(Blob{Origin: p, Err: fmt.Errorf("%w: file larger than %d bytes", ErrTooLarge, w.max)})
	}
	return w.fn(Blob{Origin: p, Data: data})
}

// whole reads a file as one blob, whatever it starts with (a Maildir
// message).
func (w *walker) whole(p string) error {
	f, err := os.Open(p)
	if err != nil {
		w.fail(p, err)
		return nil
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, w.max+1))
	if err != nil {
		w.fail(p, err)
		return nil
	}
	if int64(len(data)) > w.max {
		return w.fn(Blob{Origin: p, Err: fmt.Errorf("%w: message larger than %d bytes", ErrTooLarge, w.max)})
	}
	return w.fn(Blob{Origin: p, Data: data})
}

type readErr struct{ err error }

func (e readErr) Error() string { return e.err.Error() }

// mbox splits an mbox file into messages. A message starts at a line
// beginning "From " that is the first line or follows an empty line; the
// From_ line itself is dropped, the empty line before the next one too,
// and one '>' is removed from lines matching ">+From " (mboxrd; for mboxo
// this restores the lines that were escaped).
func (w *walker) mbox(p string, br *bufio.Reader) error {
	var msg bytes.Buffer
	n := 0
	tooBig := false
	prevBlank := true
	started := false
	flush := func() error {
		if !started {
			return nil
		}
		n++
		origin := fmt.Sprintf("%s#%d", p, n)
		if tooBig {
			tooBig = false
			msg.Reset()
			return w.fn(Blob{Origin: origin, Err: fmt.Errorf("%w: message larger than %d bytes", ErrTooLarge, w.max)})
		}
		data := msg.Bytes()
		// The empty line before the next From_ line separates messages.
		if bytes.HasSuffix(data, []byte("\r\n\r\n")) {
			data = data[:len(data)-2]
		} else if bytes.HasSuffix(data, []byte("\n\n")) {
			data = data[:len(data)-1]
		}
		b := Blob{Origin: origin, Data: bytes.Clone(data)}
		msg.Reset()
		return w.fn(b)
	}
	for {
		line, err := readLine(br)
		if len(line) > 0 {
			if prevBlank && bytes.HasPrefix(line, []byte("From ")) {
				if err := w.ctx.Err(); err != nil {
					return err
				}
				if err := flush(); err != nil {
					return err
				}
				started = true
				prevBlank = false
				continue
			}
			prevBlank = len(bytes.TrimRight(line, "\r\n")) == 0
			if bytes.HasPrefix(line, []byte(">")) && bytes.HasPrefix(bytes.TrimLeft(line, ">"), []byte("From ")) {
				line = line[1:]
			}
			if !tooBig {
				if int64(msg.Len()+len(line)) > w.max {
					tooBig = true
					msg.Reset()
				} else {
					msg.Write(line)
				}
			}
		}
		if err == io.EOF {
			return flush()
		}
		if err != nil {
			return readErr{err}
		}
	}
}

// readLine returns the next line with its ending, however long.
func readLine(br *bufio.Reader) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if err != bufio.ErrBufferFull {
		return line, err
	}
	long := bytes.Clone(line)
	for err == bufio.ErrBufferFull {
		line, err = br.ReadSlice('\n')
		long = append(long, line...)
	}
	return long, err
}
