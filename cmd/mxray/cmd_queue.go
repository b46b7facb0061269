package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mxray/mxray/internal/diag"
	"github.com/mxray/mxray/internal/postfix"
)

// queueRunner runs Postfix's tools; tests may replace it.
var queueRunner postfix.Runner = postfix.ExecRunner{}

func newQueueCmd(a *app) *cobra.Command {
	var configDir string
	q := func() *postfix.Queue {
		return &postfix.Queue{Runner: queueRunner, ConfigDir: configDir, Logger: a.log}
	}
	cmd := &cobra.Command{
		Use:   "queue",
		Short: "Inspect and manage the Postfix mail queue",
		Long: `Inspect and manage the Postfix mail queue with Postfix's own tools
(postqueue -j, postcat, postsuper). Use -c CONFIG_DIR for an instance other
than the default one.

hold, release and delete print what they would touch and change nothing
without --yes. Selections (--all, --deferred, --domain) are made from one
queue listing and applied by queue id, so mail arriving meanwhile is never
touched.

Exit codes: 0 done; 1 a named message is not in the queue; 2 bad usage, or a
change refused for lack of --yes; 3 Postfix's tools cannot run (Postfix not
installed, or not running).`,
	}
	cmd.PersistentFlags().StringVarP(&configDir, "config-dir", "c", "", "Postfix configuration directory of the instance (default: Postfix's default)")

	list := &cobra.Command{
		Use:   "list",
		Short: "List queued messages: id, queue, age, size, sender, recipients, delay reason",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runQueueList(cmd.Context(), a, q())
		},
	}
	summary := &cobra.Command{
		Use:   "summary",
		Short: "Count queued mail by queue, recipient domain and delay reason; the oldest message",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runQueueSummary(cmd.Context(), a, q())
		},
	}
	show := &cobra.Command{
		Use:   "show QUEUE-ID",
		Short: "Show one queued message: envelope, header, body (postcat -q)",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runQueueShow(cmd.Context(), a, q(), args[0])
		},
	}
	flush := &cobra.Command{
		Use:   "flush",
		Short: "Attempt delivery of all queued mail now (postqueue -f)",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := q().Flush(cmd.Context()); err != nil {
				return queueErr(err)
			}
			return a.out.Result("queue flush", queueAction{Action: "flush", Applied: true}, func(w io.Writer, _ *diag.Output) {
				fmt.Fprintln(w, "Asked Postfix to attempt delivery of every queued message now.")
			})
		},
	}
	retry := &cobra.Command{
		Use:   "retry QUEUE-ID",
		Short: "Attempt delivery of one message now (postqueue -i)",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runQueueRetry(cmd.Context(), a, q(), args[0])
		},
	}
	cmd.AddCommand(list, summary, show, flush, retry,
		newQueueChangeCmd(a, q, "hold", "Put messages on hold: no delivery until released (postsuper -h)"),
		newQueueChangeCmd(a, q, "release", "Release held messages into the deferred queue (postsuper -H)"),
		newQueueChangeCmd(a, q, "delete", "Delete messages from the queue, without notifying anyone (postsuper -d)"))
	return cmd
}

// queueErr maps the postfix package's errors to exit codes.
func queueErr(err error) error {
	switch {
	case errors.Is(err, postfix.ErrUnavailable):
		return diag.Uncheckedf("%v (is Postfix installed and running? use -c CONFIG_DIR for another instance)", err)
	case errors.Is(err, postfix.ErrNoSuchMessage):
		return diag.Findingf("%v", err)
	case errors.Is(err, postfix.ErrBadQueueID):
		return diag.Usagef("%v", err)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	}
	return diag.Uncheckedf("%v", err)
}

type queueList struct {
	ConfigDir string            `json:"config_dir,omitempty"`
	Messages  []postfix.Message `json:"messages"`
}

func listQueue(ctx context.Context, a *app, q *postfix.Queue) ([]postfix.Message, error) {
	msgs, err := q.List(ctx)
	if err != nil {
		return nil, queueErr(err)
	}
	postfix.SetAges(msgs, a.env.Clock())
	return msgs, nil
}

func runQueueList(ctx context.Context, a *app, q *postfix.Queue) error {
	msgs, err := listQueue(ctx, a, q)
	if err != nil {
		return err
	}
	return a.out.Result("queue list", queueList{q.ConfigDir, msgs}, func(w io.Writer, _ *diag.Output) {
		if len(msgs) == 0 {
			fmt.Fprintln(w, "The queue is empty.")
			return
		}
		writeQueueTable(w, msgs)
		fmt.Fprintf(w, "%d message(s)\n", len(msgs))
	})
}

