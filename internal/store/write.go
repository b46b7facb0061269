package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"net/mail"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/mxray/mxray/internal/report/arf"
	"github.com/mxray/mxray/internal/report/dmarcrpt"
	"github.com/mxray/mxray/internal/report/dsn"
	"github.com/mxray/mxray/internal/report/tlsrpt"
)

// Kind is the kind of a stored report.
type Kind string

const (
	KindDMARC   Kind = "dmarc"   // DMARC aggregate report (RFC 9990)
	KindTLS     Kind = "tls"     // SMTP TLS report (RFC 8460)
	KindFailure Kind = "failure" // ARF feedback report, DMARC failure report (RFC 6591, RFC 9991)
	KindBounce  Kind = "bounce"  // delivery status notification or text bounce (RFC 3464)
)

// Meta says where a report came from.
type Meta struct {
	Source    string    // path, and member within it
	MessageID string    // Message-ID of the carrying message, if any
	Hash      string    // Hash of the payload
	At        time.Time // import time
}

// Saved is the outcome of saving one report.
type Saved struct {
	ID        int64 // the new report, or the one already held for a duplicate
	Duplicate bool  // nothing was written
}

type reportRow struct {
	kind     Kind
	reporter string
	reportID string // "" is stored as NULL
	domain   string
	begin    time.Time
	end      time.Time
	warnings []string
}

// Group stores reports in one database transaction, each report in a
// savepoint of its own (SAVEPOINT before its first row, RELEASE once it
// is complete, ROLLBACK TO when it fails), so that each report is still
// stored whole or not at all while the cost of a transaction — begin,
// commit, the sync of the write-ahead log — is shared by the group. Its
// reports become durable, together, when Commit returns; until then
// nothing of the group is visible to other connections. Dedup sees the
// reports stored earlier in the group, since they are in the same
// transaction. Quarantine items saved through the group join it too.
//
// One report at a time: a report's DMARCTx must be committed or rolled
// back before the next report starts. A Group is used by one goroutine.
// On SQLite the group holds the database's write lock from its first
// report to Commit, so other writers wait for it (busy_timeout): keep
// groups short.
type Group struct {
	s     *DB
	ctx   context.Context
	tx    *sqlTx
	each  bool // a savepoint per report; false for a group of one report (DB.SaveDMARC…), whose transaction is the report's
	open  bool // a report is being stored
	err   error
	count struct{ reports, records int }

	insReport, findDup, insDMARC, savepoint, release, rollbackTo *sqlStmt
	insRecords                                                   []*sqlStmt // prepared in the transaction on first use
	args                                                         []any
	buf                                                          []byte
	last                                                         struct {
		reasons, headerFrom, envelopeFrom, envelopeTo, dkim, spf lastArg
	}
}

// ErrGroup: a Group was used out of turn (a report begun while another
// is open, or Commit with a report open), or after its transaction
// failed.
var ErrGroup = errors.New("store: group")

// Group starts a group of reports stored in one transaction (see Group);
// the transaction begins with the first report.
func (s *DB) Group(ctx context.Context) *Group {
	return &Group{s: s, ctx: ctx, each: true}
}

// Len returns the number of reports (and quarantine items) stored in the
// group since it began or was last committed, and the number of DMARC
// records among them.
func (g *Group) Len() (reports, records int) { return g.count.reports, g.count.records }

// Commit commits the group's reports; the group can then be used for more.
func (g *Group) Commit() error {
	if g.open {
		return fmt.Errorf("%w: commit with a report open", ErrGroup)
	}
	if g.err != nil {
		g.Rollback()
		return g.err
	}
	if g.tx == nil {
		return nil
	}
	err := g.tx.Commit()
	g.reset()
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	return nil
}

// Rollback abandons the reports not yet committed.
func (g *Group) Rollback() {
	if g.tx != nil {
		g.tx.Rollback()
	}
	g.reset()
}

func (g *Group) reset() {
	g.tx, g.open, g.err, g.count = nil, false, nil, struct{ reports, records int }{}
	g.insReport, g.findDup, g.insDMARC, g.savepoint, g.release, g.rollbackTo = nil, nil, nil, nil, nil, nil
	clear(g.insRecords)
}

