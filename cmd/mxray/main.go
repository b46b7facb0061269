// Command mxray finds out why mail does not flow, and proves when it does.
//
// This package only wires flags to the run functions in internal/; exit
// codes are mapped from errors here, in one place (DESIGN.md, "Exit codes").
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/mxray/mxray/internal/diag"
	"github.com/mxray/mxray/internal/dnsx"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes one command line and returns the process exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	a := newApp(stdin, stdout, stderr)
	root := newRootCmd(a)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if a.cleanup != nil {
		a.cleanup()
	}
	if err != nil && !a.started {
		// Cobra refused the command line before any command ran: unknown
		// command or flag, wrong number of arguments, unreadable config.
		err = usageError{err}
	}
	code := exitCode(err)
	if err != nil && err != diag.Found {
		fmt.Fprintf(stderr, "mxray: %v\n", err)
		if code == 2 && !a.started {
			fmt.Fprintln(stderr, "Run 'mxray --help' for usage.")
		}
	}
	return code
}

type usageError struct{ error }

func (u usageError) Unwrap() error { return u.error }

// exitCode maps an error to DESIGN.md's exit codes:
// 0 fine; 1 a problem found; 2 bad usage or input; 3 could not check.
func exitCode(err error) int {
	var ue usageError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, diag.ErrUsage) || errors.As(err, &ue):
		return 2
	case errors.Is(err, diag.ErrUnchecked):
		return 3
	case errors.Is(err, diag.ErrFinding):
		return 1
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled):
		return 3
	case errors.Is(err, dnsx.ErrNXDomain) || errors.Is(err, dnsx.ErrNoData):
		return 1
	case dnsx.Temporary(err):
		return 3
	}
	return 3 // an internal error: we could not check
}

// statusExit maps the worst status of a run onto the exit contract, once
// for every command: fail → exit 1; warn → exit 1 only with --strict;
// ok, info and skip → 0.
func (a *app) statusExit(worst diag.Status) error {
	switch {
	case worst == diag.Fail:
		return diag.Found
	case worst == diag.Warn && a.opts.Strict:
		return diag.Found
	}
	return nil
}
