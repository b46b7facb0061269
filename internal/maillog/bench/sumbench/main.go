// Command sumbench reads mail logs and prints the maillog summary as JSON.
// It exists for bench/logs/summary.sh, which times it against pflogsumm.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"time"

	"github.com/mxray/mxray/internal/maillog"
)

func main() {
	compat := flag.Bool("compat", false, "count only what pflogsumm 1.1.5 counts")
	totals := flag.Bool("totals", false, "print only the grand totals")
	text := flag.Bool("text", false, "print the text report instead of JSON")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile to this file")
	flag.Parse()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "sumbench:", err)
			os.Exit(2)
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	if err := run(flag.Args(), *compat, *totals, *text, os.Stdout); err != nil {
		pprof.StopCPUProfile()
		fmt.Fprintln(os.Stderr, "sumbench:", err)
		os.Exit(2)
	}
}

func run(paths []string, compat, totals, text bool, out io.Writer) error {
	var rs []io.Reader
	for _, p := range paths {
		f, err := maillog.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		rs = append(rs, f)
	}
	if len(rs) == 0 {
		rs = append(rs, os.Stdin)
	}
	opts := maillog.Options{Reference: time.Now(), Location: time.Local, PflogsummCompat: compat}
	s, err := maillog.Summarize(context.Background(), opts, rs...)
	if err != nil {
		return err
	}
	if text {
		return maillog.WriteText(out, s)
	}
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	if totals {
		return enc.Encode(s.Totals)
	}
	return enc.Encode(s)
}
