package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/mxray/mxray/internal/report/arf"
	"github.com/mxray/mxray/internal/report/dmarcrpt"
	"github.com/mxray/mxray/internal/report/dsn"
	"github.com/mxray/mxray/internal/report/tlsrpt"
	"github.com/mxray/mxray/internal/store"
)

// Store is what an Importer needs of a report store (internal/store.DB).
type Store interface {
	// Seen returns the id of the report stored with this content hash,
	// or 0.
	Seen(ctx context.Context, hash string) (int64, error)
	// Group starts a group of reports committed in one transaction, a
	// savepoint per report.
	Group(ctx context.Context) *store.Group
}

// Result is what became of one payload.
type Result string

const (
	Imported    Result = "imported"    // a report was stored
	Bounced     Result = "bounce"      // a bounce or other DSN was stored
	Duplicate   Result = "duplicate"   // the report was already stored; nothing written
	Quarantined Result = "quarantined" // kept in the quarantine with the reason
)

// Outcome is the fate of one payload (or of a blob that did not decode).
type Outcome struct {
	Origin  string `json:"origin"`         // where the blob came from
	Name    string `json:"name,omitempty"` // the payload within it, when not the blob itself
	Kind    Kind   `json:"kind,omitempty"` // what Decode took it for
	Result  Result `json:"result"`
	ID      int64  `json:"id"` // the report, or the quarantine item
	Reason  string `json:"reason,omitempty"`
	Records int    `json:"records,omitempty"` // DMARC records stored
	// Already: a quarantined item whose content was quarantined before.
	Already bool `json:"already_quarantined,omitempty"`
}

// Stats counts an import.
type Stats struct {
	Blobs       int   `json:"blobs"` // files and messages read
	Payloads    int   `json:"payloads"`
	Imported    int   `json:"imported"` // reports stored (DMARC, TLS and failure reports)
	DMARC       int   `json:"dmarc_reports"`
	TLS         int   `json:"tls_reports"`
	Failure     int   `json:"failure_reports"`
	Bounces     int   `json:"bounces"` // bounces and other DSNs stored
	Duplicates  int   `json:"duplicates"`
	Quarantined int   `json:"quarantined"`
	Records     int   `json:"records"`  // DMARC records stored
	Messages    int64 `json:"messages"` // messages those records cover
}

func (s *Stats) add(o Outcome, kind Kind, msgs int64) {
	s.Payloads++
	switch o.Result {
	case Imported:
		s.Imported++
		switch kind {
		case KindDMARCAggregate:
			s.DMARC++
			s.Records += o.Records
			s.Messages += msgs
		case KindTLSReport:
			s.TLS++
		case KindFailureReport:
			s.Failure++
		}
	case Bounced:
		s.Bounces++
	case Duplicate:
		s.Duplicates++
	case Quarantined:
		s.Quarantined++
	}
}

// Importer reads blobs into a Store: each blob is decoded (Decode), each
// payload parsed by the parser its kind calls for and stored, each report
// whole or not at all. What cannot be decoded or parsed is quarantined
// with its bytes and the reason, never dropped. Bounces (DSNs, and text
// bounces that Decode does not recognise as reports) are stored as
// bounces.
//
// Blobs are decoded and parsed by Workers goroutines and stored by one, in
// the order the walk produced them, so that report ids follow the input.
//
// Reports are committed in groups (store.Group): several reports in one
// database transaction, each in a savepoint of its own, so that a report
// that fails midway (a parse error in a streamed report, a value the
// store refuses) is rolled back alone and quarantined while the others
// of its group are kept. A group is committed once it holds GroupReports
// reports or GroupRecords DMARC records, when the input keeps the
// storing goroutine waiting beyond GroupDelay after the group began, and
// at the end of the input. Outcome and Progress hear of a report once it
// is committed. A crash or a store failure loses the uncommitted group
// only; importing the same input again stores it (what was committed is
// then a duplicate).
type Importer struct {
	Store   Store
	Limits  Limits
	DMARC   dmarcrpt.Limits
	TLS     tlsrpt.Limits
	Workers int              // parsing goroutines; GOMAXPROCS when 0
	Now     func() time.Time // the import time stamp (diag.Env.Clock)
	Log     *slog.Logger
	// Progress, when set, is called once a blob, or a group holding
	// blobs, is committed, from the storing goroutine.
	Progress func(Stats)
	// Outcome, when set, is called for each payload, in input order,
	// once its group is committed.
	Outcome func(Outcome)
	// GroupReports (payloads, default 200), GroupRecords (DMARC records,
	// default 20,000) and GroupDelay (default 200 ms) bound a group;
	// GroupReports 1 commits each report alone.
	GroupReports, GroupRecords int
	GroupDelay                 time.Duration
}

