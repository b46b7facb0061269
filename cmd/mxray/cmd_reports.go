package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/mxray/mxray/internal/diag"
	"github.com/mxray/mxray/internal/dnsx"
	"github.com/mxray/mxray/internal/ingest"
	"github.com/mxray/mxray/internal/report/dsn"
	"github.com/mxray/mxray/internal/store"
)

func newReportsCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "reports",
		Short: "Import, summarise and show DMARC, TLS and failure reports and bounces",
		Long: `Read the reports other mail systems send about a domain — DMARC aggregate reports
(RFC 9990, RFC 7489), SMTP TLS reports (RFC 8460), DMARC failure reports
(RFC 6591, RFC 9991) — and bounces (RFC 3464) into the database in --data
(DATA/mxray.db), and summarise them.

What cannot be parsed is quarantined with its bytes and the reason, never
dropped; "mxray reports quarantine --reprocess" tries it again.`,
		Args: exactArgs(0),
	}
	cmd.AddCommand(newReportsImportCmd(a), newReportsSummaryCmd(a), newReportsShowCmd(a), newReportsQuarantineCmd(a))
	cmd.AddCommand(newReportsFetchCmd(a))
	return cmd
}

// reportsContext is the context of a command that works through input of
// any size: the default --timeout would cut a large import short, so the
// deadline applies only when a timeout is given, as --timeout or in the
// config file.
func reportsContext(cmd *cobra.Command, a *app) context.Context {
	if cmd.Flags().Changed("timeout") || a.cfg != nil && a.cfg.Timeout.Duration > 0 {
		return cmd.Context()
	}
	return cmd.Root().Context()
}

// reportsOpen opens the report store: the PostgreSQL database of --db
// (or db in the config), else the SQLite file in --data.
func reportsOpen(ctx context.Context, a *app) (*store.DB, error) {
	var db *store.DB
	var err error
	if a.opts.DB != "" {
		db, err = store.OpenPostgres(ctx, a.opts.DB, store.Options{Now: a.env.Clock})
		if errors.Is(err, store.ErrURL) {
			return nil, diag.Usagef("--db: %v", err)
		}
	} else {
		db, err = store.Open(ctx, a.opts.Data, store.Options{Now: a.env.Clock})
	}
	if err != nil {
		return nil, diag.Uncheckedf("%v", err)
	}
	return db, nil
}

// reportsImporter builds the importer every reports command shares.
func reportsImporter(a *app, db *store.DB) *ingest.Importer {
	return &ingest.Importer{Store: db, Now: a.env.Clock, Log: a.log}
}

// ---- import

// reportsMemoryLimit is the soft Go heap limit while importing.
const reportsMemoryLimit = 40 << 20

type reportsImportResult struct {
	ingest.Stats
	ElapsedMS  float64          `json:"elapsed_ms"`
	Quarantine []ingest.Outcome `json:"quarantine"` // what this run quarantined
	Unreadable []string         `json:"unreadable"` // paths that could not be read
}

func newReportsImportCmd(a *app) *cobra.Command {
	var workers int
	cmd := &cobra.Command{
		Use:   "import PATH...",
		Short: "Import report files, directories, mbox files and Maildirs into the database",
		Long: `Import reports into the database in --data.

PATH is a file (XML, JSON, gzip, zip or an e-mail message), a directory (read
recursively), an mbox file (one message at a time) or a Maildir (cur/ and new/).
Every report is stored whole or not at all (its own savepoint inside a
transaction that groups small reports); a report already stored (same
reporter and report id, or the same content) is counted as a duplicate and
skipped, so importing twice changes nothing. Bounces are stored as bounces.
What cannot be parsed is quarantined with the reason.

--timeout applies only when given: an import takes as long as its input.

Exit codes: 0 everything imported (or already there); 1 something was
quarantined; 2 a path could not be read; 3 the database failed, or --timeout
passed (the reports stored until then stay).`,
		Example: `  mxray reports import ~/Maildir/.DMARC
  mxray reports import reports/ --json`,
		Args: minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runReportsImport(reportsContext(cmd, a), a, args, workers)
		},
	}
	cmd.Flags().IntVar(&workers, "workers", 0, "goroutines decoding and parsing (default: the number of CPUs)")
	return cmd
}

