// Package imapsrc fetches reports from an IMAP mailbox (RFC 9051) into the
// report store through ingest's Importer, and then moves each message out
// of the mailbox: into a processed folder once its reports are committed,
// or into a failed folder when something in it was quarantined.
//
// A run needs no state of its own to resume: a message is moved only
// after its transaction committed, and the store recognises what it
// already holds (reporter and report id, or the content hash), so a
// message stored but not moved before a crash or a dropped connection is
// a duplicate on the next run and is simply moved then. Messages are read
// with BODY.PEEK[], so an interrupted run leaves \Seen untouched.
//
// TLS is required: implicit TLS (RFC 8314 §3, port 993) or STARTTLS
// (RFC 9051 §6.2.1, port 143); a server that does not offer STARTTLS gets
// no password. Moving uses UID MOVE (RFC 6851) when offered, else UID COPY
// and UID EXPUNGE of the one message (RFC 4315 UIDPLUS), else UID COPY and
// \Deleted alone (the message is then skipped by later runs, which search
// UNDELETED, until the user's client expunges it).
//
// Not supported: SASL mechanisms other than PLAIN and the LOGIN command,
// IDLE (a run reads what is there and ends), modified UTF-7 mailbox names
// (RFC 3501 §5.1.3: only ASCII names), and CONDSTORE/QRESYNC.
package imapsrc

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/mxray/mxray/internal/diag"
	"github.com/mxray/mxray/internal/imapc"
	"github.com/mxray/mxray/internal/ingest"
)

// Sentinel errors; test with errors.Is.
var (
	// ErrConnect: no IMAP session could be set up (connect, TLS,
	// greeting, no STARTTLS offered).
	ErrConnect = errors.New("imapsrc: could not connect")
	// ErrLogin: the server refused the login, or the mailbox.
	ErrLogin = errors.New("imapsrc: login refused")
	// ErrInterrupted: the run stopped part way (the connection dropped,
	// the store failed); what was committed stays, and the next run goes
	// on from there.
	ErrInterrupted = errors.New("imapsrc: fetch interrupted")
)

// Security is how the session is protected.
type Security string

const (
	ImplicitTLS Security = "tls"      // TLS from the first octet (imaps, RFC 8314 §3)
	StartTLS    Security = "starttls" // STARTTLS before anything else (imap, RFC 9051 §6.2.1)
)

// Defaults of Config.
const (
	DefaultFolder    = "INBOX"
	DefaultProcessed = "mxray/processed"
	DefaultFailed    = "mxray/failed"
	// searchWindow is the number of sequence numbers one UID SEARCH
	// covers, which keeps its answer well within imapc's line limit.
	searchWindow = 1000
)

// Config says which mailbox to read.
type Config struct {
	Address  string // HOST:PORT, dialled through env.Dialer (connect map applies)
	Security Security
	User     string
	Password string // never logged; transcripts show <redacted>
	// Folder, Processed and Failed name mailboxes with "/" between
	// levels; each "/" becomes the server's hierarchy delimiter.
	Folder, Processed, Failed string
	// MaxBytes bounds one message (ingest's MaxInputBytes when 0): a
	// larger one is not downloaded, but quarantined with the reason and
	// moved to Failed.
	MaxBytes int64
	// BeforeMove, when set, is called after a message's reports were
	// committed and before it is moved; an error stops the run there, as
	// a crash would. For tests.
	BeforeMove func(uid uint32) error
}

// Folder outcomes of a message.
const (
	ToProcessed = "processed" // every payload imported, a bounce, or a duplicate
	ToFailed    = "failed"    // something in it was quarantined
)

// Message is what became of one message.
type Message struct {
	UID     uint32 `json:"uid"`
	Size    int64  `json:"size"`
	Verdict string `json:"verdict"`          // ToProcessed or ToFailed; "" when not stored
	Folder  string `json:"folder,omitempty"` // where it went, as the server names it
	// Method is how it was moved; empty when it was not.
	Method   imapc.MoveMethod `json:"method,omitempty"`
	Outcomes []ingest.Outcome `json:"outcomes"`
	Error    string           `json:"error,omitempty"` // why it was left in the folder
}

// Result is a run's account.
type Result struct {
	Server    string `json:"server"` // HOST:PORT
	User      string `json:"user"`
	Folder    string `json:"folder"`
	Processed string `json:"processed_folder"` // as the server names it
	Failed    string `json:"failed_folder"`
	// Fetched counts the messages read (or found too large to read).
	Fetched int `json:"fetched"`
	// The import's counts, by payload: imported, duplicates, quarantined…
	ingest.Stats
	Moved        int       `json:"moved"`  // to the processed folder
	MovedFailed  int       `json:"failed"` // to the failed folder
	Left         int       `json:"left"`   // left in the folder: the move was refused
	Messages     []Message `json:"messages"`
	Interruption string    `json:"interrupted,omitempty"` // why the run stopped early
}

