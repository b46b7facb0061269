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

// begin starts one report's transaction with its reports row, which
// decides whether it is a duplicate; then tx is nil.
func (s *DB) begin(ctx context.Context, m Meta, h reportRow) (*sqlTx, Saved, error) {
	if m.Hash == "" {
		return nil, Saved{}, fmt.Errorf("%w: no content hash", ErrInvalid)
	}
	if h.reporter == "" {
		h.reporter = "unknown"
	}
	var rid any
	if h.reportID != "" {
		rid = h.reportID
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, Saved{}, fmt.Errorf("store: %w", err)
	}
	var id int64
	err = tx.StmtContext(ctx, s.insReport).QueryRowContext(ctx, string(h.kind), h.reporter, rid, strings.ToLower(h.domain),
		unix(h.begin), unix(h.end), m.Source, m.MessageID, m.Hash, unix(m.At), jsonList(h.warnings)).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		// ON CONFLICT DO NOTHING: one of the unique keys is taken.
		var dup int64
		err := tx.StmtContext(ctx, s.findDup).QueryRowContext(ctx, m.Hash, string(h.kind), h.reporter, rid).Scan(&dup)
		tx.Rollback()
		if err != nil {
			return nil, Saved{}, fmt.Errorf("store: finding the duplicate: %w", err)
		}
		return nil, Saved{ID: dup, Duplicate: true}, nil
	}
	if err != nil {
		tx.Rollback()
		return nil, Saved{}, fmt.Errorf("store: %w", err)
	}
	return tx, Saved{ID: id}, nil
}

