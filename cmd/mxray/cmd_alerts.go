package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/mxray/mxray/internal/alert"
	"github.com/mxray/mxray/internal/diag"
)

func newAlertsCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "alerts",
		Short: "Check the [[alert]] rules of the config file",
	}
	check := &cobra.Command{
		Use:   "check",
		Short: "Evaluate the alert rules once and deliver the webhook outbox",
		Long: `Load the [[alert]] rules and [[webhook]]s of the config file into the
database, evaluate every rule once over the stored reports, and send what is
due in the webhook outbox — what 'mxray serve' does every minute.

An alert is raised when a rule starts firing for a subject (a domain, or a
domain and a source IP), not again while it keeps firing.

Exit codes: 0 no rule fires; 1 a rule fires; 2 a bad rule or webhook in the
config; 3 the database failed.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error { return runAlertsCheck(cmd.Context(), a) },
	}
	cmd.AddCommand(check)
	return cmd
}

type alertsCheckResult struct {
	alert.Result
	Webhooks alert.Delivery `json:"webhooks"`
}

func runAlertsCheck(ctx context.Context, a *app) error {
	rules, hooks, err := a.cfg.alertConfig()
	if err != nil {
		return err
	}
	db, err := reportsOpen(ctx, a)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.SetAlertConfig(ctx, rules, hooks); err != nil {
		return diag.Uncheckedf("%v", err)
	}
	ev, no := alertWorkers(a, db)
	res, err := ev.Check(ctx)
	if err != nil {
		return diag.Uncheckedf("%v", err)
	}
	d, err := no.Deliver(ctx)
	if err != nil {
		return diag.Uncheckedf("%v", err)
	}
	out := alertsCheckResult{Result: res, Webhooks: d}
	if err := a.out.Result("alerts check", out, func(w io.Writer, _ *diag.Output) { writeAlertsCheck(w, out) }); err != nil {
		return err
	}
	if len(res.Firing) > 0 {
		return diag.Found
	}
	return nil
}

func writeAlertsCheck(w io.Writer, r alertsCheckResult) {
	if r.Rules == 0 {
		fmt.Fprintln(w, "No [[alert]] rules in the config file.")
		return
	}
	fired := map[string]bool{}
	for _, f := range r.Fired {
		fired[f.Rule+"\x00"+f.Subject] = true
	}
	for _, f := range r.Firing {
		state := "firing"
		if fired[f.Rule+"\x00"+f.Subject] {
			state = "NEW"
		}
		fmt.Fprintf(w, "%-6s  %s (%s): %s\n", state, f.Rule, f.Kind, f.Message)
	}
	for _, s := range r.Resolved {
		fmt.Fprintf(w, "ok      %s: resolved\n", s)
	}
	if len(r.Firing) == 0 {
		fmt.Fprintf(w, "%d rules checked: nothing fires.\n", r.Rules)
	}
	if r.Webhooks.Delivered+r.Webhooks.Failed > 0 {
		fmt.Fprintf(w, "Webhooks: %d delivered, %d failed (retried later).\n", r.Webhooks.Delivered, r.Webhooks.Failed)
	}
}