func writeQueueTable(w io.Writer, msgs []postfix.Message) {
	fmt.Fprintf(w, "%-14s %-9s %7s %8s  %-28s %s\n", "QUEUE ID", "QUEUE", "AGE", "SIZE", "SENDER", "RECIPIENTS")
	for _, m := range msgs {
		sender := m.Sender
		if sender == "" {
			sender = "<>"
		}
		fmt.Fprintf(w, "%-14s %-9s %7s %8d  %-28s", m.QueueID, m.QueueName, shortAge(m.AgeSeconds), m.MessageSize, sender)
		for i, r := range m.Recipients {
			if i > 0 {
				fmt.Fprintf(w, "%-71s", "")
			}
			fmt.Fprintf(w, " %s\n", r.Address)
			if r.DelayReason != "" {
				fmt.Fprintf(w, "%-71s   (%s)\n", "", r.DelayReason)
			}
		}
		if len(m.Recipients) == 0 {
			fmt.Fprintln(w)
		}
	}
}

// shortAge writes seconds as "45s", "12m", "3h05m", "2d04h".
func shortAge(s int64) string {
	d := time.Duration(s) * time.Second
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", s)
	case d < time.Hour:
		return fmt.Sprintf("%dm", s/60)
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh%02dm", s/3600, s%3600/60)
	}
	return fmt.Sprintf("%dd%02dh", s/86400, s%86400/3600)
}

type queueSummary struct {
	ConfigDir string `json:"config_dir,omitempty"`
	postfix.Summary
}

func runQueueSummary(ctx context.Context, a *app, q *postfix.Queue) error {
	msgs, err := listQueue(ctx, a, q)
	if err != nil {
		return err
	}
	s := postfix.Summarize(msgs)
	return a.out.Result("queue summary", queueSummary{q.ConfigDir, s}, func(w io.Writer, _ *diag.Output) {
		fmt.Fprintf(w, "%d message(s), %d recipient(s), %d bytes\n", s.Messages, s.Recipients, s.Bytes)
		if s.Messages == 0 {
			return
		}
		fmt.Fprintln(w, "\nBy queue")
		for _, c := range s.ByQueue {
			fmt.Fprintf(w, "  %6d  %-10s %d bytes\n", c.Messages, c.Name, c.Bytes)
		}
		fmt.Fprintln(w, "\nBy recipient domain (recipients, messages)")
		for _, d := range s.ByDomain {
			fmt.Fprintf(w, "  %6d  %6d  %s\n", d.Recipients, d.Messages, d.Domain)
		}
		if len(s.ByReason) > 0 {
			fmt.Fprintln(w, "\nBy delay reason (recipients)")
			for _, r := range s.ByReason {
				fmt.Fprintf(w, "  %6d  %s\n", r.Recipients, r.Reason)
			}
		}
		if o := s.Oldest; o != nil {
			fmt.Fprintf(w, "\nOldest: %s (%s queue), arrived %s, %s ago\n", o.QueueID, o.QueueName,
				o.ArrivalTime.Local().Format(time.DateTime), shortAge(o.AgeSeconds))
		}
	})
}

type queueShow struct {
	*postfix.QueueFile
	Listing *postfix.Message `json:"listing,omitempty"` // the message in postqueue -j, with delay reasons
}

func runQueueShow(ctx context.Context, a *app, q *postfix.Queue, id string) error {
	if !postfix.ValidQueueID(id) {
		return diag.Usagef("%q is not a queue id", id)
	}
	f, err := q.Show(ctx, id)
	if err != nil {
		return queueErr(err)
	}
	res := queueShow{QueueFile: f}
	// The delay reasons are not in the queue file's envelope as postcat
	// prints it; the listing has them. Postfix may be down: then none.
	if msgs, err := q.List(ctx); err == nil {
		postfix.SetAges(msgs, a.env.Clock())
		if sel, _ := postfix.Select(msgs, postfix.Selector{IDs: []string{id}}); len(sel) == 1 {
			res.Listing = &sel[0]
		}
	}
	return a.out.Result("queue show", res, func(w io.Writer, _ *diag.Output) {
		fmt.Fprint(w, f.Raw)
		if res.Listing != nil {
			for _, r := range res.Listing.Recipients {
				if r.DelayReason != "" {
					fmt.Fprintf(w, "delay reason for %s: %s\n", r.Address, r.DelayReason)
				}
			}
		}
	})
}

func runQueueRetry(ctx context.Context, a *app, q *postfix.Queue, id string) error {
	if !postfix.ValidQueueID(id) {
		return diag.Usagef("%q is not a queue id", id)
	}
	msgs, err := listQueue(ctx, a, q)
	if err != nil {
		return err
	}
	if sel, _ := postfix.Select(msgs, postfix.Selector{IDs: []string{id}}); len(sel) == 0 {
		return diag.Findingf("%s is not in the queue", id)
	}
	if err := q.Retry(ctx, id); err != nil {
		return queueErr(err)
	}
	return a.out.Result("queue retry", queueAction{Action: "retry", Applied: true, Missing: []string{}, Selected: nil}, func(w io.Writer, _ *diag.Output) {
		fmt.Fprintf(w, "Asked Postfix to attempt delivery of %s now.\n", id)
	})
}

