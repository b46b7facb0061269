package dsn

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mxray/mxray/internal/testutil"
)

// corpusWant is what the test checks of one corpus file: the kind, the
// number of recipients and the first recipient's address, enhanced status
// and SMTP reply code (0 when the bounce states none).
type corpusWant struct {
	doc    bool  // not a message (licence, provenance)
	err    error // the file is rejected with this error
	kind   Kind
	n      int
	rcpt   string
	status string
	code   int
}

// corpus names every file of ../shared/testdata/dsn-bounces. The values were
// checked by hand against the messages. Statuses that the message does not
// state are inferred (Recipient.StatusSource says so): x.0.0 from the SMTP
// reply class, or a specific code from words such as "mailbox full".
var corpus = map[string]corpusWant{
	"SOURCE.md":                             {doc: true},
	"sisimai/LICENSE":                       {doc: true},
	"sisimai/bsd/lhost-activehunter-01.eml": {kind: Bounce, n: 1, rcpt: "kijitora@example.org", status: "5.1.1", code: 550},
	"sisimai/bsd/lhost-amavis-01.eml":       {kind: Bounce, n: 1, rcpt: "neko@example.co.jp", status: "5.1.1", code: 550},
	"sisimai/bsd/lhost-amavis-03.eml":       {kind: Bounce, n: 1, rcpt: "kijitora@example.com", status: "5.7.0", code: 554},
	"sisimai/bsd/lhost-amazonses-06.eml":    {kind: Bounce, n: 1, rcpt: "bounce@simulator.amazonses.com", status: "5.1.1", code: 550},
	// An Amazon SES "Delivery" notification in JSON: a success report.
	"sisimai/bsd/lhost-amazonses-13.eml":      {kind: Delivered, n: 1, rcpt: "complaint@simulator.amazonses.com", status: "2.6.0", code: 250},
	"sisimai/bsd/lhost-amazonses-21.eml":      {kind: Bounce, n: 1, rcpt: "kijitora@example.com", status: "5.7.1", code: 554},
	"sisimai/bsd/lhost-amazonworkmail-04.eml": {kind: Bounce, n: 1, rcpt: "chatoraneko@example.jp", status: "5.2.2", code: 550},
	"sisimai/bsd/lhost-apachejames-01.eml":    {kind: Bounce, n: 1, rcpt: "000000000000@vtext.example.com", status: "5.1.1", code: 550},
	"sisimai/bsd/lhost-barracuda-02.eml":      {kind: Bounce, n: 1, rcpt: "kijitora@example.jp", status: "5.7.1", code: 550},
	"sisimai/bsd/lhost-biglobe-01.eml":        {kind: Bounce, n: 1, rcpt: "postmaster@mxr.biglobe.ne.jp", status: "5.0.0", code: 0},
	"sisimai/bsd/lhost-courier-03.eml":        {kind: Bounce, n: 1, rcpt: "kijitora@example.jp", status: "5.7.1", code: 550},
	"sisimai/bsd/lhost-domino-01.eml":         {kind: Bounce, n: 1, rcpt: "kijitora@example.jp", status: "5.0.0", code: 0},
	"sisimai/bsd/lhost-domino-03.eml":         {kind: Bounce, n: 1, rcpt: "kijitora@neko.example.org", status: "5.0.0", code: 0},
	"sisimai/bsd/lhost-dragonfly-08.eml":      {kind: Bounce, n: 1, rcpt: "exceedlimit@libsisimai.net", status: "5.2.3", code: 552},
	"sisimai/bsd/lhost-dragonfly-23.eml":      {kind: Bounce, n: 1, rcpt: "systemerror@libsisimai.net", status: "5.3.0", code: 554},
	"sisimai/bsd/lhost-einsundeins-02.eml":    {kind: Bounce, n: 1, rcpt: "kijitora@example.org", status: "5.3.4", code: 0},
	"sisimai/bsd/lhost-exchange2003-01.eml":   {kind: Bounce, n: 1, rcpt: "kijitora@example.jp", status: "5.1.1", code: 0},
	"sisimai/bsd/lhost-exchange2003-04.eml":   {kind: Bounce, n: 1, rcpt: "kijitora@example.com", status: "5.0.0", code: 0},
	"sisimai/bsd/lhost-exchange2007-01.eml":   {kind: Bounce, n: 1, rcpt: "mikeneko@example.co.jp", status: "5.1.1", code: 550},
	"sisimai/bsd/lhost-exchange2007-05.eml":   {kind: Bounce, n: 1, rcpt: "gwang1@student.mlcsyd.nsw.edu.au", status: "4.4.7", code: 550},
	"sisimai/bsd/lhost-exim-01.eml":           {kind: Bounce, n: 1, rcpt: "kijitora@example.ed.jp", status: "5.7.0", code: 550},
	"sisimai/bsd/lhost-exim-30.eml":           {kind: Bounce, n: 1, rcpt: "kijitora@exmaple.ch", status: "5.7.1", code: 554},
	"sisimai/bsd/lhost-exim-39.eml":           {kind: Bounce, n: 1, rcpt: "kijitora@example.net", status: "5.0.0", code: 550},
	"sisimai/bsd/lhost-exim-48.eml":           {kind: Bounce, n: 1, rcpt: "kijitora@example.net", status: "5.7.1", code: 550},
	"sisimai/bsd/lhost-exim-57.eml":           {kind: Bounce, n: 1, rcpt: "kijitora@example.com", status: "5.7.1", code: 0},
	"sisimai/bsd/lhost-ezweb-01.eml":          {kind: Bounce, n: 1, rcpt: "this-message-rejected-by-the-domain-filter@ezweb.ne.jp", status: "5.0.0", code: 0},
	"sisimai/bsd/lhost-ezweb-08.eml":          {kind: Bounce, n: 1, rcpt: "kijitora-neko-nyaan-22222-cats@hotmail.com", status: "5.0.0", code: 550},
	// fml mailing-list "Loop Alert: Duplicated Message-ID": a list manager's notice, not a delivery failure.
	"sisimai/bsd/lhost-fml-03.eml":   {kind: NotBounce},
	"sisimai/bsd/lhost-gmail-05.eml": {kind: Bounce, n: 1, rcpt: "shironeko@example.jp", status: "5.7.1", code: 550},
	"sisimai/bsd/lhost-gmail-10.eml": {kind: Bounce, n: 1, rcpt: "kijitora@6jo.example.co.jp", status: "5.0.0", code: 0},
	"sisimai/bsd/lhost-gmail-19.eml": {kind: Bounce, n: 1, rcpt: "neko-nyaan@google.example.com", status: "5.2.2", code: 0},
	"sisimai/bsd/lhost-gmx-03.eml":   {kind: Bounce, n: 2, rcpt: "mikeneko@example.co.jp", status: "5.2.1", code: 0},
	// Google Groups and Workspace name no recipient in the text: the
	// bounced message's To is used.
	"sisimai/bsd/lhost-googlegroups-01.eml":    {kind: Bounce, n: 1, rcpt: "libsisimai@googlegroups.com", status: "5.0.0", code: 0},
	"sisimai/bsd/lhost-googlegroups-10.eml":    {kind: Bounce, n: 1, rcpt: "libsisimai@googlegroups.com", status: "5.0.0", code: 0},
	"sisimai/bsd/lhost-googleworkspace-01.eml": {kind: Bounce, n: 1, rcpt: "nekochan@example.co.jp", status: "5.0.0", code: 0},
	"sisimai/bsd/lhost-imailserver-03.eml":     {kind: Bounce, n: 1, rcpt: "kijitora@neko.example.co.jp", status: "5.0.0", code: 0},
	"sisimai/bsd/lhost-kddi-01.eml":            {kind: Bounce, n: 1, rcpt: "kijitora@x0000000000000.dion.ne.jp", status: "5.2.2", code: 0},
	"sisimai/bsd/lhost-kddi-03.eml":            {kind: Bounce, n: 1, rcpt: "kijitora@00000000000000.dion.ne.jp", status: "5.2.2", code: 0},
	"sisimai/bsd/lhost-mailfoundry-02.eml":     {kind: Bounce, n: 1, rcpt: "kijitora@example.org", status: "5.1.1", code: 552},
	"sisimai/bsd/lhost-mailru-01.eml":          {kind: Bounce, n: 1, rcpt: "kijitora@example.jp", status: "5.1.1", code: 550},
	"sisimai/bsd/lhost-mailru-07.eml":          {kind: Bounce, n: 1, rcpt: "otsu-sakaba-hunter-neko-nyaaaaaaan@ezweb.ne.jp", status: "5.1.1", code: 550},
	"sisimai/bsd/lhost-mcafee-01.eml":          {kind: Bounce, n: 1, rcpt: "kijitora@example.co.jp", status: "5.1.1", code: 550},
	"sisimai/bsd/lhost-mcafee-05.eml":          {kind: Bounce, n: 1, rcpt: "kijitora-nyaan@example.co.jp", status: "5.0.0", code: 550},
	"sisimai/bsd/lhost-messagingserver-05.eml": {kind: Bounce, n: 1, rcpt: "kijitora@example.jp", status: "5.4.4", code: 0},
	"sisimai/bsd/lhost-messagingserver-12.eml": {kind: Bounce, n: 1, rcpt: "pseudo-local-part-kijitora-neko-nyaan@mac.com", status: "4.2.2", code: 0},
	"sisimai/bsd/lhost-mfilter-03.eml":         {kind: Bounce, n: 1, rcpt: "kijitora@example.org", status: "5.1.1", code: 550},
	"sisimai/bsd/lhost-mimecast-01.eml":        {kind: Bounce, n: 1, rcpt: "sabineko@neko.ef.example.org", status: "5.4.1", code: 0},
	"sisimai/bsd/lhost-mxlogic-01.eml":         {kind: Bounce, n: 1, rcpt: "kijitora@example.co.jp", status: "5.1.1", code: 550},
	"sisimai/bsd/lhost-mxlogic-03.eml":         {kind: Bounce, n: 1, rcpt: "kijitora@example.co.jp", status: "5.1.1", code: 550},
	"sisimai/bsd/lhost-notes-02.eml":           {kind: Bounce, n: 1, rcpt: "kijitora@u1.example.co.jp", status: "5.0.0", code: 0},
	"sisimai/bsd/lhost-office365-01.eml":       {kind: Bounce, n: 1, rcpt: "kijitora@example.com", status: "5.1.10", code: 0},
	"sisimai/bsd/lhost-office365-06.eml":       {kind: Bounce, n: 1, rcpt: "neko@libsisimai.org", status: "5.4.312", code: 550},
	"sisimai/bsd/lhost-office365-11.eml":       {kind: Bounce, n: 1, rcpt: "kijitora@cr3.neko.nyaan.jp", status: "5.1.1", code: 550},
	"sisimai/bsd/lhost-opensmtpd-01.eml":       {kind: Bounce, n: 1, rcpt: "apdugoaidugoaidugoaeiudggadi@gmail.com", status: "5.1.1", code: 550},
	"sisimai/bsd/lhost-opensmtpd-06.eml":       {kind: Delay, n: 1, rcpt: "nekochan@libsisimai.org", status: "4.4.7", code: 0},
	"sisimai/bsd/lhost-opensmtpd-14.eml":       {kind: Bounce, n: 1, rcpt: "blocked@libsisimai.net", status: "5.0.0", code: 0},
	"sisimai/bsd/lhost-outlook-01.eml":         {kind: Bounce, n: 1, rcpt: "kijitora@example.jp", status: "5.2.2", code: 550},
	"sisimai/bsd/lhost-outlook-07.eml":         {kind: Bounce, n: 1, rcpt: "kijitora@example.com", status: "4.4.7", code: 0},
	"sisimai/bsd/lhost-postfix-01.eml":         {kind: Bounce, n: 1, rcpt: "r@p351355.pool.example.ne.jp", status: "5.1.1", code: 0},
	"sisimai/bsd/lhost-postfix-08.eml":         {kind: Bounce, n: 1, rcpt: "kijitora@example.com", status: "4.4.1", code: 0},
	"sisimai/bsd/lhost-postfix-16.eml":         {kind: Bounce, n: 1, rcpt: "kijitora@example.go.jp", status: "5.1.6", code: 550},
	"sisimai/bsd/lhost-postfix-33.eml":         {kind: Bounce, n: 1, rcpt: "userunknown@libsisimai.org", status: "5.1.1", code: 550},
	"sisimai/bsd/lhost-postfix-41.eml":         {kind: Bounce, n: 1, rcpt: "kijitora@example.org", status: "5.0.0", code: 550},
	"sisimai/bsd/lhost-postfix-48.eml":         {kind: Bounce, n: 1, rcpt: "neko-nyaan@ntt.example.net", status: "5.0.0", code: 552},
	"sisimai/bsd/lhost-postfix-55.eml":         {kind: Bounce, n: 1, rcpt: "neko-nyaan@example.ne.jp", status: "5.0.0", code: 552},
	"sisimai/bsd/lhost-postfix-62.eml":         {kind: Bounce, n: 1, rcpt: "nyaan@libsisimai.org", status: "5.0.0", code: 550},
	"sisimai/bsd/lhost-postfix-69.eml":         {kind: Bounce, n: 1, rcpt: "kijitora@yahoo.example.com", status: "5.7.9", code: 554},
	"sisimai/bsd/lhost-postfix-76.eml":         {kind: Bounce, n: 1, rcpt: "this-local-part-does-not-exist@rakumail.jp", status: "5.0.0", code: 550},
	"sisimai/bsd/lhost-powermta-01.eml":        {kind: Bounce, n: 1, rcpt: "kijitora@example.jp", status: "5.2.1", code: 550},
	"sisimai/bsd/lhost-powermta-03.eml":        {kind: Bounce, n: 1, rcpt: "kijitora@libsisimai.org", status: "5.2.1", code: 550},
	"sisimai/bsd/lhost-qmail-06.eml":           {kind: Bounce, n: 1, rcpt: "kijitora@example.jp", status: "4.2.2", code: 450},
	"sisimai/bsd/lhost-qmail-15.eml":           {kind: Bounce, n: 1, rcpt: "pseudo-local-part-of-microsoft-outlook@outlook.com", status: "5.7.509", code: 550},
	"sisimai/bsd/lhost-qmail-25.eml":           {kind: Bounce, n: 2, rcpt: "mailboxfull@libsisimai.net", status: "5.2.2", code: 552},
	"sisimai/bsd/lhost-receivingses-05.eml":    {kind: Bounce, n: 1, rcpt: "exceedlimit@neko.example.jp", status: "5.3.4", code: 552},
	"sisimai/bsd/lhost-sendgrid-01.eml":        {kind: Bounce, n: 1, rcpt: "kijitora@example.jp", status: "5.1.1", code: 550},
	"sisimai/bsd/lhost-sendgrid-03.eml":        {kind: Bounce, n: 1, rcpt: "kijitora@example.org", status: "5.4.7", code: 0},
	"sisimai/bsd/lhost-sendmail-07.eml":        {kind: Bounce, n: 1, rcpt: "kijitora@example.org", status: "5.7.1", code: 554},
	"sisimai/bsd/lhost-sendmail-20.eml":        {kind: Bounce, n: 1, rcpt: "kijitora@example.com", status: "5.4.6", code: 554},
	"sisimai/bsd/lhost-sendmail-34.eml":        {kind: Bounce, n: 1, rcpt: "libsisimai@example.jp", status: "5.7.0", code: 552},
	"sisimai/bsd/lhost-sendmail-47.eml":        {kind: Bounce, n: 1, rcpt: "pseudo-local-part-kijitora-nyaan@free.fr", status: "5.1.1", code: 550},
	"sisimai/bsd/lhost-sendmail-60.eml":        {kind: Bounce, n: 1, rcpt: "kijitora-cat@google.example.com", status: "5.7.26", code: 550},
	"sisimai/bsd/lhost-surfcontrol-02.eml":     {kind: Bounce, n: 1, rcpt: "kijitora@example.org", status: "5.0.0", code: 554},
	"sisimai/bsd/lhost-trendmicro-01.eml":      {kind: Bounce, n: 1, rcpt: "kijitora@example.co.jp", status: "5.1.1", code: 550},
	"sisimai/bsd/lhost-trendmicro-03.eml":      {kind: Bounce, n: 1, rcpt: "kijitora@example.jp", status: "5.0.0", code: 0},
	"sisimai/bsd/lhost-v5sendmail-04.eml":      {kind: Bounce, n: 1, rcpt: "kijitora@example.ed.jp", status: "5.1.2", code: 554},
	"sisimai/bsd/lhost-verizon-01.eml":         {kind: Bounce, n: 1, rcpt: "0000000000@vzwpix.com", status: "5.0.0", code: 0},
	"sisimai/bsd/lhost-x1-01.eml":              {kind: Bounce, n: 1, rcpt: "kijitora@example.co.jp", status: "5.1.1", code: 0},
	"sisimai/bsd/lhost-x1-04.eml":              {kind: Bounce, n: 1, rcpt: "kijitora-neko@neko.example.go.jp", status: "5.4.7", code: 0},
	"sisimai/bsd/lhost-x2-04.eml":              {kind: Bounce, n: 1, rcpt: "kijitora@example.jp", status: "5.2.2", code: 0},
	"sisimai/bsd/lhost-x3-01.eml":              {kind: Bounce, n: 1, rcpt: "kijitora@example.com", status: "5.3.0", code: 553},
	"sisimai/bsd/lhost-x3-06.eml":              {kind: Bounce, n: 1, rcpt: "xxxx@xxxx.net", status: "5.1.1", code: 552},
	// A gateway forwarding the DSN it received as an attachment.
	"sisimai/bsd/lhost-x5-01.eml":     {kind: Bounce, n: 1, rcpt: "kijitora@neko.example.org", status: "5.1.1", code: 550},
	"sisimai/bsd/lhost-x6-02.eml":     {kind: Bounce, n: 1, rcpt: "kijitora@libsisimai.org", status: "5.1.1", code: 550},
	"sisimai/bsd/lhost-yahoo-05.eml":  {kind: Bounce, n: 1, rcpt: "kijitora@example.co.jp", status: "5.2.1", code: 550},
	"sisimai/bsd/lhost-yahoo-14.eml":  {kind: Bounce, n: 1, rcpt: "kijitora@example.org", status: "5.0.0", code: 554},
	"sisimai/bsd/lhost-yandex-02.eml": {kind: Bounce, n: 2, rcpt: "mikeneko@example.jp", status: "5.2.1", code: 550},
	"sisimai/bsd/lhost-zoho-01.eml":   {kind: Bounce, n: 1, rcpt: "kijitora@example.co.jp", status: "5.1.1", code: 0},
	"sisimai/bsd/lhost-zoho-05.eml":   {kind: Bounce, n: 1, rcpt: "kijitora@7jo.example.jp", status: "5.0.0", code: 0},
	"sisimai/bsd/rfc3464-03.eml":      {kind: Bounce, n: 1, rcpt: "kijitora@example.com", status: "5.0.0", code: 554},
	"sisimai/bsd/rfc3464-06.eml":      {kind: Bounce, n: 1, rcpt: "kijitora@example.net", status: "5.5.0", code: 0},
	"sisimai/bsd/rfc3464-08.eml":      {kind: Bounce, n: 1, rcpt: "kijitora@example.net", status: "5.7.1", code: 550},
	"sisimai/bsd/rfc3464-10.eml":      {kind: Bounce, n: 1, rcpt: "kijitora@example.jp", status: "5.1.6", code: 550},
	// Postfix address verification (sendmail -bv): Action: deliverable.
	"sisimai/bsd/rfc3464-28.eml":              {kind: Delivered, n: 1, rcpt: "kijitora@neko.example.jp", status: "2.1.5", code: 250},
	"sisimai/bsd/rfc3464-34.eml":              {kind: Delay, n: 1, rcpt: "kijitora@example.com", status: "4.4.1", code: 0},
	"sisimai/bsd/rfc3464-36.eml":              {kind: Bounce, n: 1, rcpt: "kijitora@nyaan.example.com", status: "4.0.0", code: 426},
	"sisimai/bsd/rfc3464-38.eml":              {kind: Bounce, n: 1, rcpt: "kijitora-nyaan@example.jp", status: "5.2.2", code: 0},
	"sisimai/bsd/rfc3464-40.eml":              {kind: Bounce, n: 1, rcpt: "kijitora@nyaan.neko.example.com", status: "4.4.6", code: 0},
	"sisimai/bsd/rfc3464-43.eml":              {kind: Bounce, n: 1, rcpt: "jp1rb6cm3@mozmail.com", status: "4.3.0", code: 451},
	"sisimai/bsd/rfc3464-52.eml":              {kind: Bounce, n: 1, rcpt: "neko@libsisimai.org", status: "4.0.0", code: 0},
	"sisimai/bsd/rfc3464-54.eml":              {kind: Bounce, n: 1, rcpt: "sotoneko@haineko.org", status: "4.0.0", code: 0},
	"sisimai/bsd/rfc3464-56.eml":              {kind: Bounce, n: 1, rcpt: "siro@neko1.nyaan.jp", status: "4.4.1", code: 0},
	"sisimai/bsd/rfc3464-58.eml":              {kind: Bounce, n: 1, rcpt: "otsu-sakaba-hunter-neko-nyaaaaaaan@ezweb.ne.jp", status: "5.0.0", code: 550},
	"sisimai/bsd/rfc3464-60.eml":              {kind: Bounce, n: 1, rcpt: "kijitora@example.jp", status: "5.1.8", code: 501},
	"sisimai/bsd/rfc3464-62.eml":              {kind: Bounce, n: 1, rcpt: "nekonyaan@gmal.com", status: "4.0.0", code: 0},
	"sisimai/bsd/rfc3464-64.eml":              {kind: Bounce, n: 1, rcpt: "maildebug@example.jpn", status: "4.0.0", code: 0},
	"sisimai/bsd/rfc3464-66.eml":              {kind: Bounce, n: 1, rcpt: "mikeneko@example.com", status: "5.0.0", code: 0},
	"sisimai/bsd/rfc3834-02.eml":              {kind: AutoReply},
	"sisimai/bsd/rfc3834-04.eml":              {kind: AutoReply},
	"sisimai/bsd/rfc3834-06.eml":              {kind: AutoReply},
	"sisimai/bsd/rhost-aol-03.eml":            {kind: Bounce, n: 1, rcpt: "sabineko@example.jp", status: "5.2.2", code: 550},
	"sisimai/bsd/rhost-apple-01.eml":          {kind: Bounce, n: 1, rcpt: "kijitora@example.jp", status: "5.1.6", code: 550},
	"sisimai/bsd/rhost-apple-05.eml":          {kind: Bounce, n: 1, rcpt: "test-of-zhzkndneko@privaterelay.appleid.com", status: "5.1.1", code: 550},
	"sisimai/bsd/rhost-cox-01.eml":            {kind: Bounce, n: 1, rcpt: "recipient55@cox.net", status: "5.1.0", code: 550},
	"sisimai/bsd/rhost-facebook-04.eml":       {kind: Bounce, n: 1, rcpt: "kijitora@facebook.com", status: "5.1.1", code: 550},
	"sisimai/bsd/rhost-franceptt-06.eml":      {kind: Bounce, n: 1, rcpt: "xxxx@orange.fr", status: "4.0.0", code: 550},
	"sisimai/bsd/rhost-godaddy-02.eml":        {kind: Bounce, n: 1, rcpt: "kijitora@example.com", status: "5.1.3", code: 553},
	"sisimai/bsd/rhost-google-01.eml":         {kind: Bounce, n: 1, rcpt: "shironeko@example.ne.jp", status: "5.2.1", code: 550},
	"sisimai/bsd/rhost-google-08.eml":         {kind: Bounce, n: 1, rcpt: "kijitora-nyaan@example.org", status: "5.7.1", code: 550},
	"sisimai/bsd/rhost-gsuite-08.eml":         {kind: Bounce, n: 1, rcpt: "otsu-sakaba-hunter-neko-nyaaaaaaan@ezweb.ne.jp", status: "5.0.0", code: 550},
	"sisimai/bsd/rhost-iua-01.eml":            {kind: Bounce, n: 1, rcpt: "neko@email.example.ua", status: "5.0.0", code: 550},
	"sisimai/bsd/rhost-kddi-02.eml":           {kind: Bounce, n: 1, rcpt: "otsu-sakaba-hunter-neko-nyaaaaaaan@au.com", status: "5.1.1", code: 550},
	"sisimai/bsd/rhost-messagelabs-02.eml":    {kind: Bounce, n: 1, rcpt: "kijitora@neko.example.org", status: "5.0.0", code: 550},
	"sisimai/bsd/rhost-microsoft-01.eml":      {kind: Bounce, n: 1, rcpt: "kijitora@example.com", status: "5.7.606", code: 550},
	"sisimai/bsd/rhost-microsoft-06.eml":      {kind: Bounce, n: 1, rcpt: "sabineko@example.onmicrosoft.com", status: "5.7.515", code: 550},
	"sisimai/bsd/rhost-mimecast-02.eml":       {kind: Bounce, n: 1, rcpt: "kijitora@sample.co.uk", status: "5.0.0", code: 554},
	"sisimai/bsd/rhost-nttdocomo-02.eml":      {kind: Bounce, n: 1, rcpt: "azumakuniyuki@ntt.docomo.example.ne.jp", status: "5.0.0", code: 550},
	"sisimai/bsd/rhost-outlook-01.eml":        {kind: Bounce, n: 1, rcpt: "kijitora@example.jp", status: "5.2.2", code: 550},
	"sisimai/bsd/rhost-outlook-09.eml":        {kind: Bounce, n: 1, rcpt: "kijitora@example.org", status: "5.5.0", code: 550},
	"sisimai/bsd/rhost-tencent-01.eml":        {kind: Bounce, n: 1, rcpt: "nekochan@qq.example.cn", status: "5.0.0", code: 550},
	"sisimai/bsd/rhost-tencent-03.eml":        {kind: Bounce, n: 1, rcpt: "neko@qq.example.cn", status: "5.0.0", code: 550},
	"sisimai/bsd/rhost-yahooinc-02.eml":       {kind: Bounce, n: 1, rcpt: "kijitora@y.example.ca", status: "4.7.0", code: 421},
	"sisimai/bsd/rhost-zoho-01.eml":           {kind: Bounce, n: 1, rcpt: "kijitora@zoho.example.com", status: "5.1.1", code: 550},
	"sisimai/bsd/rhost-zoho-04.eml":           {kind: Bounce, n: 1, rcpt: "kijitora@zoho.example.com", status: "5.4.1", code: 541},
	"sisimai/dos-crlf/lhost-postfix-01.eml":   {kind: Bounce, n: 1, rcpt: "r@p351355.pool.example.ne.jp", status: "5.1.1", code: 0},
	"sisimai/dos-crlf/rfc3464-01.eml":         {kind: Bounce, n: 1, rcpt: "userunknown@bouncehammer.jp", status: "5.1.1", code: 550},
	"sisimai/mac-cr/lhost-postfix-01.eml":     {kind: Bounce, n: 1, rcpt: "r@p351355.pool.example.ne.jp", status: "5.1.1", code: 0},
	"sisimai/mac-cr/rfc3464-01.eml":           {kind: Bounce, n: 1, rcpt: "userunknown@bouncehammer.jp", status: "5.1.1", code: 550},
	"sisimai/not-bounce/is-not-bounce-02.eml": {kind: NotBounce},
}