// pending is an outcome stored in the group, not yet committed.
type pending struct {
	o    Outcome
	kind Kind
	msgs int64
}

// unit is one payload, parsed and ready to store, or to quarantine.
type unit struct {
	origin, name, msgID string
	kind                Kind
	hash                string
	seen                int64 // already stored: its id

	dmarc   *dmarcrpt.Report
	stream  *dmarcStream // an aggregate report whose records are still being parsed
	tls     *tlsrpt.Report
	failure *arf.Report
	bounce  *dsn.Report

	quarantine bool
	reason     string
	raw        []byte // the payload (or the blob, when it did not decode)
}

// dmarcStream carries an aggregate report from the goroutine parsing it to
// the one storing it, chunk by chunk, so that a report of any size is
// parsed and stored at the same time with flat memory.
type dmarcStream struct {
	header dmarcrpt.Feedback      // metadata and policy, a copy made before the first record
	chunks chan []dmarcrpt.Record // closed after the last record or at the first error
	stop   chan struct{}          // closed by the storing side when it wants no more
	final  *dmarcrpt.Feedback     // the totals; read only after chunks is closed
	err    error                  // the parse error; read only after chunks is closed
}

// streamChunk is the number of records sent at once.
const streamChunk = 512

// streamMin is the size from which an aggregate report is streamed; a
// smaller one is parsed whole by its worker, which keeps the storing
// goroutine from waiting on the parse.
const streamMin = 512 << 10

type job struct {
	blob  Blob
	units chan unit
}

// Import reads every blob walk produces. It returns the counts and,
// after everything readable was imported, walk's error (unreadable paths
// wrap ErrUnreadable). A store failure other than store.ErrInvalid stops
// the import.
func (im *Importer) Import(ctx context.Context, walk func(ctx context.Context, fn func(Blob) error) error) (Stats, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	workers := im.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	jobs := make(chan *job, workers)
	order := make(chan *job, 2*workers)
	walkErr := make(chan error, 1)
	go func() {
		defer close(order)
		defer close(jobs)
		walkErr <- walk(ctx, func(b Blob) error {
			j := &job{blob: b, units: make(chan unit, 8)}
			select {
			case order <- j:
			case <-ctx.Done():
				return ctx.Err()
			}
			select {
			case jobs <- j:
			case <-ctx.Done():
				close(j.units) // queued for the writer, but no worker will take it
				return ctx.Err()
			}
			return nil
		})
	}()
	for range workers {
		go func() {
			for j := range jobs {
				if ctx.Err() == nil {
					im.prepare(ctx, j.blob, true, func(u unit) {
						select {
						case j.units <- u:
						case <-ctx.Done():
							if u.stream != nil {
								close(u.stream.stop) // this goroutine streams it next: it stops at once
							}
						}
					})
				}
				close(j.units)
			}
		}()
	}
	var st Stats
	var fatal error
	g := im.Store.Group(ctx)
	defer g.Rollback()
	maxReports, maxRecords, delay := im.GroupReports, im.GroupRecords, im.GroupDelay
	if maxReports <= 0 {
		maxReports = 200
	}
	if maxRecords <= 0 {
		maxRecords = 20000
	}
	if delay <= 0 {
		delay = 200 * time.Millisecond
	}
	var (
		held       []pending // stored in the group, in order
		heldBlobs  int       // blobs whose payloads are all in held
		groupStart time.Time // when the group's first payload was stored
		timer      *time.Timer
	)
	flush := func() {
		if fatal != nil || len(held) == 0 {
			return
		}
		if err := g.Commit(); err != nil {
			fatal = err
			cancel()
			return
		}
		for _, p := range held {
			st.add(p.o, p.kind, p.msgs)
			if im.Outcome != nil {
				im.Outcome(p.o)
			}
		}
		clear(held)
		held = held[:0]
		st.Blobs += heldBlobs
		heldBlobs = 0
		if im.Progress != nil {
			im.Progress(st)
		}
	}
	// idle is called when the storing goroutine would wait for input: it
	// returns a channel that fires when the group has waited long enough.
	idle := func() <-chan time.Time {
		if fatal != nil || len(held) == 0 {
			return nil
		}
		left := delay - im.now().Sub(groupStart)
		if left <= 0 {
			flush()
			return nil
		}
		if timer == nil {
			timer = time.NewTimer(left)
		} else {
			timer.Reset(left)
		}
		return timer.C
	}
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		j, ok := receive(order, idle, flush)
		if !ok {
			break
		}
		for {
			u, ok := receive(j.units, idle, flush)
			if !ok {
				break
			}
			if fatal != nil {
				u.abandon() // drain, so that the walker and workers finish
				continue
			}
			if len(held) == 0 {
				groupStart = im.now()
			}
			o, msgs, err := im.commit(ctx, g, &u)
			if err != nil {
				fatal = err
				g.Rollback()
				cancel()
				continue
			}
			held = append(held, pending{o, u.kind, msgs})
			if _, records := g.Len(); len(held) >= maxReports || records >= maxRecords {
				flush()
			}
		}
		switch {
		case fatal != nil:
		case len(held) == 0: // all committed
			st.Blobs++
			if im.Progress != nil {
				im.Progress(st)
			}
		default:
			heldBlobs++
		}
	}
	flush()
	werr := <-walkErr
	if fatal != nil {
		return st, fatal
	}
	if err := ctx.Err(); err != nil {
		return st, err
	}
	return st, werr
}

