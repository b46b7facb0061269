package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"time"
)

// Report is one stored report as `mxray reports show` prints it: the
// common fields and the details of its kind.
type Report struct {
	ID         int64     `json:"id"`
	Kind       Kind      `json:"kind"`
	Reporter   string    `json:"reporter"`
	ReportID   string    `json:"report_id,omitempty"`
	Domain     string    `json:"domain"`
	Begin      time.Time `json:"begin"`
	End        time.Time `json:"end"`
	Source     string    `json:"source"`
	MessageID  string    `json:"message_id,omitempty"`
	Hash       string    `json:"content_hash"`
	ImportedAt time.Time `json:"imported_at"`
	Warnings   []string  `json:"warnings"`

	DMARC   *DMARCReport   `json:"dmarc,omitempty"`
	TLS     *TLSReport     `json:"tls,omitempty"`
	Failure *FailureReport `json:"failure,omitempty"`
	Bounce  *BounceReport  `json:"bounce,omitempty"`
}

// DMARCReport holds an aggregate report's metadata, the policy published
// and its records.
type DMARCReport struct {
	Version      string          `json:"version,omitempty"`
	OrgName      string          `json:"org_name"`
	Email        string          `json:"email"`
	ExtraContact string          `json:"extra_contact_info,omitempty"`
	Generator    string          `json:"generator,omitempty"`
	Errors       []string        `json:"errors"`
	Policy       PolicyPublished `json:"policy_published"`
	RecordCount  int64           `json:"record_count"`
	Messages     int64           `json:"messages"`
	Records      []Record        `json:"records"` // the first ones, when limited
}

// PolicyPublished is <policy_published>; absent fields are empty.
type PolicyPublished struct {
	Domain    string `json:"domain"`
	ADKIM     string `json:"adkim,omitempty"`
	ASPF      string `json:"aspf,omitempty"`
	P         string `json:"p"`
	SP        string `json:"sp,omitempty"`
	NP        string `json:"np,omitempty"`
	Pct       *int   `json:"pct,omitempty"`
	FO        string `json:"fo,omitempty"`
	Testing   string `json:"testing,omitempty"`
	Discovery string `json:"discovery_method,omitempty"`
	PSD       string `json:"psd,omitempty"`
}

// Record is one aggregate report record.
type Record struct {
	SourceIP     string     `json:"source_ip"`
	Count        int64      `json:"count"`
	Disposition  string     `json:"disposition"`
	DKIM         string     `json:"dkim"` // policy_evaluated: aligned DKIM
	SPF          string     `json:"spf"`  // policy_evaluated: aligned SPF
	Reasons      []Reason   `json:"reasons,omitempty"`
	HeaderFrom   string     `json:"header_from"`
	EnvelopeFrom string     `json:"envelope_from,omitempty"`
	EnvelopeTo   string     `json:"envelope_to,omitempty"`
	DKIMAuth     []DKIMAuth `json:"dkim_auth,omitempty"`
	SPFAuth      []SPFAuth  `json:"spf_auth,omitempty"`
}

// TLSReport holds an SMTP TLS report's policies.
type TLSReport struct {
	OrganizationName string      `json:"organization_name"`
	ContactInfo      string      `json:"contact_info"`
	Policies         []TLSPolicy `json:"policies"`
}

// TLSPolicy is one policy of a TLS report with its sessions.
type TLSPolicy struct {
	Type       string       `json:"policy_type"`
	Domain     string       `json:"policy_domain"`
	String     []string     `json:"policy_string"`
	MXHost     []string     `json:"mx_host"`
	Successful int64        `json:"successful_sessions"`
	Failed     int64        `json:"failed_sessions"`
	Failures   []TLSFailure `json:"failure_details"`
}