// start begins the group's transaction, when not yet begun, and the
// savepoint of a report.
func (g *Group) start(ctx context.Context) error {
	if g.err != nil {
		return g.err
	}
	if g.open {
		return fmt.Errorf("%w: a report is still open", ErrGroup)
	}
	if g.tx == nil {
		tx, err := g.s.db.BeginTx(g.ctx, nil)
		if err != nil {
			return fmt.Errorf("store: %w", err)
		}
		g.tx = tx
		g.insReport = tx.StmtContext(g.ctx, g.s.insReport)
		g.findDup = tx.StmtContext(g.ctx, g.s.findDup)
		g.insDMARC = tx.StmtContext(g.ctx, g.s.insDMARC)
		if g.insRecords == nil {
			g.insRecords = make([]*sqlStmt, len(recordBatches))
		}
		if g.each {
			for _, p := range []struct {
				dst **sqlStmt
				q   string
			}{{&g.savepoint, `SAVEPOINT report`}, {&g.release, `RELEASE SAVEPOINT report`}, {&g.rollbackTo, `ROLLBACK TO SAVEPOINT report`}} {
				st, err := tx.PrepareContext(g.ctx, p.q)
				if err != nil {
					g.Rollback()
					return fmt.Errorf("store: %w", err)
				}
				*p.dst = st
			}
		}
	}
	if g.each {
		if _, err := g.savepoint.ExecContext(ctx); err != nil {
			g.err = fmt.Errorf("store: savepoint: %w", err)
			return g.err
		}
	}
	g.open = true
	return nil
}

// end ends the open report: kept (RELEASE) with ok, else undone (ROLLBACK
// TO, then RELEASE). An error here leaves the transaction in an unknown
// state: the group fails.
func (g *Group) end(ctx context.Context, ok bool) error {
	if !g.open {
		return g.err
	}
	g.open = false
	if !g.each {
		return nil
	}
	if !ok {
		if _, err := g.rollbackTo.ExecContext(ctx); err != nil {
			g.err = fmt.Errorf("store: rolling back a report: %w", err)
			return g.err
		}
	}
	if _, err := g.release.ExecContext(ctx); err != nil {
		g.err = fmt.Errorf("store: releasing a report: %w", err)
		return g.err
	}
	if ok {
		g.count.reports++
	}
	return nil
}

// begin starts one report with its reports row, which decides whether it
// is a duplicate; then no report is left open.
func (g *Group) begin(ctx context.Context, m Meta, h reportRow) (Saved, error) {
	if m.Hash == "" {
		return Saved{}, fmt.Errorf("%w: no content hash", ErrInvalid)
	}
	if h.reporter == "" {
		h.reporter = "unknown"
	}
	var rid any
	if h.reportID != "" {
		rid = h.reportID
	}
	if err := g.start(ctx); err != nil {
		return Saved{}, err
	}
	var id int64
	err := g.insReport.QueryRowContext(ctx, string(h.kind), h.reporter, rid, strings.ToLower(h.domain),
		unix(h.begin), unix(h.end), m.Source, m.MessageID, m.Hash, unix(m.At), jsonList(h.warnings)).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		// ON CONFLICT DO NOTHING: one of the unique keys is taken, by a
		// report committed before or stored earlier in this group.
		var dup int64
		err := g.findDup.QueryRowContext(ctx, m.Hash, string(h.kind), h.reporter, rid).Scan(&dup)
		if eerr := g.end(ctx, false); eerr != nil {
			return Saved{}, eerr
		}
		if err != nil {
			return Saved{}, fmt.Errorf("store: finding the duplicate: %w", err)
		}
		return Saved{ID: dup, Duplicate: true}, nil
	}
	if err != nil {
		if eerr := g.end(ctx, false); eerr != nil {
			return Saved{}, eerr
		}
		return Saved{}, fmt.Errorf("store: %w", err)
	}
	return Saved{ID: id}, nil
}

// save stores one report: the reports row first, then body for the
// kind's rows.
func (g *Group) save(ctx context.Context, m Meta, h reportRow, body func(tx *sqlTx, id int64) error) (Saved, error) {
	saved, err := g.begin(ctx, m, h)
	if err != nil || saved.Duplicate {
		return saved, err
	}
	if err := body(g.tx, saved.ID); err != nil {
		if eerr := g.end(ctx, false); eerr != nil {
			return Saved{}, eerr
		}
		return Saved{}, err
	}
	if err := g.end(ctx, true); err != nil {
		return Saved{}, err
	}
	return saved, nil
}

