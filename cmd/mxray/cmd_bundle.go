package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mxray/mxray/internal/diag"
	"github.com/mxray/mxray/internal/servercheck"
)

func newBundleCmd(a *app) *cobra.Command {
	var f serverFlags
	var output string
	cmd := &cobra.Command{
		Use:   "bundle [-o FILE]",
		Short: "Write a support bundle (tar.gz): configuration, logs, check results, with secrets redacted",
		Long: `Write a support bundle: one tar.gz to attach to a support request or an issue.

Inside: postconf -n and -M, doveconf -n, the last --lines lines of the mail
logs, mxray server check --json, a queue summary (counts from postqueue -j),
the listening mail ports, versions (Postfix, Dovecot, kernel, OS) and
MANIFEST.txt, which lists what is inside, what is missing and why, and what
was redacted.

Every configuration value whose key names a password, passwd, secret, key,
token or credential is replaced by <redacted>, and so are name=secret pairs
and {SCHEME}passwords anywhere; files holding secrets (sasl_passwd maps,
passwd-files, TLS keys) are never read. User names, addresses and client IPs
in the logs are kept: remove them before publishing the bundle.

The default file is mxray-bundle-HOST-YYYYMMDDTHHMMSSZ.tar.gz in the current
directory. Works without Postfix or Dovecot installed: what is missing is
listed in the manifest.`,
		Example: `  mxray bundle
  mxray bundle -o /tmp/mx1.tar.gz --lines 500 -c /etc/postfix-out`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			o, err := f.options()
			if err != nil {
				return err
			}
			return runBundle(cmd.Context(), a, o, output)
		},
	}
	f.register(cmd, "lines of each mail log to include")
	cmd.Flags().StringVarP(&output, "output", "o", "", "file to write (default mxray-bundle-HOST-TIME.tar.gz here)")
	return cmd
}

type bundleResult struct {
	File string `json:"file"`
	*servercheck.Manifest
}

func runBundle(ctx context.Context, a *app, o servercheck.Options, output string) error {
	host, _ := os.Hostname()
	if host == "" {
		host = "unknown"
	}
	if output == "" {
		output = fmt.Sprintf("mxray-bundle-%s-%s.tar.gz", safeName(host), a.env.Clock().UTC().Format("20060102T150405Z"))
	}
	tmp, err := os.CreateTemp(filepath.Dir(output), ".mxray-bundle-*")
	if err != nil {
		return diag.Usagef("-o %s: %v", output, err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename, nothing is left to remove
	m, err := servercheck.WriteBundle(ctx, a.env, servercheck.BundleOptions{Check: o, Host: host}, tmp)
	if err == nil {
		err = tmp.Close()
	} else {
		tmp.Close()
	}
	if err != nil {
		return diag.Uncheckedf("writing the bundle: %v", err)
	}
	if err := os.Rename(tmp.Name(), output); err != nil {
		return diag.Uncheckedf("writing the bundle: %v", err)
	}
	return a.out.Result("bundle", bundleResult{File: output, Manifest: m}, func(w io.Writer, out *diag.Output) {
		fmt.Fprintf(w, "Wrote %s: %d files, %d value(s) redacted.\n", output, len(m.Members)+1, m.Redacted)
		for _, x := range m.Missing {
			fmt.Fprintf(w, "  missing %s: %s\n", x.Name, x.Reason)
		}
		fmt.Fprintln(w, "Read MANIFEST.txt inside before sharing it: user names and addresses in the logs are not redacted.")
	})
}

// safeName keeps a host name usable in a file name.
func safeName(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' {
			return r
		}
		return '_'
	}, s)
}