func addStats(a *ingest.Stats, b ingest.Stats) {
	a.Blobs += b.Blobs
	a.Payloads += b.Payloads
	a.Imported += b.Imported
	a.DMARC += b.DMARC
	a.TLS += b.TLS
	a.Failure += b.Failure
	a.Bounces += b.Bounces
	a.Duplicates += b.Duplicates
	a.Quarantined += b.Quarantined
	a.Records += b.Records
	a.Messages += b.Messages
}

// mailboxName turns "a/b" into the server's form.
func mailboxName(name, delim string) string {
	if delim == "" || delim == "/" {
		return name
	}
	return strings.ReplaceAll(name, "/", delim)
}

// Fetch reads every undeleted message of the folder into im's store and
// moves it. Steps "connect", "login", "mailbox" and "fetch" go to sink.
// The result is always returned; the error wraps ErrConnect, ErrLogin or
// ErrInterrupted.
func Fetch(ctx context.Context, env diag.Env, cfg Config, im *ingest.Importer, sink diag.Sink) (*Result, error) {
	if cfg.Folder == "" {
		cfg.Folder = DefaultFolder
	}
	if cfg.Processed == "" {
		cfg.Processed = DefaultProcessed
	}
	if cfg.Failed == "" {
		cfg.Failed = DefaultFailed
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = ingest.DefaultLimits().MaxInputBytes
	}
	res := &Result{Server: cfg.Address, User: cfg.User, Folder: cfg.Folder, Messages: []Message{}}
	host, _, _ := net.SplitHostPort(cfg.Address)

	c, err := connect(ctx, env, cfg, host, sink)
	if err != nil {
		return res, err
	}
	defer c.Close()
	if err := login(ctx, c, cfg, sink); err != nil {
		return res, err
	}
	uids, validity, err := openMailbox(ctx, c, cfg, res, sink)
	if err != nil {
		return res, err
	}

	tr := diag.Begin(env, sink, "fetch", fmt.Sprintf("fetch %d messages from %s", len(uids), res.Folder))
	origin := fmt.Sprintf("imap://%s/%s;UIDVALIDITY=%d", cfg.Address, res.Folder, validity)
	for _, uid := range uids {
		if err := ctx.Err(); err != nil {
			return res, interrupted(env, tr, res, err)
		}
		m, err := one(ctx, c, cfg, im, res, uid, fmt.Sprintf("%s/;UID=%d", origin, uid))
		if m != nil {
			res.Messages = append(res.Messages, *m)
		}
		if err != nil {
			return res, interrupted(env, tr, res, err)
		}
	}
	st := diag.OK
	switch {
	case res.Left > 0:
		st = diag.Fail
	case res.Quarantined > 0:
		st = diag.Warn
	}
	tr.Done(diag.Step{Status: st,
		Title: fmt.Sprintf("%d messages: %d reports imported, %d bounces, %d duplicates, %d quarantined; %d moved to %s, %d to %s",
			res.Fetched, res.Imported, res.Bounces, res.Duplicates, res.Quarantined, res.Moved, res.Processed, res.MovedFailed, res.Failed),
		Host: host})
	c.Logout(ctx)
	return res, nil
}

func interrupted(env diag.Env, tr *diag.Tracker, res *Result, err error) error {
	res.Interruption = err.Error()
	tr.Done(diag.Step{Status: diag.Fail,
		Title:  fmt.Sprintf("stopped after %d messages: %v", res.Fetched, err),
		Detail: "what was committed stays; messages not yet moved are duplicates on the next run and are moved then",
		Hint:   "run the fetch again"})
	return fmt.Errorf("%w: %w", ErrInterrupted, err)
}

