package domain

import (
	"cmp"
	"context"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/mxray/mxray/internal/diag"
	"github.com/mxray/mxray/internal/probe"
)

// Endpoint is one server advertised to mail clients, with where it was
// advertised.
type Endpoint struct {
	Proto   string   `json:"protocol"` // imap, pop3, submission
	Host    string   `json:"host"`
	Port    int      `json:"port"`
	TLS     string   `json:"tls"` // implicit, starttls, none
	Sources []string `json:"sources"`
}

func (e Endpoint) key() string { return fmt.Sprintf("%s %s:%d %s", e.Proto, e.Host, e.Port, e.TLS) }

// String reads "imap mail.example.com:993 (implicit TLS)".
func (e Endpoint) String() string {
	return fmt.Sprintf("%s %s:%d (%s)", e.Proto, e.Host, e.Port, tlsWords(e.TLS))
}

// ProbeResult is what checking one endpoint found.
type ProbeResult struct {
	Status   diag.Status `json:"status"`
	Summary  string      `json:"summary"`
	Detail   string      `json:"detail,omitempty"`
	Greeting string      `json:"greeting,omitempty"`
	// TLSVersion and Certificate describe the TLS session, when there was
	// one ("ok", or the certificate's problems).
	TLSVersion  string `json:"tls_version,omitempty"`
	Certificate string `json:"certificate,omitempty"`
	// Failed names the first check that failed: connect, tls,
	// certificate or auth.
	Failed string `json:"failed,omitempty"`
	Error  string `json:"error,omitempty"`
}

// ProbeFunc checks one advertised endpoint.
type ProbeFunc func(ctx context.Context, env diag.Env, ep Endpoint) ProbeResult

// ServerCheck is one advertised endpoint and its check.
type ServerCheck struct {
	Endpoint
	Result ProbeResult `json:"result"`
}

// ServiceProbe checks an endpoint with internal/probe: connect, greeting,
// capabilities, STARTTLS or implicit TLS, the certificate for the host name
// (RFC 7817), the TLS versions and the login mechanisms offered. It logs
// nothing in.
func ServiceProbe(ctx context.Context, env diag.Env, ep Endpoint) ProbeResult {
	svc := probeService(ep)
	pr := probe.Run(ctx, env, probe.Target{Host: ep.Host, Services: []probe.Service{svc}, Explicit: true, Port: ep.Port, Helo: "mxray.invalid"}, diag.Discard)
	res := ProbeResult{}
	if len(pr.Services) == 0 {
		res.Status, res.Failed = diag.Fail, "connect"
		res.Summary = "no address"
		if pr.Unchecked != "" {
			res.Error = pr.Unchecked
		}
		for _, st := range pr.Steps {
			if st.Status == diag.Fail {
				res.Detail = strings.TrimSpace(res.Detail + "\n" + st.Title)
			}
		}
		return res
	}
	s := pr.Services[0]
	res.Greeting, res.Error = s.Greeting, s.Error
	if s.TLS != nil {
		res.TLSVersion = s.TLS.Version
		res.Certificate = string(s.TLS.Verification.Status)
		if len(s.TLS.Verification.Problems) > 0 {
			var ps []string
			for _, p := range s.TLS.Verification.Problems {
				ps = append(ps, string(p))
			}
			res.Certificate = strings.Join(ps, ", ")
		}
	}
	m := s.Matrix
	var words []string
	res.Status = diag.Skip
	for _, c := range []struct {
		name string
		cell probe.Cell
	}{{"connect", m.Connect}, {"tls", m.TLS}, {"certificate", m.Cert}, {"auth", m.Auth}} {
		if c.cell.Status == diag.Skip || c.cell.Status == "" {
			continue
		}
		if c.name == "tls" {
			words = append(words, c.cell.Text)
		} else {
			words = append(words, c.name+" "+c.cell.Text)
		}
		// A client told to use no TLS does not care about the
		// certificate a STARTTLS would have shown.
		if ep.TLS == TLSNone && (c.name == "tls" || c.name == "certificate") {
			continue
		}
		if c.cell.Status == diag.Fail && res.Failed == "" {
			res.Failed = c.name
		}
		if c.cell.Status.Worse(res.Status) {
			res.Status = c.cell.Status
		}
	}
	if res.Status == diag.Skip {
		res.Status = s.Status
	}
	res.Summary = strings.Join(words, "; ")
	var lines []string
	for _, st := range s.Steps {
		if st.Status == diag.Fail || st.Status == diag.Warn {
			lines = append(lines, st.Title)
		}
	}
	res.Detail = strings.Join(lines, "\n")
	return res
}

