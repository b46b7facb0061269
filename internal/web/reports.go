package web

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/mxray/mxray/internal/dnsx"
	"github.com/mxray/mxray/internal/store"
)

// The report dashboards: DMARC aggregate data (RFC 7489 §7.2, RFC 9990)
// and SMTP TLS reports (RFC 8460) by policy domain, one report with its
// records, and the quarantine, read-only. What they show is what `mxray
// reports summary`, `reports show` and `reports quarantine list` print;
// failure reports (failures.go) are listed with their fields. A
// quarantined item can be re-processed (Config.Reprocess); importing and
// deleting stay on the command line.
//
// The DMARC chart covers the latest chartReports aggregate reports
// selected (one bar per day a report period begins, UTC), drawn as inline
// SVG on the server; the sources table is built from the same reports,
// while the totals, rates and dispositions come from store.Summary over
// every report.

// ReportsReader is what the report pages read of the store: *store.DB.
type ReportsReader interface {
	Summary(ctx context.Context, f store.Filter) (*store.Summary, error)
	ReportList(ctx context.Context, f store.ListFilter) ([]store.ReportHead, error)
	Report(ctx context.Context, id int64, maxRecords int) (*store.Report, error)
	QuarantineList(ctx context.Context) ([]store.QuarantineItem, error)
}

const (
	// chartReports bounds the aggregate reports the chart and the
	// sources table read.
	chartReports = 200
	// detailRecords bounds the records one report's page lists.
	detailRecords = 1000
	// sourcesShown bounds the rows of the sources table.
	sourcesShown = 50
)

// reportTabs is the sub-navigation of the report pages.
var reportTabs = []struct{ Path, Label string }{
	{"/reports", "DMARC"},
	{"/reports/tls", "TLS"},
	{"/reports/failure", "Failure reports"},
	{"/reports/quarantine", "Quarantine"},
}

type tab struct {
	Path, Label string
	Current     bool
}

func tabs(current string) []tab {
	var out []tab
	for _, t := range reportTabs {
		out = append(out, tab{t.Path, t.Label, t.Path == current})
	}
	return out
}

// reportsPage is the data of the report pages.
type reportsPage struct {
	Tabs       []tab
	NoStore    bool
	Domain     string   // the domain selected; "" for all
	Domains    []string // every policy domain, for the selector
	Totals     store.Totals
	DMARC      []store.DomainSummary
	TLS        []tlsRow
	Chart      template.HTML
	Periods    []period
	Sources    []sourceRow
	Reports    []reportRow
	Quarantine []store.QuarantineItem
	Report     *store.Report
	Records    []recordRow
	Truncated  bool
	Failures   []failureRow // the failure report list
	Next       int64        // the failure list's next page: ids below it
	Reprocess  bool         // the quarantine has a re-process button
}

// period is one bar of the DMARC chart.
type period struct {
	Day      time.Time
	Messages int64
	Pass     int64
}

func (p period) Fail() int64 { return p.Messages - p.Pass }

// sourceRow is one sending IP address of one policy domain.
type sourceRow struct {
	Domain, IP                     string
	PTR                            string // the first PTR name of IP, "" when none was found
	Messages, Pass, DKIMPass, SPFP int64
	Reporters                      []string
	Troubleshoot                   string // the DMARC troubleshooter prefilled; "" when every message passed
}

func (r sourceRow) Fail() int64          { return r.Messages - r.Pass }
func (r sourceRow) PassRate() string     { return pct(r.Pass, r.Messages) }
func (r sourceRow) DKIMRate() string     { return pct(r.DKIMPass, r.Messages) }
func (r sourceRow) SPFRate() string      { return pct(r.SPFP, r.Messages) }
func (r sourceRow) ReporterList() string { return strings.Join(r.Reporters, ", ") }

// reportRow is one aggregate report in the list.
type reportRow struct {
	store.ReportHead
	Messages, Pass int64
}

// recordRow is one record of a report's page.
type recordRow struct {
	store.Record
	Pass         bool
	Troubleshoot string
}

