package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/mxray/mxray/internal/diag"
	"github.com/mxray/mxray/internal/server"
	"github.com/mxray/mxray/internal/store"
)

func newTokenCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Create, list and revoke API tokens for mxray serve",
		Long: `Every call of the JSON API of 'mxray serve' but /api/health needs a token:
  Authorization: Bearer TOKEN
The database keeps only each token's SHA-256: a token is shown once, when it
is created, and cannot be shown again.`,
	}
	var name string
	create := &cobra.Command{
		Use:   "create",
		Short: "Create a token and print it (once)",
		Args:  exactArgs(0),
		RunE:  func(cmd *cobra.Command, _ []string) error { return runTokenCreate(cmd.Context(), a, name) },
	}
	create.Flags().StringVar(&name, "name", "", "what the token is for (shown by token list)")
	list := &cobra.Command{
		Use:   "list",
		Short: "List the tokens (never their secrets)",
		Args:  exactArgs(0),
		RunE:  func(cmd *cobra.Command, _ []string) error { return runTokenList(cmd.Context(), a) },
	}
	revoke := &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke a token: the API refuses it from then on",
		Args:  exactArgs(1),
		RunE:  func(cmd *cobra.Command, args []string) error { return runTokenRevoke(cmd.Context(), a, args[0]) },
	}
	cmd.AddCommand(create, list, revoke)
	return cmd
}

type tokenCreateResult struct {
	ID    int64  `json:"id"`
	Name  string `json:"name"`
	Token string `json:"token"`
}

func runTokenCreate(ctx context.Context, a *app, name string) error {
	tok, err := server.NewToken()
	if err != nil {
		return diag.Uncheckedf("%v", err)
	}
	db, err := reportsOpen(ctx, a)
	if err != nil {
		return err
	}
	defer db.Close()
	id, err := db.TokenCreate(ctx, name, server.HashToken(tok), a.env.Clock())
	if err != nil {
		return diag.Uncheckedf("%v", err)
	}
	res := tokenCreateResult{ID: id, Name: name, Token: tok}
	return a.out.Result("token create", res, func(w io.Writer, _ *diag.Output) {
		fmt.Fprintf(w, "%s\n", tok)
		fmt.Fprintf(a.stderr, "Token %d created. It is shown only this once: the database keeps its hash.\n", id)
	})
}

type tokenListResult struct {
	Tokens []store.Token `json:"tokens"`
}

func runTokenList(ctx context.Context, a *app) error {
	db, err := reportsOpen(ctx, a)
	if err != nil {
		return err
	}
	defer db.Close()
	toks, err := db.Tokens(ctx)
	if err != nil {
		return diag.Uncheckedf("%v", err)
	}
	return a.out.Result("token list", tokenListResult{toks}, func(w io.Writer, _ *diag.Output) {
		if len(toks) == 0 {
			fmt.Fprintln(w, "No tokens. Create one with: mxray token create --name NAME")
			return
		}
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tCREATED\tLAST USED\tSTATE")
		when := func(t time.Time) string {
			if t.IsZero() {
				return "never"
			}
			return t.UTC().Format("2006-01-02 15:04")
		}
		for _, t := range toks {
			state := "active"
			if !t.Active() {
				state = "revoked " + when(t.Revoked)
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", t.ID, t.Name, when(t.Created), when(t.LastUsed), state)
		}
		tw.Flush()
	})
}

type tokenRevokeResult struct {
	ID      int64 `json:"id"`
	Revoked bool  `json:"revoked"`
}

func runTokenRevoke(ctx context.Context, a *app, arg string) error {
	id, err := strconv.ParseInt(arg, 10, 64)
	if err != nil || id <= 0 {
		return diag.Usagef("token ID %q: want a positive number (see mxray token list)", arg)
	}
	db, err := reportsOpen(ctx, a)
	if err != nil {
		return err
	}
	defer db.Close()
	err = db.TokenRevoke(ctx, id, a.env.Clock())
	if errors.Is(err, store.ErrNotFound) {
		return diag.Usagef("no token %d (see mxray token list)", id)
	}
	if err != nil {
		return diag.Uncheckedf("%v", err)
	}
	return a.out.Result("token revoke", tokenRevokeResult{ID: id, Revoked: true}, func(w io.Writer, _ *diag.Output) {
		fmt.Fprintf(w, "Token %d revoked.\n", id)
	})
}
