package domain

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Limits of the XML the audit reads from the network. Real autoconfig
// files are a few KiB with a nesting depth under 6.
const (
	MaxConfigSize   = 512 << 10 // bytes of one autoconfig or Autodiscover document
	MaxConfigDepth  = 24        // element nesting
	MaxConfigTokens = 50000     // XML tokens
)

// Errors of the XML parsers; test with errors.Is.
var (
	// ErrXML: the document is not well-formed XML.
	ErrXML = errors.New("domain: malformed XML")
	// ErrXMLUnsafe: the document has a DOCTYPE (entity declarations), is
	// nested too deeply, or is too large; it is refused unread.
	ErrXMLUnsafe = errors.New("domain: XML refused (DOCTYPE, depth or size limit)")
	// ErrNotAutoconfig: well-formed, but not a clientConfig document.
	ErrNotAutoconfig = errors.New("domain: not a Thunderbird autoconfig document (clientConfig)")
	// ErrNotAutodiscover: well-formed, but not an Autodiscover response.
	ErrNotAutodiscover = errors.New("domain: not an Autodiscover response")
)

// ClientConfig is a Thunderbird autoconfig document (config-v1.1.xml, the
// format of the ISPDB and of https://autoconfig.<domain>/mail/...).
type ClientConfig struct {
	XMLName   xml.Name        `xml:"clientConfig" json:"-"`
	Version   string          `xml:"version,attr" json:"version,omitempty"`
	Providers []EmailProvider `xml:"emailProvider" json:"providers"`
}

// EmailProvider is one emailProvider block.
type EmailProvider struct {
	ID          string         `xml:"id,attr" json:"id"`
	Domains     []string       `xml:"domain" json:"domains"`
	DisplayName string         `xml:"displayName" json:"display_name,omitempty"`
	Incoming    []ConfigServer `xml:"incomingServer" json:"incoming"`
	Outgoing    []ConfigServer `xml:"outgoingServer" json:"outgoing"`
}

// ConfigServer is one incomingServer or outgoingServer.
type ConfigServer struct {
	Type           string   `xml:"type,attr" json:"type"` // imap, pop3, smtp, exchange, ews, …
	Hostname       string   `xml:"hostname" json:"hostname,omitempty"`
	PortText       string   `xml:"port" json:"-"`
	Port           int      `xml:"-" json:"port,omitempty"`
	SocketType     string   `xml:"socketType" json:"socket_type,omitempty"` // SSL, STARTTLS, plain
	Username       string   `xml:"username" json:"username,omitempty"`
	Authentication []string `xml:"authentication" json:"authentication,omitempty"`
	URL            string   `xml:"url" json:"url,omitempty"` // ews, owa, graph
	// Problems are what a client cannot use in this entry.
	Problems []string `xml:"-" json:"problems,omitempty"`
}

// ParseAutoconfig reads a Thunderbird autoconfig document. It refuses
// DOCTYPEs (and so entity declarations), deep nesting and documents over
// MaxConfigSize; what a client could not use in a server entry is listed
// in its Problems rather than failing the whole document.
func ParseAutoconfig(b []byte) (*ClientConfig, error) {
	if err := checkXML(b); err != nil {
		return nil, err
	}
	var c ClientConfig
	if err := decodeXML(b, &c); err != nil {
		var ue xml.UnmarshalError
		if errors.As(err, &ue) || strings.Contains(err.Error(), "expected element type") {
			return nil, fmt.Errorf("%w: %v", ErrNotAutoconfig, err)
		}
		return nil, fmt.Errorf("%w: %v", ErrXML, err)
	}
	if len(c.Providers) == 0 {
		return nil, fmt.Errorf("%w: no emailProvider element", ErrNotAutoconfig)
	}
	for i := range c.Providers {
		p := &c.Providers[i]
		p.ID = strings.TrimSpace(p.ID)
		for j := range p.Domains {
			p.Domains[j] = strings.TrimSpace(p.Domains[j])
		}
		for _, list := range [][]ConfigServer{p.Incoming, p.Outgoing} {
			for j := range list {
				list[j].normalize()
			}
		}
	}
	return &c, nil
}