// tlsRow is one policy domain's TLS summary with its delivery-test link.
type tlsRow struct {
	store.TLSSummary
	Failures []tlsFailureRow
}

type tlsFailureRow struct {
	store.TLSFailureCount
	Test string
}

func pct(n, d int64) string {
	if d == 0 {
		return "–"
	}
	return strconv.FormatFloat(float64(int64(1000*float64(n)/float64(d)+0.5))/10, 'f', 1, 64) + " %"
}

// dmarcPass: a record passes DMARC when its aligned DKIM or SPF result
// (policy_evaluated) is pass (RFC 7489 §6.6.2).
func dmarcPass(r store.Record) bool { return r.DKIM == "pass" || r.SPF == "pass" }

// dmarcLink opens the DMARC troubleshooter with what a receiver saw of a
// failing source: its IP, a MAIL FROM in the policy domain and, when the
// source has one, its PTR name as the EHLO name (the usual case for a
// well-run sender; the user can correct it).
func dmarcLink(ip, domain, helo string) string {
	v := url.Values{"ip": {ip}}
	if domain != "" {
		v.Set("mail_from", "postmaster@"+domain)
	}
	if helo != "" {
		v.Set("helo", helo)
	}
	return "/troubleshoot/dmarc?" + v.Encode()
}

// ptrLimit bounds the whole of a page's PTR lookups: the sources table
// shows what has answered by then.
const ptrLimit = 3 * time.Second

// lookupPTRs fills in the PTR name of each source, eight lookups at a
// time, through the Env's resolver; failing sources' troubleshooter links
// then carry the name as EHLO.
func (s *server) lookupPTRs(ctx context.Context, rows []sourceRow) {
	if s.cfg.Env.Resolver == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, ptrLimit)
	defer cancel()
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for i := range rows {
		ip, err := netip.ParseAddr(rows[i].IP)
		if err != nil {
			continue
		}
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			resp, err := s.cfg.Env.Resolver.Query(ctx, dnsx.ReverseName(ip), dns.TypePTR)
			if err != nil {
				return
			}
			if names := resp.Names(); len(names) > 0 {
				rows[i].PTR = strings.TrimSuffix(names[0], ".")
			}
		})
	}
	wg.Wait()
	for i := range rows {
		if rows[i].Troubleshoot != "" {
			rows[i].Troubleshoot = dmarcLink(rows[i].IP, rows[i].Domain, rows[i].PTR)
		}
	}
}

// deliveryLink runs the delivery test against a policy domain.
func deliveryLink(domain string) string {
	return "/troubleshoot/delivery?" + url.Values{"target": {domain}, "run": {"1"}}.Encode()
}

func (s *server) reportsBase(w http.ResponseWriter, sess *store.AdminSession, title, tabPath string) (page, *reportsPage) {
	rp := &reportsPage{Tabs: tabs(tabPath), NoStore: s.cfg.Reports == nil}
	return page{Title: title, Nav: "/reports", User: sess.Admin, CSRF: sess.CSRF, Data: rp}, rp
}

func (s *server) storeError(w http.ResponseWriter, err error) {
	s.log.Error("web: reports", "err", err)
	http.Error(w, "the store could not be read", http.StatusInternalServerError)
}

// domainParam is the domain selector's value, lower-cased.
func domainParam(r *http.Request) string {
	return strings.ToLower(strings.TrimSpace(r.URL.Query().Get("domain")))
}

func (s *server) dmarcReportsPage(w http.ResponseWriter, r *http.Request, sess *store.AdminSession) {
	p, rp := s.reportsBase(w, sess, "Reports: DMARC", "/reports")
	if rp.NoStore {
		s.render(w, http.StatusOK, "reports_dmarc", p)
		return
	}
	ctx := r.Context()
	rp.Domain = domainParam(r)
	all, err := s.cfg.Reports.Summary(ctx, store.Filter{Top: 1})
	if err != nil {
		s.storeError(w, err)
		return
	}
	for _, d := range all.Domains {
		rp.Domains = append(rp.Domains, d.Domain)
	}
	sum := all
	if rp.Domain != "" {
		if sum, err = s.cfg.Reports.Summary(ctx, store.Filter{Domain: rp.Domain, Top: 1}); err != nil {
			s.storeError(w, err)
			return
		}
	}
	rp.Totals, rp.DMARC = sum.Totals, sum.Domains
	if err := s.dmarcDetails(ctx, rp); err != nil {
		s.storeError(w, err)
		return
	}
	rp.Chart = dmarcChart(rp.Periods)
	s.render(w, http.StatusOK, "reports_dmarc", p)
}

