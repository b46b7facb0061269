package store

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"
)

// Filter selects the reports a summary covers.
type Filter struct {
	Domain string    // policy domain; "" for all
	Since  time.Time // reports whose period ends at or after Since; zero for all
	Top    int       // sources and reporters listed per domain; 10 when 0
}

// Summary is what `mxray reports summary` shows.
type Summary struct {
	Totals  Totals          `json:"totals"`
	Domains []DomainSummary `json:"domains"` // DMARC aggregate data by policy domain
	TLS     []TLSSummary    `json:"tls"`     // TLS reports by policy domain
}

// Totals counts the reports selected, by kind.
type Totals struct {
	DMARC       int64 `json:"dmarc_reports"`
	TLS         int64 `json:"tls_reports"`
	Failure     int64 `json:"failure_reports"`
	Bounces     int64 `json:"bounces"`
	Records     int64 `json:"records"`
	Messages    int64 `json:"messages"`
	Quarantined int64 `json:"quarantined"` // all items, whatever the filter
}

// DomainSummary is the DMARC picture of one policy domain. A message
// passes DMARC when its aligned DKIM or aligned SPF result
// (policy_evaluated) is pass (RFC 7489 §6.6.2, RFC 9989 §4.4).
type DomainSummary struct {
	Domain         string            `json:"domain"`
	Reports        int64             `json:"reports"`
	Messages       int64             `json:"messages"`
	DMARCPass      int64             `json:"dmarc_pass"`
	DKIMPass       int64             `json:"dkim_aligned_pass"`
	SPFPass        int64             `json:"spf_aligned_pass"`
	DMARCPassRate  float64           `json:"dmarc_pass_rate"` // percent
	DKIMPassRate   float64           `json:"dkim_aligned_pass_rate"`
	SPFPassRate    float64           `json:"spf_aligned_pass_rate"`
	Dispositions   []Disposition     `json:"dispositions"`
	SourceCount    int64             `json:"source_count"`
	Sources        []SourceSummary   `json:"sources"`         // top by messages
	FailingSources []SourceSummary   `json:"failing_sources"` // top by messages failing DMARC
	Reporters      []ReporterSummary `json:"reporters"`
}

// Disposition counts the messages a receiver handled one way.
type Disposition struct {
	Disposition string `json:"disposition"`
	Messages    int64  `json:"messages"`
}

// SourceSummary is one sending IP address.
type SourceSummary struct {
	IP        string  `json:"ip"`
	PTR       string  `json:"ptr,omitempty"` // filled by the caller on request
	Messages  int64   `json:"messages"`
	DMARCPass int64   `json:"dmarc_pass"`
	Failed    int64   `json:"dmarc_fail"`
	PassRate  float64 `json:"dmarc_pass_rate"`
}

// ReporterSummary is one reporting organisation.
type ReporterSummary struct {
	Reporter  string  `json:"reporter"`
	Reports   int64   `json:"reports"`
	Messages  int64   `json:"messages"`
	DMARCPass int64   `json:"dmarc_pass"`
	PassRate  float64 `json:"dmarc_pass_rate"`
}

// TLSSummary is the SMTP TLS picture of one policy domain (RFC 8460).
type TLSSummary struct {
	Domain      string            `json:"domain"`
	Reports     int64             `json:"reports"`
	Successful  int64             `json:"successful_sessions"`
	Failed      int64             `json:"failed_sessions"`
	SuccessRate float64           `json:"success_rate"`
	PolicyTypes []string          `json:"policy_types"`
	Failures    []TLSFailureCount `json:"failures"` // by MX and result type
}

// TLSFailureCount counts failed sessions of one result type at one MX.
type TLSFailureCount struct {
	MX         string `json:"mx"` // receiving-mx-hostname; "" when the reporter did not say
	ResultType string `json:"result_type"`
	Sessions   int64  `json:"sessions"`
}

// rate returns n/d in percent, rounded to 0.1.
func rate(n, d int64) float64 {
	if d == 0 {
		return 0
	}
	return math.Round(1000*float64(n)/float64(d)) / 10
}

