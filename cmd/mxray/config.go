package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/mxray/mxray/internal/diag"
)

// config is the TOML file of DESIGN.md (--config, default DATA/mxray.toml).
// Flags override it; unknown keys are an error, so a typo is never
// silently ignored.
type config struct {
	Resolver   []string `toml:"resolver"`
	Timeout    duration `toml:"timeout"`
	LogLevel   string   `toml:"log_level"`
	TLSCA      string   `toml:"tls_ca"`
	DB         string   `toml:"db"`
	ConnectMap string   `toml:"connect_map"`
	Limits     struct {
		Connect  duration `toml:"connect"`
		Command  duration `toml:"command"`
		DNS      duration `toml:"dns"`
		DNSTries int      `toml:"dns_tries"`
		HTTP     duration `toml:"http"`
	} `toml:"limits"`

	// mxray serve (cmd_serve.go).
	Web struct {
		Listen  string `toml:"listen"`
		TLSCert string `toml:"tls_cert"` // --tls-cert
		TLSKey  string `toml:"tls_key"`  // --tls-key
	} `toml:"web"`
	Receiver struct {
		SMTP  smtpReceiverConfig  `toml:"smtp"`
		HTTPS httpsReceiverConfig `toml:"https"`
		IMAP  imapReceiverConfig  `toml:"imap"`
	} `toml:"receiver"`
	Alert   []alertConfig   `toml:"alert"`
	Webhook []webhookConfig `toml:"webhook"`

	path string
}

// duration reads "30s" style values.
type duration struct{ time.Duration }

func (d *duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	if v <= 0 {
		return fmt.Errorf("duration must be positive, got %s", v)
	}
	d.Duration = v
	return nil
}

// loadConfig reads path. A missing default file is an empty config; a
// missing file named with --config is an error.
func loadConfig(path string, explicit bool) (*config, error) {
	c := &config{path: path}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && !explicit {
		return c, nil
	}
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	md, err := toml.Decode(string(b), c)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		var keys []string
		for _, k := range und {
			keys = append(keys, k.String())
		}
		sort.Strings(keys)
		return nil, fmt.Errorf("config %s: unknown key(s): %s", path, strings.Join(keys, ", "))
	}
	return c, nil
}

// applyGlobals fills the options that no flag set explicitly.
func (c *config) applyGlobals(o *globalOpts, changed func(string) bool) error {
	if !changed("resolver") && len(c.Resolver) > 0 {
		o.Resolvers = c.Resolver
	}
	if !changed("timeout") && c.Timeout.Duration > 0 {
		o.Timeout = c.Timeout.Duration
	}
	if !changed("log-level") && c.LogLevel != "" {
		o.LogLevel = c.LogLevel
	}
	if !changed("tls-ca") && c.TLSCA != "" {
		o.TLSCA = c.TLSCA
	}
	if !changed("db") && c.DB != "" {
		o.DB = c.DB
	}
	if !changed("tls-cert") && c.Web.TLSCert != "" {
		o.TLSCert = c.Web.TLSCert
	}
	if !changed("tls-key") && c.Web.TLSKey != "" {
		o.TLSKey = c.Web.TLSKey
	}
	if !changed("connect-map") && c.ConnectMap != "" {
		o.ConnectMap = c.ConnectMap
	}
	if c.Limits.DNSTries < 0 {
		return fmt.Errorf("config %s: limits.dns_tries must be 1 or more", c.path)
	}
	return nil
}

// limits returns the per-operation limits, defaults overridden by the file.
func (c *config) limits() diag.Limits {
	l := diag.DefaultLimits
	set := func(dst *time.Duration, v duration) {
		if v.Duration > 0 {
			*dst = v.Duration
		}
	}
	set(&l.Connect, c.Limits.Connect)
	set(&l.Command, c.Limits.Command)
	set(&l.DNS, c.Limits.DNS)
	set(&l.HTTP, c.Limits.HTTP)
	if c.Limits.DNSTries > 0 {
		l.DNSTry = c.Limits.DNSTries
	}
	return l
}

// smtpReceiverConfig is [receiver.smtp].
type smtpReceiverConfig struct {
	Enabled        bool     `toml:"enabled"`
	Listen         string   `toml:"listen"`
	Hostname       string   `toml:"hostname"`
	Recipients     []string `toml:"recipients"`
	MaxMessageSize int64    `toml:"max_message_size"`
	TLSCert        string   `toml:"tls_cert"`
	TLSKey         string   `toml:"tls_key"`
	MaxConnections int      `toml:"max_connections"`
	CommandTimeout duration `toml:"command_timeout"`
	SessionTimeout duration `toml:"session_timeout"`
}

// imapReceiverConfig is [receiver.imap]: serve reads a report mailbox on
// a schedule, as `mxray reports fetch` does once.
type imapReceiverConfig struct {
	Enabled         bool     `toml:"enabled"`
	URL             string   `toml:"url"` // imaps://USER@HOST[:PORT]/FOLDER or imap:// (STARTTLS)
	PasswordFile    string   `toml:"password_file"`
	Interval        duration `toml:"interval"` // default 5m
	ProcessedFolder string   `toml:"processed_folder"`
	FailedFolder    string   `toml:"failed_folder"`
}

// httpsReceiverConfig is [receiver.https].
type httpsReceiverConfig struct {
	Enabled bool   `toml:"enabled"`
	Listen  string `toml:"listen"`
	Path    string `toml:"path"`
	MaxSize int64  `toml:"max_size"`
	TLSCert string `toml:"tls_cert"`
	TLSKey  string `toml:"tls_key"`
}

// alertConfig is one [[alert]] rule.
type alertConfig struct {
	Name      string   `toml:"name"`
	Kind      string   `toml:"kind"`
	Domain    string   `toml:"domain"`
	Threshold float64  `toml:"threshold"`
	MinVolume int64    `toml:"min_volume"`
	Window    duration `toml:"window"`
}

// webhookConfig is one [[webhook]]. The secret is given inline or, better,
// in a file readable only by mxray.
type webhookConfig struct {
	Name       string `toml:"name"`
	URL        string `toml:"url"`
	Secret     string `toml:"secret"`
	SecretFile string `toml:"secret_file"`
}
