package main

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mxray/mxray/internal/diag"
	"github.com/mxray/mxray/internal/spf"
)

type spfOpts struct {
	ip       string
	mailFrom string
	helo     string
}

func newSPFCmd(a *app) *cobra.Command {
	var o spfOpts
	cmd := &cobra.Command{
		Use:   "spf --ip IP --mail-from ADDRESS [--helo HOST]",
		Short: "Evaluate a domain's SPF policy for a client IP, with a trace of every lookup",
		Long: `Evaluate SPF (RFC 7208) as a receiving mail server would for a message from
--ip with envelope sender --mail-from, and show why: every term of every record
read (include and redirect nested), each macro expansion, each DNS query and its
answer, the running count of DNS lookups (limit 10) and void lookups (limit 2),
the term that matched, and for any result but pass, the cause and the fix.

An empty --mail-from (a bounce) checks postmaster@HELO, as RFC 7208 §2.4 says;
--helo is then required.

Exit codes: 0 pass; 1 fail, softfail, neutral, none or permerror; 2 bad usage;
3 temperror (a DNS lookup failed or timed out: could not check).`,
		Example: `  mxray spf --ip 192.0.2.1 --mail-from alice@example.com
  mxray spf --ip 2001:db8::25 --mail-from '' --helo mail.example.com
  mxray spf --ip 192.0.2.1 --mail-from alice@example.com --json`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			f := cmd.Flags()
			if !f.Changed("ip") {
				return diag.Usagef("mxray spf: --ip is required (the client's address)")
			}
			if !f.Changed("mail-from") {
				return diag.Usagef("mxray spf: --mail-from is required (use --mail-from '' --helo HOST for a bounce)")
			}
			return runSPF(cmd.Context(), a, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.ip, "ip", "", "the SMTP client's IP address (IPv4 or IPv6)")
	f.StringVar(&o.mailFrom, "mail-from", "", "the envelope sender (MAIL FROM); '' for a bounce")
	f.StringVar(&o.helo, "helo", "", "the HELO/EHLO name the client gave")
	return cmd
}

func runSPF(ctx context.Context, a *app, o spfOpts) error {
	ip, err := netip.ParseAddr(strings.TrimSpace(o.ip))
	if err != nil || ip.Zone() != "" {
		return diag.Usagef("--ip %q is not an IP address", o.ip)
	}
	from := strings.TrimSpace(o.mailFrom)
	if strings.HasPrefix(from, "<") && strings.HasSuffix(from, ">") {
		from = from[1 : len(from)-1]
	}
	helo := strings.TrimSpace(o.helo)
	switch {
	case from == "" && helo == "":
		return diag.Usagef("--mail-from is empty (a bounce): give --helo, whose postmaster@HELO is then checked")
	case from != "":
		i := strings.LastIndexByte(from, '@')
		if i < 0 || i == len(from)-1 || strings.ContainsAny(from, " \t") {
			return diag.Usagef("--mail-from %q: want LOCAL@DOMAIN (or '' with --helo for a bounce)", o.mailFrom)
		}
	}
	res := spf.Check(ctx, a.env, spf.Query{IP: ip, MailFrom: from, Helo: helo})
	if err := a.out.Result("spf", res, func(w io.Writer, out *diag.Output) { writeSPFText(w, out, res) }); err != nil {
		return err
	}
	switch res.Status {
	case spf.Pass:
		return nil
	case spf.Temperror:
		return diag.Uncheckedf("spf: temperror for %s: %s", res.Domain, strings.TrimPrefix(res.Err.Error(), "spf: "))
	}
	return diag.Found
}

// spfMark is the line mark of a result: pass ok; softfail, neutral and
// none a warning; fail, permerror and temperror a failure.
func spfMark(o *diag.Output, s spf.Status) string {
	switch s {
	case spf.Pass:
		return o.Mark(diag.OK)
	case spf.Softfail, spf.Neutral, spf.None:
		return o.Mark(diag.Warn)
	}
	return o.Mark(diag.Fail)
}

func writeSPFText(w io.Writer, o *diag.Output, res spf.Result) {
	fmt.Fprintf(w, "%s SPF %s for %s from %s\n", spfMark(o, res.Status), o.Paint("1", string(res.Status)), res.Sender, res.IP)
	const ind = "       "
	fmt.Fprintf(w, "%sdomain %s (identity %s); DNS lookups %d/%d, void lookups %d/%d\n",
		ind, res.Domain, res.Identity, res.Lookups, spf.MaxLookups, res.VoidLookups, spf.MaxVoidLookups)
	if res.Matched != "" {
		fmt.Fprintf(w, "%smatched %s in the record of %s\n", ind, o.Paint("1", res.Matched), res.MatchedIn)
	}
	if res.Explanation != "" {
		fmt.Fprintf(w, "%sexplanation: %s\n", ind, res.Explanation)
	}
	if res.Trace != nil {
		fmt.Fprintln(w)
		writeSPFNode(w, o, res.Trace, ind)
	}
	if res.Status != spf.Pass {
		fmt.Fprintln(w)
		if res.Problem != "" {
			fmt.Fprintf(w, "%sproblem: %s\n", ind, res.Problem)
		}
		if res.Hint != "" {
			fmt.Fprintf(w, "%s%s%s\n", ind, o.Paint("1", "fix: "), res.Hint)
		}
		if res.RFC != "" {
			fmt.Fprintf(w, "%s%s%s\n", ind, o.Paint("2", "see: "), res.RFC)
		}
	}
}

// writeSPFNode prints a record and its terms, includes and redirects
// indented under the term that followed them.
func writeSPFNode(w io.Writer, o *diag.Output, n *spf.Node, ind string) {
	if n.Kind == "record" {
		rec := "(no SPF record)"
		switch {
		case n.Record != "":
			rec = fmt.Sprintf("%q", n.Record)
		case len(n.Records) > 0:
			rec = fmt.Sprintf("%d SPF records", len(n.Records))
		}
		fmt.Fprintf(w, "%s%s: %s  → %s\n", ind, o.Paint("1", n.Domain), rec, n.Result)
		for _, r := range n.Records {
			fmt.Fprintf(w, "%s  %q\n", ind, r)
		}
		for _, q := range n.Queries {
			if q.Type == "TXT" && q.Status == "ok" {
				continue // the record line shows the answer
			}
			fmt.Fprintf(w, "%s  %s\n", ind, spfQueryLine(q))
		}
		if n.Error != "" && len(n.Children) == 0 {
			fmt.Fprintf(w, "%s  %s %s\n", ind, o.Paint("31", "!!"), n.Error)
		}
		for _, c := range n.Children {
			writeSPFNode(w, o, c, ind+"  ")
		}
		return
	}
	mark, outcome := "  ", "no match"
	switch {
	case n.Skipped:
		outcome = o.Paint("2", "not evaluated")
	case n.Limit != "":
		mark = o.Paint("31", "!!")
		outcome = o.Paint("31", spfLimitText(n))
	case n.Error != "" && len(n.Children) > 0:
		mark = o.Paint("31", "!!")
		outcome = o.Paint("31", "→ "+string(n.Result))
	case n.Error != "":
		mark = o.Paint("31", "!!")
		outcome = o.Paint("31", "error")
	case n.Kind == string(spf.KindExp) || n.Kind == string(spf.KindUnknown):
		outcome = ""
	case n.Kind == string(spf.KindRedirect):
		outcome = ""
		if n.Result != "" {
			mark = o.Paint("1", "=>")
			outcome = "→ " + string(n.Result)
		}
	case n.Matched:
		mark = o.Paint("1", "=>")
		outcome = o.Paint("1", "MATCH → "+string(n.Qualifier.Status()))
	case n.Kind == string(spf.KindInclude) && n.Result != "":
		outcome = fmt.Sprintf("no match (included result %s)", n.Result)
	}
	counts := ""
	switch spf.Kind(n.Kind) {
	case spf.KindInclude, spf.KindA, spf.KindMX, spf.KindPTR, spf.KindExists, spf.KindRedirect:
		if !n.Skipped && n.Note != "" && strings.HasPrefix(n.Note, "ignored") {
			break
		}
		if !n.Skipped {
			counts = o.Paint("2", fmt.Sprintf("  [lookups %d, void %d]", n.Lookups, n.VoidLookups))
		}
	}
	fmt.Fprintln(w, strings.TrimRight(fmt.Sprintf("%s%s %-34s %s%s", ind, mark, n.Term, outcome, counts), " "))
	sub := ind + "     "
	if strings.Contains(n.Spec, "%") && n.Expanded != "" {
		fmt.Fprintf(w, "%sexpands to %s\n", sub, n.Expanded)
	}
	for _, q := range n.Queries {
		fmt.Fprintf(w, "%s%s\n", sub, spfQueryLine(q))
	}
	if n.Note != "" {
		fmt.Fprintf(w, "%s%s\n", sub, n.Note)
	}
	// An include's error that its record already shows is not repeated.
	if n.Error != "" && (len(n.Children) == 0 || n.Children[0].Error != n.Error) {
		fmt.Fprintf(w, "%s%s\n", sub, o.Paint("31", n.Error))
	}
	for _, c := range n.Children {
		writeSPFNode(w, o, c, sub)
	}
}

func spfQueryLine(q spf.Lookup) string {
	switch q.Status {
	case "ok":
		return fmt.Sprintf("%s %s → %s", q.Type, q.Name, strings.Join(q.Answers, ", "))
	case "nxdomain", "nodata":
		return fmt.Sprintf("%s %s → %s (void lookup)", q.Type, q.Name, strings.ToUpper(q.Status))
	}
	return fmt.Sprintf("%s %s → %s: %s", q.Type, q.Name, strings.ToUpper(q.Status), q.Error)
}

func spfLimitText(n *spf.Node) string {
	switch n.Limit {
	case "lookups":
		return fmt.Sprintf("OVER THE LIMIT: DNS lookup %d of at most %d", n.Lookups, spf.MaxLookups)
	case "void_lookups":
		return fmt.Sprintf("OVER THE LIMIT: void lookup %d of at most %d", n.VoidLookups, spf.MaxVoidLookups)
	case "mx_names":
		return fmt.Sprintf("OVER THE LIMIT: more than %d MX names", spf.MaxMXNames)
	}
	return "over the limit: " + n.Limit
}