// TLSFailure is one failure-details entry.
type TLSFailure struct {
	ResultType          string `json:"result_type"`
	SendingMTAIP        string `json:"sending_mta_ip,omitempty"`
	ReceivingMXHostname string `json:"receiving_mx_hostname,omitempty"`
	ReceivingMXHelo     string `json:"receiving_mx_helo,omitempty"`
	ReceivingIP         string `json:"receiving_ip,omitempty"`
	FailedSessions      int64  `json:"failed_session_count"`
	AdditionalInfo      string `json:"additional_information,omitempty"`
	FailureReasonCode   string `json:"failure_reason_code,omitempty"`
}

// FailureReport holds a feedback report's fields.
type FailureReport struct {
	FeedbackType       string   `json:"feedback_type"`
	UserAgent          string   `json:"user_agent,omitempty"`
	AuthFailure        string   `json:"auth_failure,omitempty"`
	DeliveryResult     string   `json:"delivery_result,omitempty"`
	ReportedDomain     []string `json:"reported_domain"`
	SourceIP           string   `json:"source_ip,omitempty"`
	Incidents          int      `json:"incidents,omitempty"`
	ArrivalDate        string   `json:"arrival_date,omitempty"`
	ReportingMTA       string   `json:"reporting_mta,omitempty"`
	OriginalMailFrom   string   `json:"original_mail_from,omitempty"`
	OriginalRcptTo     []string `json:"original_rcpt_to"`
	AuthResults        []string `json:"authentication_results"`
	DKIMDomain         string   `json:"dkim_domain,omitempty"`
	DKIMSelector       string   `json:"dkim_selector,omitempty"`
	SPFDNS             string   `json:"spf_dns,omitempty"`
	IdentityAlignment  []string `json:"identity_alignment"`
	OriginalFrom       string   `json:"original_from,omitempty"`
	OriginalSubject    string   `json:"original_subject,omitempty"`
	OriginalMessageID  string   `json:"original_message_id,omitempty"`
	OriginalHeaderText string   `json:"original_headers,omitempty"`
}

// BounceReport holds a bounce and its recipients.
type BounceReport struct {
	Kind              string            `json:"kind"`
	Severity          string            `json:"severity,omitempty"`
	Format            string            `json:"format"`
	From              string            `json:"from"`
	Subject           string            `json:"subject"`
	ReportingMTA      string            `json:"reporting_mta,omitempty"`
	ArrivalDate       string            `json:"arrival_date,omitempty"`
	OriginalMessageID string            `json:"original_message_id,omitempty"`
	OriginalFrom      string            `json:"original_from,omitempty"`
	OriginalTo        string            `json:"original_to,omitempty"`
	OriginalSubject   string            `json:"original_subject,omitempty"`
	Recipients        []BounceRecipient `json:"recipients"`
}

// BounceRecipient is one recipient of a bounce.
type BounceRecipient struct {
	FinalRecipient    string `json:"final_recipient"`
	OriginalRecipient string `json:"original_recipient,omitempty"`
	Action            string `json:"action"`
	Status            string `json:"status"`
	StatusSource      string `json:"status_source,omitempty"`
	SMTPCode          int    `json:"smtp_code,omitempty"`
	DiagnosticCode    string `json:"diagnostic_code,omitempty"`
	RemoteMTA         string `json:"remote_mta,omitempty"`
	LastAttempt       string `json:"last_attempt,omitempty"`
}

func fromUnix(s int64) time.Time {
	if s == 0 {
		return time.Time{}
	}
	return time.Unix(s, 0).UTC()
}

