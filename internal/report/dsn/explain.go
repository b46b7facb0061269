package dsn

import (
	"strconv"
	"strings"
)

// Explanation tells a person what an enhanced status code means and what to
// do about it.
type Explanation struct {
	Status    string // the code as given, trimmed, e.g. "5.1.1"
	Valid     bool   // the code has the syntax of RFC 3463 §2
	Known     bool   // the exact code is in mxray's table (else the subject's meaning is used)
	Temporary bool   // class 4: the sender retries (RFC 3463 §3.1)
	Class     string // the meaning of the class digit
	Subject   string // the meaning of the subject digit (RFC 3463 §3.2)
	Meaning   string
	Cause     string // the likely cause in practice
	Fix       string // what the administrator should do
	Reference string // where the code is defined
}

type codeInfo struct{ meaning, cause, fix, ref string }

const ianaRef = "IANA SMTP Enhanced Status Codes registry"

// codes lists the codes bounces carry most often: RFC 3463 and the later
// additions of the IANA registry. The key is subject.detail; the class
// (4 or 5) only changes whether a retry may help.
var codes = map[string]codeInfo{
	"0.0":  {"Other undefined status", "The server gave no specific reason.", "Read the diagnostic text; it carries the real reason.", "RFC 3463 §3.1"},
	"1.0":  {"Other address status", "Something is wrong with an address, without detail.", "Check the recipient and sender addresses in the diagnostic.", "RFC 3463 §3.3"},
	"1.1":  {"Bad destination mailbox address", "The mailbox does not exist at the recipient's domain: a typo, a deleted account, or a stale list entry.", "Check the spelling with the recipient; remove the address from lists after a hard bounce.", "RFC 3463 §3.3"},
	"1.2":  {"Bad destination system address", "The recipient's domain does not exist or does not accept mail (no MX, no A record).", "Check the domain for typos (gmal.com); the recipient's administrator must publish MX records.", "RFC 3463 §3.3"},
	"1.3":  {"Bad destination mailbox address syntax", "The recipient address is syntactically invalid.", "Correct the address; look for spaces, missing @ or illegal characters.", "RFC 3463 §3.3"},
	"1.6":  {"Destination mailbox has moved", "The recipient no longer receives mail at this address.", "Ask the recipient for the new address and update it.", "RFC 3463 §3.3"},
	"1.7":  {"Bad sender's mailbox address syntax", "The receiving server rejected the envelope sender address.", "Make the MAIL FROM address a valid, fully qualified address.", "RFC 3463 §3.3"},
	"1.8":  {"Bad sender's system address", "The sender's domain does not resolve, so the receiver will not accept mail from it.", "Publish MX or A records for the sending domain; do not send from unqualified or internal domains.", "RFC 3463 §3.3"},
	"1.10": {"Recipient address has null MX", "The recipient's domain publishes a null MX: it accepts no mail.", "The address cannot receive mail; use another one.", "RFC 7505 §4.2"},
	"2.0":  {"Other or undefined mailbox status", "The mailbox exists but cannot take the message right now. Greylisting servers also answer 4.2.0.", "For 4.2.0, let the queue retry (greylisting passes on the second attempt); for 5.2.0 read the diagnostic.", "RFC 3463 §3.4"},
	"2.1":  {"Mailbox disabled, not accepting messages", "The recipient's account is disabled or suspended.", "Contact the recipient another way; remove the address if it stays disabled.", "RFC 3463 §3.4"},
	"2.2":  {"Mailbox full", "The recipient is over quota.", "Nothing to fix on the sending side: the recipient must free space. Retry later; repeated 5.2.2 means an abandoned mailbox.", "RFC 3463 §3.4"},
	"2.3":  {"Message length exceeds administrative limit", "The message is larger than the recipient's server allows.", "Send smaller attachments or a link instead.", "RFC 3463 §3.4"},
	"2.4":  {"Mailing list expansion problem", "A list or alias at the recipient's side could not be expanded.", "Tell the list owner; the problem is at the receiving side.", "RFC 3463 §3.4"},
	"3.0":  {"Other or undefined mail system status", "The receiving mail system has a problem of its own.", "Retry later; if it persists, contact the receiving postmaster.", "RFC 3463 §3.5"},
	"3.1":  {"Mail system full", "The receiving server is out of disk space.", "Retry later; the receiving administrator must free space.", "RFC 3463 §3.5"},
	"3.2":  {"System not accepting network messages", "The receiving server is shutting down or not accepting mail.", "Retry later.", "RFC 3463 §3.5"},
	"3.4":  {"Message too big for system", "The message exceeds the size limit of a server on the way.", "Send less or smaller attachments; compare with the SIZE the server announces in EHLO.", "RFC 3463 §3.5"},
	"3.5":  {"System incorrectly configured", "A server on the way is misconfigured.", "Contact the administrator of the server named in the diagnostic.", "RFC 3463 §3.5"},
	"4.0":  {"Other or undefined network or routing status", "Routing failed without a specific reason.", "Check the recipient domain's MX records and the diagnostic.", "RFC 3463 §3.6"},
	"4.1":  {"No answer from host", "The recipient's MX did not answer (connection timed out or refused). Microsoft 365 also uses 5.4.1 for recipients not found by directory-based edge blocking.", "Check the MX hosts and that port 25 is reachable from your server (mxray delivery); for Microsoft 365 check the address.", "RFC 3463 §3.6"},
	"4.2":  {"Bad connection", "The connection broke during the transaction.", "Usually transient; retry. Persistent: look for MTU, TLS or firewall problems.", "RFC 3463 §3.6"},
	"4.3":  {"Directory server failure", "A DNS lookup failed (SERVFAIL, timeout).", "Check the recipient domain's DNS with mxray dns; check your own resolver.", "RFC 3463 §3.6"},
	"4.4":  {"Unable to route", "No route to the recipient: no MX and no A record, or DNS says the domain has no mail servers.", "Check the recipient domain's MX records.", "RFC 3463 §3.6"},
	"4.5":  {"Mail system congestion", "The receiving side is overloaded.", "Retry later; lower your sending rate to that domain.", "RFC 3463 §3.6"},
	"4.6":  {"Routing loop detected", "The message went round in circles between servers (too many hops).", "Check MX, relay and forwarding settings for the domain; look for two servers forwarding to each other.", "RFC 3463 §3.6"},
	"4.7":  {"Delivery time expired", "Your server gave up after retrying for its maximum queue lifetime.", "Find out why earlier attempts failed (the diagnostic shows the last error); check the recipient's MX reachability.", "RFC 3463 §3.6"},
	"5.0":  {"Other or undefined protocol status", "The SMTP dialogue failed.", "Read the diagnostic; the transcript of mxray delivery shows the exchange.", "RFC 3463 §3.7"},
	"5.1":  {"Invalid command", "The server did not accept a command.", "Check the sending software; a proxy or firewall may mangle SMTP.", "RFC 3463 §3.7"},
	"5.2":  {"Syntax error", "A command had invalid syntax.", "Check the sending software or the addresses it sends.", "RFC 3463 §3.7"},
	"5.3":  {"Too many recipients", "The message had more recipients than the server accepts at once.", "Split the recipient list into smaller batches.", "RFC 3463 §3.7"},
	"5.4":  {"Invalid command arguments", "A command had invalid arguments (an unsupported extension parameter).", "Check what the server announces in EHLO.", "RFC 3463 §3.7"},
	"6.0":  {"Other or undefined media error", "The content could not be handled.", "Read the diagnostic.", "RFC 3463 §3.8"},
	"6.1":  {"Media not supported", "The content type or encoding is not supported by the receiver.", "Send in a common format.", "RFC 3463 §3.8"},
	"7.0":  {"Other or undefined security status", "Rejected by security policy: often spam filtering or a blocklist.", "Read the diagnostic for the filter's reason; check your IP on blocklists and your SPF, DKIM and DMARC (mxray auth).", "RFC 3463 §3.9"},
	"7.1":  {"Delivery not authorized, message refused", "The receiver's policy refused the message: a blocklisted IP, relaying denied, a sender or content filter. As 4.7.1 it is often greylisting or rate limiting.", "If it says relay access denied, authenticate or fix the relay settings; otherwise check blocklists and authentication (mxray auth) and follow the URL in the diagnostic.", "RFC 3463 §3.9"},
	"7.2":  {"Mailing list expansion prohibited", "The sender may not post to this list.", "Ask the list owner for permission.", "RFC 3463 §3.9"},
	"7.5":  {"Cryptographic failure", "A signature or encryption step failed.", "Check S/MIME or PGP settings and certificates.", "RFC 3463 §3.9"},
	"7.7":  {"Message integrity failure", "The message was altered or is malformed.", "Check for software that rewrites messages in transit.", "RFC 3463 §3.9"},
	"7.8":  {"Authentication credentials invalid", "SMTP AUTH failed: wrong user name or password.", "Correct the credentials (mxray probe --service submission tests a login).", "RFC 4954 §6"},
	"7.9":  {"Authentication mechanism is too weak", "The server refuses the AUTH mechanism offered.", "Use a stronger mechanism or TLS.", "RFC 4954 §6"},
	"7.10": {"Encryption needed", "The server requires TLS.", "Enable STARTTLS on the sending side.", ianaRef},
	"7.11": {"Encryption required for requested authentication mechanism", "Plain-text AUTH was attempted without TLS.", "Use STARTTLS before AUTH.", "RFC 4954 §6"},
	"7.13": {"User account disabled", "The sending account is disabled.", "Re-enable the account on the submission server.", ianaRef},
	"7.20": {"No passing DKIM signature found", "The receiver requires a valid DKIM signature.", "Sign outgoing mail with DKIM and check the key in DNS (mxray auth).", "RFC 7372 §3.1"},
	"7.21": {"No acceptable DKIM signature found", "A DKIM signature passed but not for an acceptable domain.", "Sign with the domain in From.", "RFC 7372 §3.1"},
	"7.22": {"No valid author-matched DKIM signature found", "No DKIM signature aligned with the From domain.", "Sign with d= equal to (or a parent of) the From domain.", "RFC 7372 §3.1"},
	"7.23": {"SPF validation failed", "The sending IP is not allowed by the sender domain's SPF record.", "Add the sending IP or its provider's include to the SPF record (mxray spf).", "RFC 7372 §3.2"},
	"7.24": {"SPF validation error", "The SPF record could not be evaluated (temperror or permerror).", "Fix the SPF record: syntax, too many DNS lookups (mxray spf).", "RFC 7372 §3.2"},
	"7.25": {"Reverse DNS validation failed", "The sending IP has no matching PTR record.", "Set a PTR record for the sending IP that resolves back to it (FCrDNS).", "RFC 7372 §3.3"},
	"7.26": {"Multiple authentication checks failed", "The message failed authentication: Gmail and others use 5.7.26 for unauthenticated mail and DMARC failures.", "Make SPF or DKIM pass and align with the From domain so DMARC passes (mxray auth).", "RFC 7372 §3.4"},
	"7.27": {"Sender address has null MX", "The sender's domain publishes a null MX, so it cannot receive replies or bounces.", "Send from a domain that accepts mail.", "RFC 7505 §4.2"},
}