func runReportsImport(ctx context.Context, a *app, paths []string, workers int) error {
	db, err := reportsOpen(ctx, a)
	if err != nil {
		return err
	}
	defer db.Close()
	// Importing makes much short-lived garbage (XML tokens, records): the
	// collector runs less often (GOGC 400 saves a fifth of the CPU on
	// many small reports), and a soft limit on the heap keeps a large
	// report's transient buffers (the decompressed XML) from doubling the
	// peak memory; the collector's CPU limiter bounds the cost when a
	// report is larger than the limit. GOGC and GOMEMLIMIT, when set, win.
	if os.Getenv("GOGC") == "" {
		defer debug.SetGCPercent(debug.SetGCPercent(400))
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		defer debug.SetMemoryLimit(debug.SetMemoryLimit(reportsMemoryLimit))
	}
	res := reportsImportResult{Quarantine: []ingest.Outcome{}, Unreadable: []string{}}
	im := reportsImporter(a, db)
	im.Workers = workers
	im.Outcome = func(o ingest.Outcome) {
		if o.Result == ingest.Quarantined {
			res.Quarantine = append(res.Quarantine, o)
		}
	}
	if progress := reportsProgress(a); progress != nil {
		im.Progress = progress
		defer fmt.Fprint(a.stderr, "\r\x1b[K")
	}
	start := a.env.Clock()
	st, err := im.Import(ctx, func(ctx context.Context, fn func(ingest.Blob) error) error {
		return walkWithStdin(ctx, a.stdin, paths, fn)
	})
	res.Stats = st
	res.ElapsedMS = diag.Millis(a.env.Clock().Sub(start))
	var unreadable error
	if err != nil {
		if !errors.Is(err, ingest.ErrUnreadable) {
			return diag.Uncheckedf("import stopped after %d reports: %v", st.Imported, err)
		}
		unreadable = err
		for _, e := range reportsUnjoin(err) {
			res.Unreadable = append(res.Unreadable, strings.TrimPrefix(e.Error(), ingest.ErrUnreadable.Error()+": "))
		}
	}
	if err := a.out.Result("reports import", res, func(w io.Writer, o *diag.Output) { writeReportsImport(w, o, res, db.Path()) }); err != nil {
		return err
	}
	switch {
	case unreadable != nil:
		return diag.Usagef("%d path(s) could not be read", len(res.Unreadable))
	case st.Quarantined > 0:
		return diag.Found
	}
	return nil
}

// reportsWhere names a payload: its member name, else the blob's origin.
func reportsWhere(o ingest.Outcome) string {
	if o.Name != "" {
		return o.Name
	}
	return o.Origin
}

func reportsUnjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// reportsProgress returns a progress printer when stderr is a terminal.
func reportsProgress(a *app) func(ingest.Stats) {
	f, ok := a.stderr.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	var last time.Time
	return func(st ingest.Stats) {
		now := a.env.Clock()
		if now.Sub(last) < 100*time.Millisecond {
			return
		}
		last = now
		fmt.Fprintf(a.stderr, "\r\x1b[K  %d read: %d imported (%d records), %d bounces, %d duplicates, %d quarantined",
			st.Blobs, st.Imported, st.Records, st.Bounces, st.Duplicates, st.Quarantined)
	}
}

func writeReportsImport(w io.Writer, o *diag.Output, res reportsImportResult, dbPath string) {
	st := res.Stats
	fmt.Fprintf(w, "imported %d reports (%d DMARC with %d records, %d TLS, %d failure), %d bounces, %d duplicates, %d quarantined\n",
		st.Imported, st.DMARC, st.Records, st.TLS, st.Failure, st.Bounces, st.Duplicates, st.Quarantined)
	el := time.Duration(res.ElapsedMS * float64(time.Millisecond))
	fmt.Fprintf(w, "%s\n", o.Paint("2", fmt.Sprintf("%d files and messages read in %s into %s", st.Blobs, diag.FormatElapsed(el), dbPath)))
	if len(res.Quarantine) > 0 {
		fmt.Fprintln(w, "\nquarantined (see mxray reports quarantine):")
		for _, q := range res.Quarantine {
			note := ""
			if q.Already {
				note = " (already quarantined)"
			}
			fmt.Fprintf(w, "  %s #%d %s%s\n       %s\n", o.Mark(diag.Warn), q.ID, reportsWhere(q), note, q.Reason)
		}
	}
	if len(res.Unreadable) > 0 {
		fmt.Fprintln(w, "\nnot readable:")
		for _, u := range res.Unreadable {
			fmt.Fprintf(w, "  %s %s\n", o.Mark(diag.Fail), u)
		}
	}
}

