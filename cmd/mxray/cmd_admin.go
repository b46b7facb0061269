package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/mxray/mxray/internal/diag"
	"github.com/mxray/mxray/internal/store"
	"github.com/mxray/mxray/internal/web"
)

func newAdminCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "admin",
		Short: "Manage the web admin's account",
	}
	var name string
	reset := &cobra.Command{
		Use:   "reset-password",
		Short: "Give the web admin account a new password, shown once, and end its sessions",
		Long: `Give the web admin account a new random password, print it once on standard
output, and end every session of the account. Run it against the same data
directory (--data) or database (--db) as mxray serve.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runAdminReset(cmd.Context(), a, name)
		},
	}
	reset.Flags().StringVar(&name, "user", web.AdminName, "the account")
	cmd.AddCommand(reset)
	return cmd
}

type adminResetResult struct {
	User     string `json:"user"`
	Password string `json:"password"` // shown this once
}

func runAdminReset(ctx context.Context, a *app, name string) error {
	db, err := reportsOpen(ctx, a)
	if err != nil {
		return err
	}
	defer db.Close()
	pw, err := web.ResetPassword(ctx, db, name)
	if errors.Is(err, store.ErrNotFound) {
		return diag.Usagef("no web admin account %q (mxray serve creates %q on its first run)", name, web.AdminName)
	}
	if err != nil {
		return diag.Uncheckedf("%v", err)
	}
	return a.out.Result("admin reset-password", adminResetResult{name, pw}, func(w io.Writer, _ *diag.Output) {
		fmt.Fprintf(w, "new password for %q (shown once): %s\n", name, pw)
	})
}