// one fetches, stores and moves one message. A nil Message means it was
// gone before it could be read.
func one(ctx context.Context, c *imapc.Client, cfg Config, im *ingest.Importer, res *Result, uid uint32, origin string) (*Message, error) {
	size, _, err := c.FetchSize(ctx, uid)
	if errors.Is(err, imapc.ErrNoMessage) {
		return nil, nil // expunged by another client meanwhile
	}
	if err != nil {
		return nil, err
	}
	m := &Message{UID: uid, Size: size, Outcomes: []ingest.Outcome{}}
	blob := ingest.Blob{Origin: origin}
	if size > cfg.MaxBytes {
		blob.Err = fmt.Errorf("%w: message of %d bytes, limit %d", ingest.ErrTooLarge, size, cfg.MaxBytes)
	} else {
		data, _, err := c.FetchMessage(ctx, uid, cfg.MaxBytes)
		switch {
		case errors.Is(err, imapc.ErrNoMessage):
			return nil, nil
		case errors.Is(err, imapc.ErrTooLarge):
			blob.Err = fmt.Errorf("%w: %w", ingest.ErrTooLarge, err)
		case err != nil:
			return m, err
		}
		blob.Data = data
	}
	res.Fetched++

	// One Import per message: when it returns, every payload of the
	// message is committed (or quarantined), and only then is it moved.
	run := *im
	run.Workers = 1
	run.Progress = nil
	run.Outcome = func(o ingest.Outcome) {
		m.Outcomes = append(m.Outcomes, o)
		if im.Outcome != nil {
			im.Outcome(o)
		}
	}
	st, err := run.Import(ctx, func(_ context.Context, fn func(ingest.Blob) error) error { return fn(blob) })
	addStats(&res.Stats, st)
	if err != nil {
		m.Error = err.Error()
		return m, fmt.Errorf("storing UID %d: %w", uid, err)
	}
	m.Verdict, m.Folder = ToProcessed, res.Processed
	if st.Quarantined > 0 {
		m.Verdict, m.Folder = ToFailed, res.Failed
	}
	if cfg.BeforeMove != nil {
		if err := cfg.BeforeMove(uid); err != nil {
			m.Folder, m.Error = "", err.Error()
			return m, err
		}
	}
	method, _, err := c.Move(ctx, uid, m.Folder)
	if errors.Is(err, imapc.ErrNo) {
		// Refused (a quota on the target, say): the next run finds it
		// again, a duplicate then, and tries once more.
		res.Left++
		m.Folder, m.Error = "", err.Error()
		return m, nil
	}
	if err != nil {
		m.Folder, m.Error = "", err.Error()
		return m, err
	}
	m.Method = method
	if m.Verdict == ToFailed {
		res.MovedFailed++
	} else {
		res.Moved++
	}
	return m, nil
}

// connect dials, sets up TLS and reads the greeting.
func connect(ctx context.Context, env diag.Env, cfg Config, host string, sink diag.Sink) (*imapc.Client, error) {
	tr := diag.Begin(env, sink, "connect", "connect to "+cfg.Address)
	fail := func(c *imapc.Client, err error, hint string) (*imapc.Client, error) {
		st := diag.Step{Status: diag.Fail, Title: fmt.Sprintf("could not connect to %s: %v", cfg.Address, err), Hint: hint, Host: host}
		if c != nil {
			st.Transcript = c.Since(0)
			c.Close()
		}
		tr.Done(st)
		return nil, fmt.Errorf("%w: %w", ErrConnect, err)
	}
	c, err := imapc.Dial(ctx, env, cfg.Address)
	if err != nil {
		return fail(nil, err, "check the host and port, and that the IMAP service listens there")
	}
	tlsCfg := &tls.Config{ServerName: host, RootCAs: env.Roots}
	if cfg.Security == ImplicitTLS {
		if err := c.ImplicitTLS(ctx, tlsCfg); err != nil {
			return fail(c, err, "the server's certificate must verify for "+host+" (--tls-ca adds a CA)")
		}
	}
	g, err := c.Greeting(ctx)
	if err != nil {
		return fail(c, err, "")
	}
	if g.Status == imapc.BYE {
		return fail(c, fmt.Errorf("the server said %s", g), "")
	}
	if cfg.Security != ImplicitTLS {
		if _, _, err := c.Capability(ctx); err != nil {
			return fail(c, err, "")
		}
		// RFC 9051 §6.2.1, RFC 8314 §3: no password in cleartext.
		if !c.Has("STARTTLS") {
			return fail(c, errors.New("the server does not offer STARTTLS; no password is sent in cleartext"), "use imaps:// (port 993) or enable STARTTLS")
		}
		r, err := c.StartTLS(ctx, tlsCfg)
		if err == nil && r.Status != imapc.OK {
			err = fmt.Errorf("STARTTLS refused: %s", r)
		}
		if err != nil {
			return fail(c, err, "the server's certificate must verify for "+host+" (--tls-ca adds a CA)")
		}
	}
	st := diag.Step{Status: diag.OK, Title: fmt.Sprintf("connected to %s with TLS", cfg.Address), Host: host,
		RFC: "RFC 8314 §3", Transcript: c.Since(0)}
	if ts := c.TLS(); ts != nil {
		st.Detail = tls.VersionName(ts.Version) + " " + tls.CipherSuiteName(ts.CipherSuite)
	}
	if a := c.RemoteAddr(); a != nil {
		st.IP, _, _ = net.SplitHostPort(a.String())
	}
	tr.Done(st)
	return c, nil
}