// Report returns the report with this id; for an aggregate report at most
// maxRecords records (all when maxRecords <= 0), in document order.
func (s *DB) Report(ctx context.Context, id int64, maxRecords int) (*Report, error) {
	r := &Report{ID: id}
	var rid sql.NullString
	var begin, end, at int64
	var warnings string
	err := s.db.QueryRowContext(ctx, `SELECT kind, reporter, report_id, domain, date_begin, date_end, source, message_id, content_hash,
		imported_at, warnings FROM reports WHERE id = ?`, id).Scan(&r.Kind, &r.Reporter, &rid, &r.Domain, &begin, &end, &r.Source,
		&r.MessageID, &r.Hash, &at, &warnings)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: report %d", ErrNotFound, id)
	}
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	r.ReportID, r.Begin, r.End, r.ImportedAt = rid.String, fromUnix(begin), fromUnix(end), fromUnix(at)
	r.Warnings = parseList(warnings)
	if r.Warnings == nil {
		r.Warnings = []string{}
	}
	switch r.Kind {
	case KindDMARC:
		r.DMARC, err = s.dmarcDetail(ctx, id, maxRecords)
	case KindTLS:
		r.TLS, err = s.tlsDetail(ctx, id)
	case KindFailure:
		r.Failure, err = s.failureDetail(ctx, id)
	case KindBounce:
		r.Bounce, err = s.bounceDetail(ctx, id)
	}
	if err != nil {
		return nil, fmt.Errorf("store: report %d: %w", id, err)
	}
	return r, nil
}

