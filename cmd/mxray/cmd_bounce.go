package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mxray/mxray/internal/diag"
	"github.com/mxray/mxray/internal/report/dsn"
)

// bounceMaxBytes bounds the message read; bounces are small, and the
// original message they quote is not needed whole.
const bounceMaxBytes = 64 << 20

type bounceRecipient struct {
	Recipient         string            `json:"recipient"`
	OriginalRecipient string            `json:"original_recipient,omitempty"`
	Action            string            `json:"action"`
	Status            string            `json:"status"`
	StatusSource      string            `json:"status_source,omitempty"`
	SMTPCode          int               `json:"smtp_code,omitempty"`
	DiagnosticCode    string            `json:"diagnostic_code,omitempty"`
	RemoteMTA         string            `json:"remote_mta,omitempty"`
	LastAttempt       string            `json:"last_attempt,omitempty"`
	WillRetryUntil    string            `json:"will_retry_until,omitempty"`
	Explanation       bounceExplanation `json:"explanation"`
}

// bounceExplanation is dsn.Explanation with JSON names.
type bounceExplanation struct {
	Status    string `json:"status"`
	Valid     bool   `json:"valid"`     // the code has RFC 3463 §2 syntax
	Known     bool   `json:"known"`     // the exact code is in mxray's table
	Temporary bool   `json:"temporary"` // class 4: the sender retries
	Class     string `json:"class,omitempty"`
	Subject   string `json:"subject,omitempty"`
	Meaning   string `json:"meaning"`
	Cause     string `json:"cause,omitempty"`
	Fix       string `json:"fix,omitempty"`
	Reference string `json:"reference,omitempty"`
}

type bounceOriginal struct {
	MessageID string `json:"message_id,omitempty"`
	From      string `json:"from,omitempty"`
	To        string `json:"to,omitempty"`
	Subject   string `json:"subject,omitempty"`
	Date      string `json:"date,omitempty"`
}

type bounceResult struct {
	File            string            `json:"file"`
	Kind            dsn.Kind          `json:"kind"` // bounce, delay, delivered, relayed, expanded, auto-reply, not-bounce
	Severity        dsn.Severity      `json:"severity,omitempty"`
	Format          dsn.Format        `json:"format,omitempty"`
	Verdict         string            `json:"verdict"`
	From            string            `json:"from"`
	Subject         string            `json:"subject"`
	ReportingMTA    string            `json:"reporting_mta,omitempty"`
	ArrivalDate     string            `json:"arrival_date,omitempty"`
	AutoReplyReason string            `json:"auto_reply_reason,omitempty"`
	Recipients      []bounceRecipient `json:"recipients"`
	Original        *bounceOriginal   `json:"original,omitempty"`
}

func newBounceCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "bounce FILE|-",
		Short: "Explain a bounce: what happened to each recipient, why, and what to do",
		Long: `Read one bounce message (a file, or - for standard input) and explain it: for each
recipient the action, the enhanced status code (RFC 3463) and what it means, the
remote server's diagnostic, the remote MTA, the likely cause and the fix.

Delivery status notifications (RFC 3464, RFC 6533) are read field by field;
the plain-text bounces of Postfix, Exim, qmail, Exchange, Gmail, Amazon SES
and others by their wording. Auto-replies (RFC 3834) and messages that are
not bounces are said to be such.

Exit codes: 0 not a failure (delivered, relayed or expanded, an auto-reply,
not a bounce); 1 a failure bounce or a delay (a recipient has not got the
message); 2 the file cannot be read, or it looks like a bounce but mxray
cannot read its format.`,
		Example: `  mxray bounce returned.eml
  mxray bounce - --json < returned.eml`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runBounce(cmd.Context(), a, args[0])
		},
	}
}

func runBounce(_ context.Context, a *app, file string) error {
	var r io.Reader
	if file == "-" {
		r = a.stdin
	} else {
		f, err := os.Open(file)
		if err != nil {
			return diag.Usagef("%v", err)
		}
		defer f.Close()
		r = f
	}
	raw, err := io.ReadAll(io.LimitReader(r, bounceMaxBytes+1))
	if err != nil {
		return diag.Usagef("reading %s: %v", file, err)
	}
	if len(raw) > bounceMaxBytes {
		return diag.Usagef("%s is larger than %d bytes", file, bounceMaxBytes)
	}
	if len(strings.TrimSpace(string(raw))) == 0 {
		return diag.Usagef("%s is empty", file)
	}
	rep, err := dsn.Parse(raw)
	if err != nil {
		if errors.Is(err, dsn.ErrUnrecognised) {
			return diag.Usagef("%s: %v", file, err)
		}
		return diag.Usagef("%s: not a readable message: %v", file, err)
	}
	res := bounceResult{File: file, Kind: rep.Kind, Severity: rep.Severity, Format: rep.Format, From: rep.From, Subject: rep.Subject,
		ReportingMTA: rep.ReportingMTA, ArrivalDate: rep.ArrivalDate, AutoReplyReason: rep.AutoReplyReason, Recipients: []bounceRecipient{}}
	for _, rc := range rep.Recipients {
		res.Recipients = append(res.Recipients, bounceRecipient{
			Recipient: rc.FinalRecipient, OriginalRecipient: rc.OriginalRecipient, Action: string(rc.Action), Status: rc.Status,
			StatusSource: string(rc.StatusSource), SMTPCode: rc.SMTPCode, DiagnosticCode: rc.DiagnosticCode, RemoteMTA: rc.RemoteMTA,
			LastAttempt: rc.LastAttemptDate, WillRetryUntil: rc.WillRetryUntil, Explanation: bounceExplanation(dsn.Explain(rc.Status)),
		})
	}
	if o := rep.Original; o != nil {
		res.Original = &bounceOriginal{MessageID: strings.Trim(o.MessageID, "<>"), From: o.From, To: o.To, Subject: o.Subject, Date: o.Date}
	}
	res.Verdict = bounceVerdict(rep)
	if err := a.out.Result("bounce", res, func(w io.Writer, o *diag.Output) { writeBounce(w, o, res) }); err != nil {
		return err
	}
	if rep.Kind == dsn.Bounce || rep.Kind == dsn.Delay {
		return diag.Found
	}
	return nil
}

