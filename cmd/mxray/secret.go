package main

import (
	"bytes"
	"fmt"
	"os"
	"strings"

	"golang.org/x/term"

	"github.com/mxray/mxray/internal/diag"
)

// secretEnv is the environment variable read when no --password-file is
// given (DESIGN.md, "Secrets").
const secretEnv = "MXRAY_PASSWORD"

// readSecret returns the password: from file (its first line), else from
// $MXRAY_PASSWORD, else from a prompt when stdin is a terminal, else a
// usage error (exit 2). The value is never logged or printed.
func (a *app) readSecret(file, prompt string) (string, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", diag.Usagef("--password-file: %v", err)
		}
		line, _, _ := bytes.Cut(b, []byte("\n"))
		pw := strings.TrimSuffix(string(line), "\r")
		if pw == "" {
			return "", diag.Usagef("--password-file %s: the first line is empty", file)
		}
		return pw, nil
	}
	if pw, ok := os.LookupEnv(secretEnv); ok && pw != "" {
		return pw, nil
	}
	if f, ok := a.stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(a.stderr, prompt)
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(a.stderr)
		if err != nil {
			return "", diag.Usagef("reading the password: %v", err)
		}
		if len(b) == 0 {
			return "", diag.Usagef("empty password")
		}
		return string(b), nil
	}
	return "", diag.Usagef("a password is needed: give --password-file FILE or set %s (no terminal to prompt on)", secretEnv)
}
