package dsn

import (
	"regexp"
	"strconv"
	"strings"

	"github.com/mxray/mxray/internal/report/mimetree"
)

// maxTextBytes bounds the text the heuristics look at: the part of a bounce
// a person reads is short, and the regular expressions stay cheap.
const maxTextBytes = 256 << 10

// humanText returns the text a person reads in the bounce: the text parts
// outside attached messages, each cut where the copy of the original
// message starts, or the tag-stripped HTML when there is no plain text.
func humanText(root *mimetree.Part) string {
	var plain, html []string
	var walk func(p *mimetree.Part)
	walk = func(p *mimetree.Part) {
		switch {
		case p.Embedded() != nil && p != root:
			return
		case p.IsMultipart() && len(p.Children) == 0:
			// No boundary found: the body is all we have (some old MTAs
			// send a multipart/report without delimiters).
			plain = append(plain, cutOriginal(mimetree.NormalizeNewlines(p.Body)))
		case p.MediaType == "text/plain" && p.Disposition != "attachment":
			t := p.Text()
			if p != root && looksLikeHeaders(t) {
				return
			}
			plain = append(plain, cutOriginal([]byte(t)))
		case p.MediaType == "text/html":
			html = append(html, cutOriginal([]byte(stripTags(p.Text()))))
		}
		for _, c := range p.Children {
			walk(c)
		}
	}
	walk(root)
	parts := plain
	if len(parts) == 0 {
		parts = html
	}
	s := strings.TrimSpace(strings.Join(parts, "\n"))
	if len(s) > maxTextBytes {
		s = s[:maxTextBytes]
	}
	return s
}

// originalMarker matches the lines after which bounces copy the original
// message or its header.
var originalMarker = regexp.MustCompile(`(?im)^[ \t>]*[-=_*+ ]*(?:(?:included|here|attached|below) is )?(` +
	`(this is )?a copy of (the|your) (original )?message|` +
	`below this line is a copy of the message|` +
	`original message( header[s]?)? (follows|below|is (below|following))|` +
	`[-=]+ ?original message ?[-=]+|` +
	`(the )?header of the original message|` +
	`(un)?sent message (headers? )?(below|follows)|` +
	`returned message|` +
	`message headers? follows?|` +
	`original message headers?|` +
	`the original message was:?\s*$|` +
	`content-type: (message/rfc822|text/rfc822-headers))`)

// cutOriginal returns the text before the copy of the original message.
func cutOriginal(b []byte) string {
	s := string(b)
	if len(s) > maxTextBytes {
		s = s[:maxTextBytes]
	}
	if loc := originalMarker.FindStringIndex(s); loc != nil {
		return s[:loc[0]]
	}
	return s
}

var tagRe = regexp.MustCompile(`(?s)<(script|style)[^>]*>.*?</(script|style)>|<br\s*/?>|</(p|div|tr|li|h\d)>|<[^>]*>`)

func stripTags(s string) string {
	if len(s) > maxTextBytes {
		s = s[:maxTextBytes]
	}
	s = tagRe.ReplaceAllStringFunc(s, func(t string) string {
		tl := strings.ToLower(t)
		if strings.HasPrefix(tl, "<br") || strings.HasPrefix(tl, "</") {
			return "\n"
		}
		return ""
	})
	r := strings.NewReplacer("&nbsp;", " ", "&lt;", "<", "&gt;", ">", "&amp;", "&", "&quot;", `"`, "&#43;", "+", "&#39;", "'")
	return r.Replace(s)
}

// looksLikeHeaders reports whether a text part is a copy of a message
// header rather than prose.
func looksLikeHeaders(t string) bool {
	h, err := mimetree.ParseHeader([]byte(t))
	if err != nil || len(h.Fields) < 3 {
		return false
	}
	n := 0
	for _, name := range []string{"Received", "From", "Return-Path", "Message-Id", "Date", "Subject", "To"} {
		if h.Get(name) != "" {
			n++
		}
	}
	return n >= 3
}