// receive receives from c. When nothing is ready it asks idle for a
// deadline and, when that passes first, calls flush and waits on.
func receive[T any](c <-chan T, idle func() <-chan time.Time, flush func()) (T, bool) {
	select {
	case v, ok := <-c:
		return v, ok
	default:
	}
	if deadline := idle(); deadline != nil {
		select {
		case v, ok := <-c:
			return v, ok
		case <-deadline:
			flush()
		}
	}
	v, ok := <-c
	return v, ok
}

// abandon tells the goroutine parsing a streamed report to stop, and
// waits for it.
func (u *unit) abandon() {
	if s := u.stream; s != nil {
		close(s.stop)
		for range s.chunks {
		}
	}
}

// Reprocess runs a quarantined item through ingestion again. When every
// payload now imports (or is a duplicate), they are stored and ok is true;
// otherwise nothing is stored and the outcomes say why.
func (im *Importer) Reprocess(ctx context.Context, q store.QuarantineItem) (outcomes []Outcome, ok bool, err error) {
	var units []unit
	im.prepare(ctx, Blob{Origin: q.Origin, Data: q.Raw}, false, func(u unit) { units = append(units, u) })
	ok = len(units) > 0
	for _, u := range units {
		if u.quarantine {
			ok = false
			outcomes = append(outcomes, Outcome{Origin: u.origin, Name: u.name, Kind: u.kind, Result: Quarantined, ID: q.ID, Reason: u.reason})
		}
	}
	if !ok {
		return outcomes, false, nil
	}
	g := im.Store.Group(ctx)
	defer g.Rollback()
	for i := range units {
		o, _, err := im.commit(ctx, g, &units[i])
		if err != nil {
			return nil, false, err
		}
		outcomes = append(outcomes, o)
		if o.Result == Quarantined { // the store refused a value
			ok = false
		}
	}
	if err := g.Commit(); err != nil {
		return nil, false, err
	}
	return outcomes, ok, nil
}

func (im *Importer) now() time.Time {
	if im.Now != nil {
		return im.Now()
	}
	return time.Now()
}