// probeService maps an endpoint onto the probe's service names.
func probeService(ep Endpoint) probe.Service {
	implicit := ep.TLS == TLSImplicit
	switch ep.Proto {
	case ProtoIMAP:
		if implicit {
			return probe.IMAPS
		}
		return probe.IMAP
	case ProtoPOP3:
		if implicit {
			return probe.POP3S
		}
		return probe.POP3
	}
	if implicit {
		return probe.Submissions
	}
	return probe.Submission
}

// autoconfigURLs are the two HTTPS places Thunderbird looks.
func (r *runner) autoconfigURLs() [][2]string {
	return [][2]string{
		{"https://autoconfig." + r.domain + "/mail/config-v1.1.xml?emailaddress=" + url.QueryEscape(r.t.Email), "autoconfig host"},
		{"https://" + r.domain + "/.well-known/autoconfig/mail/config-v1.1.xml", "well-known"},
	}
}

func (r *runner) autoconfigSection() []diag.Step {
	urls := r.autoconfigURLs()
	fs := make([]ConfigFetch, len(urls))
	r.parallel(len(urls), func(i int) {
		fs[i] = fetch(r.ctx, r.env, "GET", urls[i][0], nil, true)
		fs[i].Via = urls[i][1]
		if fs[i].State == FetchFound {
			c, err := ParseAutoconfig(fs[i].body)
			if err != nil {
				fs[i].State, fs[i].err, fs[i].Error = FetchInvalid, err, err.Error()
			} else {
				fs[i].Config = c
			}
		}
	})
	r.res.Autoconfig = fs
	return r.configSteps(StepAutoconfig, "autoconfig", fs, "Thunderbird, K-9/Thunderbird for Android and other clients",
		"Serve https://autoconfig."+r.domain+"/mail/config-v1.1.xml (clientConfig version 1.1) so that clients set themselves up from the address alone.",
		"Thunderbird autoconfig")
}

func (r *runner) autodiscoverSection() []diag.Step {
	type target struct{ url, via string }
	targets := []target{{"https://autodiscover." + r.domain + "/autodiscover/autodiscover.xml", "autodiscover host"}}
	r.after(StepSRV)
	for _, s := range r.res.SRV {
		if s.Proto != ProtoHTTPS || s.State != SRVPublished {
			continue
		}
		for _, t := range s.Targets {
			if t.Target == "." {
				continue
			}
			host := t.Target
			if t.Port != 443 {
				host += ":" + strconv.Itoa(int(t.Port))
			}
			u := "https://" + host + "/autodiscover/autodiscover.xml"
			if u != targets[0].url {
				targets = append(targets, target{u, "SRV _autodiscover._tcp"})
			}
		}
	}
	fs := make([]ConfigFetch, len(targets))
	body := AutodiscoverRequest(r.t.Email)
	r.parallel(len(targets), func(i int) {
		fs[i] = fetch(r.ctx, r.env, "POST", targets[i].url, body, false)
		fs[i].Via = targets[i].via
		if fs[i].State == FetchFound {
			a, err := ParseAutodiscover(fs[i].body)
			if err != nil {
				fs[i].State, fs[i].err, fs[i].Error = FetchInvalid, err, err.Error()
			} else {
				fs[i].Autodiscover = a
			}
		}
	})
	r.res.Autodiscover = fs
	return r.configSteps(StepAutodiscover, "Autodiscover", fs, "Outlook and other clients",
		"Answer POST https://autodiscover."+r.domain+"/autodiscover/autodiscover.xml with a POX response, or publish _autodiscover._tcp."+r.domain+" SRV.",
		"MS-OXDSCLI")
}