// findOriginal returns the header of the bounced message: an attached
// message or header part, or the header copied inline after a marker line.
func findOriginal(root *mimetree.Part, human string) *Original {
	p := findOutside(root, func(p *mimetree.Part) bool {
		switch p.MediaType {
		case "message/rfc822", "message/global", "text/rfc822-headers", "message/global-headers", "message/rfc822-headers", "text/rfc822-header":
			return p != root
		}
		return false
	})
	var h mimetree.Header
	switch {
	case p != nil && p.Embedded() != nil:
		h = p.Embedded().Header
	case p != nil:
		h, _ = mimetree.ParseHeader(p.Body)
	default:
		h = inlineOriginal(root)
	}
	if len(h.Fields) == 0 {
		return nil
	}
	return &Original{
		Header:    h,
		From:      h.Decoded("From"),
		To:        h.Decoded("To"),
		Subject:   h.Decoded("Subject"),
		MessageID: h.Get("Message-Id"),
		Date:      h.Get("Date"),
	}
}

// inlineOriginal reads the header copied after a marker line in a text
// part, or a text part that is itself a copy of a header.
func inlineOriginal(root *mimetree.Part) mimetree.Header {
	var found mimetree.Header
	root.Walk(func(p *mimetree.Part) bool {
		if len(found.Fields) > 0 {
			return false
		}
		if p.Embedded() != nil && p != root {
			return false
		}
		if p.MediaType != "text/plain" && !(p.IsMultipart() && len(p.Children) == 0) {
			return true
		}
		t := string(mimetree.NormalizeNewlines(p.Body))
		if p.MediaType == "text/plain" {
			t = p.Text()
		}
		if p != root && looksLikeHeaders(t) {
			found, _ = mimetree.ParseHeader([]byte(t))
			return false
		}
		if len(t) > maxTextBytes {
			t = t[:maxTextBytes]
		}
		loc := originalMarker.FindStringIndex(t)
		if loc == nil {
			return true
		}
		rest := t[loc[1]:]
		if i := strings.IndexByte(rest, '\n'); i >= 0 {
			rest = rest[i+1:]
		} else {
			rest = ""
		}
		// Some MTAs indent the copied header.
		if h, err := mimetree.ParseHeader([]byte(dedent(rest))); err == nil && len(h.Fields) >= 2 {
			found = h
			return false
		}
		return true
	})
	return found
}

func dedent(s string) string {
	lines := strings.Split(s, "\n")
	if len(lines) > 2000 {
		lines = lines[:2000]
	}
	indent := ""
	for _, l := range lines {
		if strings.TrimSpace(l) == "" {
			continue
		}
		indent = l[:len(l)-len(strings.TrimLeft(l, " \t>"))]
		break
	}
	if indent == "" {
		return strings.Join(lines, "\n")
	}
	for i, l := range lines {
		lines[i] = strings.TrimPrefix(l, indent)
	}
	return strings.Join(lines, "\n")
}

// daemonAddrRe matches the addresses of bounce senders, never recipients.
var daemonAddrRe = regexp.MustCompile(`(?i)^(mailer[-_]?daemon|mail[-_]daemon)@`)

var daemonRe = regexp.MustCompile(`(?i)mailer[-_ ]?daemon|mail[-_]daemon|postmaster@|mail delivery (sub)?system|mail administrator|mailadmin|delivery[-_ ]?(status|notification)|\bbounces?@|^<>$`)

func isDaemon(from string) bool { return daemonRe.MatchString(from) }

var bounceSubjectRe = regexp.MustCompile(`(?i)undeliver|undelivered|returned mail|returning message|delivery (status notification|failure|failed|has failed|problem|report|notification)|failure notice|mail delivery failed|could not be delivered|not delivered|non[- ]?delivery|returned to sender|mail system error|permanent error|rejected|bounced?\b|nicht zugestellt|unzustellbar|delayed mail|warning: message|message delayed|mail failure|failed delivery|delivery error|no se puede entregar|non remis|error sending message|mail could not be delivered|message you sent`)

var bounceTextRe = regexp.MustCompile(`(?i)could not be delivered|couldn't be delivered|was not delivered|delivery (to the following recipients? )?(has )?failed|permanent (fatal )?error|following address(es)?( had permanent fatal errors| failed)|undeliverable|did not reach|unable to deliver|delivery failure|wasn't able to deliver|user unknown|no such user|mailbox (is )?(full|unavailable)|message was rejected|returned to the sender|delivery has failed|address rejected`)