// prepare decodes a blob and parses its payloads, handing each to emit in
// order. With stream, an aggregate report is handed over once its header
// is read, and its records follow through the unit's stream while emit's
// receiver stores them. It touches the store only to ask whether a payload
// is already held.
func (im *Importer) prepare(ctx context.Context, b Blob, stream bool, emit func(unit)) {
	msgID := messageID(b.Data)
	quarantine := func(name string, kind Kind, raw []byte, reason string) unit {
		return unit{origin: b.Origin, name: name, msgID: msgID, kind: kind, quarantine: true, reason: reason, raw: raw}
	}
	if b.Err != nil {
		emit(quarantine("", "", b.Data, b.Err.Error()))
		return
	}
	payloads, err := Decode(b.Origin, b.Data, im.Limits)
	if err != nil {
		emit(quarantine("", "", b.Data, err.Error()))
		return
	}
	if len(payloads) == 0 {
		emit(quarantine("", "", b.Data, "no payload found"))
		return
	}
	for _, p := range payloads {
		raw := p.Data
		if len(raw) == 0 {
			raw = b.Data
		}
		u := unit{origin: b.Origin, name: p.Name, msgID: msgID, kind: p.Kind, raw: raw}
		if len(p.Data) > 0 {
			u.hash = store.Hash(p.Data)
			if id, err := im.Store.Seen(ctx, u.hash); err == nil && id != 0 {
				u.seen = id
				emit(u)
				continue
			}
		}
		var perr error
		switch p.Kind {
		case KindDMARCAggregate:
			if !stream || len(p.Data) < streamMin {
				u.dmarc, perr = dmarcrpt.Parse(bytes.NewReader(p.Data), im.DMARC)
				break
			}
			dec := dmarcrpt.NewDecoder(bytes.NewReader(p.Data), im.DMARC)
			fb, err := dec.Feedback()
			if err != nil {
				perr = err
				break
			}
			st := &dmarcStream{header: *fb, chunks: make(chan []dmarcrpt.Record, 4), stop: make(chan struct{})}
			st.header.Warnings = slices.Clone(fb.Warnings)
			u.stream = st
			emit(u)
			streamRecords(dec, st)
			continue
		case KindTLSReport:
			u.tls, perr = tlsrpt.ParseBytes(p.Data, im.TLS)
		case KindFailureReport:
			u.failure, perr = arf.ParseLimits(p.Data, im.Limits.MIME)
		case KindDSN:
			u.bounce, perr = dsn.ParseLimits(p.Data, im.Limits.MIME)
			if perr == nil && !isBounce(u.bounce.Kind) {
				perr = fmt.Errorf("delivery-status message that reads as %s", u.bounce.Kind)
			}
		default:
			// Text bounces carry no report attachment: give dsn a look
			// before calling the payload unknown.
			if len(p.Data) > 0 && looksLikeMessage(p.Data) {
				if r, err := dsn.ParseLimits(p.Data, im.Limits.MIME); err == nil && isBounce(r.Kind) {
					u.bounce = r
					break
				} else if err == nil && r.Kind == dsn.AutoReply {
					perr = fmt.Errorf("%s; an auto-reply (%s), not a report", p.Reason, r.AutoReplyReason)
					break
				} else if err != nil && errors.Is(err, dsn.ErrUnrecognised) {
					perr = fmt.Errorf("%s; %w", p.Reason, err)
					break
				}
			}
			perr = errors.New(p.Reason)
		}
		if perr != nil {
			emit(quarantine(p.Name, p.Kind, raw, perr.Error()))
			continue
		}
		emit(u)
	}
}

// streamRecords sends the records of dec in chunks until the last one, an
// error or a stop, then sets the stream's totals and error and closes it.
func streamRecords(dec *dmarcrpt.Decoder, st *dmarcStream) {
	defer close(st.chunks)
	for {
		select {
		case <-st.stop:
			return
		default:
		}
		chunk := make([]dmarcrpt.Record, 0, streamChunk)
		var err error
		for len(chunk) < streamChunk {
			var rec *dmarcrpt.Record
			if rec, err = dec.Next(); err != nil {
				break
			}
			chunk = append(chunk, *rec)
		}
		if len(chunk) > 0 {
			select {
			case st.chunks <- chunk:
			case <-st.stop:
				return
			}
		}
		switch {
		case err == io.EOF:
			st.final, _ = dec.Feedback()
			return
		case err != nil:
			st.err = err
			return
		}
	}
}

func isBounce(k dsn.Kind) bool {
	switch k {
	case dsn.Bounce, dsn.Delay, dsn.Delivered, dsn.Relayed, dsn.Expanded:
		return true
	}
	return false
}

// parseError is a streamed report's parse error, met while storing it.
type parseError struct{ error }

func (e parseError) Unwrap() error { return e.error }

// storeStream stores an aggregate report while its records are parsed. A
// parse error rolls the report back: it is quarantined whole.
func (im *Importer) storeStream(ctx context.Context, g *store.Group, m store.Meta, u *unit) (saved store.Saved, records int, msgs int64, err error) {
	st := u.stream
	t, saved, err := g.BeginDMARC(ctx, m, &st.header)
	if err != nil || t == nil {
		u.abandon()
		return saved, 0, 0, err
	}
	defer t.Rollback()
	for chunk := range st.chunks {
		if err := t.Add(chunk); err != nil {
			u.abandon()
			return store.Saved{}, 0, 0, err
		}
		records += len(chunk)
	}
	if st.err != nil {
		return store.Saved{}, 0, 0, parseError{st.err}
	}
	if err := t.Commit(st.final); err != nil {
		return store.Saved{}, 0, 0, err
	}
	return saved, records, int64(min(st.final.Messages, 1<<62)), nil
}

