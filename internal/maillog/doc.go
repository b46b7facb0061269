// Package maillog reads Postfix and Dovecot logs: it parses single lines
// into Entry values (time, host, program, queue id, the key=value fields,
// reject details, authentication failures) and summarises whole logs the
// way pflogsumm does, with grand totals that match Debian's pflogsumm
// 1.1.5 exactly (see PFLOGSUMM.md for the documented differences).
//
// Accepted line formats: traditional syslog ("Nov  2 00:00:00 host
// postfix/smtpd[123]: ..."; the year is inferred from Options.Reference),
// RFC 3339 timestamps (rsyslog high precision, Postfix's own maillog_file),
// "journalctl -o short-iso" and "-o json", Dovecot's own log file (no
// host) and daemontools' TAI64N stamps. Postfix is recognised under any
// instance and service name ("postfix-out/smtp",
// "postfix/sender-cleanup/cleanup", "postfix/submission/smtpd").
//
// On top of Entry: Trace follows messages through a log by queue id,
// address or Message-ID (queue ids are reused: a message's life ends at
// its "removed" line; bounces and hand-overs to the same server are
// followed); Auth groups SASL and login failures by client address and
// user; Follow reads a growing log like tail -F (rotation by rename or
// truncation); Journal reads Postfix's and Dovecot's records from the
// systemd journal with journalctl -o json.
//
// Parsing is byte-level without regular expressions; the summary does not
// allocate per line except for new queue ids and new names.
//
// Not supported: Exim, Sendmail, Courier and other MTAs' logs (their lines
// are counted as other programs); RFC 5424 structured syslog; pflogsumm's
// --smtpd-stats connection times, --verp-mung and --uucp-mung; its
// reject-reason wording (mxray groups reasons its own way).
package maillog