func looksLikeBounce(root *mimetree.Part, subject, text string, fromDaemon bool) bool {
	if fromDaemon {
		return true
	}
	if root.MediaType == "multipart/report" {
		return true
	}
	if bounceSubjectRe.MatchString(subject) {
		return true
	}
	rp := strings.TrimSpace(root.Header.Get("Return-Path"))
	nullSender := rp == "<>" || rp == ""
	return nullSender && bounceTextRe.MatchString(text)
}

// autoReplyHeader returns why the header marks an automatic reply.
func autoReplyHeader(h mimetree.Header) string {
	// RFC 3834 §5.2: "auto-replied" marks automatic responses.
	if v := strings.ToLower(h.Get("Auto-Submitted")); strings.HasPrefix(v, "auto-replied") {
		return "Auto-Submitted: " + v
	}
	for _, name := range []string{"X-Autoreply", "X-Autorespond", "X-Auto-Reply"} {
		if v := h.Get(name); v != "" && !strings.EqualFold(v, "no") {
			return name + ": " + v
		}
	}
	if strings.EqualFold(h.Get("Precedence"), "auto_reply") {
		return "Precedence: auto_reply"
	}
	return ""
}

var autoReplySubjectRe = regexp.MustCompile(`(?i)^\s*(` +
	`auto(matic|matische)?[\s_-]*(reply|respon[sd]\w*|antwort|answer)|auto:|` +
	`out of (the )?office|vacation|abwesenheit|absence|on leave|away from (the )?office|` +
	`r[ée]ponse automatique|risposta automatica|respuesta autom[áa]tica|自動応答|自動返信)`)

// autoReplySubject returns why the subject marks an automatic reply.
func autoReplySubject(subject string) string {
	if m := autoReplySubjectRe.FindString(subject); m != "" {
		return "Subject: " + strings.TrimSpace(m)
	}
	return ""
}

// addrRe matches an addr-spec as bounces print it (dot-atom local part;
// no quoted local parts).
var addrRe = regexp.MustCompile(`[A-Za-z0-9!#$%&'*+/=?^_{|}~.-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+`)

// headerish matches lines that quote a header of the original message or
// the envelope sender, whose addresses are not recipients.
var headerish = regexp.MustCompile(`(?i)^\s*(from|return-path|reply-to|sender|message-id|in-reply-to|references|received|date|subject|envelope-from|x-[a-z0-9-]+|mail from|sent by|delivered-to)\s*:`)

// recipientLead matches what may precede a recipient address at the start
// of a line in the common bounce layouts.
var recipientLead = regexp.MustCompile(`(?i)^[\s>*-]*(?:(?:original-|final-)?recipient(?:\(s\))?:?\s*(?:rfc822;)?|to:|rcpt to:|address:|user)?\s*[<"'(]*$`)