// dmarcDetails reads the latest chartReports aggregate reports of the
// selection for the chart, the sources and the report list.
func (s *server) dmarcDetails(ctx context.Context, rp *reportsPage) error {
	heads, err := s.cfg.Reports.ReportList(ctx, store.ListFilter{Kind: store.KindDMARC, Domain: rp.Domain, Limit: chartReports})
	if err != nil {
		return err
	}
	days := map[time.Time]*period{}
	type key struct{ domain, ip string }
	srcs := map[key]*sourceRow{}
	for _, h := range heads {
		rep, err := s.cfg.Reports.Report(ctx, h.ID, 0)
		if errors.Is(err, store.ErrNotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			return err
		}
		if rep.DMARC == nil {
			continue
		}
		row := reportRow{ReportHead: h}
		day := h.Begin.UTC().Truncate(24 * time.Hour)
		pd := days[day]
		if pd == nil {
			pd = &period{Day: day}
			days[day] = pd
		}
		for _, rec := range rep.DMARC.Records {
			pass := dmarcPass(rec)
			row.Messages += rec.Count
			pd.Messages += rec.Count
			k := key{h.Domain, rec.SourceIP}
			sr := srcs[k]
			if sr == nil {
				sr = &sourceRow{Domain: h.Domain, IP: rec.SourceIP}
				srcs[k] = sr
			}
			sr.Messages += rec.Count
			if pass {
				row.Pass += rec.Count
				pd.Pass += rec.Count
				sr.Pass += rec.Count
			}
			if rec.DKIM == "pass" {
				sr.DKIMPass += rec.Count
			}
			if rec.SPF == "pass" {
				sr.SPFP += rec.Count
			}
			if !slices.Contains(sr.Reporters, h.Reporter) {
				sr.Reporters = append(sr.Reporters, h.Reporter)
			}
		}
		rp.Reports = append(rp.Reports, row)
	}
	for _, pd := range days {
		rp.Periods = append(rp.Periods, *pd)
	}
	slices.SortFunc(rp.Periods, func(a, b period) int { return a.Day.Compare(b.Day) })
	for _, sr := range srcs {
		if sr.Fail() > 0 {
			sr.Troubleshoot = dmarcLink(sr.IP, sr.Domain, "")
		}
		slices.Sort(sr.Reporters)
		rp.Sources = append(rp.Sources, *sr)
	}
	// Failing sources first, by messages failing, then by volume.
	slices.SortFunc(rp.Sources, func(a, b sourceRow) int {
		return cmp.Or(cmp.Compare(b.Fail(), a.Fail()), cmp.Compare(b.Messages, a.Messages),
			cmp.Compare(a.Domain, b.Domain), cmp.Compare(a.IP, b.IP))
	})
	if len(rp.Sources) > sourcesShown {
		rp.Sources, rp.Truncated = rp.Sources[:sourcesShown], true
	}
	s.lookupPTRs(ctx, rp.Sources)
	return nil
}

// chartText names what a bar chart counts.
type chartText struct {
	ID, Title, Unit, Pass, Fail string
}

// dmarcChart draws the messages of each period as a bar, the part that
// failed DMARC stacked on the part that passed.
func dmarcChart(ps []period) template.HTML {
	return barChart(ps, chartText{"dmarc-chart", "Messages per day, DMARC pass and fail", "messages", "pass", "fail"})
}

// tlsChart draws the TLS sessions of each period, failed on successful.
func tlsChart(ps []period) template.HTML {
	return barChart(ps, chartText{"tls-chart", "TLS sessions per day, successful and failed", "sessions", "successful", "failed"})
}