// queueAction is the result of flush, retry, hold, release and delete.
type queueAction struct {
	Action    string            `json:"action"`
	ConfigDir string            `json:"config_dir,omitempty"`
	Selected  []postfix.Message `json:"selected,omitempty"` // what the action touches (or would, without --yes)
	Missing   []string          `json:"missing,omitempty"`  // named ids not in the queue
	Applied   bool              `json:"applied"`            // false: refused for lack of --yes, or nothing selected
	Count     int               `json:"count"`              // messages postsuper reports it changed
}

func newQueueChangeCmd(a *app, q func() *postfix.Queue, action, short string) *cobra.Command {
	var sel postfix.Selector
	var yes bool
	cmd := &cobra.Command{
		Use:   action + " [QUEUE-ID...]",
		Short: short,
		RunE: func(cmd *cobra.Command, args []string) error {
			s := sel
			s.IDs = args
			return runQueueChange(cmd.Context(), a, q(), action, s, yes)
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&sel.All, "all", false, "every message (of the hold queue, for release)")
	if action != "release" {
		fl.BoolVar(&sel.Deferred, "deferred", false, "every message in the deferred queue")
	}
	fl.StringVar(&sel.Domain, "domain", "", "every message with a recipient at this domain")
	fl.BoolVar(&yes, "yes", false, "really do it (without it, only show what would be touched)")
	return cmd
}

func runQueueChange(ctx context.Context, a *app, q *postfix.Queue, action string, sel postfix.Selector, yes bool) error {
	if len(sel.IDs) == 0 && !sel.All && !sel.Deferred && sel.Domain == "" {
		return diag.Usagef("queue %s: name queue ids, or select with --all, --deferred or --domain", action)
	}
	for _, id := range sel.IDs {
		if !postfix.ValidQueueID(id) {
			return diag.Usagef("%q is not a queue id", id)
		}
	}
	switch action {
	case "hold":
		sel.In = []postfix.QueueName{postfix.QueueIncoming, postfix.QueueActive, postfix.QueueDeferred}
	case "release":
		sel.In = []postfix.QueueName{postfix.QueueHold}
	}
	msgs, err := listQueue(ctx, a, q)
	if err != nil {
		return err
	}
	selected, missing := postfix.Select(msgs, sel)
	res := queueAction{Action: action, ConfigDir: q.ConfigDir, Selected: selected, Missing: missing}
	if res.Selected == nil {
		res.Selected = []postfix.Message{}
	}
	verb := map[string]string{"hold": "put on hold", "release": "release from hold", "delete": "delete"}[action]
	human := func(w io.Writer, _ *diag.Output) {
		for _, id := range missing {
			fmt.Fprintf(w, "%s is not in the queue%s\n", id, map[bool]string{true: " (or not held)", false: ""}[action == "release"])
		}
		if len(selected) == 0 {
			fmt.Fprintf(w, "Nothing to %s.\n", verb)
			return
		}
		if res.Applied {
			fmt.Fprintf(w, "Done: postsuper reports %d message(s) changed:\n", res.Count)
		} else {
			fmt.Fprintf(w, "Would %s %d message(s):\n", verb, len(selected))
		}
		writeQueueTable(w, selected)
		if action == "delete" && sel.Domain != "" {
			for _, m := range selected {
				if len(m.Recipients) > 1 {
					fmt.Fprintln(w, "Note: a message is deleted for all its recipients, including those at other domains.")
					break
				}
			}
		}
		if !res.Applied {
			fmt.Fprintln(w, "Nothing was changed: add --yes to do it.")
		}
	}
	if len(selected) == 0 {
		if err := a.out.Result("queue "+action, res, human); err != nil {
			return err
		}
		if len(missing) > 0 {
			return diag.Findingf("not in the queue: %s", strings.Join(missing, ", "))
		}
		return nil
	}
	if !yes {
		if err := a.out.Result("queue "+action, res, human); err != nil {
			return err
		}
		return diag.Usagef("refusing to %s %d message(s) without --yes; nothing was changed", verb, len(selected))
	}
	ids := postfix.IDs(selected)
	switch action {
	case "hold":
		res.Count, err = q.Hold(ctx, ids)
	case "release":
		res.Count, err = q.Release(ctx, ids)
	case "delete":
		res.Count, err = q.Delete(ctx, ids)
	}
	if err != nil {
		return queueErr(err)
	}
	res.Applied = true
	a.log.Info("queue changed", "action", action, "selected", len(ids), "changed", res.Count)
	if err := a.out.Result("queue "+action, res, human); err != nil {
		return err
	}
	if len(missing) > 0 {
		return diag.Findingf("not in the queue: %s", strings.Join(missing, ", "))
	}
	return nil
}
