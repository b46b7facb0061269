package servercheck

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// BlockRule is a firewall rule that drops or rejects incoming TCP
// connections to a port.
type BlockRule struct {
	Port    int    `json:"port"`
	Verdict string `json:"verdict"` // drop or reject
	Rule    string `json:"rule"`    // where: "inet filter input #4", or the iptables-save line
}

// ParseNft reads `nft -j list ruleset` and returns the rules of input
// hooks that drop or reject TCP connections to one of ports. Only
// explicit destination-port matches are understood (a single port, a set
// or a range); sets by name, maps and jumps to other chains are not
// followed.
func ParseNft(b []byte, ports []int) ([]BlockRule, error) {
	var doc struct {
		Nftables []map[string]json.RawMessage `json:"nftables"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("servercheck: nft -j: %w", err)
	}
	type chainKey struct{ family, table, name string }
	input := map[chainKey]bool{}
	for _, obj := range doc.Nftables {
		if raw, ok := obj["chain"]; ok {
			var c struct{ Family, Table, Name, Hook string }
			if json.Unmarshal(raw, &c) == nil && c.Hook == "input" {
				input[chainKey{c.Family, c.Table, c.Name}] = true
			}
		}
	}
	var out []BlockRule
	for _, obj := range doc.Nftables {
		raw, ok := obj["rule"]
		if !ok {
			continue
		}
		var r struct {
			Family, Table, Chain string
			Handle               int
			Expr                 []map[string]json.RawMessage
		}
		if json.Unmarshal(raw, &r) != nil || !input[chainKey{r.Family, r.Table, r.Chain}] {
			continue
		}
		var matched []int
		verdict := ""
		for _, e := range r.Expr {
			if m, ok := e["match"]; ok {
				matched = append(matched, nftPorts(m, ports)...)
			}
			if _, ok := e["drop"]; ok {
				verdict = "drop"
			}
			if _, ok := e["reject"]; ok {
				verdict = "reject"
			}
		}
		if verdict == "" {
			continue
		}
		for _, p := range matched {
			out = append(out, BlockRule{Port: p, Verdict: verdict, Rule: fmt.Sprintf("%s %s %s handle %d", r.Family, r.Table, r.Chain, r.Handle)})
		}
	}
	return out, nil
}

// nftPorts returns which of ports a "match" expression on tcp dport
// selects.
func nftPorts(raw json.RawMessage, ports []int) []int {
	var m struct {
		Op    string
		Left  map[string]json.RawMessage
		Right json.RawMessage
	}
	if json.Unmarshal(raw, &m) != nil || m.Op == "!=" {
		return nil
	}
	pl, ok := m.Left["payload"]
	if !ok {
		return nil
	}
	var p struct{ Protocol, Field string }
	if json.Unmarshal(pl, &p) != nil || p.Protocol != "tcp" || p.Field != "dport" {
		return nil
	}
	in := func(n int) bool { return true }
	var single int
	var set []json.RawMessage
	var obj map[string]json.RawMessage
	switch {
	case json.Unmarshal(m.Right, &single) == nil:
		in = func(n int) bool { return n == single }
	case json.Unmarshal(m.Right, &obj) == nil:
		if s, ok := obj["set"]; ok && json.Unmarshal(s, &set) == nil {
			in = func(n int) bool {
				for _, e := range set {
					if nftIn(e, n) {
						return true
					}
				}
				return false
			}
		} else if rg, ok := obj["range"]; ok {
			in = func(n int) bool { return nftIn(json.RawMessage(`{"range":`+string(rg)+`}`), n) }
		} else {
			return nil
		}
	default:
		return nil
	}
	var out []int
	for _, n := range ports {
		if in(n) {
			out = append(out, n)
		}
	}
	return out
}

func nftIn(e json.RawMessage, n int) bool {
	var v int
	if json.Unmarshal(e, &v) == nil {
		return v == n
	}
	var r struct{ Range []int }
	if json.Unmarshal(e, &r) == nil && len(r.Range) == 2 {
		return n >= r.Range[0] && n <= r.Range[1]
	}
	return false
}

// ParseIptablesSave reads iptables-save (or ip6tables-save) output and
// returns the INPUT rules that drop or reject TCP connections to one of
// ports (--dport, --dports lists and ranges). Jumps to user chains are
// not followed.
func ParseIptablesSave(b []byte, ports []int) []BlockRule {
	var out []BlockRule
	sc := bufio.NewScanner(bytes.NewReader(b))
	table := ""
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "*") {
			table = line[1:]
			continue
		}
		if table != "filter" || !strings.HasPrefix(line, "-A INPUT ") {
			continue
		}
		f := strings.Fields(line)
		verdict, proto, spec, neg := "", "", "", false
		for i := 0; i < len(f); i++ {
			switch f[i] {
			case "!":
				neg = true
				continue
			case "-p", "--protocol":
				if i+1 < len(f) {
					proto = f[i+1]
				}
			case "--dport", "--destination-port", "--dports", "--destination-ports":
				if i+1 < len(f) && !neg {
					spec = f[i+1]
				}
			case "-j":
				if i+1 < len(f) {
					verdict = strings.ToLower(f[i+1])
				}
			}
			neg = false
		}
		if verdict != "drop" && verdict != "reject" || spec == "" || proto != "" && proto != "tcp" && proto != "6" {
			continue
		}
		for _, p := range ports {
			if portSpecHas(spec, p) {
				out = append(out, BlockRule{Port: p, Verdict: verdict, Rule: line})
			}
		}
	}
	return out
}

// portSpecHas reads "25", "25,587", "1:1024" and "25,100:200".
func portSpecHas(spec string, p int) bool {
	for _, part := range strings.Split(spec, ",") {
		lo, hi, isRange := strings.Cut(part, ":")
		a, err := strconv.Atoi(lo)
		if lo == "" {
			a, err = 0, nil
		}
		if err != nil {
			continue
		}
		if !isRange {
			if a == p {
				return true
			}
			continue
		}
		b, err := strconv.Atoi(hi)
		if hi == "" {
			b, err = 65535, nil
		}
		if err == nil && p >= a && p <= b {
			return true
		}
	}
	return false
}
