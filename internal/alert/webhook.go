package alert

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/mxray/mxray/internal/store"
)

// SignatureHeader carries the HMAC-SHA256 of the body under the webhook's
// secret: "sha256=" and the lower-case hex digest.
const SignatureHeader = "X-Mxray-Signature"

// Sign returns the SignatureHeader value of body.
func Sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Verify checks a SignatureHeader value in constant time, as a receiver
// of mxray's webhooks does.
func Verify(secret string, body []byte, header string) bool {
	return hmac.Equal([]byte(Sign(secret, body)), []byte(header))
}

// ValidateWebhook checks a webhook of the config.
func ValidateWebhook(h store.Webhook) error {
	u, err := url.Parse(h.URL)
	switch {
	case h.Name == "":
		return fmt.Errorf("%w: a webhook needs a name", ErrWebhook)
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return fmt.Errorf("%w %q: url must be http:// or https://", ErrWebhook, h.Name)
	case len(h.Secret) < 16:
		return fmt.Errorf("%w %q: secret must be at least 16 characters", ErrWebhook, h.Name)
	}
	return nil
}

// Notifier delivers the outbox.
type Notifier struct {
	DB     *store.DB
	Client *http.Client // with its own timeout; made by cmd/
	Now    func() time.Time
	Log    *slog.Logger
	// Backoff doubles from Base (30 s when 0) up to Max (1 h when 0)
	// after each failed attempt.
	Base, Max time.Duration

	mu sync.Mutex // one delivery round at a time: no entry is sent twice
}

// Backoff returns the wait after the attempts-th failed attempt.
func Backoff(attempts int, base, max time.Duration) time.Duration {
	d := base
	for i := 1; i < attempts && d < max; i++ {
		d *= 2
	}
	return min(d, max)
}

// Delivery counts one round.
type Delivery struct {
	Delivered int `json:"delivered"`
	Failed    int `json:"failed"`
}

// Deliver sends every due outbox entry once. A webhook that answers 2xx
// has the alert; anything else is tried again after the backoff.
func (n *Notifier) Deliver(ctx context.Context) (Delivery, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	var d Delivery
	base, max := n.Base, n.Max
	if base <= 0 {
		base = 30 * time.Second
	}
	if max <= 0 {
		max = time.Hour
	}
	log := n.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	for {
		due, err := n.DB.OutboxDue(ctx, n.Now(), 50)
		if err != nil {
			return d, err
		}
		if len(due) == 0 {
			return d, nil
		}
		for _, e := range due {
			err := n.post(ctx, e)
			if err == nil {
				if err := n.DB.OutboxDelivered(ctx, e.ID, n.Now()); err != nil {
					return d, err
				}
				d.Delivered++
				log.Info("webhook delivered", "webhook", e.Webhook, "alert", e.Alert, "attempt", e.Attempts+1)
				continue
			}
			next := n.Now().Add(Backoff(e.Attempts+1, base, max))
			if err := n.DB.OutboxFailed(ctx, e.ID, next, err.Error()); err != nil {
				return d, err
			}
			d.Failed++
			log.Warn("webhook failed", "webhook", e.Webhook, "alert", e.Alert, "attempt", e.Attempts+1, "err", err, "next", next)
		}
		if ctx.Err() != nil {
			return d, ctx.Err()
		}
		if len(due) < 50 {
			return d, nil
		}
	}
}

func (n *Notifier) post(ctx context.Context, e store.OutboxEntry) error {
	body := []byte(e.Body)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "mxray")
	req.Header.Set(SignatureHeader, Sign(e.Secret, body))
	// A receiver can drop a second delivery of the same entry by this id.
	req.Header.Set("X-Mxray-Delivery", strconv.FormatInt(e.ID, 10))
	c := n.Client
	if c == nil {
		c = &http.Client{Timeout: 30 * time.Second}
	}
	resp, err := c.Do(req)
	if err != nil {
		// The URL may hold credentials: report the error without it.
		if ue, ok := err.(*url.Error); ok {
			return fmt.Errorf("POST: %v", ue.Err)
		}
		return err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return nil
}