// bounceVerdict says in one sentence what the message is.
func bounceVerdict(r *dsn.Report) string {
	n := len(r.Recipients)
	switch r.Kind {
	case dsn.Bounce:
		failed := 0
		for _, rc := range r.Recipients {
			if rc.Action == dsn.ActionFailed || rc.Action == "" {
				failed++
			}
		}
		if r.Severity == dsn.Soft {
			return fmt.Sprintf("a bounce: delivery to %d of %d recipient(s) failed with a temporary error and was given up", failed, n)
		}
		return fmt.Sprintf("a bounce: delivery to %d of %d recipient(s) failed permanently", failed, n)
	case dsn.Delay:
		return fmt.Sprintf("a delay notice: delivery to %d recipient(s) is delayed and still being retried", n)
	case dsn.Delivered:
		return fmt.Sprintf("a delivery notification: the message reached %d recipient(s); nothing failed", n)
	case dsn.Relayed:
		return "a relay notification: the message was passed to a system that sends no further notices; nothing failed"
	case dsn.Expanded:
		return "an expansion notification: the message was delivered to a list or alias and forwarded; nothing failed"
	case dsn.AutoReply:
		return "an auto-reply (RFC 3834), not a bounce: the message was delivered"
	}
	return "not a bounce: no delivery status could be found in this message"
}

func writeBounce(w io.Writer, o *diag.Output, res bounceResult) {
	st := diag.Info
	switch res.Kind {
	case dsn.Bounce:
		st = diag.Fail
	case dsn.Delay:
		st = diag.Warn
	case dsn.Delivered, dsn.Relayed, dsn.Expanded:
		st = diag.OK
	}
	fmt.Fprintf(w, "%s %s\n", o.Mark(st), res.Verdict)
	if res.From != "" || res.Subject != "" {
		fmt.Fprintf(w, "       from %s: %s\n", res.From, res.Subject)
	}
	if res.ReportingMTA != "" {
		fmt.Fprintf(w, "       reported by %s\n", res.ReportingMTA)
	}
	if res.AutoReplyReason != "" {
		fmt.Fprintf(w, "       auto-reply because: %s\n", res.AutoReplyReason)
	}
	if og := res.Original; og != nil {
		fmt.Fprintf(w, "       original message: %s", og.Subject)
		if og.MessageID != "" {
			fmt.Fprintf(w, " <%s>", og.MessageID)
		}
		fmt.Fprintln(w)
	}
	for _, rc := range res.Recipients {
		e := rc.Explanation
		rst := diag.Fail
		switch {
		case strings.HasPrefix(e.Status, "2.") || rc.Action == string(dsn.ActionDelivered) ||
			rc.Action == string(dsn.ActionRelayed) || rc.Action == string(dsn.ActionExpanded):
			rst = diag.OK
		case rc.Action == string(dsn.ActionDelayed) || e.Temporary:
			rst = diag.Warn
		}
		fmt.Fprintf(w, "\n%s %s: %s %s", o.Mark(rst), rc.Recipient, rc.Action, rc.Status)
		if rc.StatusSource == string(dsn.SourceInferred) {
			fmt.Fprint(w, o.Paint("2", " (inferred from the text)"))
		}
		fmt.Fprintln(w)
		if rc.DiagnosticCode != "" {
			fmt.Fprintf(w, "       server said: %s\n", rc.DiagnosticCode)
		}
		if rc.RemoteMTA != "" {
			fmt.Fprintf(w, "       remote MTA: %s\n", rc.RemoteMTA)
		}
		if e.Meaning != "" {
			fmt.Fprintf(w, "       meaning: %s\n", e.Meaning)
		}
		if e.Cause != "" {
			fmt.Fprintf(w, "       likely cause: %s\n", e.Cause)
		}
		if e.Fix != "" {
			fmt.Fprintf(w, "       %s%s\n", o.Paint("1", "fix: "), e.Fix)
		}
		if e.Reference != "" {
			fmt.Fprintf(w, "       %s%s\n", o.Paint("2", "see: "), e.Reference)
		}
	}
}