func (s *ConfigServer) normalize() {
	s.Type = strings.TrimSpace(s.Type)
	s.Hostname = strings.TrimSpace(s.Hostname)
	s.SocketType = strings.TrimSpace(s.SocketType)
	s.Username = strings.TrimSpace(s.Username)
	s.URL = strings.TrimSpace(s.URL)
	for i := range s.Authentication {
		s.Authentication[i] = strings.TrimSpace(s.Authentication[i])
	}
	pt := strings.TrimSpace(s.PortText)
	switch s.Type {
	case "imap", "pop3", "smtp":
	default:
		// exchange, ews, owa, graph, jmap…: clients use URLs; not checked.
		if pt != "" {
			s.Port, _ = strconv.Atoi(pt)
		}
		return
	}
	if s.Hostname == "" {
		s.Problems = append(s.Problems, "no hostname")
	}
	if n, err := strconv.Atoi(pt); err != nil || n < 1 || n > 65535 {
		s.Problems = append(s.Problems, fmt.Sprintf("port %q is not a port number", pt))
	} else {
		s.Port = n
	}
	switch s.SocketType {
	case "SSL", "STARTTLS", "plain":
	default:
		s.Problems = append(s.Problems, fmt.Sprintf("socketType %q is not SSL, STARTTLS or plain", s.SocketType))
	}
}

// TLS returns the endpoint's transport security (TLSImplicit, TLSStartTLS,
// TLSNone) from its socketType.
func (s ConfigServer) TLS() string {
	switch s.SocketType {
	case "SSL":
		return TLSImplicit
	case "STARTTLS":
		return TLSStartTLS
	}
	return TLSNone
}

// AutodiscoverResponse is an Outlook POX Autodiscover response
// ([MS-OXDSCLI] §2.2.4). Namespaces are not checked: servers differ.
type AutodiscoverResponse struct {
	XMLName  xml.Name `xml:"Autodiscover" json:"-"`
	Response struct {
		Error *struct {
			Code    string `xml:"ErrorCode" json:"code"`
			Message string `xml:"Message" json:"message"`
		} `xml:"Error" json:"error,omitempty"`
		User struct {
			DisplayName string `xml:"DisplayName" json:"display_name,omitempty"`
		} `xml:"User" json:"user"`
		Account *ADAccount `xml:"Account" json:"account,omitempty"`
	} `xml:"Response" json:"response"`
}

// ADAccount is the Account element: settings, or a redirect.
type ADAccount struct {
	AccountType  string       `xml:"AccountType" json:"account_type,omitempty"`
	Action       string       `xml:"Action" json:"action,omitempty"` // settings, redirectAddr, redirectUrl
	RedirectAddr string       `xml:"RedirectAddr" json:"redirect_addr,omitempty"`
	RedirectURL  string       `xml:"RedirectUrl" json:"redirect_url,omitempty"`
	Protocols    []ADProtocol `xml:"Protocol" json:"protocols"`
}

// ADProtocol is one Protocol element.
type ADProtocol struct {
	Type       string `xml:"Type" json:"type"` // IMAP, POP3, SMTP, EXCH, EXPR, WEB
	Server     string `xml:"Server" json:"server,omitempty"`
	PortText   string `xml:"Port" json:"-"`
	Port       int    `xml:"-" json:"port,omitempty"`
	SSL        string `xml:"SSL" json:"ssl,omitempty"`               // on (default) or off
	Encryption string `xml:"Encryption" json:"encryption,omitempty"` // None, SSL, TLS, Auto
	LoginName  string `xml:"LoginName" json:"login_name,omitempty"`
	SPA        string `xml:"SPA" json:"spa,omitempty"`
	ASUrl      string `xml:"ASUrl" json:"as_url,omitempty"`
	// Problems are what a client cannot use in this entry.
	Problems []string `xml:"-" json:"problems,omitempty"`
}

// TLS returns the endpoint's transport security. Encryption wins over SSL
// ([MS-OXDSCLI] §2.2.4.1.1.2.12); SSL "on" (the default) on a port other
// than the implicit-TLS ones is taken as STARTTLS.
func (p ADProtocol) TLS() string {
	switch strings.ToLower(p.Encryption) {
	case "ssl":
		return TLSImplicit
	case "tls":
		return TLSStartTLS
	case "none":
		return TLSNone
	}
	if strings.EqualFold(p.SSL, "off") {
		return TLSNone
	}
	switch p.Port {
	case 993, 995, 465:
		return TLSImplicit
	}
	return TLSStartTLS
}