// ---- summary

type reportsSummaryResult struct {
	Filter struct {
		Domain string `json:"domain,omitempty"`
		Since  string `json:"since,omitempty"` // RFC 3339
	} `json:"filter"`
	*store.Summary
}

func newReportsSummaryCmd(a *app) *cobra.Command {
	var domain, since string
	var ptr bool
	var top int
	cmd := &cobra.Command{
		Use:   "summary",
		Short: "Summarise the stored reports by domain, source IP and reporter",
		Long: `Summarise the reports in the database: per DMARC policy domain the message volume,
the DMARC pass rate (a message passes when its aligned DKIM or aligned SPF
result is pass), the aligned DKIM and SPF pass rates, the receivers'
dispositions, the top source IPs, the sources failing DMARC most, and the
reporters; per TLS-RPT policy domain the sessions and the failures by MX and
result type.

--since selects reports whose period ends within that time (30d, 12h, 2w, or a
date 2006-01-02). --ptr looks up the PTR name of every source listed.`,
		Example: `  mxray reports summary --domain example.com --since 30d
  mxray reports summary --ptr --json`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runReportsSummary(cmd.Context(), a, domain, since, ptr, top)
		},
	}
	cmd.Flags().StringVar(&domain, "domain", "", "only this policy domain")
	cmd.Flags().StringVar(&since, "since", "", "only reports ending within this time: 30d, 12h, 2w, or a date 2006-01-02")
	cmd.Flags().BoolVar(&ptr, "ptr", false, "look up the PTR name of each source IP listed")
	cmd.Flags().IntVar(&top, "top", 10, "sources and reporters listed per domain")
	return cmd
}