func (s *DB) dmarcDetail(ctx context.Context, id int64, maxRecords int) (*DMARCReport, error) {
	d := &DMARCReport{Records: []Record{}}
	var errs string
	var pct sql.NullInt64
	p := &d.Policy
	err := s.db.QueryRowContext(ctx, `SELECT version, org_name, email, extra_contact, generator, errors, adkim, aspf, p, sp, np, pct,
		fo, testing, discovery, psd, records, messages FROM dmarc_reports WHERE report = ?`, id).Scan(&d.Version, &d.OrgName, &d.Email,
		&d.ExtraContact, &d.Generator, &errs, &p.ADKIM, &p.ASPF, &p.P, &p.SP, &p.NP, &pct, &p.FO, &p.Testing, &p.Discovery, &p.PSD,
		&d.RecordCount, &d.Messages)
	if err != nil {
		return nil, err
	}
	d.Errors = parseList(errs)
	if d.Errors == nil {
		d.Errors = []string{}
	}
	if pct.Valid {
		v := int(pct.Int64)
		p.Pct = &v
	}
	if err := s.db.QueryRowContext(ctx, `SELECT domain FROM reports WHERE id = ?`, id).Scan(&p.Domain); err != nil {
		return nil, err
	}
	limit := int64(math.MaxInt64) // LIMIT -1 is SQLite's "all", an error on PostgreSQL
	if maxRecords > 0 {
		limit = int64(maxRecords)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT source_ip, msg_count, disposition, dkim, spf, reasons, header_from, envelope_from,
		envelope_to, dkim_auth, spf_auth FROM dmarc_records WHERE report = ? ORDER BY seq LIMIT ?`, id, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var rec Record
		var reasons, dkim, spf string
		if err := rows.Scan(&rec.SourceIP, &rec.Count, &rec.Disposition, &rec.DKIM, &rec.SPF, &reasons, &rec.HeaderFrom,
			&rec.EnvelopeFrom, &rec.EnvelopeTo, &dkim, &spf); err != nil {
			return nil, err
		}
		rec.Reasons, rec.DKIMAuth, rec.SPFAuth = parseJSON[Reason](reasons), parseDKIM(dkim), parseSPF(spf)
		d.Records = append(d.Records, rec)
	}
	return d, rows.Err()
}

func (s *DB) tlsDetail(ctx context.Context, id int64) (*TLSReport, error) {
	t := &TLSReport{Policies: []TLSPolicy{}}
	if err := s.db.QueryRowContext(ctx, `SELECT organization_name, contact_info FROM tls_reports WHERE report = ?`, id).
		Scan(&t.OrganizationName, &t.ContactInfo); err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT policy_type, policy_domain, policy_string, mx_host, successful, failed
		FROM tls_policies WHERE report = ? ORDER BY seq`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var p TLSPolicy
		var ps, mx string
		if err := rows.Scan(&p.Type, &p.Domain, &ps, &mx, &p.Successful, &p.Failed); err != nil {
			return nil, err
		}
		p.String, p.MXHost, p.Failures = nonNil(parseList(ps)), nonNil(parseList(mx)), []TLSFailure{}
		t.Policies = append(t.Policies, p)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	frows, err := s.db.QueryContext(ctx, `SELECT policy, result_type, sending_mta_ip, receiving_mx_hostname, receiving_mx_helo,
		receiving_ip, failed_sessions, additional_info, failure_reason_code FROM tls_failures WHERE report = ? ORDER BY policy, seq`, id)
	if err != nil {
		return nil, err
	}
	defer frows.Close()
	for frows.Next() {
		var pol int
		var f TLSFailure
		if err := frows.Scan(&pol, &f.ResultType, &f.SendingMTAIP, &f.ReceivingMXHostname, &f.ReceivingMXHelo, &f.ReceivingIP,
			&f.FailedSessions, &f.AdditionalInfo, &f.FailureReasonCode); err != nil {
			return nil, err
		}
		if pol >= 1 && pol <= len(t.Policies) {
			t.Policies[pol-1].Failures = append(t.Policies[pol-1].Failures, f)
		}
	}
	return t, frows.Err()
}

func nonNil(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}

func (s *DB) failureDetail(ctx context.Context, id int64) (*FailureReport, error) {
	f := &FailureReport{}
	var rd, rcpt, ar, ia string
	err := s.db.QueryRowContext(ctx, `SELECT feedback_type, user_agent, auth_failure, delivery_result, reported_domain, source_ip,
		incidents, arrival_date, reporting_mta, original_mail_from, original_rcpt_to, auth_results, dkim_domain, dkim_selector, spf_dns,
		identity_alignment, original_from, original_subject, original_message_id, original_headers FROM failure_reports WHERE report = ?`, id).
		Scan(&f.FeedbackType, &f.UserAgent, &f.AuthFailure, &f.DeliveryResult, &rd, &f.SourceIP, &f.Incidents, &f.ArrivalDate,
			&f.ReportingMTA, &f.OriginalMailFrom, &rcpt, &ar, &f.DKIMDomain, &f.DKIMSelector, &f.SPFDNS, &ia, &f.OriginalFrom,
			&f.OriginalSubject, &f.OriginalMessageID, &f.OriginalHeaderText)
	if err != nil {
		return nil, err
	}
	f.ReportedDomain, f.OriginalRcptTo = nonNil(parseList(rd)), nonNil(parseList(rcpt))
	f.AuthResults, f.IdentityAlignment = nonNil(parseList(ar)), nonNil(parseList(ia))
	return f, nil
}

func (s *DB) bounceDetail(ctx context.Context, id int64) (*BounceReport, error) {
	b := &BounceReport{Recipients: []BounceRecipient{}}
	err := s.db.QueryRowContext(ctx, `SELECT kind, severity, format, from_addr, subject, reporting_mta, arrival_date,
		original_message_id, original_from, original_to, original_subject FROM bounces WHERE report = ?`, id).
		Scan(&b.Kind, &b.Severity, &b.Format, &b.From, &b.Subject, &b.ReportingMTA, &b.ArrivalDate, &b.OriginalMessageID,
			&b.OriginalFrom, &b.OriginalTo, &b.OriginalSubject)
	if err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT final_recipient, original_recipient, action, status, status_source, smtp_code,
		diagnostic_code, remote_mta, last_attempt FROM bounce_recipients WHERE report = ? ORDER BY seq`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var r BounceRecipient
		if err := rows.Scan(&r.FinalRecipient, &r.OriginalRecipient, &r.Action, &r.Status, &r.StatusSource, &r.SMTPCode,
			&r.DiagnosticCode, &r.RemoteMTA, &r.LastAttempt); err != nil {
			return nil, err
		}
		b.Recipients = append(b.Recipients, r)
	}
	return b, rows.Err()
}
