package main

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mxray/mxray/internal/diag"
	"github.com/mxray/mxray/internal/domain"
)

type domainOpts struct {
	selectors []string
	outbound  []string
	dnsbl     []string
	email     string
}

func newDomainCmd(a *app) *cobra.Command {
	var o domainOpts
	cmd := &cobra.Command{
		Use:   "domain DOMAIN",
		Short: "Audit a mail domain: MX, SPF, DMARC, DKIM, MTA-STS, TLS-RPT, SRV, autoconfig, blocklists",
		Long: `Audit everything about DOMAIN that senders, receivers and mail clients look at,
and explain each finding with its cause, the fix and the RFC:

  MX hosts with their addresses and forward-confirmed reverse DNS; SPF (one
  record, syntax, DNS lookups and void lookups counted by the evaluator, the
  all mechanism); DMARC (policy strength, t=, pct, rua/ruf and whether external
  report addresses agreed); DKIM keys (present, type, size, revoked, t=y) for
  --dkim-selector, or for common selectors when none is given; MTA-STS and
  whether every MX matches the policy; TLS-RPT; BIMI; the SRV records of RFC
  6186 and RFC 8314; Thunderbird autoconfig and Outlook Autodiscover, and
  whether the servers they advertise answer (connect, TLS, certificate) and
  agree with SRV and MX; the MX and --outbound-ip addresses in DNS blocklists.

Independent lookups run in parallel. Text output groups the findings by
severity, worst first; --json prints one step per finding (ids in
docs/json.md), then the result with one object per section.

Exit codes: 0 no failure (warnings exit 1 only with --strict); 1 a finding
failed; 2 bad usage; 3 DNS could not be checked (SERVFAIL, timeout) for the MX,
SPF or DMARC lookups.`,
		Example: `  mxray domain example.com
  mxray domain example.com --dkim-selector s1 --dkim-selector s2 --outbound-ip 192.0.2.25
  mxray domain example.com --dnsbl zen.spamhaus.org,bl.spamcop.net --json`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDomain(cmd.Context(), a, o, args[0])
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&o.selectors, "dkim-selector", nil, "DKIM selector to check (repeatable or comma-separated; default: try common selectors)")
	f.StringSliceVar(&o.outbound, "outbound-ip", nil, "address the domain sends mail from: reverse DNS, SPF and blocklists (repeatable)")
	f.StringSliceVar(&o.dnsbl, "dnsbl", domain.DefaultDNSBL, "DNS blocklist zones to ask (comma-separated; \"none\" for none)")
	f.StringVar(&o.email, "email", "", "address to give autoconfig and Autodiscover (default postmaster@DOMAIN)")
	return cmd
}

func runDomain(ctx context.Context, a *app, o domainOpts, arg string) error {
	t, err := domain.ParseTarget(arg)
	if err != nil {
		return diag.Usagef("%v", err)
	}
	for _, s := range o.selectors {
		s = strings.TrimSpace(s)
		if s == "" || strings.ContainsAny(s, " \t/@") || strings.HasPrefix(s, ".") || strings.HasSuffix(s, ".") {
			return diag.Usagef("--dkim-selector %q is not a selector (a DNS label, e.g. s1)", s)
		}
		t.Selectors = append(t.Selectors, strings.ToLower(s))
	}
	for _, s := range o.outbound {
		ip, err := netip.ParseAddr(strings.TrimSpace(s))
		if err != nil || ip.Zone() != "" {
			return diag.Usagef("--outbound-ip %q is not an IP address", s)
		}
		t.OutboundIPs = append(t.OutboundIPs, ip.Unmap())
	}
	t.DNSBL = []string{}
	for _, z := range o.dnsbl {
		z = strings.TrimSpace(z)
		switch {
		case z == "" || strings.EqualFold(z, "none"):
			continue
		case strings.ContainsAny(z, " \t/@:"):
			return diag.Usagef("--dnsbl %q is not a zone name", z)
		}
		t.DNSBL = append(t.DNSBL, z)
	}
	if o.email != "" {
		if i := strings.LastIndexByte(o.email, '@'); i <= 0 || i == len(o.email)-1 || strings.ContainsAny(o.email, " \t<>") {
			return diag.Usagef("--email %q: want LOCAL@DOMAIN", o.email)
		}
		t.Email = o.email
	}

	// Text output groups the findings at the end, so only the live
	// "running" line (on a terminal) is shown while the audit runs.
	sink := a.out.Sink()
	if !a.out.JSON {
		sink = startOnly{sink}
	}
	res := domain.Run(ctx, a.env, t, sink)
	if err := a.out.Result("domain", res, func(w io.Writer, out *diag.Output) { writeDomainText(w, out, res) }); err != nil {
		return err
	}
	if len(res.Unchecked) > 0 {
		return diag.Uncheckedf("domain %s: DNS could not be checked: %s", res.Domain, strings.Join(res.Unchecked, "; "))
	}
	return a.statusExit(diag.Worst(res.Steps))
}

// startOnly passes on Start events only: the text renderer's live line.
type startOnly struct{ diag.Sink }

func (startOnly) Finish(diag.Step) {}

func writeDomainText(w io.Writer, o *diag.Output, res domain.Result) {
	c := res.Counts
	fmt.Fprintf(w, "%s  %d fail, %d warn, %d ok, %d info\n",
		o.Paint("1", "Domain audit of "+res.Domain), c.Fail, c.Warn, c.OK, c.Info)
	groups := []struct {
		st   diag.Status
		name string
	}{{diag.Fail, "Failures"}, {diag.Warn, "Warnings"}, {diag.OK, "OK"}, {diag.Info, "Information"}, {diag.Skip, "Skipped"}}
	for _, g := range groups {
		var steps []diag.Step
		for _, st := range res.Steps {
			if st.Status == g.st {
				steps = append(steps, st)
			}
		}
		if len(steps) == 0 {
			continue
		}
		fmt.Fprintf(w, "\n%s\n", o.Paint("1", g.name))
		for _, st := range steps {
			writeFinding(w, o, st)
		}
	}
	if len(res.Unchecked) > 0 {
		fmt.Fprintf(w, "\n%s DNS could not be checked: %s\n", o.Paint("31", "INCOMPLETE"), strings.Join(res.Unchecked, "; "))
	}
}

// writeFinding prints one finding: mark, section, title, then the cause,
// the fix and the rule, indented.
func writeFinding(w io.Writer, o *diag.Output, st diag.Step) {
	fmt.Fprintf(w, "%s %s %s\n", o.Mark(st.Status), o.Paint("2", st.ID+":"), st.Title)
	indent := func(prefix, text string) {
		for _, line := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
			fmt.Fprintf(w, "       %s%s\n", prefix, line)
		}
	}
	if st.Detail != "" {
		indent("", st.Detail)
	}
	if st.Hint != "" {
		indent(o.Paint("1", "fix: "), st.Hint)
	}
	if st.RFC != "" {
		indent(o.Paint("2", "see: "), st.RFC)
	}
}