// save runs one report's transaction: the reports row first, then body
// for the kind's rows.
func (s *DB) save(ctx context.Context, m Meta, h reportRow, body func(tx *sqlTx, id int64) error) (Saved, error) {
	tx, saved, err := s.begin(ctx, m, h)
	if err != nil || tx == nil {
		return saved, err
	}
	defer tx.Rollback()
	if err := body(tx, saved.ID); err != nil {
		return Saved{}, err
	}
	if err := tx.Commit(); err != nil {
		return Saved{}, fmt.Errorf("store: %w", err)
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
	t, saved, err := s.BeginDMARC(ctx, m, &r.Feedback)
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
// they are parsed, all in the report's one transaction, so that a report
// of any size is stored with flat memory and whole or not at all.
type DMARCTx struct {
	s        *DB
	ctx      context.Context
	tx       *sqlTx
	id       int64
	ins      []*sqlStmt // s.insRecords in this transaction, prepared on first use
	seq      int
	args     []any
	buf      []byte
	warnings int
}

// BeginDMARC starts storing an aggregate report whose metadata and policy
// fb holds (dmarcrpt.Decoder.Feedback). For a duplicate, nothing is
// started: the DMARCTx is nil and Saved says which report is held.
func (s *DB) BeginDMARC(ctx context.Context, m Meta, fb *dmarcrpt.Feedback) (*DMARCTx, Saved, error) {
	md := fb.Metadata
	h := reportRow{kind: KindDMARC, reporter: md.Reporter(), reportID: md.ReportID, domain: fb.Policy.Domain,
		begin: md.DateRange.Begin, end: md.DateRange.End, warnings: fb.Warnings}
	tx, saved, err := s.begin(ctx, m, h)
	if err != nil || tx == nil {
		return nil, saved, err
	}
	return &DMARCTx{s: s, ctx: ctx, tx: tx, id: saved.ID, ins: make([]*sqlStmt, len(recordBatches)),
		args: make([]any, 0, recordBatch*recordCols), warnings: len(fb.Warnings)}, saved, nil
}

// ID returns the id the report will have.
func (t *DMARCTx) ID() int64 { return t.id }

// Rollback abandons the report; after Commit it does nothing.
func (t *DMARCTx) Rollback() { t.tx.Rollback() }

// Commit writes the report's totals (fb, as the decoder left it after the
// last record) and commits.
func (t *DMARCTx) Commit(fb *dmarcrpt.Feedback) error {
	ctx, md, pol := t.ctx, fb.Metadata, fb.Policy
	msgs, err := count("message total", fb.Messages)
	if err != nil {
		return err
	}
	var pct any
	if pol.Pct != nil {
		pct = *pol.Pct
	}
	if _, err := t.tx.StmtContext(ctx, t.s.insDMARC).ExecContext(ctx, t.id, fb.Version, md.OrgName, md.Email, md.ExtraContactInfo,
		md.Generator, jsonList(md.Errors), string(pol.ADKIM), string(pol.ASPF), string(pol.P), string(pol.SP), string(pol.NP),
		pct, pol.FO, string(pol.Testing), string(pol.DiscoveryMethod), string(pol.PSD), int64(t.seq), msgs); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	if len(fb.Warnings) != t.warnings {
		// Records brought warnings of their own.
		if _, err := t.tx.ExecContext(ctx, `UPDATE reports SET warnings = ? WHERE id = ?`, jsonList(fb.Warnings), t.id); err != nil {
			return fmt.Errorf("store: %w", err)
		}
	}
	if err := t.tx.Commit(); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	return nil
}

// Add writes records, recordBatch to a statement.
func (t *DMARCTx) Add(recs []dmarcrpt.Record) error {
	for start := 0; start < len(recs); start += recordBatch {
		batch := recs[start:min(start+recordBatch, len(recs))]
		t.args = t.args[:0]
		for i := range batch {
			rec := &batch[i]
			t.seq++
			if rec.Count > math.MaxInt64 {
				return fmt.Errorf("%w: record %d count %d is too large", ErrInvalid, t.seq, rec.Count)
			}
			pe, ids := &rec.PolicyEvaluated, &rec.Identifiers
			var reasons, dkim, spf string
			if len(pe.Reasons) > 0 {
				t.buf = appendReasons(t.buf[:0], pe.Reasons)
				reasons = string(t.buf)
			}
			if len(rec.DKIM) > 0 {
				t.buf = appendDKIM(t.buf[:0], rec.DKIM)
				dkim = string(t.buf)
			}
			if len(rec.SPF) > 0 {
				t.buf = appendSPF(t.buf[:0], rec.SPF)
				spf = string(t.buf)
			}
			t.args = append(t.args, t.id, int64(t.seq), rec.SourceIP.String(), int64(rec.Count), string(pe.Disposition), string(pe.DKIM),
				string(pe.SPF), reasons, ids.HeaderFrom, ids.EnvelopeFrom, ids.EnvelopeTo, dkim, spf)
		}
		args := t.args
		for i, n := range recordBatches {
			for len(args) >= n*recordCols {
				if t.ins[i] == nil {
					t.ins[i] = t.tx.StmtContext(t.ctx, t.s.insRecords[i])
				}
				if _, err := t.ins[i].ExecContext(t.ctx, args[:n*recordCols]...); err != nil {
					return fmt.Errorf("store: records: %w", err)
				}
				args = args[n*recordCols:]
			}
		}
	}
	return nil
}

// SaveTLS stores an SMTP TLS report with its policies and failure details.
func (s *DB) SaveTLS(ctx context.Context, m Meta, r *tlsrpt.Report) (Saved, error) {
	domain := ""
	if len(r.Policies) > 0 {
		domain = r.Policies[0].Policy.Domain
	}
	h := reportRow{kind: KindTLS, reporter: r.Reporter(), reportID: r.ReportID, domain: domain,
		begin: r.DateRange.Start, end: r.DateRange.End, warnings: r.Warnings}
	return s.save(ctx, m, h, func(tx *sqlTx, id int64) error {
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
	return s.save(ctx, m, h, func(tx *sqlTx, id int64) error {
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
	return s.save(ctx, m, h, func(tx *sqlTx, id int64) error {
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
