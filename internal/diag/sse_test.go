package diag

import (
	"bytes"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestStepJSONMatchesJSONLines(t *testing.T) {
	st := Step{ID: "rcpt", Status: OK, Title: "recipient accepted", Elapsed: 1500 * time.Microsecond,
		Host: "mx1.example.test", IP: "127.0.0.1", Transcript: []string{"C: RCPT TO:<a@example.test>", "S: 250 2.1.5 Ok"}}
	var buf bytes.Buffer
	o := &Output{W: &buf, JSON: true}
	o.Sink().Finish(st)
	if diff := cmp.Diff(buf.String(), string(StepJSON(st))+"\n"); diff != "" {
		t.Errorf("StepJSON differs from the --json line (-want +got):\n%s", diff)
	}
}

func TestStartJSON(t *testing.T) {
	got := string(StartJSON(Step{ID: "mx", Title: "MX records of example.test"}))
	want := `{"type":"start","id":"mx","title":"MX records of example.test"}`
	if got != want {
		t.Errorf("StartJSON = %s, want %s", got, want)
	}
	got = string(StepJSON(Step{ID: "x", Status: Info, Data: func() {}}))
	if want := `{"error":"json: unsupported type: func()","type":"error"}`; got != want {
		t.Errorf("StepJSON of unencodable data = %s, want %s", got, want)
	}
}