// Summary computes the summary of the reports f selects.
func (s *DB) Summary(ctx context.Context, f Filter) (*Summary, error) {
	if f.Top <= 0 {
		f.Top = 10
	}
	sum := &Summary{Domains: []DomainSummary{}, TLS: []TLSSummary{}}
	since := unix(f.Since)
	dom := strings.ToLower(f.Domain)
	// each runs query and calls fn with a scanner for every row.
	each := func(query string, args []any, fn func(scan func(dest ...any) error) error) error {
		rows, err := s.db.QueryContext(ctx, query, args...)
		if err != nil {
			return fmt.Errorf("store: summary: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			if err := fn(rows.Scan); err != nil {
				return fmt.Errorf("store: summary: %w", err)
			}
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("store: summary: %w", err)
		}
		return nil
	}
	sel := []any{since, dom, dom}
	const where = `r.date_end >= ? AND (? = '' OR r.domain = ?)`

	err := each(`SELECT r.kind, COUNT(*) FROM reports r WHERE `+where+` GROUP BY r.kind`, sel, func(scan func(...any) error) error {
		var k Kind
		var n int64
		if err := scan(&k, &n); err != nil {
			return err
		}
		switch k {
		case KindDMARC:
			sum.Totals.DMARC = n
		case KindTLS:
			sum.Totals.TLS = n
		case KindFailure:
			sum.Totals.Failure = n
		case KindBounce:
			sum.Totals.Bounces = n
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM quarantine`).Scan(&sum.Totals.Quarantined); err != nil {
		return nil, fmt.Errorf("store: summary: %w", err)
	}

	const pass = `SUM(CASE WHEN c.dkim = 'pass' OR c.spf = 'pass' THEN c.msg_count ELSE 0 END)`
	const from = ` FROM dmarc_records c JOIN reports r ON r.id = c.report WHERE r.kind = 'dmarc' AND ` + where
	err = each(`SELECT r.domain, COUNT(DISTINCT r.id), COUNT(*), SUM(c.msg_count), `+pass+`,
		SUM(CASE WHEN c.dkim = 'pass' THEN c.msg_count ELSE 0 END), SUM(CASE WHEN c.spf = 'pass' THEN c.msg_count ELSE 0 END),
		COUNT(DISTINCT c.source_ip)`+from+` GROUP BY r.domain ORDER BY SUM(c.msg_count) DESC, r.domain{{BINARY}}`, sel,
		func(scan func(...any) error) error {
			var d DomainSummary
			var records int64
			if err := scan(&d.Domain, &d.Reports, &records, &d.Messages, &d.DMARCPass, &d.DKIMPass, &d.SPFPass, &d.SourceCount); err != nil {
				return err
			}
			d.DMARCPassRate, d.DKIMPassRate, d.SPFPassRate = rate(d.DMARCPass, d.Messages), rate(d.DKIMPass, d.Messages), rate(d.SPFPass, d.Messages)
			sum.Totals.Records += records
			sum.Totals.Messages += d.Messages
			sum.Domains = append(sum.Domains, d)
			return nil
		})
	if err != nil {
		return nil, err
	}
	for i := range sum.Domains {
		d := &sum.Domains[i]
		args := []any{since, d.Domain, d.Domain}
		d.Dispositions, d.Sources, d.FailingSources, d.Reporters = []Disposition{}, []SourceSummary{}, []SourceSummary{}, []ReporterSummary{}
		err := each(`SELECT c.disposition, SUM(c.msg_count)`+from+` GROUP BY c.disposition ORDER BY SUM(c.msg_count) DESC, c.disposition{{BINARY}}`, args,
			func(scan func(...any) error) error {
				var x Disposition
				if err := scan(&x.Disposition, &x.Messages); err != nil {
					return err
				}
				d.Dispositions = append(d.Dispositions, x)
				return nil
			})
		if err != nil {
			return nil, err
		}
		source := func(dst *[]SourceSummary, order string) error {
			return each(`SELECT c.source_ip, SUM(c.msg_count), `+pass+` AS p`+from+` GROUP BY c.source_ip`+order+` LIMIT ?`,
				append(args, f.Top), func(scan func(...any) error) error {
					var x SourceSummary
					if err := scan(&x.IP, &x.Messages, &x.DMARCPass); err != nil {
						return err
					}
					x.Failed, x.PassRate = x.Messages-x.DMARCPass, rate(x.DMARCPass, x.Messages)
					*dst = append(*dst, x)
					return nil
				})
		}
		if err := source(&d.Sources, ` ORDER BY SUM(c.msg_count) DESC, c.source_ip{{BINARY}}`); err != nil {
			return nil, err
		}
		if err := source(&d.FailingSources, ` HAVING SUM(c.msg_count) > `+pass+` ORDER BY SUM(c.msg_count) - `+pass+` DESC, c.source_ip{{BINARY}}`); err != nil {
			return nil, err
		}
		err = each(`SELECT r.reporter, COUNT(DISTINCT r.id), SUM(c.msg_count), `+pass+from+` GROUP BY r.reporter
			ORDER BY SUM(c.msg_count) DESC, r.reporter{{BINARY}} LIMIT ?`, append(args, f.Top), func(scan func(...any) error) error {
			var x ReporterSummary
			if err := scan(&x.Reporter, &x.Reports, &x.Messages, &x.DMARCPass); err != nil {
				return err
			}
			x.PassRate = rate(x.DMARCPass, x.Messages)
			d.Reporters = append(d.Reporters, x)
			return nil
		})
		if err != nil {
			return nil, err
		}
	}

	const tlsFrom = ` FROM tls_policies p JOIN reports r ON r.id = p.report WHERE r.kind = 'tls' AND r.date_end >= ? AND (? = '' OR p.policy_domain = ?)`
	byDomain := map[string]*TLSSummary{}
	err = each(`SELECT p.policy_domain, COUNT(DISTINCT r.id), SUM(p.successful), SUM(p.failed)`+tlsFrom+`
		GROUP BY p.policy_domain ORDER BY SUM(p.successful) + SUM(p.failed) DESC, p.policy_domain{{BINARY}}`, sel, func(scan func(...any) error) error {
		var t TLSSummary
		if err := scan(&t.Domain, &t.Reports, &t.Successful, &t.Failed); err != nil {
			return err
		}
		t.SuccessRate = rate(t.Successful, t.Successful+t.Failed)
		t.PolicyTypes, t.Failures = []string{}, []TLSFailureCount{}
		sum.TLS = append(sum.TLS, t)
		return nil
	})
	if err != nil {
		return nil, err
	}
	for i := range sum.TLS {
		byDomain[sum.TLS[i].Domain] = &sum.TLS[i]
	}
	err = each(`SELECT p.policy_domain, p.policy_type`+tlsFrom+` GROUP BY p.policy_domain, p.policy_type
		ORDER BY p.policy_domain{{BINARY}}, p.policy_type{{BINARY}}`, sel,
		func(scan func(...any) error) error {
			var d, t string
			if err := scan(&d, &t); err != nil {
				return err
			}
			if x := byDomain[d]; x != nil {
				x.PolicyTypes = append(x.PolicyTypes, t)
			}
			return nil
		})
	if err != nil {
		return nil, err
	}
	err = each(`SELECT p.policy_domain, f.receiving_mx_hostname, f.result_type, SUM(f.failed_sessions)
		FROM tls_failures f JOIN tls_policies p ON p.report = f.report AND p.seq = f.policy JOIN reports r ON r.id = f.report
		WHERE r.kind = 'tls' AND r.date_end >= ? AND (? = '' OR p.policy_domain = ?)
		GROUP BY p.policy_domain, f.receiving_mx_hostname, f.result_type
		ORDER BY p.policy_domain{{BINARY}}, SUM(f.failed_sessions) DESC, f.receiving_mx_hostname{{BINARY}}, f.result_type{{BINARY}}`, sel,
		func(scan func(...any) error) error {
			var d string
			var x TLSFailureCount
			if err := scan(&d, &x.MX, &x.ResultType, &x.Sessions); err != nil {
				return err
			}
			if t := byDomain[d]; t != nil {
				t.Failures = append(t.Failures, x)
			}
			return nil
		})
	if err != nil {
		return nil, err
	}
	return sum, nil
}