// reportsSince parses --since: a number of days (d) or weeks (w), a Go
// duration, or a date.
func reportsSince(now time.Time, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	unit := map[byte]time.Duration{'d': 24 * time.Hour, 'w': 7 * 24 * time.Hour}
	if n := len(s); n > 1 && unit[s[n-1]] != 0 {
		if v, err := strconv.Atoi(s[:n-1]); err == nil && v >= 0 {
			return now.Add(-time.Duration(v) * unit[s[n-1]]), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, diag.Usagef("--since %q: want 30d, 12h, 2w or a date 2006-01-02", s)
}

func runReportsSummary(ctx context.Context, a *app, domain, since string, ptr bool, top int) error {
	from, err := reportsSince(a.env.Clock(), since)
	if err != nil {
		return err
	}
	db, err := reportsOpen(ctx, a)
	if err != nil {
		return err
	}
	defer db.Close()
	sum, err := db.Summary(ctx, store.Filter{Domain: domain, Since: from, Top: top})
	if err != nil {
		return diag.Uncheckedf("%v", err)
	}
	if ptr {
		reportsPTR(ctx, a.env, sum)
	}
	var res reportsSummaryResult
	res.Summary = sum
	res.Filter.Domain = strings.ToLower(domain)
	if !from.IsZero() {
		res.Filter.Since = from.UTC().Format(time.RFC3339)
	}
	return a.out.Result("reports summary", res, func(w io.Writer, o *diag.Output) { writeReportsSummary(w, o, res) })
}

// reportsPTR fills in the PTR names of the sources listed, eight lookups at
// a time. A source without a PTR record is shown without a name.
func reportsPTR(ctx context.Context, env diag.Env, sum *store.Summary) {
	names := map[string]string{}
	for _, d := range sum.Domains {
		for _, s := range append(append([]store.SourceSummary{}, d.Sources...), d.FailingSources...) {
			names[s.IP] = ""
		}
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for ip := range names {
		addr, err := netip.ParseAddr(ip)
		if err != nil {
			continue
		}
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			resp, err := env.Resolver.Query(ctx, dnsx.ReverseName(addr), dns.TypePTR)
			if err != nil || resp == nil {
				return
			}
			if n := resp.Names(); len(n) > 0 {
				mu.Lock()
				names[ip] = strings.TrimSuffix(n[0], ".")
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	for i := range sum.Domains {
		for _, l := range [][]store.SourceSummary{sum.Domains[i].Sources, sum.Domains[i].FailingSources} {
			for j := range l {
				l[j].PTR = names[l[j].IP]
			}
		}
	}
}

func writeReportsSummary(w io.Writer, o *diag.Output, res reportsSummaryResult) {
	t := res.Totals
	scope := "all reports"
	if res.Filter.Domain != "" {
		scope = res.Filter.Domain
	}
	if res.Filter.Since != "" {
		scope += " ending since " + res.Filter.Since
	}
	fmt.Fprintf(w, "%s: %d DMARC aggregate reports (%d records, %d messages), %d TLS reports, %d failure reports, %d bounces; %d quarantined\n",
		scope, t.DMARC, t.Records, t.Messages, t.TLS, t.Failure, t.Bounces, t.Quarantined)
	for _, d := range res.Domains {
		st := diag.OK
		if d.DMARCPassRate < 100 {
			st = diag.Warn
		}
		if d.DMARCPassRate < 90 {
			st = diag.Fail
		}
		fmt.Fprintf(w, "\n%s %s  %d messages in %d reports: DMARC pass %.1f%% (DKIM aligned %.1f%%, SPF aligned %.1f%%)\n",
			o.Mark(st), o.Paint("1", d.Domain), d.Messages, d.Reports, d.DMARCPassRate, d.DKIMPassRate, d.SPFPassRate)
		var disp []string
		for _, x := range d.Dispositions {
			disp = append(disp, fmt.Sprintf("%s %d", x.Disposition, x.Messages))
		}
		fmt.Fprintf(w, "       dispositions: %s\n", strings.Join(disp, ", "))
		source := func(s store.SourceSummary) string {
			name := s.IP
			if s.PTR != "" {
				name += " (" + s.PTR + ")"
			}
			return fmt.Sprintf("         %-45s %8d msgs  %5.1f%% pass", name, s.Messages, s.PassRate)
		}
		fmt.Fprintf(w, "       sources (top %d of %d):\n", len(d.Sources), d.SourceCount)
		for _, s := range d.Sources {
			fmt.Fprintln(w, source(s))
		}
		if len(d.FailingSources) > 0 {
			fmt.Fprintln(w, "       failing DMARC most:")
			for _, s := range d.FailingSources {
				fmt.Fprintf(w, "%s  %d failing\n", source(s), s.Failed)
			}
		}
		fmt.Fprintln(w, "       reporters:")
		for _, r := range d.Reporters {
			fmt.Fprintf(w, "         %-45s %8d msgs  %5.1f%% pass  (%d reports)\n", r.Reporter, r.Messages, r.PassRate, r.Reports)
		}
	}
	for _, tl := range res.TLS {
		st := diag.OK
		if tl.Failed > 0 {
			st = diag.Warn
		}
		fmt.Fprintf(w, "\n%s %s  TLS: %d sessions ok, %d failed (%.1f%% ok) in %d reports; policy %s\n",
			o.Mark(st), o.Paint("1", tl.Domain), tl.Successful, tl.Failed, tl.SuccessRate, tl.Reports, strings.Join(tl.PolicyTypes, ", "))
		for _, f := range tl.Failures {
			mx := f.MX
			if mx == "" {
				mx = "(MX not stated)"
			}
			fmt.Fprintf(w, "         %-35s %-28s %8d sessions\n", mx, f.ResultType, f.Sessions)
		}
	}
}

// ---- show

type reportsShowResult struct {
	*store.Report
}

func newReportsShowCmd(a *app) *cobra.Command {
	var records int
	cmd := &cobra.Command{
		Use:   "show ID",
		Short: "Show one stored report with its records",
		Long: `Show one report from the database: its reporter, period and source, and by kind
the DMARC policy published and records, the TLS policies and failure details,
the failure report's fields and reported message header, or the bounce's
recipients. IDs are printed by "reports import --json" and "reports summary".

Exit codes: 0 shown; 2 no report with that ID.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runReportsShow(cmd.Context(), a, args[0], records)
		},
	}
	cmd.Flags().IntVar(&records, "records", 100, "DMARC records shown (0: all)")
	return cmd
}

func runReportsShow(ctx context.Context, a *app, arg string, records int) error {
	id, err := strconv.ParseInt(strings.TrimPrefix(arg, "#"), 10, 64)
	if err != nil || id <= 0 {
		return diag.Usagef("report ID %q: want a positive number", arg)
	}
	db, err := reportsOpen(ctx, a)
	if err != nil {
		return err
	}
	defer db.Close()
	r, err := db.Report(ctx, id, records)
	if errors.Is(err, store.ErrNotFound) {
		return diag.Usagef("no report %d in %s", id, db.Path())
	}
	if err != nil {
		return diag.Uncheckedf("%v", err)
	}
	return a.out.Result("reports show", reportsShowResult{r}, func(w io.Writer, o *diag.Output) { writeReportsShow(w, o, r) })
}

func reportsDate(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04")
}

func writeReportsShow(w io.Writer, o *diag.Output, r *store.Report) {
	fmt.Fprintf(w, "report %d: %s from %s", r.ID, r.Kind, r.Reporter)
	if r.ReportID != "" {
		fmt.Fprintf(w, ", id %s", r.ReportID)
	}
	fmt.Fprintln(w)
	if r.Domain != "" {
		fmt.Fprintf(w, "  domain:   %s\n", r.Domain)
	}
	switch r.Kind {
	case store.KindDMARC, store.KindTLS:
		fmt.Fprintf(w, "  period:   %s – %s UTC\n", reportsDate(r.Begin), reportsDate(r.End))
	case store.KindFailure:
		fmt.Fprintf(w, "  arrived:  %s UTC\n", reportsDate(r.Begin))
	}
	fmt.Fprintf(w, "  source:   %s\n", r.Source)
	if r.MessageID != "" {
		fmt.Fprintf(w, "  message:  <%s>\n", r.MessageID)
	}
	fmt.Fprintf(w, "  imported: %s UTC\n", reportsDate(r.ImportedAt))
	for _, x := range r.Warnings {
		fmt.Fprintf(w, "  %s %s\n", o.Mark(diag.Warn), x)
	}
	switch {
	case r.DMARC != nil:
		d, p := r.DMARC, r.DMARC.Policy
		fmt.Fprintf(w, "  reporter: %s <%s>\n", d.OrgName, d.Email)
		pol := "p=" + p.P
		for _, kv := range [][2]string{{"sp", p.SP}, {"np", p.NP}, {"adkim", p.ADKIM}, {"aspf", p.ASPF}, {"fo", p.FO}, {"t", p.Testing}} {
			if kv[1] != "" {
				pol += " " + kv[0] + "=" + kv[1]
			}
		}
		if p.Pct != nil {
			pol += fmt.Sprintf(" pct=%d", *p.Pct)
		}
		fmt.Fprintf(w, "  policy:   %s\n", pol)
		fmt.Fprintf(w, "  %d records, %d messages\n\n", d.RecordCount, d.Messages)
		fmt.Fprintf(w, "  %-40s %7s  %-11s %-5s %-5s %s\n", "source ip", "count", "disposition", "dkim", "spf", "header_from")
		for _, rec := range d.Records {
			fmt.Fprintf(w, "  %-40s %7d  %-11s %-5s %-5s %s\n", rec.SourceIP, rec.Count, rec.Disposition, rec.DKIM, rec.SPF, rec.HeaderFrom)
			var auth []string
			for _, x := range rec.DKIMAuth {
				d := x.Domain
				if x.Selector != "" {
					d += " s=" + x.Selector
				}
				auth = append(auth, strings.Join(strings.Fields("dkim "+d+" "+x.Result), " "))
			}
			for _, x := range rec.SPFAuth {
				auth = append(auth, fmt.Sprintf("spf %s %s", x.Domain, x.Result))
			}
			for _, x := range rec.Reasons {
				auth = append(auth, "reason "+x.Type+" "+x.Comment)
			}
			if len(auth) > 0 {
				fmt.Fprintf(w, "  %s\n", o.Paint("2", "    "+strings.Join(auth, "; ")))
			}
		}
		if int64(len(d.Records)) < d.RecordCount {
			fmt.Fprintf(w, "  … %d more records (--records 0 shows all)\n", d.RecordCount-int64(len(d.Records)))
		}
	case r.TLS != nil:
		fmt.Fprintf(w, "  reporter: %s (%s)\n", r.TLS.OrganizationName, r.TLS.ContactInfo)
		for _, p := range r.TLS.Policies {
			fmt.Fprintf(w, "\n  policy %s for %s: %d sessions ok, %d failed\n", p.Type, p.Domain, p.Successful, p.Failed)
			if len(p.MXHost) > 0 {
				fmt.Fprintf(w, "    mx: %s\n", strings.Join(p.MXHost, ", "))
			}
			for _, f := range p.Failures {
				fmt.Fprintf(w, "    %s %s: %d sessions (mx %s, ip %s, from %s) %s\n", o.Mark(diag.Fail), f.ResultType, f.FailedSessions,
					f.ReceivingMXHostname, f.ReceivingIP, f.SendingMTAIP, f.AdditionalInfo)
			}
		}
	case r.Failure != nil:
		f := r.Failure
		fmt.Fprintf(w, "  feedback: %s", f.FeedbackType)
		if f.AuthFailure != "" {
			fmt.Fprintf(w, " (auth-failure: %s)", f.AuthFailure)
		}
		fmt.Fprintln(w)
		for _, kv := range [][2]string{{"source ip", f.SourceIP}, {"reported", strings.Join(f.ReportedDomain, ", ")},
			{"mail from", f.OriginalMailFrom}, {"rcpt to", strings.Join(f.OriginalRcptTo, ", ")}, {"arrival", f.ArrivalDate},
			{"delivery", f.DeliveryResult}, {"dkim", strings.TrimSpace(f.DKIMDomain + " " + f.DKIMSelector)}, {"spf dns", f.SPFDNS},
			{"orig from", f.OriginalFrom}, {"subject", f.OriginalSubject}} {
			if kv[1] != "" {
				fmt.Fprintf(w, "  %-9s %s\n", kv[0]+":", kv[1])
			}
		}
		for _, ar := range f.AuthResults {
			fmt.Fprintf(w, "  auth:     %s\n", ar)
		}
	case r.Bounce != nil:
		b := r.Bounce
		fmt.Fprintf(w, "  %s %s (%s) from %s: %s\n", b.Kind, b.Severity, b.Format, b.From, b.Subject)
		for _, rc := range b.Recipients {
			fmt.Fprintf(w, "    %s %s %s %s\n", rc.FinalRecipient, rc.Action, rc.Status, rc.DiagnosticCode)
			if e := dsn.Explain(rc.Status); e.Valid {
				fmt.Fprintf(w, "      %s\n", o.Paint("2", e.Meaning))
			}
		}
	}
}

// ---- quarantine

type reportsQuarantineResult struct {
	Items       []store.QuarantineItem `json:"items"`
	Reprocessed []reportsReprocessed   `json:"reprocessed,omitempty"`
}

type reportsReprocessed struct {
	ID       int64            `json:"id"`
	Origin   string           `json:"origin"`
	Imported bool             `json:"imported"` // removed from the quarantine
	Reason   string           `json:"reason,omitempty"`
	Outcomes []ingest.Outcome `json:"outcomes"`
}

func newReportsQuarantineCmd(a *app) *cobra.Command {
	var reprocess bool
	var dump int64
	cmd := &cobra.Command{
		Use:   "quarantine",
		Short: "List what could not be imported; re-process it",
		Long: `List the quarantine: input that could not be decoded or parsed, with where it came
from, why, when and its size. --reprocess runs each item through ingestion
again (a newer mxray may read it) and removes the items that now import.
--dump ID writes an item's bytes to stdout.

Exit codes: 0 listed, or everything re-processed imported; 1 --reprocess left
items in the quarantine.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runReportsQuarantine(reportsContext(cmd, a), a, reprocess, dump)
		},
	}
	cmd.Flags().BoolVar(&reprocess, "reprocess", false, "try to import every quarantined item again")
	cmd.Flags().Int64Var(&dump, "dump", 0, "write the bytes of quarantine item ID to stdout")
	return cmd
}

func runReportsQuarantine(ctx context.Context, a *app, reprocess bool, dump int64) error {
	db, err := reportsOpen(ctx, a)
	if err != nil {
		return err
	}
	defer db.Close()
	if dump != 0 {
		q, err := db.QuarantineGet(ctx, dump)
		if errors.Is(err, store.ErrNotFound) {
			return diag.Usagef("no quarantine item %d", dump)
		}
		if err != nil {
			return diag.Uncheckedf("%v", err)
		}
		_, err = a.stdout.Write(q.Raw)
		return err
	}
	var res reportsQuarantineResult
	remaining := 0
	if reprocess {
		items, err := db.QuarantineList(ctx)
		if err != nil {
			return diag.Uncheckedf("%v", err)
		}
		im := reportsImporter(a, db)
		for _, it := range items {
			q, err := db.QuarantineGet(ctx, it.ID)
			if err != nil {
				return diag.Uncheckedf("%v", err)
			}
			outs, ok, err := im.Reprocess(ctx, q)
			if err != nil {
				return diag.Uncheckedf("reprocessing item %d: %v", it.ID, err)
			}
			rp := reportsReprocessed{ID: it.ID, Origin: it.Origin, Imported: ok, Outcomes: outs}
			if rp.Outcomes == nil {
				rp.Outcomes = []ingest.Outcome{}
			}
			if ok {
				if err := db.QuarantineRemove(ctx, it.ID); err != nil {
					return diag.Uncheckedf("%v", err)
				}
			} else {
				remaining++
				var why []string
				for _, o := range outs {
					if o.Result == ingest.Quarantined {
						why = append(why, o.Reason)
					}
				}
				rp.Reason = strings.Join(why, "; ")
				if rp.Reason != "" && rp.Reason != it.Reason {
					if err := db.QuarantineReason(ctx, it.ID, rp.Reason); err != nil {
						return diag.Uncheckedf("%v", err)
					}
				}
			}
			res.Reprocessed = append(res.Reprocessed, rp)
		}
	}
	res.Items, err = db.QuarantineList(ctx)
	if err != nil {
		return diag.Uncheckedf("%v", err)
	}
	if err := a.out.Result("reports quarantine", res, func(w io.Writer, o *diag.Output) { writeReportsQuarantine(w, o, res, reprocess) }); err != nil {
		return err
	}
	if reprocess && remaining > 0 {
		return diag.Found
	}
	return nil
}

func writeReportsQuarantine(w io.Writer, o *diag.Output, res reportsQuarantineResult, reprocess bool) {
	if reprocess {
		n := 0
		for _, r := range res.Reprocessed {
			if r.Imported {
				n++
				fmt.Fprintf(w, "%s #%d %s imported\n", o.Mark(diag.OK), r.ID, r.Origin)
			}
		}
		fmt.Fprintf(w, "re-processed %d items: %d imported and removed, %d still quarantined\n\n", len(res.Reprocessed), n, len(res.Reprocessed)-n)
	}
	if len(res.Items) == 0 {
		fmt.Fprintln(w, "the quarantine is empty")
		return
	}
	fmt.Fprintf(w, "%d quarantined:\n", len(res.Items))
	for _, q := range res.Items {
		fmt.Fprintf(w, "  #%d  %s  %d bytes  %s\n", q.ID, reportsDate(q.At), q.Size, q.Origin)
		if q.MessageID != "" {
			fmt.Fprintf(w, "       message <%s>\n", q.MessageID)
		}
		fmt.Fprintf(w, "       %s\n", q.Reason)
	}
}

// walkWithStdin walks paths in order, reading "-" as one message from
// standard input (how Postfix's pipe transport hands a report mailbox's
// mail to `mxray reports import -`). Unreadable paths are reported together
// at the end, as ingest.Walk does.
func walkWithStdin(ctx context.Context, stdin io.Reader, paths []string, fn func(ingest.Blob) error) error {
	var unreadable []error
	for _, p := range paths {
		if p != "-" {
			err := ingest.Walk(ctx, []string{p}, 0, fn)
			if err != nil && !errors.Is(err, ingest.ErrUnreadable) {
				return err
			}
			if err != nil {
				unreadable = append(unreadable, err)
			}
			continue
		}
		max := ingest.DefaultLimits().MaxInputBytes
		b, err := io.ReadAll(io.LimitReader(stdin, max+1))
		if err != nil {
			unreadable = append(unreadable, fmt.Errorf("%w: standard input: %w", ingest.ErrUnreadable, err))
			continue
		}
		blob := ingest.Blob{Origin: "stdin", Data: b}
		if int64(len(b)) > max {
			blob = ingest.Blob{Origin: "stdin", Err: fmt.Errorf("%w: standard input is over %d bytes", ingest.ErrTooLarge, max)}
		}
		if err := fn(blob); err != nil {
			return err
		}
	}
	return errors.Join(unreadable...)
}
