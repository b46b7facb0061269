// Package postfix inspects and manages a Postfix mail queue through
// Postfix's own tools, so that it works on any instance the way an
// administrator would: postqueue -j (the JSON queue listing, Postfix 3.1
// and later), postcat -q (one queue file), postqueue -f and -i (delivery
// attempts now) and postsuper -h, -H and -d with queue ids on standard
// input (hold, release, delete). Every tool runs with -c CONFIG_DIR when
// an instance other than the default is named.
//
// Selections ("every deferred message", "every message with a recipient
// at a domain") are made from one postqueue -j listing and acted on by
// queue id, so that a message arriving meanwhile is never touched.
//
// Not supported: Postfix before 3.1 (no postqueue -j); postsuper -r
// (requeue) and -e/-f (forced expiry); reading queue files directly.
package postfix

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"time"
)

var (
	// ErrUnavailable: the queue tools cannot run — Postfix is not
	// installed, or not running (postqueue needs the showq service).
	ErrUnavailable = errors.New("postfix: queue tools unavailable")
	// ErrNoSuchMessage: the queue id is not in the queue.
	ErrNoSuchMessage = errors.New("postfix: no such message in the queue")
	// ErrBadQueueID: the string cannot be a queue id.
	ErrBadQueueID = errors.New("postfix: not a queue id")
	// ErrBadListing: postqueue -j printed something that is not its JSON.
	ErrBadListing = errors.New("postfix: cannot read the queue listing")
)

// QueueName is one of Postfix's queues (postqueue -j's queue_name).
type QueueName string

const (
	QueueMaildrop QueueName = "maildrop" // submitted locally, not yet picked up
	QueueIncoming QueueName = "incoming" // accepted, waiting for the queue manager
	QueueActive   QueueName = "active"   // being delivered now
	QueueDeferred QueueName = "deferred" // waiting for a retry after a temporary failure
	QueueHold     QueueName = "hold"     // on hold: no delivery until released (postsuper -H)
	QueueCorrupt  QueueName = "corrupt"  // unreadable queue files set aside by Postfix
)

// Recipient is a recipient still to be delivered.
type Recipient struct {
	Address string `json:"address"`
	// DelayReason is why the last attempt failed; empty while delivery is
	// in progress or before the first attempt.
	DelayReason string `json:"delay_reason,omitempty"`
}

// Message is one queue file as postqueue -j lists it.
type Message struct {
	QueueName    QueueName   `json:"queue_name"`
	QueueID      string      `json:"queue_id"`
	ArrivalTime  time.Time   `json:"arrival_time"`
	AgeSeconds   int64       `json:"age_seconds"` // set by SetAges
	MessageSize  int64       `json:"message_size"`
	ForcedExpire bool        `json:"forced_expire"`
	Sender       string      `json:"sender"` // "" is the null sender <>
	Recipients   []Recipient `json:"recipients"`
}

// rawMessage is postqueue -j's object; unknown members are ignored, as
// its manual asks.
type rawMessage struct {
	QueueName    string      `json:"queue_name"`
	QueueID      string      `json:"queue_id"`
	ArrivalTime  int64       `json:"arrival_time"`
	MessageSize  int64       `json:"message_size"`
	ForcedExpire bool        `json:"forced_expire"`
	Sender       string      `json:"sender"`
	Recipients   []Recipient `json:"recipients"`
}

// ParseQueueJSON reads postqueue -j output: one JSON object per line.
// A message listed twice (the queue changed during the listing) is kept
// once, in its last place.
func ParseQueueJSON(r io.Reader) ([]Message, error) {
	dec := json.NewDecoder(r)
	var out []Message
	at := map[string]int{}
	for {
		var m rawMessage
		err := dec.Decode(&m)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadListing, err)
		}
		if !ValidQueueID(m.QueueID) {
			return nil, fmt.Errorf("%w: queue_id %q", ErrBadListing, m.QueueID)
		}
		msg := Message{QueueName: QueueName(m.QueueName), QueueID: m.QueueID, ArrivalTime: time.Unix(m.ArrivalTime, 0).UTC(),
			MessageSize: m.MessageSize, ForcedExpire: m.ForcedExpire, Sender: m.Sender, Recipients: m.Recipients}
		if msg.Recipients == nil {
			msg.Recipients = []Recipient{}
		}
		if i, ok := at[m.QueueID]; ok {
			out[i] = msg
			continue
		}
		at[m.QueueID] = len(out)
		out = append(out, msg)
	}
	if out == nil {
		out = []Message{}
	}
	return out, nil
}

