package dnsx

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/sync/singleflight"
)

// maxChain bounds the CNAME chain followed for one question.
const maxChain = 8

// TraceEvent describes one exchange with a server, or one cache hit.
type TraceEvent struct {
	Name      string        `json:"name"`
	Type      string        `json:"type"`
	Server    string        `json:"server,omitempty"`
	Transport string        `json:"transport,omitempty"`
	Rcode     string        `json:"rcode,omitempty"`
	AD        bool          `json:"ad"`
	Truncated bool          `json:"truncated,omitempty"`
	Answer    []string      `json:"answer,omitempty"`
	Elapsed   time.Duration `json:"-"`
	Cached    bool          `json:"cached,omitempty"`
	Err       string        `json:"error,omitempty"`
}

// Client is a Resolver that asks recursive servers. Its zero value is not
// usable; build one with New. A Client caches answers for its lifetime (one
// run) and is safe for concurrent use.
type Client struct {
	Servers []string      // host:port, asked in order
	Timeout time.Duration // one try on one server
	Tries   int           // rounds over all servers
	UDPSize uint16        // EDNS0 buffer size advertised
	Now     func() time.Time
	Logger  *slog.Logger
	// Trace, when set, is called after every exchange and cache hit.
	Trace func(TraceEvent)

	group     singleflight.Group
	mu        sync.Mutex
	cache     map[cacheKey]cacheEntry
	exchanges atomic.Int64
}

type cacheKey struct {
	name  string
	qtype uint16
}

type cacheEntry struct {
	resp    *Response
	err     error
	expires time.Time
}

// New returns a Client for the given servers (host:port) with mxray's
// defaults: 3 s per try, 2 tries, a 1232-byte EDNS0 buffer (the DNS flag
// day 2020 size, which avoids IP fragmentation).
func New(servers []string) *Client {
	return &Client{
		Servers: servers,
		Timeout: 3 * time.Second,
		Tries:   2,
		UDPSize: 1232,
		Now:     time.Now,
		Logger:  slog.New(slog.DiscardHandler),
		cache:   map[cacheKey]cacheEntry{},
	}
}

// Exchanges returns how many messages the client has sent to servers, for
// tests that prove the cache and singleflight work.
func (c *Client) Exchanges() int64 { return c.exchanges.Load() }

// Query implements Resolver: it answers from the cache, or asks the servers
// once however many goroutines ask the same question at the same time, and
// follows CNAME chains.
func (c *Client) Query(ctx context.Context, name string, qtype uint16) (*Response, error) {
	fq, err := Fqdn(name)
	if err != nil {
		return nil, &Error{Name: name, Type: qtype, Err: ErrBadName, Cause: err}
	}
	start := c.Now()
	resp, err := c.resolve(ctx, fq, qtype)
	c.Logger.Debug("dns query", "name", fq, "type", TypeString(qtype), "elapsed", c.Now().Sub(start), "err", err)
	return resp, err
}

func (c *Client) resolve(ctx context.Context, name string, qtype uint16) (*Response, error) {
	out := &Response{Name: name, Type: qtype, AD: true}
	cur := name
	seen := map[string]bool{}
	for hop := 0; ; hop++ {
		r, err := c.cached(ctx, cur, qtype)
		if err != nil {
			var de *Error
			if errors.As(err, &de) {
				// Report the whole chain in the error's evidence.
				e := *de
				e.Name = name
				if de.Response != nil {
					rr := *de.Response
					rr.Name = name
					rr.Chain = append(append([]*dns.CNAME(nil), out.Chain...), rr.Chain...)
					e.Response = &rr
				}
				return nil, &e
			}
			return nil, err
		}
		out.Rcode, out.Server, out.Transport = r.Rcode, r.Server, r.Transport
		out.AD = out.AD && r.AD
		out.Elapsed += r.Elapsed
		out.Cached = r.Cached
		out.EDE = append(out.EDE, r.EDE...)
		out.Chain = append(out.Chain, r.Chain...)
		out.Records = r.Records
		out.Authority = r.Authority
		if len(r.Records) > 0 || qtype == dns.TypeCNAME || len(r.Chain) == 0 {
			return out, nil
		}
		// The server gave a CNAME but no records for its target (an
		// authoritative server that does not chase out of its zone):
		// ask for the target ourselves.
		seen[cur] = true
		cur = r.Final()
		if seen[cur] || hop >= maxChain {
			return nil, &Error{Name: name, Type: qtype, Server: r.Server, Err: ErrCNAMELoop}
		}
	}
}

