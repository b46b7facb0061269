package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/mxray/mxray/internal/diag"
	"github.com/mxray/mxray/internal/lab"
)

type labOpts struct {
	DNSListen string
}

type labDomain struct {
	Domain      string `json:"domain"`
	Description string `json:"description"`
}

type labResult struct {
	Resolver   string      `json:"resolver"`
	ConnectMap string      `json:"connect_map,omitempty"`
	Domains    []labDomain `json:"domains"`
}

func newLabCmd(a *app) *cobra.Command {
	var o labOpts
	cmd := &cobra.Command{
		Use:   "lab",
		Short: "Run the local test world: DNS with scenario domains, on loopback",
		Long: `Start the lab: a DNS server on loopback that answers for a set of scenario
domains (a good domain, null MX, SERVFAIL, timeouts, ...), so that every mxray
command can be tried offline. It prints the --resolver (and, with servers, the
--connect-map) to give other mxray commands, then runs until interrupted.

The lab ignores --timeout: it runs until Ctrl-C.`,
		Example: `  mxray lab
  mxray --resolver 127.0.0.1:5300 dns example.test MX`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runLab(context.WithoutCancel(cmd.Context()), a, o, cmd.Root().Context())
		},
	}
	cmd.Flags().StringVar(&o.DNSListen, "dns-listen", "127.0.0.1:5300", "address of the lab's DNS server (UDP and TCP)")
	return cmd
}

// runLab starts the lab and blocks until stop is done (the signal context).
func runLab(_ context.Context, a *app, o labOpts, stop context.Context) error {
	srv, err := lab.StartDNS(o.DNSListen)
	if err != nil {
		return diag.Uncheckedf("%v", err)
	}
	defer srv.Close()
	if err := lab.LoadScenarios(srv); err != nil {
		return err
	}
	res := labResult{Resolver: srv.Addr}
	for _, sc := range lab.Scenarios() {
		res.Domains = append(res.Domains, labDomain{sc.Domain, sc.Description})
	}
	err = a.out.Result("lab", res, func(w io.Writer, out *diag.Output) {
		fmt.Fprintf(w, "mxray lab is running. Give other commands:\n\n")
		fmt.Fprintf(w, "  --resolver %s\n\n", res.Resolver)
		fmt.Fprintf(w, "Scenario domains:\n")
		for _, d := range res.Domains {
			fmt.Fprintf(w, "  %-18s %s\n", d.Domain, d.Description)
		}
		fmt.Fprintf(w, "\nTry:  mxray --resolver %s dns example.test MX\n", res.Resolver)
		fmt.Fprintf(w, "Press Ctrl-C to stop.\n")
	})
	if err != nil {
		return err
	}
	if f, ok := a.stdout.(interface{ Sync() error }); ok {
		f.Sync()
	}
	<-stop.Done()
	return nil
}