// ValidQueueID reports whether s can be a queue id: short ids are
// upper-case hexadecimal, long ids (enable_long_queue_ids) letters and
// digits. Anything else is refused before it reaches postsuper.
func ValidQueueID(s string) bool {
	if len(s) < 5 || len(s) > 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z') {
			return false
		}
	}
	return true
}

// SetAges sets every message's AgeSeconds relative to now.
func SetAges(msgs []Message, now time.Time) {
	for i := range msgs {
		msgs[i].AgeSeconds = int64(now.Sub(msgs[i].ArrivalTime) / time.Second)
	}
}

// Runner runs one of Postfix's commands. Tests replace it to feed
// recorded output.
type Runner interface {
	Run(ctx context.Context, stdin []byte, name string, args ...string) (stdout, stderr []byte, err error)
}

// ExecRunner runs the commands with os/exec, found in PATH.
type ExecRunner struct{}

// Run implements Runner.
func (ExecRunner) Run(ctx context.Context, stdin []byte, name string, args ...string) ([]byte, []byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.Bytes(), errb.Bytes(), err
}

// Queue is one Postfix instance's queue.
type Queue struct {
	Runner Runner // nil means ExecRunner
	// ConfigDir is the instance's configuration directory (-c); "" means
	// the default instance.
	ConfigDir string
	Logger    *slog.Logger // one debug line per command; nil discards
}

func (q *Queue) run(ctx context.Context, stdin []byte, name string, args ...string) ([]byte, []byte, error) {
	r := q.Runner
	if r == nil {
		r = ExecRunner{}
	}
	if q.ConfigDir != "" {
		args = append([]string{"-c", q.ConfigDir}, args...)
	}
	out, errb, err := r.Run(ctx, stdin, name, args...)
	if q.Logger != nil {
		q.Logger.Debug("postfix command", "cmd", name+" "+strings.Join(args, " "), "stdout_bytes", len(out),
			"stderr", strings.TrimSpace(string(errb)), "err", err)
	}
	if err != nil {
		msg := strings.TrimSpace(string(errb))
		switch {
		case errors.Is(err, exec.ErrNotFound):
			return out, errb, fmt.Errorf("%w: %s is not installed (or not in PATH): %v", ErrUnavailable, name, err)
		case ctx.Err() != nil:
			return out, errb, ctx.Err()
		case strings.Contains(msg, "mail system is down") || strings.Contains(msg, "Queue report unavailable") ||
			strings.Contains(msg, "unable to contact") || strings.Contains(msg, "open /etc/postfix/main.cf") ||
			strings.Contains(msg, "main.cf: No such file"):
			return out, errb, fmt.Errorf("%w: %s", ErrUnavailable, msg)
		case strings.Contains(msg, "No such file or directory") && (name == "postcat" || name == "postqueue"):
			return out, errb, fmt.Errorf("%w: %s", ErrNoSuchMessage, msg)
		}
		if msg == "" {
			msg = err.Error()
		}
		return out, errb, fmt.Errorf("postfix: %s: %s", name, msg)
	}
	return out, errb, nil
}

// List returns the queue as postqueue -j lists it, in its order.
func (q *Queue) List(ctx context.Context) ([]Message, error) {
	out, _, err := q.run(ctx, nil, "postqueue", "-j")
	if err != nil {
		return nil, err
	}
	return ParseQueueJSON(bytes.NewReader(out))
}