// ParseAutodiscover reads a POX Autodiscover response with the same limits
// as ParseAutoconfig.
func ParseAutodiscover(b []byte) (*AutodiscoverResponse, error) {
	if err := checkXML(b); err != nil {
		return nil, err
	}
	var a AutodiscoverResponse
	if err := decodeXML(b, &a); err != nil {
		if strings.Contains(err.Error(), "expected element type") {
			return nil, fmt.Errorf("%w: %v", ErrNotAutodiscover, err)
		}
		return nil, fmt.Errorf("%w: %v", ErrXML, err)
	}
	if a.Response.Error == nil && a.Response.Account == nil {
		return nil, fmt.Errorf("%w: neither Account nor Error in Response", ErrNotAutodiscover)
	}
	if acc := a.Response.Account; acc != nil {
		acc.Action = strings.TrimSpace(acc.Action)
		for i := range acc.Protocols {
			p := &acc.Protocols[i]
			p.Type = strings.ToUpper(strings.TrimSpace(p.Type))
			p.Server = strings.TrimSpace(p.Server)
			p.Encryption = strings.TrimSpace(p.Encryption)
			p.SSL = strings.TrimSpace(p.SSL)
			switch p.Type {
			case "IMAP", "POP3", "SMTP":
				if p.Server == "" {
					p.Problems = append(p.Problems, "no Server")
				}
				if n, err := strconv.Atoi(strings.TrimSpace(p.PortText)); err != nil || n < 1 || n > 65535 {
					p.Problems = append(p.Problems, fmt.Sprintf("Port %q is not a port number", strings.TrimSpace(p.PortText)))
				} else {
					p.Port = n
				}
			}
		}
	}
	return &a, nil
}

// AutodiscoverRequest returns the POX request body Outlook posts for
// email ([MS-OXDSCLI] §2.2.3).
func AutodiscoverRequest(email string) []byte {
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0" encoding="utf-8"?>` + "\n")
	b.WriteString(`<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006">` + "\n")
	b.WriteString("  <Request>\n    <EMailAddress>")
	xml.EscapeText(&b, []byte(email))
	b.WriteString("</EMailAddress>\n")
	b.WriteString("    <AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema>\n")
	b.WriteString("  </Request>\n</Autodiscover>\n")
	return b.Bytes()
}

// checkXML walks the document once and refuses what the parsers must not
// read: a DOCTYPE (the door to entity expansion, "billion laughs"), nesting
// beyond MaxConfigDepth, more than MaxConfigTokens tokens, a document over
// MaxConfigSize. encoding/xml itself never fetches external entities and,
// in strict mode, rejects undeclared ones.
func checkXML(b []byte) error {
	if len(b) > MaxConfigSize {
		return fmt.Errorf("%w: %d bytes, more than %d", ErrXMLUnsafe, len(b), MaxConfigSize)
	}
	d := newDecoder(b)
	depth, n := 0, 0
	for {
		tok, err := d.Token()
		if err == io.EOF {
			if depth != 0 {
				return fmt.Errorf("%w: unexpected end of document", ErrXML)
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("%w: %v", ErrXML, err)
		}
		if n++; n > MaxConfigTokens {
			return fmt.Errorf("%w: more than %d tokens", ErrXMLUnsafe, MaxConfigTokens)
		}
		switch t := tok.(type) {
		case xml.Directive:
			return fmt.Errorf("%w: <!%s>", ErrXMLUnsafe, firstWord(string(t)))
		case xml.StartElement:
			if depth++; depth > MaxConfigDepth {
				return fmt.Errorf("%w: nested deeper than %d elements", ErrXMLUnsafe, MaxConfigDepth)
			}
		case xml.EndElement:
			depth--
		}
	}
}

func firstWord(s string) string {
	if f := strings.Fields(s); len(f) > 0 {
		return f[0]
	}
	return s
}

func decodeXML(b []byte, v any) error { return newDecoder(b).Decode(v) }

func newDecoder(b []byte) *xml.Decoder {
	d := xml.NewDecoder(bytes.NewReader(b))
	d.Strict = true
	d.CharsetReader = charsetReader
	return d
}

// charsetReader accepts the encodings autoconfig files use besides UTF-8:
// US-ASCII and ISO-8859-1 (converted to UTF-8).
func charsetReader(label string, in io.Reader) (io.Reader, error) {
	switch strings.ToLower(label) {
	case "utf-8", "utf8", "us-ascii", "ascii":
		return in, nil
	case "iso-8859-1", "latin1", "latin-1", "iso_8859-1":
		raw, err := io.ReadAll(io.LimitReader(in, MaxConfigSize+1))
		if err != nil {
			return nil, err
		}
		out := make([]byte, 0, len(raw)*2)
		for _, c := range raw {
			out = utf8.AppendRune(out, rune(c))
		}
		return bytes.NewReader(out), nil
	}
	return nil, fmt.Errorf("unsupported encoding %q", label)
}