func TestCorpus(t *testing.T) {
	dir := testutil.Shared(t, "dsn-bounces")
	seen := map[string]bool{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		seen[rel] = true
		want, ok := corpus[rel]
		if !ok {
			t.Errorf("%s: in the corpus but not in the test table", rel)
			return nil
		}
		if want.doc {
			return nil
		}
		t.Run(rel, func(t *testing.T) {
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			r, err := Parse(raw)
			if want.err != nil {
				if !errors.Is(err, want.err) {
					t.Fatalf("err = %v, want %v", err, want.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := corpusWant{kind: r.Kind, n: len(r.Recipients)}
			if len(r.Recipients) > 0 {
				rc := r.Recipients[0]
				got.rcpt, got.status, got.code = rc.FinalRecipient, rc.Status, rc.SMTPCode
			}
			if diff := cmp.Diff(want, got, cmp.AllowUnexported(corpusWant{})); diff != "" {
				t.Errorf("report (-want +got):\n%s", diff)
			}
			checkInvariants(t, r)
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for name := range corpus {
		if !seen[name] {
			t.Errorf("%s: in the test table but not in the corpus", name)
		}
	}
}

// checkInvariants asserts what must hold for any report.
func checkInvariants(t *testing.T, r *Report) {
	t.Helper()
	switch r.Kind {
	case Bounce:
		want := Hard
		for _, rc := range r.Recipients {
			if effectiveAction(&rc) == ActionFailed {
				if strings.HasPrefix(rc.Status, "4.") {
					want = Soft
				}
				break
			}
		}
		if r.Severity != want {
			t.Errorf("severity %q, want %q", r.Severity, want)
		}
	case AutoReply:
		if r.AutoReplyReason == "" {
			t.Errorf("auto-reply without a reason")
		}
	}
	if (r.Kind == AutoReply || r.Kind == NotBounce) != (r.Format == FormatNone) {
		t.Errorf("kind %q with format %q", r.Kind, r.Format)
	}
	for _, rc := range r.Recipients {
		// RFC 3464 §2.3.2 allows address types other than rfc822, so
		// only emptiness is an error.
		if rc.FinalRecipient == "" {
			t.Errorf("recipient without address")
		}
		if effectiveAction(&rc) == ActionFailed && (rc.Status == "" || rc.StatusSource == "") {
			t.Errorf("failed recipient %s without status", rc.FinalRecipient)
		}
	}
}