// readText fills r.Recipients from the human-readable text of a bounce
// that has no delivery-status part.
func (r *Report) readText(root *mimetree.Part) {
	text := r.HumanReadable
	// Some bounces carry delivery-status fields inline (an RFC 3464 report
	// whose MIME structure was lost).
	if loc := inlineDSN.FindStringIndex(text); loc != nil {
		r.readDeliveryStatus([]byte(text[loc[0]:]))
		if len(r.Recipients) > 0 {
			return
		}
	}
	exclude := map[string]bool{}
	addExcluded := func(v string) {
		for _, a := range addrRe.FindAllString(v, -1) {
			exclude[strings.ToLower(a)] = true
		}
	}
	for _, name := range []string{"To", "From", "Return-Path", "Reply-To", "Sender"} {
		for _, v := range root.Header.Values(name) {
			addExcluded(v)
		}
	}
	if o := r.Original; o != nil {
		for _, name := range []string{"From", "Return-Path", "Sender", "Reply-To"} {
			addExcluded(o.Header.Get(name))
		}
	}

	lines := strings.Split(text, "\n")
	type hit struct {
		addr string
		line int
	}
	var leading, anywhere []hit
	seen := map[string]bool{}
	for i, l := range lines {
		if headerish.MatchString(l) {
			continue
		}
		for _, m := range addrRe.FindAllStringIndex(l, -1) {
			a := strings.Trim(l[m[0]:m[1]], ".")
			la := strings.ToLower(a)
			if exclude[la] || daemonAddrRe.MatchString(a) {
				continue
			}
			h := hit{a, i}
			if recipientLead.MatchString(l[:m[0]]) && !seen[la] {
				leading = append(leading, h)
				seen[la] = true
			}
			anywhere = append(anywhere, h)
		}
	}
	hits := leading
	if len(hits) == 0 && len(anywhere) > 0 {
		hits = anywhere[:1]
	}
	if len(hits) == 0 && r.Original != nil {
		// Nothing in the text (Google Groups, Google Workspace): the
		// bounced message's own recipient is the best evidence left.
		for _, name := range []string{"To", "Cc"} {
			for _, a := range addrRe.FindAllString(r.Original.Header.Get(name), -1) {
				if !exclude[strings.ToLower(a)] && len(hits) == 0 {
					hits = append(hits, hit{a, len(lines)})
				}
			}
		}
	}
	if len(hits) > maxRecipients {
		hits = hits[:maxRecipients]
	}
	delay := delayRe.MatchString(r.Subject)
	var pre string
	var preReason Recipient
	if len(hits) > 0 {
		pre = strings.Join(lines[:min(hits[0].line, len(lines))], "\n")
		readReason(&preReason, pre)
	}
	preMTA, preInferred := remoteMTA(pre), inferStatus(pre)
	for k, h := range hits {
		end := len(lines)
		if k+1 < len(hits) {
			end = hits[k+1].line
		}
		block := ""
		if h.line < end {
			block = strings.Join(lines[h.line:end], "\n")
		}
		rc := Recipient{FinalRecipient: h.addr, Action: ActionFailed}
		if delay {
			rc.Action = ActionDelayed
		}
		// Look for the reason in the recipient's block first, then in the
		// text before the first recipient: some layouts state it before
		// the address list. Never in another recipient's block.
		readReason(&rc, block)
		if rc.Status == "" && rc.SMTPCode == 0 {
			rc.Status, rc.StatusSource, rc.SMTPCode, rc.DiagnosticCode = preReason.Status, preReason.StatusSource, preReason.SMTPCode, preReason.DiagnosticCode
		}
		if rc.DiagnosticCode == "" {
			rc.DiagnosticCode = blockText(block, h.addr)
		}
		if rc.RemoteMTA = remoteMTA(block); rc.RemoteMTA == "" {
			rc.RemoteMTA = preMTA
		}
		if rc.Status == "" {
			if st := inferStatus(block); st != "" {
				rc.Status, rc.StatusSource = st, SourceInferred
			} else if st := preInferred; st != "" {
				rc.Status, rc.StatusSource = st, SourceInferred
			} else if rc.SMTPCode >= 400 {
				rc.Status, rc.StatusSource = strconv.Itoa(rc.SMTPCode/100)+".0.0", SourceInferred
			} else if delay {
				rc.Status, rc.StatusSource = "4.0.0", SourceInferred
			} else {
				rc.Status, rc.StatusSource = "5.0.0", SourceInferred
			}
		}
		r.Recipients = append(r.Recipients, rc)
	}
}

var inlineDSN = regexp.MustCompile(`(?im)^(reporting-mta|final-recipient|original-recipient):`)

var delayRe = regexp.MustCompile(`(?i)\bdelay|warning: message|still being retried|not yet (been )?delivered|will (continue to )?retry|temporar(il)?y (failure|unavailable)`)

// readReason sets the status, SMTP code and diagnostic from the first line
// of s that states a failure code.
func readReason(rc *Recipient, s string) {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		st := findStatus(l, false)
		code := findSMTPCode(l, false)
		if st == "" && code == 0 {
			continue
		}
		rc.Status, rc.SMTPCode = st, code
		if st != "" {
			rc.StatusSource = SourceText
		}
		diag := strings.TrimSpace(l)
		// Continuation lines of the reply are indented or carry the same
		// code with a hyphen ("550-5.1.1 ...").
		for _, next := range lines[i+1:] {
			t := strings.TrimSpace(next)
			if t == "" || addrRe.MatchString(t) && !strings.Contains(t, " ") {
				break
			}
			if code != 0 && strings.HasPrefix(t, strconv.Itoa(code)) || strings.HasPrefix(next, " ") || strings.HasPrefix(next, "\t") {
				diag += " " + t
				continue
			}
			break
		}
		if len(diag) > 1000 {
			diag = diag[:1000]
		}
		rc.DiagnosticCode = diag
		if st == "" {
			// A code without enhanced status: the text may still say why.
			if inf := inferStatus(diag); inf != "" && inf[0] == byte('0'+code/100) {
				rc.Status, rc.StatusSource = inf, SourceInferred
			} else if code >= 400 {
				rc.Status, rc.StatusSource = strconv.Itoa(code/100)+".0.0", SourceInferred
			}
		}
		return
	}
}