// one runs fn in a group of one report, committed when fn succeeds: the
// DB's own Save methods, one transaction per report.
func (s *DB) one(ctx context.Context, fn func(g *Group) (Saved, error)) (Saved, error) {
	g := &Group{s: s, ctx: ctx}
	saved, err := fn(g)
	if err != nil || saved.Duplicate {
		g.Rollback()
		return saved, err
	}
	if err := g.Commit(); err != nil {
		return Saved{}, err
	}
	return saved, nil
}

func unix(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

// count converts an unsigned count for a BIGINT column.
func count(what string, n uint64) (int64, error) {
	if n > math.MaxInt64 {
		return 0, fmt.Errorf("%w: %s %d is too large", ErrInvalid, what, n)
	}
	return int64(n), nil
}

// SaveDMARC stores an aggregate report and its records in one transaction.
func (s *DB) SaveDMARC(ctx context.Context, m Meta, r *dmarcrpt.Report) (Saved, error) {
	return s.one(ctx, func(g *Group) (Saved, error) { return g.SaveDMARC(ctx, m, r) })
}

// SaveDMARC stores an aggregate report and its records in the group.
func (g *Group) SaveDMARC(ctx context.Context, m Meta, r *dmarcrpt.Report) (Saved, error) {
	t, saved, err := g.BeginDMARC(ctx, m, &r.Feedback)
	if err != nil || t == nil {
		return saved, err
	}
	defer t.Rollback()
	if err := t.Add(r.Records); err != nil {
		return Saved{}, err
	}
	if err := t.Commit(&r.Feedback); err != nil {
		return Saved{}, err
	}
	return saved, nil
}

// DMARCTx is an aggregate report being stored: its records are added as
// they are parsed, all in the report's transaction (or its savepoint in a
// Group), so that a report of any size is stored with flat memory and
// whole or not at all.
type DMARCTx struct {
	g        *Group
	own      bool // the group is this report's alone (DB.BeginDMARC): Commit commits it
	done     bool
	ctx      context.Context
	id       int64
	idArg    any // id, boxed once
	seq      int
	warnings int
}

// BeginDMARC starts storing an aggregate report whose metadata and policy
// fb holds (dmarcrpt.Decoder.Feedback), in a transaction of its own. For
// a duplicate, nothing is started: the DMARCTx is nil and Saved says
// which report is held.
func (s *DB) BeginDMARC(ctx context.Context, m Meta, fb *dmarcrpt.Feedback) (*DMARCTx, Saved, error) {
	g := &Group{s: s, ctx: ctx}
	t, saved, err := g.BeginDMARC(ctx, m, fb)
	if t == nil {
		g.Rollback()
		return nil, saved, err
	}
	t.own = true
	return t, saved, nil
}

// BeginDMARC starts storing an aggregate report in the group; it ends with
// the DMARCTx's Commit (the report is then complete, and durable when the
// group commits) or Rollback. For a duplicate, nothing is started.
func (g *Group) BeginDMARC(ctx context.Context, m Meta, fb *dmarcrpt.Feedback) (*DMARCTx, Saved, error) {
	md := fb.Metadata
	h := reportRow{kind: KindDMARC, reporter: md.Reporter(), reportID: md.ReportID, domain: fb.Policy.Domain,
		begin: md.DateRange.Begin, end: md.DateRange.End, warnings: fb.Warnings}
	saved, err := g.begin(ctx, m, h)
	if err != nil || saved.Duplicate {
		return nil, saved, err
	}
	return &DMARCTx{g: g, ctx: ctx, id: saved.ID, idArg: saved.ID, warnings: len(fb.Warnings)}, saved, nil
}

// ID returns the id the report will have.
func (t *DMARCTx) ID() int64 { return t.id }

// Rollback abandons the report; after Commit it does nothing.
func (t *DMARCTx) Rollback() {
	if t.done {
		return
	}
	t.done = true
	t.g.end(t.ctx, false)
	if t.own {
		t.g.Rollback()
	}
}

// Commit writes the report's totals (fb, as the decoder left it after the
// last record) and ends the report: it commits its transaction, or in a
// Group keeps it for the group's commit.
func (t *DMARCTx) Commit(fb *dmarcrpt.Feedback) error {
	if t.done {
		return fmt.Errorf("%w: report %d already ended", ErrGroup, t.id)
	}
	g, ctx, md, pol := t.g, t.ctx, fb.Metadata, fb.Policy
	msgs, err := count("message total", fb.Messages)
	if err != nil {
		return err
	}
	var pct any
	if pol.Pct != nil {
		pct = *pol.Pct
	}
	if _, err := g.insDMARC.ExecContext(ctx, t.idArg, fb.Version, md.OrgName, md.Email, md.ExtraContactInfo,
		md.Generator, jsonList(md.Errors), string(pol.ADKIM), string(pol.ASPF), string(pol.P), string(pol.SP), string(pol.NP),
		pct, pol.FO, string(pol.Testing), string(pol.DiscoveryMethod), string(pol.PSD), int64(t.seq), msgs); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	if len(fb.Warnings) != t.warnings {
		// Records brought warnings of their own.
		if _, err := g.tx.ExecContext(ctx, `UPDATE reports SET warnings = ? WHERE id = ?`, jsonList(fb.Warnings), t.id); err != nil {
			return fmt.Errorf("store: %w", err)
		}
	}
	if err := g.end(ctx, true); err != nil {
		return err
	}
	t.done = true
	g.count.records += t.seq
	if t.own {
		return g.Commit()
	}
	return nil
}

// Add writes records, recordBatch to a statement. The text of a batch
// (addresses, JSON of the reasons and auth results) is built in one
// buffer and made one string, whose parts are the arguments.
func (t *DMARCTx) Add(recs []dmarcrpt.Record) error {
	if t.done {
		return fmt.Errorf("%w: report %d already ended", ErrGroup, t.id)
	}
	g := t.g
	if g.args == nil {
		g.args = make([]any, 0, recordBatch*recordCols)
	}
	type span struct{ ip, reasons, dkim, spf [2]int }
	var spans [recordBatch]span
	for start := 0; start < len(recs); start += recordBatch {
		batch := recs[start:min(start+recordBatch, len(recs))]
		buf := g.buf[:0]
		for i := range batch {
			rec := &batch[i]
			if rec.Count > math.MaxInt64 {
				return fmt.Errorf("%w: record %d count %d is too large", ErrInvalid, t.seq+i+1, rec.Count)
			}
			sp := &spans[i]
			sp.ip[0] = len(buf)
			if rec.SourceIP.IsValid() {
				buf = rec.SourceIP.AppendTo(buf)
			} else {
				buf = append(buf, "invalid IP"...) // netip.Addr.String of the zero Addr
			}
			sp.ip[1] = len(buf)
			pe := &rec.PolicyEvaluated
			sp.reasons[0] = len(buf)
			if len(pe.Reasons) > 0 {
				buf = appendReasons(buf, pe.Reasons)
			}
			sp.reasons[1], sp.dkim[0] = len(buf), len(buf)
			if len(rec.DKIM) > 0 {
				buf = appendDKIM(buf, rec.DKIM)
			}
			sp.dkim[1], sp.spf[0] = len(buf), len(buf)
			if len(rec.SPF) > 0 {
				buf = appendSPF(buf, rec.SPF)
			}
			sp.spf[1] = len(buf)
		}
		g.buf = buf
		text := string(buf)
		part := func(s [2]int) string { return text[s[0]:s[1]] }
		g.args = g.args[:0]
		for i := range batch {
			rec, sp := &batch[i], &spans[i]
			t.seq++
			pe, ids := &rec.PolicyEvaluated, &rec.Identifiers
			c := &g.last
			g.args = append(g.args, t.idArg, int64(t.seq), part(sp.ip), int64(rec.Count), enumArg(string(pe.Disposition)),
				enumArg(string(pe.DKIM)), enumArg(string(pe.SPF)), c.reasons.arg(part(sp.reasons)), c.headerFrom.arg(ids.HeaderFrom),
				c.envelopeFrom.arg(ids.EnvelopeFrom), c.envelopeTo.arg(ids.EnvelopeTo), c.dkim.arg(part(sp.dkim)), c.spf.arg(part(sp.spf)))
		}
		args := g.args
		for i, n := range recordBatches {
			for len(args) >= n*recordCols {
				if g.insRecords[i] == nil {
					g.insRecords[i] = g.tx.StmtContext(t.ctx, g.s.insRecords[i])
				}
				if _, err := g.insRecords[i].ExecContext(t.ctx, args[:n*recordCols]...); err != nil {
					return fmt.Errorf("store: records: %w", err)
				}
				args = args[n*recordCols:]
			}
		}
	}
	return nil
}

// lastArg is the last value of a column, boxed: the records of a report
// often repeat their identifiers and auth results, and boxing a string
// into an argument allocates.
type lastArg struct {
	s string
	v any
}

func (c *lastArg) arg(s string) any {
	if c.v == nil || c.s != s {
		c.s, c.v = s, s
	}
	return c.v
}

// Boxed values of the policy_evaluated results, so that the arguments of
// a record do not allocate for them.
var (
	argEmpty      any = ""
	argNone       any = "none"
	argPass       any = "pass"
	argFail       any = "fail"
	argQuarantine any = "quarantine"
	argReject     any = "reject"
)

func enumArg(s string) any {
	switch s {
	case "":
		return argEmpty
	case "none":
		return argNone
	case "pass":
		return argPass
	case "fail":
		return argFail
	case "quarantine":
		return argQuarantine
	case "reject":
		return argReject
	}
	return s
}

// SaveTLS stores an SMTP TLS report with its policies and failure details.
func (s *DB) SaveTLS(ctx context.Context, m Meta, r *tlsrpt.Report) (Saved, error) {
	return s.one(ctx, func(g *Group) (Saved, error) { return g.SaveTLS(ctx, m, r) })
}

// SaveTLS stores an SMTP TLS report in the group.
func (g *Group) SaveTLS(ctx context.Context, m Meta, r *tlsrpt.Report) (Saved, error) {
	domain := ""
	if len(r.Policies) > 0 {
		domain = r.Policies[0].Policy.Domain
	}
	h := reportRow{kind: KindTLS, reporter: r.Reporter(), reportID: r.ReportID, domain: domain,
		begin: r.DateRange.Start, end: r.DateRange.End, warnings: r.Warnings}
	return g.save(ctx, m, h, func(tx *sqlTx, id int64) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO tls_reports (report, organization_name, contact_info) VALUES (?, ?, ?)`,
			id, r.OrganizationName, r.ContactInfo); err != nil {
			return fmt.Errorf("store: %w", err)
		}
		pol, err := tx.PrepareContext(ctx, `INSERT INTO tls_policies (report, seq, policy_type, policy_domain, policy_string, mx_host, successful, failed)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`)
		if err != nil {
			return fmt.Errorf("store: %w", err)
		}
		defer pol.Close()
		fd, err := tx.PrepareContext(ctx, `INSERT INTO tls_failures (report, policy, seq, result_type, sending_mta_ip, receiving_mx_hostname,
			receiving_mx_helo, receiving_ip, failed_sessions, additional_info, failure_reason_code) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
		if err != nil {
			return fmt.Errorf("store: %w", err)
		}
		defer fd.Close()
		for i, p := range r.Policies {
			if _, err := pol.ExecContext(ctx, id, i+1, string(p.Policy.Type), strings.ToLower(p.Policy.Domain), jsonList(p.Policy.String),
				jsonList(p.Policy.MXHost), p.Summary.TotalSuccessfulSessionCount, p.Summary.TotalFailureSessionCount); err != nil {
				return fmt.Errorf("store: %w", err)
			}
			for j, f := range p.FailureDetails {
				if _, err := fd.ExecContext(ctx, id, i+1, j+1, string(f.ResultType), f.SendingMTAIP, strings.ToLower(f.ReceivingMXHostname),
					f.ReceivingMXHelo, f.ReceivingIP, f.FailedSessionCount, f.AdditionalInformation, f.FailureReasonCode); err != nil {
					return fmt.Errorf("store: %w", err)
				}
			}
		}
		return nil
	})
}