// configSteps turns the fetches of one mechanism into findings.
func (r *runner) configSteps(id, what string, fs []ConfigFetch, clients, publishHint, rfc string) []diag.Step {
	var steps []diag.Step
	var absentURLs []string
	for _, f := range fs {
		cert := certProblem(f.Certificate)
		switch {
		case f.State == FetchAbsent:
			absentURLs = append(absentURLs, f.URL+" ("+f.Error+")")
			continue
		case f.State == FetchError:
			s := step(id, diag.Warn, fmt.Sprintf("%s at %s: %s", what, f.URL, f.Error), "", "", rfc)
			if cert != "" {
				s.Status, s.Detail = diag.Fail, cert+"; clients refuse the connection."
				s.Hint = "Install a certificate valid for " + f.Certificate.Host + " from a public CA."
			}
			steps = append(steps, s)
			continue
		case f.State == FetchInvalid:
			steps = append(steps, step(id, diag.Fail, fmt.Sprintf("%s at %s cannot be used: %s", what, f.URL, f.Error),
				"", "Serve a well-formed document without a DOCTYPE.", rfc))
			continue
		}
		if cert != "" {
			steps = append(steps, step(id, diag.Fail, fmt.Sprintf("%s at %s: %s", what, f.URL, cert),
				"Clients refuse a certificate that does not verify, so they never read this configuration.",
				"Install a certificate valid for "+f.Certificate.Host+" from a public CA.", "RFC 6125 §6"))
			continue
		}
		steps = append(steps, r.documentSteps(id, what, f, rfc)...)
	}
	if len(absentURLs) == len(fs) {
		steps = append(steps, step(id, diag.Info, "no "+what+" published",
			"Tried "+strings.Join(absentURLs, "; ")+".\n"+clients+" then guess server names or ask the user.", publishHint, rfc))
	} else if len(absentURLs) > 0 {
		steps = append(steps, step(id, diag.Info, what+" not published at "+strings.Join(absentURLs, "; "), "", "", rfc))
	}
	return steps
}

// documentSteps judges one fetched and parsed document.
func (r *runner) documentSteps(id, what string, f ConfigFetch, rfc string) []diag.Step {
	var steps []diag.Step
	eps, problems := endpointsOf(f)
	var list []string
	for _, e := range eps {
		list = append(list, e.String())
	}
	switch {
	case f.Autodiscover != nil && f.Autodiscover.Response.Error != nil:
		e := f.Autodiscover.Response.Error
		steps = append(steps, step(id, diag.Warn, fmt.Sprintf("%s at %s answers error %s: %s", what, f.URL, e.Code, e.Message),
			"Outlook gets no settings from this server.", "Check the Autodiscover service's logs; error 600 usually means the request schema is not supported.", rfc))
	case f.Autodiscover != nil && f.Autodiscover.Response.Account != nil && strings.HasPrefix(strings.ToLower(f.Autodiscover.Response.Account.Action), "redirect"):
		a := f.Autodiscover.Response.Account
		steps = append(steps, step(id, diag.Info, fmt.Sprintf("%s at %s redirects (%s %s%s)", what, f.URL, a.Action, a.RedirectAddr, a.RedirectURL),
			"The redirect is not followed by the audit.", "", rfc))
	case len(eps) == 0 && len(problems) == 0:
		steps = append(steps, step(id, diag.Info, fmt.Sprintf("%s at %s lists no IMAP, POP3 or SMTP server", what, f.URL),
			"Only other account types (Exchange, web) are advertised.", "", rfc))
	default:
		s := step(id, diag.OK, fmt.Sprintf("%s at %s: %s", what, f.URL, strings.Join(list, ", ")), "", "", rfc)
		if len(f.Redirects) > 0 {
			s.Detail = "after redirects to " + strings.Join(f.Redirects, ", ")
		}
		steps = append(steps, s)
	}
	for _, p := range problems {
		steps = append(steps, step(id, diag.Fail, fmt.Sprintf("%s at %s: %s", what, f.URL, p), "Clients cannot use this entry.", "Fix the entry: a hostname, a port number and a socketType (SSL, STARTTLS or plain).", rfc))
	}
	return steps
}

