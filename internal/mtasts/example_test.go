package mtasts_test

import (
	"context"
	"fmt"

	"github.com/mxray/mxray/internal/lab"
	"github.com/mxray/mxray/internal/mtasts"
)

// What the delivery test does with the lab's two MTA-STS scenarios.
func ExampleEvaluate() {
	ctx := context.Background()
	world, err := lab.StartWorld(ctx, lab.WorldOptions{})
	if err != nil {
		panic(err)
	}
	defer world.Close()
	env := testEnv(world.DNS.Addr, world.CA, world.ConnectMap)
	for _, domain := range []string{"sts-good.test", "sts-badmx.test", "example.test"} {
		rec := mtasts.LookupRecord(ctx, env, domain)
		pol := mtasts.FetchPolicy(ctx, env, domain)
		o := mtasts.Evaluate(rec, pol)
		fmt.Printf("%s: [%s] %s\n", domain, o.Status, o.Summary)
		v := o.MX("mx1.example.test")
		fmt.Printf("  MX mx1.example.test: [%s] %s\n", v.Status, v.Text)
	}
	// Output:
	// sts-good.test: [ok] MTA-STS enforced (mx mx1.example.test, max_age 604800 s): senders deliver only to matching MX hosts over TLS with a valid certificate
	//   MX mx1.example.test: [ok] mx1.example.test matches the policy's mx mx1.example.test
	// sts-badmx.test: [ok] MTA-STS enforced (mx mail.sts-badmx.test, max_age 604800 s): senders deliver only to matching MX hosts over TLS with a valid certificate
	//   MX mx1.example.test: [fail] mx1.example.test matches no mx of the enforced policy (mail.sts-badmx.test): senders must not deliver to it
	// example.test: [info] no MTA-STS: _mta-sts.example.test has no v=STSv1 record; senders use opportunistic TLS
	//   MX mx1.example.test: [skip] no MTA-STS policy applies
}
