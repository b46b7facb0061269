package dsn

import (
	"encoding/json"
	"strings"
)

// sesNotification is the JSON that Amazon SES sends by e-mail (through SNS)
// for bounces, complaints and deliveries. Only the fields mxray shows are
// declared.
type sesNotification struct {
	NotificationType string `json:"notificationType"`
	Mail             struct {
		Source        string `json:"source"`
		MessageID     string `json:"messageId"`
		CommonHeaders struct {
			From    []string `json:"from"`
			To      []string `json:"to"`
			Subject string   `json:"subject"`
		} `json:"commonHeaders"`
	} `json:"mail"`
	Bounce struct {
		BounceType        string `json:"bounceType"`
		BouncedRecipients []struct {
			EmailAddress   string `json:"emailAddress"`
			Action         string `json:"action"`
			Status         string `json:"status"`
			DiagnosticCode string `json:"diagnosticCode"`
		} `json:"bouncedRecipients"`
		ReportingMTA string `json:"reportingMTA"`
		RemoteMtaIP  string `json:"remoteMtaIp"`
	} `json:"bounce"`
	Delivery struct {
		Recipients   []string `json:"recipients"`
		SMTPResponse string   `json:"smtpResponse"`
		ReportingMTA string   `json:"reportingMTA"`
		RemoteMtaIP  string   `json:"remoteMtaIp"`
	} `json:"delivery"`
	// SNS wraps the notification as a JSON string in Message.
	Message string `json:"Message"`
}

// readSES reads an Amazon SES notification from the text of a message and
// reports whether there was one.
func (r *Report) readSES(text string) bool {
	i := strings.IndexByte(text, '{')
	j := strings.LastIndexByte(text, '}')
	if i < 0 || j < i || !strings.Contains(text[i:j+1], "notificationType") {
		return false
	}
	var n sesNotification
	if err := json.Unmarshal([]byte(text[i:j+1]), &n); err != nil {
		return false
	}
	if n.NotificationType == "" && n.Message != "" {
		if err := json.Unmarshal([]byte(n.Message), &n); err != nil {
			return false
		}
	}
	switch strings.ToLower(n.NotificationType) {
	case "bounce":
		r.ReportingMTA = n.Bounce.ReportingMTA
		for _, b := range n.Bounce.BouncedRecipients {
			if address(b.EmailAddress) == "" {
				continue
			}
			rc := Recipient{
				FinalRecipient: address(b.EmailAddress),
				Action:         Action(strings.ToLower(b.Action)),
				RemoteMTA:      n.Bounce.RemoteMtaIP,
			}
			if st := findStatus(b.Status, true); st != "" {
				rc.Status, rc.StatusSource = st, SourceText
			}
			if dc := b.DiagnosticCode; dc != "" {
				typ, text, ok := strings.Cut(dc, ";")
				if ok && !strings.ContainsAny(strings.TrimSpace(typ), " \t") {
					rc.DiagnosticType, rc.DiagnosticCode = strings.ToLower(strings.TrimSpace(typ)), strings.TrimSpace(text)
				} else {
					rc.DiagnosticCode = dc
				}
				rc.SMTPCode = findSMTPCode(rc.DiagnosticCode, true)
			}
			if rc.Action == "" {
				rc.Action = ActionFailed
			}
			if rc.Status == "" {
				// SES: "Permanent" or "Transient" bounce types.
				rc.Status, rc.StatusSource = "5.0.0", SourceInferred
				if strings.EqualFold(n.Bounce.BounceType, "Transient") {
					rc.Status = "4.0.0"
				}
			}
			r.Recipients = append(r.Recipients, rc)
		}
	case "delivery":
		r.ReportingMTA = n.Delivery.ReportingMTA
		for _, a := range n.Delivery.Recipients {
			if address(a) == "" {
				continue
			}
			rc := Recipient{
				FinalRecipient: address(a),
				Action:         ActionDelivered,
				RemoteMTA:      n.Delivery.RemoteMtaIP,
				DiagnosticCode: n.Delivery.SMTPResponse,
				SMTPCode:       findSMTPCode(n.Delivery.SMTPResponse, true),
			}
			if st := findStatus(n.Delivery.SMTPResponse, true); st != "" {
				rc.Status, rc.StatusSource = st, SourceText
			}
			r.Recipients = append(r.Recipients, rc)
		}
	default:
		// Complaints are feedback, not delivery status: see package arf.
		return false
	}
	if len(r.Recipients) > maxRecipients {
		r.Recipients = r.Recipients[:maxRecipients]
	}
	if r.Original == nil && (n.Mail.MessageID != "" || n.Mail.CommonHeaders.Subject != "") {
		r.Original = &Original{
			From:      strings.Join(n.Mail.CommonHeaders.From, ", "),
			To:        strings.Join(n.Mail.CommonHeaders.To, ", "),
			Subject:   n.Mail.CommonHeaders.Subject,
			MessageID: n.Mail.MessageID,
		}
	}
	return len(r.Recipients) > 0
}