// cached answers one question (one hop of a chain) from the cache or the
// network, collapsing concurrent identical questions.
func (c *Client) cached(ctx context.Context, name string, qtype uint16) (*Response, error) {
	key := cacheKey{name, qtype}
	if r, err, ok := c.lookupCache(key); ok {
		if c.Trace != nil {
			ev := TraceEvent{Name: name, Type: TypeString(qtype), Cached: true}
			if r != nil {
				ev.Rcode, ev.AD, ev.Answer = dns.RcodeToString[r.Rcode], r.AD, rrStrings(r.Chain, r.Records)
			}
			if err != nil {
				ev.Err = err.Error()
			}
			c.Trace(ev)
		}
		return r, err
	}
	v, err, _ := c.group.Do(strconv.Itoa(int(qtype))+" "+name, func() (any, error) {
		r, err := c.exchange(ctx, name, qtype)
		c.store(key, r, err)
		return r, err
	})
	if err != nil {
		return nil, err
	}
	return v.(*Response), nil
}

func (c *Client) lookupCache(key cacheKey) (*Response, error, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.cache[key]
	if !ok || c.Now().After(e.expires) {
		return nil, nil, false
	}
	if e.resp != nil {
		r := *e.resp
		r.Cached = true
		r.Elapsed = 0
		return &r, nil, true
	}
	return nil, e.err, true
}

// store caches definite answers: positive ones for their smallest TTL,
// NXDOMAIN and NODATA for the SOA's negative TTL (RFC 2308 §5). Failures
// (SERVFAIL, timeouts) are not cached, so a retry asks again.
func (c *Client) store(key cacheKey, r *Response, err error) {
	var ttl uint32
	switch {
	case err == nil:
		ttl = r.TTL()
		if len(r.Records) == 0 {
			for _, cn := range r.Chain {
				ttl = cn.Hdr.Ttl
			}
		}
	case errors.Is(err, ErrNXDomain) || errors.Is(err, ErrNoData):
		var de *Error
		if errors.As(err, &de) && de.Response != nil {
			ttl = negativeTTL(de.Response.Authority)
		}
	default:
		return
	}
	if ttl == 0 {
		ttl = 1 // still collapse the questions of one run
	}
	c.mu.Lock()
	if c.cache == nil {
		c.cache = map[cacheKey]cacheEntry{}
	}
	c.cache[key] = cacheEntry{resp: r, err: err, expires: c.Now().Add(time.Duration(ttl) * time.Second)}
	c.mu.Unlock()
}

func negativeTTL(auth []dns.RR) uint32 {
	for _, rr := range auth {
		if soa, ok := rr.(*dns.SOA); ok {
			return min(soa.Hdr.Ttl, soa.Minttl)
		}
	}
	return 0
}

// exchange asks the servers one question, with retries, TCP after
// truncation, and the next server after a failure.
func (c *Client) exchange(ctx context.Context, name string, qtype uint16) (*Response, error) {
	if len(c.Servers) == 0 {
		return nil, &Error{Name: name, Type: qtype, Err: ErrNoServers}
	}
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.RecursionDesired = true
	// RFC 6840 §5.7: ask for validation status; RFC 3225: DO asks for
	// DNSSEC records, which validating resolvers need to set AD for us.
	m.AuthenticatedData = true
	m.SetEdns0(c.UDPSize, true)

	var last *Error
	tries := max(c.Tries, 1)
	for try := 0; try < tries; try++ {
		for _, srv := range c.Servers {
			if err := ctx.Err(); err != nil {
				return nil, &Error{Name: name, Type: qtype, Server: srv, Err: ErrTimeout, Cause: err}
			}
			r, err := c.once(ctx, m, srv)
			if err == nil {
				return r, nil
			}
			last = err
			if !Temporary(err) {
				return nil, err
			}
		}
	}
	return nil, last
}

// once asks one server, over UDP and then TCP if the answer was truncated.
func (c *Client) once(ctx context.Context, m *dns.Msg, srv string) (*Response, *Error) {
	q := m.Question[0]
	transport := "udp"
	in, rtt, err := c.send(ctx, m, srv, transport)
	if err == nil && in.Truncated {
		c.trace(q, srv, transport, in, rtt, nil)
		transport = "tcp"
		in, rtt, err = c.send(ctx, m, srv, transport)
	}
	if err != nil {
		c.trace(q, srv, transport, nil, rtt, err)
		kind := ErrUnreachable
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) {
			kind = ErrTimeout
		}
		return nil, &Error{Name: q.Name, Type: q.Qtype, Server: srv, Err: kind, Cause: err}
	}
	c.trace(q, srv, transport, in, rtt, nil)
	return parse(q, in, srv, transport, rtt)
}