// Flush asks Postfix to attempt delivery of every queued message now
// (postqueue -f).
func (q *Queue) Flush(ctx context.Context) error {
	_, _, err := q.run(ctx, nil, "postqueue", "-f")
	return err
}

// Retry asks Postfix to attempt delivery of one message now
// (postqueue -i).
func (q *Queue) Retry(ctx context.Context, id string) error {
	if !ValidQueueID(id) {
		return fmt.Errorf("%w: %q", ErrBadQueueID, id)
	}
	_, _, err := q.run(ctx, nil, "postqueue", "-i", id)
	return err
}

// Hold puts the messages on hold (postsuper -h) and returns how many
// postsuper reports it moved.
func (q *Queue) Hold(ctx context.Context, ids []string) (int, error) {
	return q.super(ctx, "-h", "Placed on hold", ids)
}

// Release takes the messages off hold (postsuper -H) into the deferred
// queue.
func (q *Queue) Release(ctx context.Context, ids []string) (int, error) {
	return q.super(ctx, "-H", "Released from hold", ids)
}

// Delete removes the messages from the queue (postsuper -d). No
// notification is sent to anyone.
func (q *Queue) Delete(ctx context.Context, ids []string) (int, error) {
	return q.super(ctx, "-d", "Deleted", ids)
}

// super runs postsuper OP - with the ids on standard input and reads its
// "postsuper: Deleted: 2 messages" summary.
func (q *Queue) super(ctx context.Context, op, summary string, ids []string) (int, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	var in bytes.Buffer
	for _, id := range ids {
		if !ValidQueueID(id) {
			return 0, fmt.Errorf("%w: %q", ErrBadQueueID, id)
		}
		in.WriteString(id + "\n")
	}
	out, errb, err := q.run(ctx, in.Bytes(), "postsuper", op, "-")
	if err != nil {
		return 0, err
	}
	return superCount(append(out, errb...), summary), nil
}

func superCount(out []byte, summary string) int {
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		l := sc.Text()
		if i := strings.Index(l, summary+": "); i >= 0 {
			f := strings.Fields(l[i+len(summary)+2:])
			if len(f) > 0 {
				n, _ := strconv.Atoi(f[0])
				return n
			}
		}
	}
	return 0
}

// Field is one named record of a queue file.
type Field struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// QueueFile is one message as postcat -q shows it.
type QueueFile struct {
	QueueID   string    `json:"queue_id"`
	QueueName QueueName `json:"queue_name"`
	Envelope  []Field   `json:"envelope"`  // sender, recipient, arrival time, named attributes ...
	Headers   string    `json:"headers"`   // the message header as queued
	Body      string    `json:"body"`      // the body, as queued
	Extracted []Field   `json:"extracted"` // records Postfix extracted from the header
	Raw       string    `json:"-"`         // postcat's whole output
}

// Show reads one message with postcat -q.
func (q *Queue) Show(ctx context.Context, id string) (*QueueFile, error) {
	if !ValidQueueID(id) {
		return nil, fmt.Errorf("%w: %q", ErrBadQueueID, id)
	}
	out, _, err := q.run(ctx, nil, "postcat", "-q", id)
	if err != nil {
		return nil, err
	}
	f := ParsePostcat(string(out))
	if f.QueueID == "" {
		f.QueueID = id
	}
	return f, nil
}

