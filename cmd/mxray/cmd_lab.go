package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/mxray/mxray/internal/diag"
	"github.com/mxray/mxray/internal/lab"
)

type labOpts struct {
	DNSListen string
	Servers   bool
}

type labDomain struct {
	Domain      string `json:"domain"`
	Description string `json:"description"`
}

type labServer struct {
	Name string `json:"name"`
	Addr string `json:"addr"`
}

type labResult struct {
	Resolver   string      `json:"resolver"`
	ConnectMap string      `json:"connect_map"`
	TLSCA      string      `json:"tls_ca"`
	Servers    []labServer `json:"servers,omitempty"`
	Domains    []labDomain `json:"domains"`
	// DANEResolver is the lab's validating unbound (with --servers): the
	// --resolver under which the DANE domains have DNSSEC-validated TLSA
	// records.
	DANEResolver string      `json:"dane_resolver,omitempty"`
	DANEDomains  []labDomain `json:"dane_domains,omitempty"`
}

func newLabCmd(a *app) *cobra.Command {
	var o labOpts
	cmd := &cobra.Command{
		Use:   "lab",
		Short: "Run the local test world: DNS with scenario domains, HTTPS, Postfix and Dovecot on loopback",
		Long: `Start the lab, so that every mxray command can be tried offline: a DNS server on
loopback answering for a set of scenario domains (a good domain, null MX,
SERVFAIL, timeouts, ...), a test certificate authority with an HTTPS server for
mta-sts./autoconfig. hosts, and with --servers real Postfix and Dovecot (Debian's
packages; needs root) behind mx1.example.test, and a validating unbound (when
installed) for the DANE scenario domains, whose TLSA records describe that
Postfix's key.

It prints the --resolver, --connect-map and --tls-ca to give other mxray
commands, then runs until interrupted (it ignores --timeout).`,
		Example: `  mxray lab --servers
  mxray --resolver 127.0.0.1:5300 dns example.test MX`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			// The lab runs until the signal context ends, not for --timeout.
			return runLab(cmd.Root().Context(), a, o)
		},
	}
	cmd.Flags().StringVar(&o.DNSListen, "dns-listen", "127.0.0.1:5300", "address of the lab's DNS server (UDP and TCP)")
	cmd.Flags().BoolVar(&o.Servers, "servers", false, "also start real Postfix and Dovecot (needs root and Debian's postfix and dovecot packages)")
	return cmd
}

// runLab starts the lab and blocks until ctx is done.
func runLab(ctx context.Context, a *app, o labOpts) error {
	w, err := lab.StartWorld(ctx, lab.WorldOptions{DNSListen: o.DNSListen, Servers: o.Servers, Now: a.env.Now})
	if errors.Is(err, lab.ErrNotRoot) || errors.Is(err, lab.ErrNotInstalled) {
		return diag.Usagef("lab --servers: %v", err)
	}
	if err != nil {
		return diag.Uncheckedf("%v", err)
	}
	defer w.Close()
	res := labResult{Resolver: w.DNS.Addr, ConnectMap: w.ConnectMap.String(), TLSCA: w.CAFile}
	for _, sc := range lab.Scenarios() {
		res.Domains = append(res.Domains, labDomain{sc.Domain, sc.Description})
	}
	if w.Unbound != nil {
		res.DANEResolver = w.Unbound.Addr
		for _, sc := range w.DANE {
			res.DANEDomains = append(res.DANEDomains, labDomain{sc.Domain, sc.Description})
		}
	}
	res.Servers = append(res.Servers, labServer{"https (mta-sts., autoconfig. hosts)", w.HTTPS.Addr})
	if w.Postfix != nil {
		res.Servers = append(res.Servers,
			labServer{"postfix smtp (port 25 of mx1.example.test)", w.Postfix.SMTP},
			labServer{"postfix submission with SASL", w.Postfix.Submission},
			labServer{"dovecot imap", w.Dovecot.IMAP}, labServer{"dovecot imaps", w.Dovecot.IMAPS},
			labServer{"dovecot pop3", w.Dovecot.POP3}, labServer{"dovecot pop3s", w.Dovecot.POP3S})
		if w.Dovecot.Sieve != "" {
			res.Servers = append(res.Servers, labServer{"dovecot managesieve", w.Dovecot.Sieve})
		}
		res.Servers = append(res.Servers, labServer{"postfix log", w.Postfix.LogFile}, labServer{"dovecot log", w.Dovecot.LogFile})
	}
	err = a.out.Result("lab", res, func(out io.Writer, _ *diag.Output) {
		fmt.Fprintf(out, "mxray lab is running. Give other commands:\n\n")
		fmt.Fprintf(out, "  --resolver %s --connect-map %s --tls-ca %s\n\n", res.Resolver, res.ConnectMap, res.TLSCA)
		fmt.Fprintf(out, "Servers:\n")
		for _, s := range res.Servers {
			fmt.Fprintf(out, "  %-44s %s\n", s.Name, s.Addr)
		}
		if w.Postfix == nil {
			fmt.Fprintf(out, "  (add --servers for real Postfix and Dovecot)\n")
		} else {
			fmt.Fprintf(out, "  mailboxes: alice@example.test (password alice-password), postmaster@example.test\n")
		}
		fmt.Fprintf(out, "\nScenario domains:\n")
		for _, d := range res.Domains {
			fmt.Fprintf(out, "  %-18s %s\n", d.Domain, d.Description)
		}
		if res.DANEResolver != "" {
			fmt.Fprintf(out, "\nDANE scenario domains (give --resolver %s, the lab's validating unbound;\nthrough %s the same records answer without the AD bit):\n", res.DANEResolver, res.Resolver)
			for _, d := range res.DANEDomains {
				fmt.Fprintf(out, "  %-18s %s\n", d.Domain, d.Description)
			}
		} else if w.Postfix != nil {
			fmt.Fprintf(out, "\n(no DANE scenarios: install unbound for a validating resolver)\n")
		}
		fmt.Fprintf(out, "\nTry:  mxray --resolver %s dns example.test MX\n", res.Resolver)
		fmt.Fprintf(out, "Press Ctrl-C to stop.\n")
	})
	if err != nil {
		return err
	}
	<-ctx.Done()
	return nil
}
