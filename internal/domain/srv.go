package domain

import (
	"fmt"
	"slices"
	"strings"

	"github.com/miekg/dns"

	"github.com/mxray/mxray/internal/diag"
	"github.com/mxray/mxray/internal/dnsx"
)

// Protocol of a client service.
const (
	ProtoIMAP       = "imap"
	ProtoPOP3       = "pop3"
	ProtoSubmission = "submission" // SMTP message submission (RFC 6409)
	ProtoHTTPS      = "https"      // Autodiscover
)

// Transport security of a client service endpoint.
const (
	TLSImplicit = "implicit" // TLS from the first byte (RFC 8314 §3)
	TLSStartTLS = "starttls" // plain, then STARTTLS / STLS
	TLSNone     = "none"     // plain text throughout
)

// SRVName describes one SRV name the audit asks for.
type SRVName struct {
	Label string // "_imaps._tcp"
	Proto string
	TLS   string
	Port  int // the usual port
	RFC   string
}

// SRVNames are the SRV names of RFC 6186 and RFC 8314 §5.1, and the
// Autodiscover SRV name Outlook uses ([MS-OXDSCLI] §3.1.5.2).
var SRVNames = []SRVName{
	{"_submissions._tcp", ProtoSubmission, TLSImplicit, 465, "RFC 8314 §5.1"},
	{"_submission._tcp", ProtoSubmission, TLSStartTLS, 587, "RFC 6186 §3.1"},
	{"_imaps._tcp", ProtoIMAP, TLSImplicit, 993, "RFC 6186 §3.2"},
	{"_imap._tcp", ProtoIMAP, TLSStartTLS, 143, "RFC 6186 §3.2"},
	{"_pop3s._tcp", ProtoPOP3, TLSImplicit, 995, "RFC 6186 §3.3"},
	{"_pop3._tcp", ProtoPOP3, TLSStartTLS, 110, "RFC 6186 §3.3"},
	{"_autodiscover._tcp", ProtoHTTPS, TLSImplicit, 443, "MS-OXDSCLI §3.1.5.2"},
}

// SRV states.
const (
	SRVPublished  = "published"
	SRVAbsent     = "absent"
	SRVNotOffered = "not-offered" // a single record with target "." (RFC 2782)
	SRVError      = "error"
)

// SRVService is the evidence for one SRV name.
type SRVService struct {
	Name    string      `json:"name"`
	Proto   string      `json:"protocol"`
	TLS     string      `json:"tls"`
	State   string      `json:"state"`
	Targets []SRVTarget `json:"targets,omitempty"`
	Error   string      `json:"error,omitempty"`
	rfc     string
}

// SRVTarget is one SRV record.
type SRVTarget struct {
	Priority uint16   `json:"priority"`
	Weight   uint16   `json:"weight"`
	Port     uint16   `json:"port"`
	Target   string   `json:"target"`
	Addrs    []string `json:"addrs,omitempty"`
	Error    string   `json:"error,omitempty"`
}

