package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/mxray/mxray/internal/diag"
)

// version is set at link time (-ldflags "-X main.version=v1.2.3").
var version = "dev"

type versionResult struct {
	Version  string `json:"version"`
	Commit   string `json:"commit,omitempty"`
	Modified bool   `json:"modified,omitempty"`
	Go       string `json:"go"`
	Platform string `json:"platform"`
}

func newVersionCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print mxray's version",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runVersion(a.out)
		},
	}
}

func runVersion(out *diag.Output) error {
	r := versionResult{Version: version, Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				r.Commit = s.Value
			case "vcs.modified":
				r.Modified = s.Value == "true"
			}
		}
	}
	return out.Result("version", r, func(w io.Writer, _ *diag.Output) {
		fmt.Fprintf(w, "mxray %s", r.Version)
		if r.Commit != "" {
			c := r.Commit
			if len(c) > 12 {
				c = c[:12]
			}
			fmt.Fprintf(w, " (%s", c)
			if r.Modified {
				fmt.Fprint(w, ", modified")
			}
			fmt.Fprint(w, ")")
		}
		fmt.Fprintf(w, " %s %s\n", r.Go, r.Platform)
	})
}