// SaveFailure stores a feedback report (RFC 5965), typically a DMARC
// failure report (RFC 6591 auth-failure). Its report id is the report
// message's Message-ID.
func (s *DB) SaveFailure(ctx context.Context, m Meta, r *arf.Report) (Saved, error) {
	return s.one(ctx, func(g *Group) (Saved, error) { return g.SaveFailure(ctx, m, r) })
}

// SaveFailure stores a feedback report in the group.
func (g *Group) SaveFailure(ctx context.Context, m Meta, r *arf.Report) (Saved, error) {
	reporter := addrDomain(r.Header.Get("From"))
	if reporter == "" {
		reporter = r.ReportingMTA
	}
	domain := ""
	if len(r.ReportedDomain) > 0 {
		domain = r.ReportedDomain[0]
	} else if r.Original != nil {
		domain = addrDomain(r.Original.From)
	}
	when := r.ArrivalTime
	if when.IsZero() {
		when = m.At
	}
	h := reportRow{kind: KindFailure, reporter: reporter, reportID: msgID(r.Header.Get("Message-ID")), domain: domain,
		begin: when, end: when, warnings: r.Deviations}
	return g.save(ctx, m, h, func(tx *sqlTx, id int64) error {
		src := ""
		if r.SourceIP.IsValid() {
			src = r.SourceIP.String()
		}
		var oFrom, oSubj, oID, oHead string
		if o := r.Original; o != nil {
			oFrom, oSubj, oID, oHead = o.From, o.Subject, o.MessageID, validUTF8(o.Header.Raw)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO failure_reports (report, feedback_type, user_agent, auth_failure, delivery_result,
			reported_domain, source_ip, incidents, arrival_date, reporting_mta, original_mail_from, original_rcpt_to, auth_results,
			dkim_domain, dkim_selector, spf_dns, identity_alignment, original_from, original_subject, original_message_id, original_headers)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			id, string(r.FeedbackType), r.UserAgent, string(r.AuthFailure), string(r.DeliveryResult), jsonList(r.ReportedDomain), src,
			r.Incidents, r.ArrivalDate, r.ReportingMTA, r.OriginalMailFrom, jsonList(r.OriginalRcptTo), jsonList(r.AuthenticationResults),
			r.DKIMDomain, r.DKIMSelector, r.SPFDNS, jsonList(r.IdentityAlignment), oFrom, oSubj, oID, oHead)
		if err != nil {
			return fmt.Errorf("store: %w", err)
		}
		return nil
	})
}