// barChart draws each period as a bar, the failing part stacked on the
// passing part, as inline SVG (no script, no external resource). The
// numbers are in the table that follows it; the bars are told apart by a
// pattern as well as by colour.
func barChart(ps []period, t chartText) template.HTML {
	if len(ps) == 0 {
		return ""
	}
	const w, h, left, bottom, top = 640.0, 220.0, 48.0, 24.0, 10.0
	var max int64 = 1
	for _, p := range ps {
		max = maxInt(max, p.Messages)
	}
	plotW, plotH := w-left-8, h-bottom-top
	slot := plotW / float64(len(ps))
	bw := min(slot*0.7, 48)
	var b strings.Builder
	esc := template.HTMLEscapeString
	fmt.Fprintf(&b, `<svg id="%s" class="chart" viewBox="0 0 %g %g" role="img" aria-labelledby="chart-title chart-desc" xmlns="http://www.w3.org/2000/svg">`, esc(t.ID), w, h)
	fmt.Fprintf(&b, `<title id="chart-title">%s</title><desc id="chart-desc">%d days from %s to %s; the table below gives the numbers.</desc>`,
		esc(t.Title), len(ps), ps[0].Day.Format(time.DateOnly), ps[len(ps)-1].Day.Format(time.DateOnly))
	b.WriteString(`<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="6" height="6" class="bar-fail"/><line x1="0" y1="0" x2="0" y2="6" class="hatch-line"/></pattern></defs>`)
	fmt.Fprintf(&b, `<line x1="%g" y1="%g" x2="%g" y2="%g" class="axis"/>`, left, top+plotH, w-8, top+plotH)
	fmt.Fprintf(&b, `<line x1="%g" y1="%g" x2="%g" y2="%g" class="axis"/>`, left, top, left, top+plotH)
	fmt.Fprintf(&b, `<text x="%g" y="%g" class="tick" text-anchor="end">%d</text>`, left-4, top+8, max)
	fmt.Fprintf(&b, `<text x="%g" y="%g" class="tick" text-anchor="end">0</text>`, left-4, top+plotH)
	for i, p := range ps {
		x := left + float64(i)*slot + (slot-bw)/2
		hp := plotH * float64(p.Pass) / float64(max)
		hf := plotH * float64(p.Fail()) / float64(max)
		label := fmt.Sprintf("%s: %d %s, %d %s, %d %s", p.Day.Format(time.DateOnly), p.Messages, t.Unit, p.Pass, t.Pass, p.Fail(), t.Fail)
		fmt.Fprintf(&b, `<g><title>%s</title>`, esc(label))
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" class="bar-pass"/>`, x, top+plotH-hp, bw, hp)
		if hf > 0 {
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="url(#hatch)" class="bar-fail-hatched"/>`, x, top+plotH-hp-hf, bw, hf)
		}
		b.WriteString(`</g>`)
	}
	fmt.Fprintf(&b, `<text x="%g" y="%g" class="tick" text-anchor="start">%s</text>`, left, h-6, ps[0].Day.Format(time.DateOnly))
	if len(ps) > 1 {
		fmt.Fprintf(&b, `<text x="%g" y="%g" class="tick" text-anchor="end">%s</text>`, w-8, h-6, ps[len(ps)-1].Day.Format(time.DateOnly))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) // every text written above is escaped or a number
}

func maxInt(a, b int64) int64 {
	if a > b {
		return a
	}
	return b
}

func (s *server) tlsReportsPage(w http.ResponseWriter, r *http.Request, sess *store.AdminSession) {
	p, rp := s.reportsBase(w, sess, "Reports: TLS", "/reports/tls")
	if rp.NoStore {
		s.render(w, http.StatusOK, "reports_tls", p)
		return
	}
	rp.Domain = domainParam(r)
	all, err := s.cfg.Reports.Summary(r.Context(), store.Filter{Top: 1})
	if err != nil {
		s.storeError(w, err)
		return
	}
	for _, d := range all.TLS {
		rp.Domains = append(rp.Domains, d.Domain)
	}
	sum := all
	if rp.Domain != "" {
		if sum, err = s.cfg.Reports.Summary(r.Context(), store.Filter{Domain: rp.Domain, Top: 1}); err != nil {
			s.storeError(w, err)
			return
		}
	}
	rp.Totals = sum.Totals
	if err := s.tlsPeriods(r.Context(), rp); err != nil {
		s.storeError(w, err)
		return
	}
	rp.Chart = tlsChart(rp.Periods)
	for _, d := range sum.TLS {
		row := tlsRow{TLSSummary: d}
		for _, f := range d.Failures {
			row.Failures = append(row.Failures, tlsFailureRow{TLSFailureCount: f, Test: deliveryLink(d.Domain)})
		}
		rp.TLS = append(rp.TLS, row)
	}
	s.render(w, http.StatusOK, "reports_tls", p)
}

// tlsPeriods counts the sessions of the latest chartReports TLS reports
// (of the selected policy domain) per day their period begins (UTC):
// Messages holds all sessions, Pass the successful ones.
func (s *server) tlsPeriods(ctx context.Context, rp *reportsPage) error {
	heads, err := s.cfg.Reports.ReportList(ctx, store.ListFilter{Kind: store.KindTLS, Limit: chartReports})
	if err != nil {
		return err
	}
	days := map[time.Time]*period{}
	for _, h := range heads {
		rep, err := s.cfg.Reports.Report(ctx, h.ID, 0)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		if rep.TLS == nil {
			continue
		}
		day := rep.Begin.UTC().Truncate(24 * time.Hour)
		for _, pol := range rep.TLS.Policies {
			if rp.Domain != "" && !strings.EqualFold(pol.Domain, rp.Domain) {
				continue
			}
			pd := days[day]
			if pd == nil {
				pd = &period{Day: day}
				days[day] = pd
			}
			pd.Messages += pol.Successful + pol.Failed
			pd.Pass += pol.Successful
		}
	}
	for _, pd := range days {
		rp.Periods = append(rp.Periods, *pd)
	}
	slices.SortFunc(rp.Periods, func(a, b period) int { return a.Day.Compare(b.Day) })
	return nil
}

func (s *server) quarantinePage(w http.ResponseWriter, r *http.Request, sess *store.AdminSession) {
	s.renderQuarantine(w, r, sess, http.StatusOK, "", "")
}

// renderQuarantine shows the quarantine with a notice or an error.
func (s *server) renderQuarantine(w http.ResponseWriter, r *http.Request, sess *store.AdminSession, code int, notice, fail string) {
	p, rp := s.reportsBase(w, sess, "Reports: quarantine", "/reports/quarantine")
	p.Notice, p.Error = notice, fail
	rp.Reprocess = s.cfg.Reprocess != nil
	if !rp.NoStore {
		q, err := s.cfg.Reports.QuarantineList(r.Context())
		if err != nil {
			s.storeError(w, err)
			return
		}
		rp.Quarantine = q
	}
	s.render(w, code, "reports_quarantine", p)
}

func (s *server) reportPage(w http.ResponseWriter, r *http.Request, sess *store.AdminSession) {
	p, rp := s.reportsBase(w, sess, "Report", "")
	if rp.NoStore {
		s.render(w, http.StatusOK, "report", p)
		return
	}
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		http.NotFound(w, r)
		return
	}
	rep, err := s.cfg.Reports.Report(r.Context(), id, detailRecords)
	if errors.Is(err, store.ErrNotFound) {
		http.NotFound(w, r)
		return
	}
	if err != nil {
		s.storeError(w, err)
		return
	}
	rp.Report = rep
	p.Title = fmt.Sprintf("Report %d", id)
	if rep.DMARC != nil {
		for _, rec := range rep.DMARC.Records {
			row := recordRow{Record: rec, Pass: dmarcPass(rec)}
			if !row.Pass {
				row.Troubleshoot = dmarcLink(rec.SourceIP, rep.Domain, "")
			}
			rp.Records = append(rp.Records, row)
		}
		rp.Truncated = rep.DMARC.RecordCount > int64(len(rep.DMARC.Records))
	}
	s.render(w, http.StatusOK, "report", p)
}