func (r *runner) srvSection() []diag.Step {
	svcs := make([]SRVService, len(SRVNames))
	r.parallel(len(SRVNames), func(i int) {
		n := SRVNames[i]
		s := &svcs[i]
		*s = SRVService{Name: n.Label + "." + r.domain, Proto: n.Proto, TLS: n.TLS, rfc: n.RFC}
		resp, err := r.env.Resolver.Query(r.ctx, s.Name+".", dns.TypeSRV)
		switch {
		case absent(err):
			s.State = SRVAbsent
			return
		case err != nil:
			s.State, s.Error = SRVError, dnsWord(err)
			return
		}
		for _, rr := range resp.Records {
			if srv, ok := rr.(*dns.SRV); ok {
				target := hostName(srv.Target)
				if target == "" {
					target = "." // RFC 2782: the root, "not offered"
				}
				s.Targets = append(s.Targets, SRVTarget{Priority: srv.Priority, Weight: srv.Weight, Port: srv.Port, Target: target})
			}
		}
		slices.SortFunc(s.Targets, func(a, b SRVTarget) int {
			if a.Priority != b.Priority {
				return int(a.Priority) - int(b.Priority)
			}
			return int(b.Weight) - int(a.Weight)
		})
		s.State = SRVPublished
		// RFC 2782: > A Target of "." means that the service is decidedly
		// not available at this domain.
		if len(s.Targets) == 1 && s.Targets[0].Target == "." {
			s.State = SRVNotOffered
		}
		if len(s.Targets) == 0 {
			s.State = SRVAbsent
		}
	})
	// Addresses of every target.
	type ref struct{ s, t int }
	var refs []ref
	for i := range svcs {
		for j, t := range svcs[i].Targets {
			if t.Target != "." {
				refs = append(refs, ref{i, j})
			}
		}
	}
	r.parallel(len(refs), func(k int) {
		t := &svcs[refs[k].s].Targets[refs[k].t]
		ipr, err := dnsx.LookupIP(r.ctx, r.env.Resolver, t.Target, dnsx.IPv4|dnsx.IPv6)
		if err != nil {
			t.Error = dnsWord(err)
			return
		}
		for _, a := range ipr.Addrs {
			t.Addrs = append(t.Addrs, a.String())
		}
	})

	var steps []diag.Step
	var missing []string
	published := map[string]bool{}
	for _, s := range svcs {
		label := strings.TrimSuffix(s.Name, "."+r.domain)
		switch s.State {
		case SRVAbsent:
			missing = append(missing, label)
		case SRVError:
			steps = append(steps, step(StepSRV, diag.Warn, fmt.Sprintf("SRV %s: lookup failed (%s)", label, s.Error), "", "", s.rfc))
		case SRVNotOffered:
			published[label] = true
			steps = append(steps, step(StepSRV, diag.Info, fmt.Sprintf("SRV %s: target \".\": the service is not offered", label),
				"Clients that read SRV records will not use "+s.Proto+" with "+tlsWords(s.TLS)+" for this domain.", "", "RFC 2782; "+s.rfc))
		default:
			published[label] = true
			var ts []string
			var bad []string
			dot := false
			for _, t := range s.Targets {
				if t.Target == "." {
					dot = true
					continue
				}
				ts = append(ts, fmt.Sprintf("%s:%d", t.Target, t.Port))
				if t.Error != "" {
					bad = append(bad, fmt.Sprintf("%s (%s)", t.Target, t.Error))
				}
			}
			st := step(StepSRV, diag.OK, fmt.Sprintf("SRV %s: %s", label, strings.Join(ts, ", ")), "", "", s.rfc)
			switch {
			case len(bad) > 0:
				st.Status = diag.Fail
				st.Detail = "targets without an address: " + strings.Join(bad, ", ")
				st.Hint = "Publish A/AAAA records for the target, or correct the SRV record."
			case dot:
				st.Status = diag.Warn
				st.Detail = "A \".\" target next to real targets: RFC 2782 gives \".\" meaning only as the single record."
				st.Hint = "Remove the \".\" record."
			}
			steps = append(steps, st)
		}
	}
	if len(missing) > 0 {
		steps = append(steps, step(StepSRV, diag.Info, "no SRV records for "+strings.Join(missing, ", "),
			"Mail clients that use SRV records (RFC 6186) fall back to guessing host names.", "", "RFC 6186 §3"))
	}
	// RFC 8314 §5.1: implicit TLS is preferred to STARTTLS; publish it.
	for _, p := range [][2]string{{"_imap._tcp", "_imaps._tcp"}, {"_pop3._tcp", "_pop3s._tcp"}, {"_submission._tcp", "_submissions._tcp"}} {
		if published[p[0]] && !published[p[1]] && svcState(svcs, p[0]) == SRVPublished {
			steps = append(steps, step(StepSRV, diag.Info, fmt.Sprintf("SRV %s is published but %s is not", p[0], p[1]),
				"RFC 8314 recommends implicit TLS for mail access and submission, and SRV records for it.",
				"Publish "+p[1]+"."+r.domain+" for the implicit-TLS port.", "RFC 8314 §5.1"))
		}
	}
	r.res.SRV = svcs
	return steps
}

func svcState(svcs []SRVService, label string) string {
	for _, s := range svcs {
		if strings.HasPrefix(s.Name, label+".") {
			return s.State
		}
	}
	return ""
}

func tlsWords(t string) string {
	switch t {
	case TLSImplicit:
		return "implicit TLS"
	case TLSStartTLS:
		return "STARTTLS"
	}
	return "no TLS"
}
