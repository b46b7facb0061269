package postfix

import "testing"

func FuzzParseParams(f *testing.F) {
	f.Add([]byte(goodParams))
	f.Add([]byte("a = b\n  c\n# x\n=\n = \nsmtpd_milters = { inet:x:1, a=b } unix:\nrelayhost = [x\n"))
	f.Add([]byte("smtp inet n - y - - smtpd\n  -o a=b\nx\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p := ParseParams(b)
		Lint(LintInput{Params: p, Defaults: p, Services: ParseMaster(b)})
		Milters(p)
		Deliveries(p, ParseMaster(b))
		ParseRelayhost(p["relayhost"])
		for _, s := range ParseMaster(b) {
			s.Port()
		}
	})
}