// endpointsOf lists the IMAP, POP3 and submission servers a document
// advertises, and the entries a client cannot use.
func endpointsOf(f ConfigFetch) ([]Endpoint, []string) {
	var eps []Endpoint
	var problems []string
	src := f.Via
	if f.Config != nil {
		src = "autoconfig (" + f.Via + ")"
		for _, p := range f.Config.Providers {
			for _, s := range slices.Concat(p.Incoming, p.Outgoing) {
				proto := map[string]string{"imap": ProtoIMAP, "pop3": ProtoPOP3, "smtp": ProtoSubmission}[s.Type]
				if proto == "" {
					continue
				}
				if len(s.Problems) > 0 {
					problems = append(problems, fmt.Sprintf("%s server %q: %s", s.Type, s.Hostname, strings.Join(s.Problems, "; ")))
					continue
				}
				eps = append(eps, Endpoint{Proto: proto, Host: hostName(s.Hostname), Port: s.Port, TLS: s.TLS(), Sources: []string{src}})
			}
		}
	}
	if f.Autodiscover != nil && f.Autodiscover.Response.Account != nil {
		src = "autodiscover (" + f.Via + ")"
		for _, p := range f.Autodiscover.Response.Account.Protocols {
			proto := map[string]string{"IMAP": ProtoIMAP, "POP3": ProtoPOP3, "SMTP": ProtoSubmission}[p.Type]
			if proto == "" {
				continue
			}
			if len(p.Problems) > 0 {
				problems = append(problems, fmt.Sprintf("%s protocol %q: %s", p.Type, p.Server, strings.Join(p.Problems, "; ")))
				continue
			}
			eps = append(eps, Endpoint{Proto: proto, Host: hostName(p.Server), Port: p.Port, TLS: p.TLS(), Sources: []string{src}})
		}
	}
	return eps, problems
}

// serversSection checks every server advertised by SRV, autoconfig and
// Autodiscover, and whether the three agree.
func (r *runner) serversSection() []diag.Step {
	r.after(StepSRV)
	r.after(StepAutoconfig)
	r.after(StepAutodiscover)
	r.after(StepMX)
	byKey := map[string]*Endpoint{}
	var order []*Endpoint
	addEP := func(e Endpoint) {
		if k := e.key(); byKey[k] != nil {
			for _, s := range e.Sources {
				if !slices.Contains(byKey[k].Sources, s) {
					byKey[k].Sources = append(byKey[k].Sources, s)
				}
			}
			return
		}
		c := e
		byKey[e.key()] = &c
		order = append(order, &c)
	}
	var steps []diag.Step
	placeholders := 0
	for _, f := range slices.Concat(r.res.Autoconfig, r.res.Autodiscover) {
		if f.State != FetchFound {
			continue
		}
		eps, _ := endpointsOf(f)
		for _, e := range eps {
			if strings.Contains(e.Host, "%") {
				placeholders++ // %EMAILDOMAIN% and the like: a template, not a host
				continue
			}
			addEP(e)
		}
	}
	advertised := slices.Clone(order) // by autoconfig / Autodiscover
	for _, s := range r.res.SRV {
		if s.State != SRVPublished || s.Proto == ProtoHTTPS {
			continue
		}
		for _, t := range s.Targets {
			if t.Target != "." {
				addEP(Endpoint{Proto: s.Proto, Host: t.Target, Port: int(t.Port), TLS: s.TLS, Sources: []string{"SRV " + strings.TrimSuffix(s.Name, "."+r.domain)}})
			}
		}
	}
	if placeholders > 0 {
		steps = append(steps, step(StepClientServer, diag.Info, fmt.Sprintf("%d advertised host names contain placeholders such as %%EMAILDOMAIN%%: not checked", placeholders), "", "", ""))
	}
	steps = append(steps, r.consistency(advertised)...)
	if len(order) == 0 {
		return steps
	}
	slices.SortStableFunc(order, func(a, b *Endpoint) int {
		return cmp.Or(strings.Compare(a.Proto, b.Proto), strings.Compare(a.Host, b.Host), cmp.Compare(a.Port, b.Port), strings.Compare(a.TLS, b.TLS))
	})
	checks := make([]ServerCheck, len(order))
	r.parallel(len(order), func(i int) {
		checks[i] = ServerCheck{Endpoint: *order[i], Result: r.t.Probe(r.ctx, r.env, *order[i])}
	})
	r.res.Servers = checks
	for _, c := range checks {
		res := c.Result
		s := step(StepClientServer, res.Status, fmt.Sprintf("%s: %s", c.Endpoint, orDefault(res.Summary, res.Error)),
			strings.TrimSpace("advertised by "+strings.Join(c.Sources, ", ")+"\n"+res.Detail), "", "RFC 8314")
		switch res.Failed {
		case "":
		case "certificate":
			s.Hint = fmt.Sprintf("Clients refuse the certificate: install one valid for %s from a public CA, or advertise the name the certificate is for.", c.Host)
			s.RFC = "RFC 7817 §3; RFC 8314 §5.3"
		case "tls":
			s.Hint = "Clients told to use " + tlsWords(c.TLS) + " cannot connect: enable it on the server, or advertise what the server offers."
		default:
			s.Hint = fmt.Sprintf("Clients configured from these records cannot use %s:%d: start the service there, or correct what advertises it.", c.Host, c.Port)
		}
		s.Host = c.Host
		steps = append(steps, s)
		if c.TLS == TLSNone {
			steps = append(steps, step(StepClientServer, diag.Warn, fmt.Sprintf("%s is advertised without TLS: passwords cross the network in cleartext", c.Endpoint),
				"advertised by "+strings.Join(c.Sources, ", "), "Advertise implicit TLS (socketType SSL: 993, 995, 465) or at least STARTTLS.", "RFC 8314 §4.1"))
		}
	}
	return steps
}

