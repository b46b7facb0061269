package diag

import "time"

// Tracker times one running step. Begin sends the step's Start event;
// Done sends its Finish event with the elapsed time filled in.
type Tracker struct {
	sink  Sink
	now   func() time.Time
	start time.Time
	step  Step
}

// Begin starts step id with a title, on env's clock.
func Begin(env Env, sink Sink, id, title string) *Tracker {
	t := &Tracker{sink: sink, now: env.Clock, step: Step{ID: id, Title: title}}
	t.start = t.now()
	sink.Start(t.step)
	return t
}

// Done finishes the step: st's ID defaults to the one given to Begin and
// its Title to Begin's when empty; Elapsed is measured. It returns the step
// as sent.
func (t *Tracker) Done(st Step) Step {
	if st.ID == "" {
		st.ID = t.step.ID
	}
	if st.Title == "" {
		st.Title = t.step.Title
	}
	st.Elapsed = t.now().Sub(t.start)
	t.sink.Finish(st)
	return st
}
