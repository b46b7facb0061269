// Package mtasts discovers, fetches and explains SMTP MTA Strict Transport
// Security policies (RFC 8461): the `_mta-sts` TXT record (§3.1), the policy
// served at https://mta-sts.<domain>/.well-known/mta-sts.txt (§3.2, §3.3),
// MX host matching (§4.1) and what a sending MTA does with the result
// (§5). Every lookup and fetch keeps its evidence: the records as
// published, the HTTP status, media type and body, the TLS parameters and
// certificate of the policy host, and each defect as a Finding.
//
// Not supported: a policy cache (mxray is a diagnostic and always fetches
// the live policy, so "a sender with a cached policy keeps applying it",
// RFC 8461 §3.3, is explained but not simulated), policy refresh, and the
// "smart host" policy selection of §3.4. Certificate validation of the MX
// hosts themselves (§4.2) belongs to the delivery test.
package mtasts

import (
	"errors"

	"github.com/mxray/mxray/internal/diag"
)

// Status is the outcome of a lookup or a fetch, spelled as in RFC 8601.
type Status string

const (
	Pass      Status = "pass"      // found, and usable by a sender
	None      Status = "none"      // nothing published: the domain has no MTA-STS
	Permerror Status = "permerror" // published but unusable (invalid, several records, a bad certificate, not 200…)
	Temperror Status = "temperror" // a DNS or network failure that a retry may cure
)

// Mode is a policy's mode (RFC 8461 §5).
type Mode string

const (
	ModeEnforce Mode = "enforce" // MX hosts that fail matching or TLS validation must not be used
	ModeTesting Mode = "testing" // failures are reported (TLS-RPT), mail is delivered anyway
	ModeNone    Mode = "none"    // the domain withdraws its policy: as if it had none
)

// Sentinel errors, wrapped by the errors the package returns; test them
// with errors.Is.
var (
	ErrRecordSyntax = errors.New("mtasts: invalid _mta-sts record")
	ErrPolicySyntax = errors.New("mtasts: invalid policy")
	ErrCertificate  = errors.New("mtasts: policy host certificate not valid")
	ErrConnect      = errors.New("mtasts: cannot reach the policy host")
	ErrRedirect     = errors.New("mtasts: policy host answered with a redirect")
	ErrHTTPStatus   = errors.New("mtasts: policy host did not answer 200 OK")
	ErrContentType  = errors.New("mtasts: policy is not text/plain")
	ErrTooLarge     = errors.New("mtasts: policy body larger than the size limit")
	ErrFetch        = errors.New("mtasts: policy fetch failed")
)

// MaxPolicySize is the largest policy body read: RFC 8461 §3.3 suggests
// senders limit the body to 64 kilobytes.
const MaxPolicySize = 64 << 10

// Finding is one defect or remark, with the rule it comes from.
type Finding struct {
	Status diag.Status `json:"status"` // fail, warn or info
	Text   string      `json:"text"`
	RFC    string      `json:"rfc,omitempty"`
}

func finding(s diag.Status, rfc, text string) Finding {
	return Finding{Status: s, Text: text, RFC: rfc}
}

// Field is a name=value (record) or name: value (policy) pair kept as
// published, for extensions the package does not interpret.
type Field struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// validExtName checks RFC 8461's sts-ext-name (§3.1) and
// sts-policy-ext-name (§3.2): (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".").
func validExtName(s string) bool {
	if len(s) == 0 || len(s) > 32 || !isAlnum(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && c != '_' && c != '-' && c != '.' {
			return false
		}
	}
	return true
}