// commit stores one unit in the group and says what became of it; msgs
// is the number of messages an aggregate report covers.
func (im *Importer) commit(ctx context.Context, g *store.Group, u *unit) (Outcome, int64, error) {
	debug := im.Log != nil && im.Log.Enabled(ctx, slog.LevelDebug)
	o := Outcome{Origin: u.origin, Name: u.name, Kind: u.kind}
	if o.Name == o.Origin {
		o.Name = "" // the blob itself
	}
	at := im.now()
	if u.seen != 0 {
		o.Result, o.ID = Duplicate, u.seen
		if debug {
			im.Log.Debug("import", "origin", u.origin, "payload", u.name, "result", o.Result, "id", o.ID)
		}
		return o, 0, nil
	}
	if !u.quarantine {
		m := store.Meta{Source: u.name, MessageID: u.msgID, Hash: u.hash, At: at}
		if m.Source == "" {
			m.Source = u.origin
		}
		var saved store.Saved
		var err error
		var msgs int64
		o.Result = Imported
		switch {
		case u.stream != nil:
			saved, o.Records, msgs, err = im.storeStream(ctx, g, m, u)
		case u.dmarc != nil:
			saved, err = g.SaveDMARC(ctx, m, u.dmarc)
			o.Records, msgs = len(u.dmarc.Records), int64(min(u.dmarc.Messages, 1<<62))
		case u.tls != nil:
			saved, err = g.SaveTLS(ctx, m, u.tls)
		case u.failure != nil:
			saved, err = g.SaveFailure(ctx, m, u.failure)
		case u.bounce != nil:
			saved, err = g.SaveBounce(ctx, m, u.bounce)
			o.Result = Bounced
		}
		switch {
		case err == nil:
			o.ID = saved.ID
			if saved.Duplicate {
				o.Result, o.Records, msgs = Duplicate, 0, 0
			}
			if debug {
				im.Log.Debug("import", "origin", u.origin, "payload", u.name, "result", o.Result, "id", o.ID)
			}
			return o, msgs, nil
		case errors.Is(err, store.ErrInvalid), errors.As(err, new(parseError)):
			u.quarantine, u.reason = true, err.Error()
		default:
			return o, 0, err
		}
	}
	origin := u.origin
	if strings.HasPrefix(u.name, u.origin) {
		origin = u.name // the member of the blob that failed
	}
	id, already, err := g.Quarantine(ctx, store.QuarantineItem{At: at, Origin: origin,
		MessageID: u.msgID, Kind: string(u.kind), Reason: u.reason, Raw: u.raw})
	if err != nil {
		return o, 0, err
	}
	o.Result, o.ID, o.Reason, o.Already, o.Records = Quarantined, id, u.reason, already, 0
	if debug {
		im.Log.Debug("import", "origin", u.origin, "payload", u.name, "result", o.Result, "id", id, "reason", u.reason)
	}
	return o, 0, nil
}

// messageID returns the Message-ID of a blob that is an e-mail message, or
// "". Only the header is looked at, and only its first 64 KiB.
func messageID(data []byte) string {
	if !looksLikeMessage(data) {
		return ""
	}
	head := data[:min(len(data), 64<<10)]
	for len(head) > 0 {
		line := head
		next := len(head)
		if i := bytes.IndexByte(head, '\n'); i >= 0 {
			line, next = head[:i], i+1
		}
		line = bytes.TrimRight(line, "\r")
		if len(line) == 0 {
			break
		}
		if len(line) >= 11 && bytes.EqualFold(line[:11], []byte("message-id:")) {
			v := strings.TrimSpace(string(line[11:]))
			if v == "" && next < len(head) {
				// Folded onto the next line.
				rest := head[next:]
				if i := bytes.IndexByte(rest, '\n'); i >= 0 {
					rest = rest[:i]
				}
				v = strings.TrimSpace(string(rest))
			}
			return strings.Trim(v, "<>")
		}
		head = head[next:]
	}
	return ""
}