// SaveBounce stores a bounce or other delivery status notification with
// its recipients. Its report id is the bounce's Message-ID.
func (s *DB) SaveBounce(ctx context.Context, m Meta, r *dsn.Report) (Saved, error) {
	return s.one(ctx, func(g *Group) (Saved, error) { return g.SaveBounce(ctx, m, r) })
}

// SaveBounce stores a bounce in the group.
func (g *Group) SaveBounce(ctx context.Context, m Meta, r *dsn.Report) (Saved, error) {
	reporter := r.ReportingMTA
	if reporter == "" {
		reporter = addrDomain(r.Header.Get("From"))
	}
	var oID, oFrom, oTo, oSubj string
	if o := r.Original; o != nil {
		oID, oFrom, oTo, oSubj = o.MessageID, o.From, o.To, o.Subject
	}
	h := reportRow{kind: KindBounce, reporter: reporter, reportID: msgID(r.Header.Get("Message-ID")), domain: addrDomain(oFrom),
		begin: m.At, end: m.At}
	return g.save(ctx, m, h, func(tx *sqlTx, id int64) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO bounces (report, kind, severity, format, from_addr, subject, reporting_mta,
			arrival_date, original_message_id, original_from, original_to, original_subject) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			id, string(r.Kind), string(r.Severity), string(r.Format), r.From, r.Subject, r.ReportingMTA, r.ArrivalDate,
			oID, oFrom, oTo, oSubj); err != nil {
			return fmt.Errorf("store: %w", err)
		}
		for i, rc := range r.Recipients {
			if _, err := tx.ExecContext(ctx, `INSERT INTO bounce_recipients (report, seq, final_recipient, original_recipient, action,
				status, status_source, smtp_code, diagnostic_code, remote_mta, last_attempt) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				id, i+1, rc.FinalRecipient, rc.OriginalRecipient, string(rc.Action), rc.Status, string(rc.StatusSource), rc.SMTPCode,
				rc.DiagnosticCode, rc.RemoteMTA, rc.LastAttemptDate); err != nil {
				return fmt.Errorf("store: %w", err)
			}
		}
		return nil
	})
}

// addrDomain returns the domain of the first address in a header value,
// lower case, or "" when there is none.
func addrDomain(v string) string {
	v = strings.TrimSpace(v)
	if v == "" {
		return ""
	}
	if a, err := mail.ParseAddress(v); err == nil {
		v = a.Address
	}
	if i := strings.LastIndexByte(v, '@'); i >= 0 {
		return strings.ToLower(strings.Trim(v[i+1:], "<> \t"))
	}
	return ""
}

func msgID(v string) string { return strings.Trim(strings.TrimSpace(v), "<>") }

func validUTF8(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	return strings.ToValidUTF8(string(b), "\uFFFD")
}
