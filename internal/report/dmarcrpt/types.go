package dmarcrpt

import (
	"net/netip"
	"time"
)

// Namespace is the XML namespace of RFC 9990 aggregate reports. Reports
// following RFC 7489 Appendix C or the older draft schema carry no namespace
// (or an unrelated one); all are accepted alike.
const Namespace = "urn:ietf:params:xml:ns:dmarc-2.0"

// Report is a whole aggregate report held in memory, as returned by Parse.
type Report struct {
	Feedback
	Records []Record
}

// Feedback is everything in a report except its records: the reporter, the
// period, the policy the reporter found published, and what the decoder had
// to tolerate to read it.
type Feedback struct {
	// Version is the <version> element as sent ("1.0", "2.0"), empty when
	// absent (RFC 7489 reports usually omit it).
	Version string
	// Namespace is the default namespace declared on <feedback>, empty for
	// RFC 7489 and draft reports.
	Namespace string
	Metadata  ReportMetadata
	Policy    PolicyPublished

	// Records is the number of <record> elements decoded so far; final once
	// the decoder has returned io.EOF.
	Records int
	// Messages is the sum of the records' counts, i.e. how many messages the
	// report covers.
	Messages uint64

	// Warnings lists what was tolerated: values outside the RFC's
	// vocabulary, empty optional elements, wrapping elements. Each distinct
	// warning appears once; the list is capped at MaxWarnings entries.
	Warnings []string
}

// MaxWarnings caps Feedback.Warnings so that a report repeating the same
// oddity in every record cannot grow memory.
const MaxWarnings = 32

// ReportMetadata is the <report_metadata> element (RFC 9990 §3, RFC 7489
// Appendix C).
type ReportMetadata struct {
	OrgName          string
	Email            string
	ExtraContactInfo string
	ReportID         string
	DateRange        DateRange
	Errors           []string
	Generator        string // RFC 9990 only
}

// Reporter names who sent the report: OrgName, or the domain of Email when a
// reporter left org_name empty (some do, see the parsedmarc corpus). Together
// with ReportID it identifies a report.
func (m ReportMetadata) Reporter() string {
	if m.OrgName != "" {
		return m.OrgName
	}
	for i := len(m.Email) - 1; i >= 0; i-- {
		if m.Email[i] == '@' {
			return m.Email[i+1:]
		}
	}
	return m.Email
}

// DateRange is the reporting period, in UTC.
type DateRange struct {
	Begin time.Time
	End   time.Time
}

// PolicyPublished is the DMARC policy record the reporter found for the
// domain (<policy_published>). Fields absent from the report are zero.
type PolicyPublished struct {
	Domain string
	ADKIM  Alignment
	ASPF   Alignment
	P      Policy
	SP     Policy
	NP     Policy // RFC 9990
	// Pct is the RFC 7489 pct tag; nil when not reported (RFC 9990 dropped
	// it in favour of Testing).
	Pct             *int
	FO              string // failure reporting options, as published ("0", "1", "d:s")
	Testing         Testing
	DiscoveryMethod DiscoveryMethod
	PSD             PSD
}

// Record is one <record>: a source IP, how many messages came from it, and
// how they were evaluated.
type Record struct {
	SourceIP        netip.Addr
	Count           uint64
	PolicyEvaluated PolicyEvaluated
	Identifiers     Identifiers
	DKIM            []DKIMAuthResult
	SPF             []SPFAuthResult
}

// PolicyEvaluated is the result of applying the DMARC policy.
type PolicyEvaluated struct {
	Disposition Disposition
	DKIM        DMARCResult
	SPF         DMARCResult
	Reasons     []Reason
}

// Reason explains why the disposition differs from the published policy.
type Reason struct {
	Type    ReasonType
	Comment string
}

// Identifiers are the domains the message was evaluated against.
type Identifiers struct {
	HeaderFrom   string
	EnvelopeFrom string
	EnvelopeTo   string
}

// DKIMAuthResult is one DKIM signature verification result.
type DKIMAuthResult struct {
	Domain      string
	Selector    string
	Result      DKIMResult
	HumanResult string
}

// SPFAuthResult is one SPF evaluation result.
type SPFAuthResult struct {
	Domain      string
	Scope       SPFScope
	Result      SPFResult
	HumanResult string
}

// Alignment is an identifier alignment mode (adkim, aspf).
type Alignment string

const (
	AlignmentRelaxed Alignment = "r" // organizational domains must match
	AlignmentStrict  Alignment = "s" // domains must match exactly
)

// Policy is a requested handling policy (p, sp, np).
type Policy string

const (
	PolicyNone       Policy = "none"       // monitor only
	PolicyQuarantine Policy = "quarantine" // treat failing mail as suspicious
	PolicyReject     Policy = "reject"     // reject failing mail during SMTP
)

// Disposition is what the receiver actually did with the messages.
type Disposition string

const (
	DispositionNone       Disposition = "none"       // delivered, no action taken
	DispositionPass       Disposition = "pass"       // RFC 9990: DMARC passed
	DispositionQuarantine Disposition = "quarantine" // delivered as suspicious
	DispositionReject     Disposition = "reject"     // refused
)

// DMARCResult is the aligned DKIM or SPF outcome in policy_evaluated.
type DMARCResult string

const (
	DMARCPass DMARCResult = "pass" // an aligned identifier passed
	DMARCFail DMARCResult = "fail" // no aligned identifier passed
)

// DKIMResult is a DKIM verification result (RFC 8601 tokens).
type DKIMResult string