// consistency compares what autoconfig and Autodiscover advertise with
// the SRV records and the MX hosts.
func (r *runner) consistency(advertised []*Endpoint) []diag.Step {
	var steps []diag.Step
	mx := r.mxHosts()
	var srvHosts []string
	for _, s := range r.res.SRV {
		for _, t := range s.Targets {
			if t.Target != "." {
				srvHosts = append(srvHosts, t.Target)
			}
		}
	}
	for _, e := range advertised {
		var same, notOffered *SRVService
		for i, s := range r.res.SRV {
			if s.Proto != e.Proto || s.TLS != e.TLS && !(e.TLS == TLSNone && s.TLS == TLSStartTLS) {
				continue
			}
			switch s.State {
			case SRVPublished:
				same = &r.res.SRV[i]
			case SRVNotOffered:
				notOffered = &r.res.SRV[i]
			}
		}
		src := strings.Join(e.Sources, ", ")
		switch {
		case notOffered != nil:
			steps = append(steps, step(StepClientMismatch, diag.Warn, fmt.Sprintf("%s advertises %s, but SRV %s says the service is not offered", src, e, notOffered.Name),
				"Clients that read SRV records and clients that read autoconfig get opposite answers.",
				"Publish the real target in "+notOffered.Name+", or stop advertising the server.", "RFC 2782; RFC 6186 §3"))
		case same != nil:
			match := false
			var want []string
			for _, t := range same.Targets {
				want = append(want, fmt.Sprintf("%s:%d", t.Target, t.Port))
				if t.Target == e.Host && int(t.Port) == e.Port {
					match = true
				}
			}
			if !match {
				steps = append(steps, step(StepClientMismatch, diag.Warn, fmt.Sprintf("%s advertises %s, but SRV %s names %s", src, e, same.Name, strings.Join(want, ", ")),
					"Clients get different servers depending on how they look.",
					"Make the SRV record and the client configuration name the same host and port.", "RFC 6186 §3"))
			}
		case !slices.Contains(mx, e.Host) && !slices.Contains(srvHosts, e.Host):
			steps = append(steps, step(StepClientMismatch, diag.Info, fmt.Sprintf("%s advertises %s, a host that is neither an MX host nor an SRV target", src, e),
				fmt.Sprintf("MX hosts: %s. That is fine when the mail access servers are separate; check it is the intended host.", orDefault(strings.Join(mx, ", "), "none")),
				"Publish SRV records (RFC 6186) naming the same host, so that all clients agree.", "RFC 6186 §3"))
		}
	}
	return steps
}
