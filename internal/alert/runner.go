package alert

import (
	"context"
	"log/slog"
	"time"
)

// Runner evaluates the rules on a schedule and whenever kicked (after an
// import), and delivers the outbox.
type Runner struct {
	Eval   *Evaluator
	Notify *Notifier
	Every  time.Duration // rule checks; a minute when 0
	Retry  time.Duration // looks for due outbox entries; 10 s when 0
	Log    *slog.Logger

	kick chan struct{}
}

// NewRunner returns a runner of e and n.
func NewRunner(e *Evaluator, n *Notifier, log *slog.Logger) *Runner {
	return &Runner{Eval: e, Notify: n, Log: log, kick: make(chan struct{}, 1)}
}

// Kick asks for a check soon; it never blocks.
func (r *Runner) Kick() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// Run checks and delivers until ctx is done.
func (r *Runner) Run(ctx context.Context) {
	every, retry := r.Every, r.Retry
	if every <= 0 {
		every = time.Minute
	}
	if retry <= 0 {
		retry = 10 * time.Second
	}
	check := time.NewTicker(every)
	defer check.Stop()
	deliver := time.NewTicker(retry)
	defer deliver.Stop()
	r.round(ctx, true)
	for {
		select {
		case <-ctx.Done():
			return
		case <-check.C:
			r.round(ctx, true)
		case <-r.kick:
			r.round(ctx, true)
		case <-deliver.C:
			r.round(ctx, false)
		}
	}
}

func (r *Runner) round(ctx context.Context, evaluate bool) {
	if evaluate {
		if _, err := r.Eval.Check(ctx); err != nil && ctx.Err() == nil {
			r.Log.Warn("alert check failed", "err", err)
		}
	}
	if _, err := r.Notify.Deliver(ctx); err != nil && ctx.Err() == nil {
		r.Log.Warn("webhook delivery failed", "err", err)
	}
}