// login authenticates with AUTHENTICATE PLAIN when offered, else LOGIN.
func login(ctx context.Context, c *imapc.Client, cfg Config, sink diag.Sink) error {
	tr := diag.Begin(c.Env(), sink, "login", "log in as "+cfg.User)
	mark := c.Mark()
	if c.Caps() == nil {
		if _, _, err := c.Capability(ctx); err != nil {
			tr.Done(diag.Step{Status: diag.Fail, Title: "CAPABILITY failed: " + err.Error(), Transcript: c.Since(mark)})
			return fmt.Errorf("%w: %w", ErrConnect, err)
		}
	}
	var r imapc.Response
	var err error
	if c.Has("AUTH=PLAIN") {
		r, err = c.Authenticate(ctx, "PLAIN", cfg.User, cfg.Password)
	} else {
		r, err = c.Login(ctx, cfg.User, cfg.Password)
	}
	if err == nil && r.Status != imapc.OK {
		err = fmt.Errorf("%w: %s", ErrLogin, r)
	} else if err != nil {
		err = fmt.Errorf("%w: %w", ErrConnect, err)
	}
	if err != nil {
		tr.Done(diag.Step{Status: diag.Fail, Title: "login failed: " + r.String(), Hint: "check the user and --password-file",
			RFC: "RFC 9051 §6.2", Transcript: c.Since(mark)})
		return err
	}
	// The capabilities change at login (MOVE, UIDPLUS); most servers
	// send them with the answer, the others are asked.
	told := strings.HasPrefix(strings.ToUpper(r.Code), "CAPABILITY")
	for _, u := range r.Untagged {
		told = told || strings.HasPrefix(strings.ToUpper(u), "CAPABILITY")
	}
	if !told {
		c.Capability(ctx)
	}
	tr.Done(diag.Step{Status: diag.OK, Title: "logged in as " + cfg.User, RFC: "RFC 9051 §6.2", Transcript: c.Since(mark)})
	return nil
}

// openMailbox creates the target folders, selects the source folder and
// lists the UIDs of its undeleted messages.
func openMailbox(ctx context.Context, c *imapc.Client, cfg Config, res *Result, sink diag.Sink) ([]uint32, uint32, error) {
	tr := diag.Begin(c.Env(), sink, "mailbox", "open "+cfg.Folder)
	mark := c.Mark()
	fail := func(err error) ([]uint32, uint32, error) {
		tr.Done(diag.Step{Status: diag.Fail, Title: err.Error(), Transcript: c.Since(mark)})
		if errors.Is(err, imapc.ErrNo) {
			return nil, 0, fmt.Errorf("%w: %w", ErrLogin, err)
		}
		return nil, 0, fmt.Errorf("%w: %w", ErrConnect, err)
	}
	delim, _, err := c.Delimiter(ctx)
	if err != nil {
		return fail(err)
	}
	res.Folder = mailboxName(cfg.Folder, delim)
	res.Processed = mailboxName(cfg.Processed, delim)
	res.Failed = mailboxName(cfg.Failed, delim)
	if res.Processed == res.Folder || res.Failed == res.Folder {
		return fail(fmt.Errorf("%w: the processed and failed folders must differ from %s", imapc.ErrBadArgument, res.Folder))
	}
	created := []string{}
	for _, f := range []string{res.Processed, res.Failed} {
		existed, _, err := c.Create(ctx, f)
		if err != nil {
			return fail(fmt.Errorf("creating %s: %w", f, err))
		}
		if !existed {
			created = append(created, f)
		}
	}
	mb, _, err := c.Select(ctx, res.Folder)
	if err != nil {
		return fail(err)
	}
	var uids []uint32
	for first := 1; first <= mb.Exists; first += searchWindow {
		w, _, err := c.SearchWindow(ctx, first, min(first+searchWindow-1, mb.Exists))
		if err != nil {
			return fail(err)
		}
		uids = append(uids, w...)
	}
	title := fmt.Sprintf("%s: %d messages, %d to fetch", res.Folder, mb.Exists, len(uids))
	detail := ""
	if len(created) > 0 {
		detail = "created " + strings.Join(created, ", ")
	}
	tr.Done(diag.Step{Status: diag.Info, Title: title, Detail: detail, RFC: "RFC 9051 §6.3.2", Transcript: c.Since(mark),
		Data: map[string]any{"exists": mb.Exists, "uid_validity": mb.UIDValidity, "to_fetch": len(uids), "created": created}})
	return uids, mb.UIDValidity, nil
}