// ParsePostcat splits postcat's output into its sections.
func ParsePostcat(s string) *QueueFile {
	f := &QueueFile{Raw: s, Envelope: []Field{}, Extracted: []Field{}}
	section := ""
	var content strings.Builder
	for _, line := range strings.SplitAfter(s, "\n") {
		trim := strings.TrimRight(line, "\r\n")
		if strings.HasPrefix(trim, "*** ") && strings.HasSuffix(trim, " ***") {
			title := strings.TrimSuffix(strings.TrimPrefix(trim, "*** "), " ***")
			if i := strings.LastIndexByte(title, ' '); i >= 0 {
				where := title[i+1:]
				// "deferred/E/E65F998606C": hashed queue directories.
				if qn, _, ok := strings.Cut(where, "/"); ok {
					f.QueueName, f.QueueID = QueueName(qn), where[strings.LastIndexByte(where, '/')+1:]
				}
				title = title[:i]
			}
			section = title
			continue
		}
		switch section {
		case "ENVELOPE RECORDS", "HEADER EXTRACTED":
			name, val, ok := strings.Cut(trim, ":")
			if !ok {
				continue
			}
			fd := Field{Name: name, Value: strings.TrimSpace(val)}
			if section == "ENVELOPE RECORDS" {
				f.Envelope = append(f.Envelope, fd)
			} else {
				f.Extracted = append(f.Extracted, fd)
			}
		case "MESSAGE CONTENTS":
			content.WriteString(line)
		}
	}
	c := content.String()
	if i := strings.Index(c, "\n\n"); i >= 0 {
		f.Headers, f.Body = c[:i+1], c[i+2:]
	} else {
		f.Headers = c
	}
	return f
}

// Selector chooses messages from a listing. IDs name messages; All,
// Deferred and Domain select by what the listing says. Fields combine:
// IDs are added to what the others select, and Domain narrows All or
// Deferred (alone, it selects from the whole queue).
type Selector struct {
	IDs      []string
	All      bool
	Deferred bool
	Domain   string // a recipient at this domain (case-insensitive)
	// In limits the selection to these queues (hold: not already held;
	// release: only the hold queue); empty means any.
	In []QueueName
}

// Select returns the selected messages in listing order and the ids that
// are not in the listing.
func Select(msgs []Message, s Selector) (selected []Message, missing []string) {
	want := map[string]bool{}
	for _, id := range s.IDs {
		want[id] = true
	}
	inQueue := func(m Message) bool {
		if len(s.In) == 0 {
			return true
		}
		for _, n := range s.In {
			if m.QueueName == n {
				return true
			}
		}
		return false
	}
	domain := strings.ToLower(strings.TrimPrefix(s.Domain, "@"))
	byCriteria := s.All || s.Deferred || domain != ""
	found := map[string]bool{}
	for _, m := range msgs {
		pick := want[m.QueueID]
		if pick {
			found[m.QueueID] = true
		}
		if !pick && byCriteria {
			pick = (!s.Deferred || m.QueueName == QueueDeferred) && (domain == "" || hasDomain(m, domain))
		}
		if pick && inQueue(m) {
			selected = append(selected, m)
		}
	}
	for _, id := range s.IDs {
		if !found[id] {
			missing = append(missing, id)
		}
	}
	return selected, missing
}

func hasDomain(m Message, domain string) bool {
	for _, r := range m.Recipients {
		if i := strings.LastIndexByte(r.Address, '@'); i >= 0 && strings.EqualFold(r.Address[i+1:], domain) {
			return true
		}
	}
	return false
}

// IDs returns the queue ids of msgs.
func IDs(msgs []Message) []string {
	ids := make([]string, len(msgs))
	for i, m := range msgs {
		ids[i] = m.QueueID
	}
	return ids
}

// Count is a number of messages (and their bytes) under a name.
type Count struct {
	Name     string `json:"name"`
	Messages int    `json:"messages"`
	Bytes    int64  `json:"bytes,omitempty"`
}

// DomainCount is how many queued recipients are at a domain.
type DomainCount struct {
	Domain     string `json:"domain"`
	Recipients int    `json:"recipients"`
	Messages   int    `json:"messages"`
}

// ReasonCount is a group of similar delay reasons.
type ReasonCount struct {
	Reason     string `json:"reason"` // with host names and addresses replaced by "…"
	Recipients int    `json:"recipients"`
	Example    string `json:"example"` // one reason of the group as Postfix wrote it
}

// Summary is the queue at a glance.
type Summary struct {
	Messages   int           `json:"messages"`
	Recipients int           `json:"recipients"`
	Bytes      int64         `json:"bytes"`
	ByQueue    []Count       `json:"by_queue"`
	ByDomain   []DomainCount `json:"by_domain"`
	ByReason   []ReasonCount `json:"by_reason"`
	Oldest     *Message      `json:"oldest,omitempty"`
}

