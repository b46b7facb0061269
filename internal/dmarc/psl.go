package dmarc

import "strings"

// publicSuffixes is a small excerpt of the Public Suffix List
// (https://publicsuffix.org/), enough to show where RFC 7489's
// PSL-based Organizational Domain differs from RFC 9989's DNS Tree Walk
// for common domains. The full list is not shipped and never fetched:
// mxray follows RFC 9989 and only uses this for the comparison. A name
// whose suffix is not listed falls back to the PSL's implicit "*" rule
// (its last label is the suffix).
var publicSuffixes = func() map[string]bool {
	list := `
com net org edu gov mil int info biz name pro io co me tv cc eu
uk co.uk org.uk ac.uk gov.uk ltd.uk plc.uk me.uk net.uk sch.uk nhs.uk
au com.au net.au org.au edu.au gov.au id.au asn.au
jp co.jp ne.jp or.jp ac.jp go.jp ad.jp ed.jp gr.jp lg.jp
nz co.nz org.nz net.nz ac.nz govt.nz
za co.za org.za
br com.br net.br org.br gov.br
in co.in net.in org.in ac.in gov.in
cn com.cn net.cn org.cn gov.cn edu.cn
kr co.kr or.kr ne.kr ac.kr go.kr
mx com.mx org.mx gob.mx
ar com.ar
tr com.tr
il co.il org.il ac.il
us ca de fr it es nl be ch at se no dk fi pl cz pt ie ru ua gr hu ro
test example invalid localhost arpa in-addr.arpa ip6.arpa local
`
	m := map[string]bool{}
	for _, s := range strings.Fields(list) {
		m[s] = true
	}
	return m
}()

// OrgDomainPSL returns the Organizational Domain of name the way RFC 7489
// §3.2 determines it from a public suffix list: the longest listed suffix
// of name plus one label. A name that is itself a public suffix is its own
// Organizational Domain. name is lower case, without a trailing dot.
func OrgDomainPSL(name string) string {
	name = normalize(name)
	labels := strings.Split(name, ".")
	// RFC 7489 §3.2 steps 2-4: find the suffix matching the most labels
	// (the implicit "*" rule makes the last label one), then add the next
	// label to its left.
	x := 1
	for i := 0; i < len(labels); i++ {
		if publicSuffixes[strings.Join(labels[i:], ".")] {
			x = len(labels) - i
			break
		}
	}
	if x >= len(labels) {
		return name
	}
	return strings.Join(labels[len(labels)-x-1:], ".")
}

// normalize lower-cases a domain and drops a trailing dot.
func normalize(d string) string {
	return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(d)), ".")
}
