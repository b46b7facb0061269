package postfix

import (
	"net"
	"strconv"
	"strings"
)

// Delivery is where Postfix puts the mail of one address class (local or
// virtual mailbox domains).
type Delivery struct {
	Class     string `json:"class"`     // "local" (mydestination) or "virtual" (virtual_mailbox_domains)
	Transport string `json:"transport"` // the transport in effect, e.g. "lmtp:unix:private/dovecot-lmtp"
	// Via is "dovecot" (LMTP or dovecot-lda: Dovecot writes the mailbox
	// itself), "postfix" (Postfix's local or virtual agent writes it),
	// "command" (another mailbox_command) or "other" (relayed, discarded).
	Via string `json:"via"`
	// Format is "maildir" or "mbox" when Postfix writes the mailbox; ""
	// when it cannot be told from main.cf (virtual_mailbox_maps results).
	Format string `json:"format,omitempty"`
	// Path is where Postfix writes, "~" for the user's home and "%u" for
	// the user name: "~/Maildir", "/var/mail/%u", "/var/vmail/…".
	Path string `json:"path,omitempty"`
}

// Deliveries returns how Postfix delivers local and virtual mailbox
// mail, from effective parameter values (LintParams has them) and
// master.cf.
func Deliveries(p Params, services []Service) []Delivery {
	var out []Delivery
	if len(List(p["mydestination"])) > 0 {
		d := Delivery{Class: "local", Transport: orDefault(p["local_transport"], "local")}
		if transportName(d.Transport) == "local" {
			switch {
			case strings.TrimSpace(p["mailbox_transport"]) != "":
				d.Transport = p["mailbox_transport"]
				d.Via = via(d.Transport, services)
			case strings.TrimSpace(p["mailbox_command"]) != "":
				d.Transport = "mailbox_command: " + p["mailbox_command"]
				d.Via = "command"
				if strings.Contains(p["mailbox_command"], "dovecot-lda") || strings.Contains(p["mailbox_command"], "/deliver") {
					d.Via = "dovecot"
				}
			case strings.TrimSpace(p["home_mailbox"]) != "":
				d.Via = "postfix"
				hm := strings.TrimSpace(p["home_mailbox"])
				d.Format = "mbox"
				if strings.HasSuffix(hm, "/") {
					d.Format = "maildir"
				}
				d.Path = "~/" + strings.TrimSuffix(hm, "/")
			default:
				d.Via, d.Format = "postfix", "mbox"
				d.Path = strings.TrimSuffix(orDefault(p["mail_spool_directory"], "/var/mail"), "/") + "/%u"
			}
		} else {
			d.Via = via(d.Transport, services)
		}
		out = append(out, d)
	}
	if len(List(p["virtual_mailbox_domains"])) > 0 {
		d := Delivery{Class: "virtual", Transport: orDefault(p["virtual_transport"], "virtual")}
		d.Via = via(d.Transport, services)
		if d.Via == "postfix" {
			d.Path = strings.TrimSuffix(p["virtual_mailbox_base"], "/") + "/…"
		}
		out = append(out, d)
	}
	return out
}

func orDefault(v, def string) string {
	if strings.TrimSpace(v) == "" {
		return def
	}
	return strings.TrimSpace(v)
}

func transportName(t string) string {
	n, _, _ := strings.Cut(t, ":")
	return n
}

func via(transport string, services []Service) string {
	name := transportName(transport)
	switch name {
	case "lmtp":
		return "dovecot"
	case "local", "virtual":
		return "postfix"
	case "dovecot":
		return "dovecot"
	}
	for _, s := range services {
		if s.Name != name {
			continue
		}
		if s.Command == "lmtp" {
			return "dovecot"
		}
		for _, a := range s.Args {
			if strings.Contains(a, "dovecot-lda") || strings.HasSuffix(a, "/deliver") {
				return "dovecot"
			}
		}
		if s.Command == "local" || s.Command == "virtual" {
			return "postfix"
		}
	}
	return "other"
}

// Milter is one smtpd_milters or non_smtpd_milters entry.
type Milter struct {
	Spec    string `json:"spec"`              // as written
	Network string `json:"network,omitempty"` // "unix" or "tcp"; "" when it cannot be dialled
	Address string `json:"address,omitempty"` // socket path, or host:port
}

// Milters lists the milters of smtpd_milters and non_smtpd_milters once
// each. A relative unix: path is relative to queue_directory, as for
// Postfix's chrooted smtpd.
func Milters(p Params) []Milter {
	seen := map[string]bool{}
	var out []Milter
	for _, n := range []string{"smtpd_milters", "non_smtpd_milters"} {
		for _, item := range milterItems(p[n]) {
			if seen[item] {
				continue
			}
			seen[item] = true
			m := Milter{Spec: item}
			switch {
			case strings.HasPrefix(item, "unix:"):
				m.Network, m.Address = "unix", item[5:]
				if !strings.HasPrefix(m.Address, "/") && p["queue_directory"] != "" {
					m.Address = strings.TrimSuffix(p["queue_directory"], "/") + "/" + m.Address
				}
			case strings.HasPrefix(item, "inet:"):
				hp := item[5:]
				if i := strings.LastIndexByte(hp, ':'); i >= 0 {
					host := strings.Trim(hp[:i], "[]")
					if host == "" {
						host = "127.0.0.1"
					}
					m.Network, m.Address = "tcp", net.JoinHostPort(host, hp[i+1:])
				}
			}
			out = append(out, m)
		}
	}
	return out
}

// milterItems splits a milter list, keeping "{ inet:host:port, ... }"
// groups with per-milter settings as one item (their first word).
func milterItems(v string) []string {
	var out []string
	for len(v) > 0 {
		v = strings.TrimLeft(v, " \t,")
		if v == "" {
			break
		}
		if v[0] == '{' {
			end := strings.IndexByte(v, '}')
			rest := ""
			if end < 0 {
				end = len(v)
			} else {
				rest = v[end+1:]
			}
			inner := List(v[1:end])
			if len(inner) > 0 {
				out = append(out, inner[0])
			}
			v = rest
			continue
		}
		i := strings.IndexAny(v, " \t,")
		if i < 0 {
			i = len(v)
		}
		out = append(out, v[:i])
		v = v[i:]
	}
	return out
}

// Relayhost is the parsed relayhost parameter.
type Relayhost struct {
	Host string `json:"host"`
	Port int    `json:"port"`
	// MX is true when the name is not in brackets: Postfix looks up its
	// MX records first.
	MX bool `json:"mx"`
}

// ParseRelayhost reads "[smtp.example.com]:587", "example.com" or
// "[192.0.2.1]". ok is false for an empty value.
func ParseRelayhost(v string) (Relayhost, bool) {
	items := List(v)
	if len(items) == 0 {
		return Relayhost{}, false
	}
	s := items[0]
	r := Relayhost{Port: 25, MX: true}
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return Relayhost{}, false
		}
		r.Host, r.MX = s[1:end], false
		s = s[end+1:]
	} else if i := strings.LastIndexByte(s, ':'); i >= 0 {
		r.Host, s = s[:i], s[i:]
	} else {
		r.Host, s = s, ""
	}
	if strings.HasPrefix(s, ":") {
		n, err := strconv.Atoi(s[1:])
		if err != nil || n <= 0 || n > 65535 {
			return Relayhost{}, false
		}
		r.Port = n
	}
	return r, r.Host != ""
}
