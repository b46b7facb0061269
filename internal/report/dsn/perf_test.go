package dsn

import (
	"strings"
	"testing"
)

// adversarial are inputs built to maximise work: many recipients, long
// lines, many header lines. BenchmarkAdversarial watches their cost (no
// timing assertion in a test); TestAdversarialInputsAreBounded checks the
// count limit that keeps the work bounded.
var adversarial = func() map[string]string {
	head := "From: MAILER-DAEMON@x.example\nSubject: failure notice\n\n"
	return map[string]string{
		"many recipients": head + strings.Repeat("<u@example.com>:\nno\n", 20000) + strings.Repeat("x ", 50000),
		"many distinct":   head + strings.Repeat("x\n", 50000) + strings.Repeat("<a@b.example> ", 1) + strings.Repeat("\na1@b.example:\n", 5000),
		"long line":       head + strings.Repeat("a@b.example 550 ", 100000),
		"many dsn groups": "Content-Type: message/delivery-status\n\n" + strings.Repeat("Final-Recipient: rfc822; a@b.example\nAction: failed\n\n", 50000),
		"many dots":       head + "<u@example.com>:\n" + strings.Repeat("5.", 200000),
		"html":            "From: MAILER-DAEMON@x\nContent-Type: text/html\n\n" + strings.Repeat("<a<b", 200000),
	}
}()

func TestAdversarialInputsAreBounded(t *testing.T) {
	for name, in := range adversarial {
		r, err := Parse([]byte(in))
		if err != nil {
			continue // rejected is bounded too
		}
		if len(r.Recipients) > maxRecipients {
			t.Errorf("%s: %d recipients, want at most %d", name, len(r.Recipients), maxRecipients)
		}
	}
	r, err := Parse([]byte(adversarial["many dsn groups"]))
	if err != nil || len(r.Recipients) != maxRecipients {
		t.Errorf("50,000 delivery-status groups: %v recipients, %v; want exactly the cap %d", len(r.Recipients), err, maxRecipients)
	}
}

func BenchmarkAdversarial(b *testing.B) {
	for name, in := range adversarial {
		b.Run(strings.ReplaceAll(name, " ", "-"), func(b *testing.B) {
			for b.Loop() {
				Parse([]byte(in))
			}
		})
	}
}
