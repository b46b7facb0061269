package maillog

import (
	"bufio"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

// TopN is how many rows WriteText shows in each ranked table.
const TopN = 10

// WriteText writes s as a report for a terminal: grand totals in
// pflogsumm's order and wording, then traffic, domains, users and problems.
func WriteText(w io.Writer, s *Summary) error {
	bw := bufio.NewWriter(w)
	p := func(format string, args ...any) { fmt.Fprintf(bw, format, args...) }
	title := func(t string) { p("\n%s\n%s\n", t, strings.Repeat("-", len(t))) }

	if !s.First.IsZero() {
		p("Log from %s to %s\n", s.First.Format(time.DateTime), s.Last.Format(time.DateTime))
	}
	p("Lines: %d (postfix %d, dovecot %d, other programs %d, unparsed %d)\n",
		s.Lines.Total, s.Lines.Postfix, s.Lines.Dovecot, s.Lines.Other, s.Lines.Unparsed)

	t := s.Totals
	title("Grand Totals")
	p("messages\n\n")
	p(" %8d  received\n", t.Received)
	p(" %8d  delivered\n", t.Delivered)
	p(" %8d  forwarded\n", t.Forwarded)
	p(" %8d  deferred  (%d deferrals)\n", t.Deferred, t.Deferrals)
	p(" %8d  bounced\n", t.Bounced)
	p(" %8d  rejected (%d%%)\n", t.Rejected, t.RejectedPercent)
	p(" %8d  reject warnings\n", t.RejectWarnings)
	p(" %8d  held\n", t.Held)
	p(" %8d  discarded (%d%%)\n\n", t.Discarded, t.DiscardedPercent)
	p(" %8s  bytes received\n", humanBytes(t.BytesReceived))
	p(" %8s  bytes delivered\n", humanBytes(t.BytesDelivered))
	p(" %8d  senders\n", t.Senders)
	p(" %8d  sending hosts/domains\n", t.SendingDomains)
	p(" %8d  recipients\n", t.Recipients)
	p(" %8d  recipient hosts/domains\n", t.RecipientDomains)

	if len(s.PerDay) > 1 {
		title("Per-Day Traffic Summary")
		p("    %-10s %9s %9s %9s %9s %9s\n", "date", "received", "delivered", "deferred", "bounced", "rejected")
		for _, d := range s.PerDay {
			p("    %-10s %9d %9d %9d %9d %9d\n", d.Date, d.Received, d.Delivered, d.Deferred, d.Bounced, d.Rejected)
		}
	}
	title("Per-Hour Traffic Summary")
	p("    %-9s  %9s %9s %9s %9s %9s\n", "time", "received", "delivered", "deferred", "bounced", "rejected")
	for h, r := range s.PerHour {
		if r == (Traffic{}) {
			continue
		}
		p("    %02d00-%02d00  %9d %9d %9d %9d %9d\n", h, h+1, r.Received, r.Delivered, r.Deferred, r.Bounced, r.Rejected)
	}

	title("Host/Domain Summary: Message Delivery")
	p(" %8s %9s %8s %9s %9s  %s\n", "sent cnt", "bytes", "defers", "avg dly", "max dly", "host/domain")
	for _, d := range top(s.ByRecipientDomain, TopN) {
		p(" %8d %9s %8d %9s %9s  %s\n", d.Count, humanBytes(d.Bytes), d.Deferrals, humanDelay(d.AvgDelay), humanDelay(d.MaxDelay), d.Domain)
	}
	title("Host/Domain Summary: Messages Received")
	p(" %8s %9s  %s\n", "msg cnt", "bytes", "host/domain")
	for _, d := range top(s.BySendingDomain, TopN) {
		p(" %8d %9s  %s\n", d.Count, humanBytes(d.Bytes), d.Domain)
	}

	users := func(name string, list []AddressStats, bySize bool) {
		l := append([]AddressStats(nil), list...)
		if bySize {
			sort.SliceStable(l, func(i, j int) bool { return l[i].Bytes > l[j].Bytes })
		}
		title(name)
		for _, a := range top(l, TopN) {
			if bySize {
				p(" %9s  %s\n", humanBytes(a.Bytes), a.Address)
			} else {
				p(" %9d  %s\n", a.Count, a.Address)
			}
		}
	}
	users("Senders by message count", s.Senders, false)
	users("Recipients by message count", s.Recipients, false)
	users("Senders by message size", s.Senders, true)
	users("Recipients by message size", s.Recipients, true)

	reasons := func(name, group string, list []Reason) {
		if len(list) == 0 {
			return
		}
		title(name)
		for _, r := range top(list, TopN) {
			if r.Group != "" {
				p(" %8d  %s: %s\n", r.Count, r.Group, r.Text)
			} else {
				p(" %8d  %s\n", r.Count, r.Text)
			}
		}
		if len(list) > TopN {
			p("     (%d more)\n", len(list)-TopN)
		}
	}
	reasons("Message Deferrals", "service", s.Deferrals)
	reasons("Message Bounces", "relay", s.Bounces)
	if len(s.Rejects) > 0 {
		title("Rejects, warnings, holds and discards")
		for _, r := range top(s.Rejects, TopN) {
			p(" %8d  %s %s %s: %s\n", r.Count, r.Service, r.Action, r.Stage, r.Reason)
		}
		if len(s.Rejects) > TopN {
			p("     (%d more)\n", len(s.Rejects)-TopN)
		}
	}
	reasons("Warnings", "service", s.Warnings)
	reasons("Fatal Errors", "service", s.Fatals)
	reasons("Panics", "service", s.Panics)

	title("SMTP connections")
	for _, c := range s.SMTP.Connections {
		p(" %8d  %s\n", c.Count, c.Name)
	}
	p(" %8d  TLS sessions (smtpd)\n", s.SMTP.TLSConnections)
	p(" %8d  lost connections, %d timeouts\n", s.SMTP.LostConnections, s.SMTP.Timeouts)
	p(" %8d  SASL authentication failures\n", s.SMTP.SASLFailures)
	for _, c := range top(s.SMTP.SASLFailuresByIP, 5) {
		p("   %8d  %s\n", c.Count, c.Name)
	}
	if ps := s.SMTP.Postscreen; ps.Connections > 0 {
		p(" %8d  postscreen connections, %d passed\n", ps.Connections, ps.Passed)
		for _, v := range ps.Violations {
			p("   %8d  %s\n", v.Count, v.Name)
		}
	}
	reasons("Outgoing connection failures", "", s.SMTP.ConnectFailures)

	d := s.Dovecot
	if d.Logins+d.LoginFailures+d.AbortedLogins+d.Deliveries+d.DeliveryFailures > 0 {
		title("Dovecot")
		p(" %8d  logins\n", d.Logins)
		for _, c := range d.LoginsByService {
			p("   %8d  %s\n", c.Count, c.Name)
		}
		p(" %8d  login failures\n", d.LoginFailures)
		for _, c := range top(d.FailuresByIP, 5) {
			p("   %8d  from %s\n", c.Count, c.Name)
		}
		for _, c := range top(d.FailuresByUser, 5) {
			p("   %8d  user %s\n", c.Count, c.Name)
		}
		p(" %8d  aborted before authentication\n", d.AbortedLogins)
		if d.Deliveries+d.DeliveryFailures > 0 {
			p(" %8d  LMTP/LDA deliveries, %d failed\n", d.Deliveries, d.DeliveryFailures)
		}
	}
	return bw.Flush()
}

func top[T any](l []T, n int) []T {
	if len(l) > n {
		return l[:n]
	}
	return l
}

// humanBytes writes byte counts the way pflogsumm does: exact below 512k,
// then k, then m.
func humanBytes(n int64) string {
	switch {
	case n > 512<<20:
		return fmt.Sprintf("%dm", n>>20)
	case n > 512<<10:
		return fmt.Sprintf("%dk", n>>10)
	}
	return fmt.Sprintf("%d", n)
}

func humanDelay(sec float64) string {
	switch {
	case sec > 3600:
		return fmt.Sprintf("%.1f h", sec/3600)
	case sec > 60:
		return fmt.Sprintf("%.1f m", sec/60)
	}
	return fmt.Sprintf("%.1f s", sec)
}