// Summarize counts the listing by queue, recipient domain and delay
// reason, biggest first, and finds the oldest message. Ages must have
// been set with SetAges.
func Summarize(msgs []Message) Summary {
	s := Summary{ByQueue: []Count{}, ByDomain: []DomainCount{}, ByReason: []ReasonCount{}}
	queues := map[string]*Count{}
	domains := map[string]*DomainCount{}
	reasons := map[string]*ReasonCount{}
	for i, m := range msgs {
		s.Messages++
		s.Bytes += m.MessageSize
		c := queues[string(m.QueueName)]
		if c == nil {
			c = &Count{Name: string(m.QueueName)}
			queues[c.Name] = c
		}
		c.Messages++
		c.Bytes += m.MessageSize
		if s.Oldest == nil || m.ArrivalTime.Before(s.Oldest.ArrivalTime) {
			s.Oldest = &msgs[i]
		}
		seen := map[string]bool{}
		for _, r := range m.Recipients {
			s.Recipients++
			d := "(no domain)"
			if j := strings.LastIndexByte(r.Address, '@'); j >= 0 {
				d = strings.ToLower(r.Address[j+1:])
			}
			dc := domains[d]
			if dc == nil {
				dc = &DomainCount{Domain: d}
				domains[d] = dc
			}
			dc.Recipients++
			if !seen[d] {
				seen[d] = true
				dc.Messages++
			}
			if r.DelayReason != "" {
				g := GroupReason(r.DelayReason)
				rc := reasons[g]
				if rc == nil {
					rc = &ReasonCount{Reason: g, Example: r.DelayReason}
					reasons[g] = rc
				}
				rc.Recipients++
			}
		}
	}
	for _, c := range queues {
		s.ByQueue = append(s.ByQueue, *c)
	}
	sort.Slice(s.ByQueue, func(i, j int) bool {
		a, b := s.ByQueue[i], s.ByQueue[j]
		return a.Messages > b.Messages || a.Messages == b.Messages && a.Name < b.Name
	})
	for _, d := range domains {
		s.ByDomain = append(s.ByDomain, *d)
	}
	sort.Slice(s.ByDomain, func(i, j int) bool {
		a, b := s.ByDomain[i], s.ByDomain[j]
		return a.Recipients > b.Recipients || a.Recipients == b.Recipients && a.Domain < b.Domain
	})
	for _, r := range reasons {
		s.ByReason = append(s.ByReason, *r)
	}
	sort.Slice(s.ByReason, func(i, j int) bool {
		a, b := s.ByReason[i], s.ByReason[j]
		return a.Recipients > b.Recipients || a.Recipients == b.Recipients && a.Reason < b.Reason
	})
	return s
}

// GroupReason reduces a delay reason to its kind, so that the same
// failure at different hosts counts once: every "name[address]:port" and
// "<address>" becomes "…", and "(in reply to …)" stays.
func GroupReason(r string) string {
	var b strings.Builder
	for i := 0; i < len(r); {
		switch {
		case r[i] == '[':
			j := strings.IndexByte(r[i:], ']')
			if j < 0 {
				b.WriteString(r[i:])
				return b.String()
			}
			// Drop the host name written before the bracket.
			s := b.String()
			k := strings.LastIndexAny(s, " \t(") + 1
			b.Reset()
			b.WriteString(s[:k])
			b.WriteString("…")
			i += j + 1
			if i < len(r) && r[i] == ':' && i+1 < len(r) && r[i+1] >= '0' && r[i+1] <= '9' {
				i++
				for i < len(r) && r[i] >= '0' && r[i] <= '9' {
					i++
				}
			}
		case r[i] == '<':
			j := strings.IndexByte(r[i:], '>')
			if j < 0 || !strings.Contains(r[i:i+j], "@") {
				b.WriteByte(r[i])
				i++
				continue
			}
			b.WriteString("<…>")
			i += j + 1
		default:
			b.WriteByte(r[i])
			i++
		}
	}
	return b.String()
}