// classes is RFC 3463 §3.1.
var classes = map[byte]string{
	'2': "Success",
	'4': "Persistent transient failure",
	'5': "Permanent failure",
}

// subjects is RFC 3463 §3.2 (X.7 security and policy per §3.9).
var subjects = map[string]string{
	"0": "Other or undefined status",
	"1": "Addressing status",
	"2": "Mailbox status",
	"3": "Mail system status",
	"4": "Network and routing status",
	"5": "Mail delivery protocol status",
	"6": "Message content or media status",
	"7": "Security or policy status",
}

// Explain explains an enhanced status code such as "5.1.1" (RFC 3463 §2).
// A code that is not in the table is explained by its class and subject.
func Explain(status string) Explanation {
	st := strings.TrimSpace(status)
	e := Explanation{Status: st}
	parts := strings.Split(st, ".")
	if len(parts) != 3 || len(parts[0]) != 1 || classes[parts[0][0]] == "" || !isNum(parts[1]) || !isNum(parts[2]) {
		e.Meaning = "Not an enhanced status code (class.subject.detail, RFC 3463 §2)."
		return e
	}
	e.Valid = true
	e.Class = classes[parts[0][0]]
	e.Temporary = parts[0] == "4"
	e.Subject = subjects[parts[1]]
	if e.Subject == "" {
		e.Subject = "Unassigned subject"
	}
	if parts[0] == "2" {
		e.Known = true
		e.Meaning = "Success: the message was accepted."
		e.Fix = "Nothing to do."
		e.Reference = "RFC 3463 §3.1"
		return e
	}
	if info, ok := codes[parts[1]+"."+parts[2]]; ok {
		e.Known = true
		e.Meaning, e.Cause, e.Fix, e.Reference = info.meaning, info.cause, info.fix, info.ref
	} else {
		info := codes[parts[1]+".0"]
		e.Meaning = e.Subject + " (" + st + " is not in mxray's table)"
		e.Cause, e.Fix, e.Reference = info.cause, info.fix, ianaRef
		if e.Fix == "" {
			e.Fix = "Read the diagnostic text the server sent with the code."
		}
	}
	if e.Temporary {
		e.Fix += " The sending server retries class 4 failures by itself."
	}
	return e
}

func isNum(s string) bool {
	if len(s) == 0 || len(s) > 3 {
		return false
	}
	_, err := strconv.Atoi(s)
	return err == nil && s[0] != '+' && s[0] != '-'
}