var remoteRes = []*regexp.Regexp{
	regexp.MustCompile(`(?i)\bhost\s+([A-Za-z0-9][A-Za-z0-9.-]*\.[A-Za-z]{2,})\s*\[`),
	regexp.MustCompile(`(?i)remote[- ]mta:\s*(?:dns;\s*)?([A-Za-z0-9][A-Za-z0-9.-]*\.[A-Za-z]{2,})`),
	regexp.MustCompile(`(?i)generating server:\s*([A-Za-z0-9][A-Za-z0-9.-]*\.[A-Za-z]{2,})`),
	regexp.MustCompile(`(?i)remote (?:host|server)\s+(?:\[?)([A-Za-z0-9][A-Za-z0-9.-]*\.[A-Za-z]{2,})`),
	regexp.MustCompile(`(?i)^\s*(\d{1,3}(?:\.\d{1,3}){3}) does not like recipient`),
	regexp.MustCompile(`(?i)\bhost\s+([A-Za-z0-9][A-Za-z0-9.-]*\.[A-Za-z]{2,})\s+said`),
}

func remoteMTA(s string) string {
	for _, re := range remoteRes {
		for _, l := range strings.Split(s, "\n") {
			if m := re.FindStringSubmatch(l); m != nil {
				return m[1]
			}
		}
	}
	return ""
}

// reasonPhrases maps common wording to the status code it implies, in
// order of precedence, for bounces that state no code.
var reasonPhrases = []struct {
	re     *regexp.Regexp
	status string
}{
	{regexp.MustCompile(`(?i)mailbox (is )?full|over ?quota|quota exceeded|exceeded (the|his|her) quota|insufficient (disk )?space|mailbox size limit`), "5.2.2"},
	{regexp.MustCompile(`(?i)user unknown|unknown user|no such (user|recipient|mailbox|address)|(address|recipient|mailbox|user)( \S+)? (does not|doesn't) exist|invalid (recipient|mailbox|address)|unknown (recipient|mailbox|address)|recipient (address )?rejected|not a valid (mailbox|recipient|user)|unrouteable address|no mailbox here|recipient name is not recognized|couldn't be found|is not a known user|account (is )?(disabled|deactivated|suspended|inactive)|mailbox (unavailable|not found|disabled)|address not found`), "5.1.1"},
	{regexp.MustCompile(`(?i)host (or domain name )?not found|domain (not found|does not exist)|no mx (record)?|unrouteable (mail )?domain|name server|host unknown|unknown host|no route to host`), "5.1.2"},
	{regexp.MustCompile(`(?i)message (is )?too (large|big)|size limit|exceeds (the )?(maximum|max) (message )?size|message size exceeds`), "5.3.4"},
	{regexp.MustCompile(`(?i)relay(ing)? (access )?(denied|not permitted|prohibited)|not permitted to relay|we do not relay`), "5.7.1"},
	{regexp.MustCompile(`(?i)spam|blacklist|blocklist|black list|blocked|policy|rejected for policy|not (authorized|authorised)|access denied`), "5.7.1"},
	{regexp.MustCompile(`(?i)retry time(out)? (not reached|exceeded)|too long in (the )?queue|timed? ?out|expired|has been in the queue too long|could not be delivered within`), "5.4.7"},
}

func inferStatus(s string) string {
	for _, p := range reasonPhrases {
		if p.re.MatchString(s) {
			return p.status
		}
	}
	return ""
}

// blockText returns the first lines of a recipient's block after the
// address, as the diagnostic of a bounce that states no code.
func blockText(block, addr string) string {
	var out []string
	for i, l := range strings.Split(block, "\n") {
		t := strings.TrimSpace(l)
		if i == 0 {
			t = strings.TrimSpace(strings.Trim(strings.Replace(t, addr, "", 1), "<>:\"' "))
		}
		if t == "" {
			if len(out) > 0 {
				break
			}
			continue
		}
		out = append(out, t)
		if len(out) == 3 {
			break
		}
	}
	s := strings.Join(out, " ")
	if len(s) > 1000 {
		s = s[:1000]
	}
	return s
}
