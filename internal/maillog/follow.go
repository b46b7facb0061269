package maillog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"time"
)

// FollowOptions control Follow.
type FollowOptions struct {
	Options
	// Poll is how often the file is checked for new lines and rotation;
	// 0 means 250 ms.
	Poll time.Duration
	// FromStart reads the lines already in the file first; otherwise
	// following starts at its end, like tail -F -n 0.
	FromStart bool
	// Filter selects the entries passed on; nil passes all.
	Filter *Filter
}

// Filter selects entries by queue id, address and event. Empty fields
// match everything; all given fields must match.
type Filter struct {
	QueueID string  // exact, or the bounce/relay id a line links to
	Address string  // sender, recipient, original recipient or login user, case-insensitive
	Events  []Event // any of them
}

// Match reports whether e passes the filter.
func (f *Filter) Match(e *Entry) bool {
	if f == nil {
		return true
	}
	if f.QueueID != "" && e.QueueID != f.QueueID && e.RelatedQueueID != f.QueueID {
		return false
	}
	if a := f.Address; a != "" && !strings.EqualFold(e.From, a) && !strings.EqualFold(e.To, a) &&
		!strings.EqualFold(e.OrigTo, a) && !strings.EqualFold(e.SASLUsername, a) {
		return false
	}
	if len(f.Events) > 0 {
		for _, ev := range f.Events {
			if e.Event == ev {
				return true
			}
		}
		return false
	}
	return true
}

// FollowStats say what Follow read.
type FollowStats struct {
	Lines       int64 `json:"lines"`       // lines read
	Matched     int64 `json:"matched"`     // lines passed on
	Rotations   int   `json:"rotations"`   // the file was replaced (renamed away and created again)
	Truncations int   `json:"truncations"` // the file shrank (copytruncate)
}

// Follow reads path like tail -F: it keeps reading lines appended to it,
// reopens it when it is replaced (rotation by rename, reading the old
// file to its end first) and starts again at the top when it is
// truncated. It calls fn for each complete line that passes the filter
// (the line without newline is valid only during the call) and returns
// when ctx is done (with a nil error) or fn fails.
func Follow(ctx context.Context, path string, fo FollowOptions, fn func(line []byte, e Entry) error) (FollowStats, error) {
	var st FollowStats
	poll := fo.Poll
	if poll <= 0 {
		poll = 250 * time.Millisecond
	}
	log := fo.Logger
	f, err := os.Open(path)
	if err != nil {
		return st, fmt.Errorf("maillog: %w", err)
	}
	defer func() { f.Close() }()
	var off int64
	if !fo.FromStart {
		if off, err = f.Seek(0, io.SeekEnd); err != nil {
			return st, fmt.Errorf("maillog: %w", err)
		}
	}
	var partial []byte
	buf := make([]byte, 64<<10)
	emit := func(line []byte) error {
		st.Lines++
		if len(line) > MaxLineLength {
			return nil
		}
		e := ParseLine(line, fo.Options)
		if !fo.Filter.Match(&e) {
			return nil
		}
		st.Matched++
		return fn(line, e)
	}
	// drain reads f to its current end, passing on complete lines.
	drain := func() (bool, error) {
		got := false
		for {
			n, rerr := f.Read(buf)
			if n > 0 {
				got = true
				off += int64(n)
				data := buf[:n]
				for {
					i := bytes.IndexByte(data, '\n')
					if i < 0 {
						if len(partial) <= MaxLineLength {
							partial = append(partial, data...)
						}
						break
					}
					line := data[:i]
					if len(partial) > 0 {
						partial = append(partial, line...)
						line = partial
					}
					if err := emit(bytes.TrimSuffix(line, []byte("\r"))); err != nil {
						return got, err
					}
					partial = partial[:0]
					data = data[i+1:]
				}
			}
			if rerr != nil {
				if errors.Is(rerr, io.EOF) {
					return got, nil
				}
				return got, fmt.Errorf("maillog: %w", rerr)
			}
		}
	}
	for {
		if ctx.Err() != nil {
			return st, nil
		}
		got, err := drain()
		if err != nil {
			return st, err
		}
		// Has the name been given to another file, or has ours shrunk?
		cur, serr := os.Stat(path)
		mine, ferr := f.Stat()
		switch {
		case ferr != nil:
			return st, fmt.Errorf("maillog: %w", ferr)
		case serr == nil && !os.SameFile(cur, mine):
			// Rotated: what was written to the old file before the rename
			// has been read; a last line without newline is passed on.
			if _, err := drain(); err != nil {
				return st, err
			}
			if len(partial) > 0 {
				if err := emit(partial); err != nil {
					return st, err
				}
				partial = partial[:0]
			}
			nf, err := os.Open(path)
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					break // renamed again already: try on the next poll
				}
				return st, fmt.Errorf("maillog: %w", err)
			}
			f.Close()
			f, off = nf, 0
			st.Rotations++
			if log != nil {
				log.Info("log file rotated; following the new file", "path", path)
			}
			continue
		case mine.Size() < off:
			if _, err := f.Seek(0, io.SeekStart); err != nil {
				return st, fmt.Errorf("maillog: %w", err)
			}
			off, partial = 0, partial[:0]
			st.Truncations++
			if log != nil {
				log.Info("log file truncated; reading it from the start", "path", path)
			}
			continue
		}
		if got {
			continue
		}
		t := time.NewTimer(poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return st, nil
		case <-t.C:
		}
	}
}

// Events lists every Event a line can report, for validating filters.
var Events = []Event{EventUnparsed, EventOther, EventConnect, EventDisconnect, EventClient, EventPickup,
	EventMessageID, EventQueued, EventDelivery, EventExpired, EventRemoved, EventNotification, EventReject,
	EventAuthFailure, EventAuthUnavailable, EventLogin, EventLoginAborted, EventLostConnection, EventTimeout,
	EventTooManyErrors, EventPipelining, EventTLSError, EventProtocolError, EventTLS, EventConnectFailed,
	EventRemoteReply, EventPostscreen, EventViolation}