const (
	DKIMNone      DKIMResult = "none"      // message not signed
	DKIMPass      DKIMResult = "pass"      // signature verified
	DKIMFail      DKIMResult = "fail"      // signature did not verify
	DKIMPolicy    DKIMResult = "policy"    // signature verified but not accepted by local policy
	DKIMNeutral   DKIMResult = "neutral"   // signature could not be processed
	DKIMTemperror DKIMResult = "temperror" // a retry may succeed
	DKIMPermerror DKIMResult = "permerror" // the signature or key is unusable
)

// SPFResult is an SPF result (RFC 7208 §2.6).
type SPFResult string

const (
	SPFNone      SPFResult = "none"      // no SPF record
	SPFNeutral   SPFResult = "neutral"   // the domain makes no assertion
	SPFPass      SPFResult = "pass"      // the client is authorized
	SPFFail      SPFResult = "fail"      // the client is not authorized
	SPFSoftfail  SPFResult = "softfail"  // probably not authorized
	SPFTemperror SPFResult = "temperror" // a retry may succeed
	SPFPermerror SPFResult = "permerror" // the record is unusable
)

// SPFScope is the identity SPF checked.
type SPFScope string

const (
	SPFScopeHELO  SPFScope = "helo"  // the HELO/EHLO name
	SPFScopeMFROM SPFScope = "mfrom" // the MAIL FROM domain
)

// ReasonType is a policy override reason.
type ReasonType string

const (
	ReasonForwarded        ReasonType = "forwarded"         // RFC 7489: known forwarder
	ReasonSampledOut       ReasonType = "sampled_out"       // RFC 7489: excluded by pct
	ReasonTrustedForwarder ReasonType = "trusted_forwarder" // judged legitimate forwarding
	ReasonMailingList      ReasonType = "mailing_list"      // judged a mailing list
	ReasonLocalPolicy      ReasonType = "local_policy"      // receiver's own policy
	ReasonPolicyTestMode   ReasonType = "policy_test_mode"  // RFC 9990: t=y in effect
	ReasonOther            ReasonType = "other"             // see the comment
)

// Testing is the RFC 9990 t tag: whether the policy is in test mode.
type Testing string

const (
	TestingYes Testing = "y" // policy in test mode
	TestingNo  Testing = "n" // policy applied
)

// DiscoveryMethod is how the receiver found the policy (RFC 9990).
type DiscoveryMethod string

const (
	DiscoveryPSL      DiscoveryMethod = "psl"      // public suffix list (RFC 7489)
	DiscoveryTreewalk DiscoveryMethod = "treewalk" // DNS tree walk (RFC 9989)
)

// PSD is the RFC 9989 psd tag.
type PSD string

const (
	PSDYes     PSD = "y" // the domain is a public suffix domain
	PSDNo      PSD = "n" // the domain is an organizational domain
	PSDUnknown PSD = "u" // not stated
)

var (
	alignments   = []Alignment{AlignmentRelaxed, AlignmentStrict}
	policies     = []Policy{PolicyNone, PolicyQuarantine, PolicyReject}
	dispositions = []Disposition{DispositionNone, DispositionPass, DispositionQuarantine, DispositionReject}
	dmarcResults = []DMARCResult{DMARCPass, DMARCFail}
	dkimResults  = []DKIMResult{DKIMNone, DKIMPass, DKIMFail, DKIMPolicy, DKIMNeutral, DKIMTemperror, DKIMPermerror}
	spfResults   = []SPFResult{SPFNone, SPFNeutral, SPFPass, SPFFail, SPFSoftfail, SPFTemperror, SPFPermerror}
	spfScopes    = []SPFScope{SPFScopeHELO, SPFScopeMFROM}
	reasonTypes  = []ReasonType{ReasonForwarded, ReasonSampledOut, ReasonTrustedForwarder, ReasonMailingList, ReasonLocalPolicy, ReasonPolicyTestMode, ReasonOther}
	testings     = []Testing{TestingYes, TestingNo}
	discoveries  = []DiscoveryMethod{DiscoveryPSL, DiscoveryTreewalk}
	psds         = []PSD{PSDYes, PSDNo, PSDUnknown}
)

func known[T ~string](v T, set []T) bool {
	for _, k := range set {
		if v == k {
			return true
		}
	}
	return false
}

// Known reports whether the value is one the RFCs define. Values outside the
// vocabulary are kept as sent and also noted in Feedback.Warnings.
func (v Alignment) Known() bool { return known(v, alignments) }

// Known reports whether the value is one the RFCs define.
func (v Policy) Known() bool { return known(v, policies) }

// Known reports whether the value is one the RFCs define.
func (v Disposition) Known() bool { return known(v, dispositions) }

// Known reports whether the value is one the RFCs define.
func (v DMARCResult) Known() bool { return known(v, dmarcResults) }

// Known reports whether the value is one the RFCs define.
func (v DKIMResult) Known() bool { return known(v, dkimResults) }

// Known reports whether the value is one the RFCs define.
func (v SPFResult) Known() bool { return known(v, spfResults) }

// Known reports whether the value is one the RFCs define.
func (v SPFScope) Known() bool { return known(v, spfScopes) }

// Known reports whether the value is one the RFCs define.
func (v ReasonType) Known() bool { return known(v, reasonTypes) }

// Known reports whether the value is one the RFCs define.
func (v Testing) Known() bool { return known(v, testings) }

// Known reports whether the value is one the RFCs define.
func (v DiscoveryMethod) Known() bool { return known(v, discoveries) }

// Known reports whether the value is one the RFCs define.
func (v PSD) Known() bool { return known(v, psds) }