func (c *Client) send(ctx context.Context, m *dns.Msg, srv, transport string) (*dns.Msg, time.Duration, error) {
	c.exchanges.Add(1)
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = 3 * time.Second
	}
	if dl, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(dl))
	}
	if timeout <= 0 {
		return nil, 0, context.DeadlineExceeded
	}
	cl := &dns.Client{Net: transport, Timeout: timeout, UDPSize: c.UDPSize}
	tctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return cl.ExchangeContext(tctx, m, srv)
}

func (c *Client) trace(q dns.Question, srv, transport string, in *dns.Msg, rtt time.Duration, err error) {
	if c.Trace == nil {
		return
	}
	ev := TraceEvent{Name: q.Name, Type: TypeString(q.Qtype), Server: srv, Transport: transport, Elapsed: rtt}
	if in != nil {
		ev.Rcode = dns.RcodeToString[in.Rcode]
		ev.AD = in.AuthenticatedData
		ev.Truncated = in.Truncated
		for _, rr := range in.Answer {
			ev.Answer = append(ev.Answer, rrString(rr))
		}
	}
	if err != nil {
		ev.Err = err.Error()
	}
	c.Trace(ev)
}

// parse turns a server's message into a Response or an *Error.
func parse(q dns.Question, in *dns.Msg, srv, transport string, rtt time.Duration) (*Response, *Error) {
	r := &Response{
		Name: q.Name, Type: q.Qtype, Rcode: in.Rcode, AD: in.AuthenticatedData,
		Server: srv, Transport: transport, Elapsed: rtt, Authority: in.Ns,
	}
	if opt := in.IsEdns0(); opt != nil {
		for _, o := range opt.Option {
			if e, ok := o.(*dns.EDNS0_EDE); ok {
				r.EDE = append(r.EDE, ExtendedError{Code: e.InfoCode, Text: e.ExtraText})
			}
		}
	}
	// Follow the chain inside the answer section.
	owner := q.Name
	for range maxChain + 1 {
		var next *dns.CNAME
		for _, rr := range in.Answer {
			if cn, ok := rr.(*dns.CNAME); ok && strings.EqualFold(cn.Hdr.Name, owner) && q.Qtype != dns.TypeCNAME {
				next = cn
				break
			}
		}
		if next == nil {
			break
		}
		r.Chain = append(r.Chain, next)
		owner = next.Target
	}
	for _, rr := range in.Answer {
		h := rr.Header()
		if (h.Rrtype == q.Qtype || q.Qtype == dns.TypeANY) && strings.EqualFold(h.Name, owner) {
			r.Records = append(r.Records, rr)
		}
	}
	fail := func(kind error) (*Response, *Error) {
		return nil, &Error{Name: q.Name, Type: q.Qtype, Server: srv, Err: kind, Response: r}
	}
	switch in.Rcode {
	case dns.RcodeSuccess:
		if len(r.Records) == 0 && len(r.Chain) == 0 {
			return fail(ErrNoData)
		}
		return r, nil
	case dns.RcodeNameError:
		return fail(ErrNXDomain)
	case dns.RcodeServerFailure:
		return fail(ErrServFail)
	case dns.RcodeRefused:
		return fail(ErrRefused)
	}
	return fail(ErrRcode)
}

func rrString(rr dns.RR) string {
	return strings.ReplaceAll(rr.String(), "\t", " ")
}

func rrStrings(chain []*dns.CNAME, rrs []dns.RR) []string {
	var out []string
	for _, c := range chain {
		out = append(out, rrString(c))
	}
	for _, rr := range rrs {
		out = append(out, rrString(rr))
	}
	return out
}

// RRString formats a record on one line, fields separated by spaces.
func RRString(rr dns.RR) string { return rrString(rr) }

// RData returns the data part of a record as presentation text
// ("10 mx.example.com." for an MX).
func RData(rr dns.RR) string {
	s := rr.String()
	h := rr.Header().String()
	return strings.TrimSpace(strings.TrimPrefix(s, h))
}
