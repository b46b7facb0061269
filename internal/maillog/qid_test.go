package maillog

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestQIDState checks the queue-id table against a map: every id keeps its
// own state across the table's growth, short ids and long ones alike, and
// find never creates.
func TestQIDState(t *testing.T) {
	q := newQIDState()
	want := map[string]int64{}
	rng := rand.New(rand.NewPCG(1, 2))
	var ids []string
	for i := 0; i < 50000; i++ {
		var id string
		switch i % 5 {
		case 0:
			id = fmt.Sprintf("%d%s", i, "zLongQueueId") // not hexadecimal: a synthetic key
		case 1:
			id = fmt.Sprintf("%05X", i) // leading zeros are part of the id
		default:
			id = fmt.Sprintf("%X", rng.Uint64()>>(4*rng.IntN(8)))
		}
		ids = append(ids, id)
		m := q.get(newQref([]byte(id)))
		m.size += int64(i) + 1
		want[id] += int64(i) + 1
	}
	for _, id := range ids {
		m := q.find(newQref([]byte(id)))
		if m == nil {
			t.Fatalf("find(%q) = nil after get", id)
		}
		if m.size != want[id] {
			t.Fatalf("find(%q).size = %d, want %d", id, m.size, want[id])
		}
	}
	n := q.n
	for _, id := range []string{"0ABC", "00ABC", "neverSeen1"} {
		if m := q.find(newQref([]byte(id))); m != nil {
			t.Errorf("find(%q) = %+v, want nil", id, *m)
		}
	}
	if q.n != n {
		t.Errorf("find created states: %d, then %d", n, q.n)
	}
	if q.n != len(want) {
		t.Errorf("%d states for %d distinct ids", q.n, len(want))
	}
}

func TestQIDKey(t *testing.T) {
	for _, tc := range []struct {
		id     string
		packed bool
	}{
		{"4AB12C3D4E", true},
		{"0", true},
		{"00", true},
		{"FFFFFFFFFFFFFFF", true},   // 15 digits fit
		{"FFFFFFFFFFFFFFFF", false}, // 16 do not
		{"4ab12c3d4e", false},       // Postfix writes upper case
		{"4Wz1gx0HXNz9vYb", false},  // a long queue id
		{"", false},
	} {
		k, ok := qidKey([]byte(tc.id))
		if ok != tc.packed {
			t.Errorf("qidKey(%q) packed = %v, want %v", tc.id, ok, tc.packed)
		}
		if ok && k < 1<<60 {
			t.Errorf("qidKey(%q) = %#x collides with synthetic keys", tc.id, k)
		}
	}
	a, _ := qidKey([]byte("0A"))
	b, _ := qidKey([]byte("A"))
	if a == b {
		t.Error(`qidKey("0A") == qidKey("A")`)
	}
}

// TestRcvd checks that %rcvdMsg values come back exactly as stored, with
// Perl's truth.
func TestRcvd(t *testing.T) {
	q := newQIDState()
	for _, tc := range []struct {
		in    string
		falsy bool
	}{
		{"192.0.2.1", false},
		{"010.001.000.255", false}, // widths kept
		{"0.0.0.0", false},
		{"example.com", false},
		{"2001:db8::1", false},
		{"1.2.3", false},
		{"1.2.3.4.5", false},
		{"1234.1.1.1", false},
		{"pickup", false},
		{"0", true},
		{"", true},
	} {
		m := &msgState{}
		q.setRcvd(m, []byte(tc.in))
		if got := string(q.appendRcvd(nil, m)); got != tc.in {
			t.Errorf("rcvd %q came back as %q", tc.in, got)
		}
		if q.rcvdFalsy(m) != tc.falsy {
			t.Errorf("rcvd %q: falsy = %v, want %v", tc.in, q.rcvdFalsy(m), tc.falsy)
		}
		if !m.rcvdSet {
			t.Errorf("rcvd %q: not set", tc.in)
		}
	}
	m := &msgState{}
	q.setRcvd(m, []byte("pickup"))
	if m.rcvd != rcvdPickup {
		t.Errorf(`"pickup" from a client line is not the pickup value`)
	}
}

func TestPackIPv4(t *testing.T) {
	for _, s := range []string{"1.2.3.4", "255.255.255.255", "001.02.3.004"} {
		if _, ok := packIPv4([]byte(s)); !ok {
			t.Errorf("packIPv4(%q) failed", s)
		}
	}
	for _, s := range []string{"", "1.2.3.", ".1.2.3", "1..2.3", "1.2.3.4 ", "a.b.c.d", "1.2.3.4567", "1.2.3.4.5"} {
		if _, ok := packIPv4([]byte(s)); ok {
			t.Errorf("packIPv4(%q) succeeded", s)
		}
	}
}

func TestLastIndex(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	alphabet := []byte("ab :")
	for i := 0; i < 20000; i++ {
		s := make([]byte, rng.IntN(12))
		for j := range s {
			s[j] = alphabet[rng.IntN(len(alphabet))]
		}
		sep := make([]byte, 1+rng.IntN(3))
		for j := range sep {
			sep[j] = alphabet[rng.IntN(len(alphabet))]
		}
		if got, want := lastIndex(s, string(sep)), bytes.LastIndex(s, sep); got != want {
			t.Fatalf("lastIndex(%q, %q) = %d, want %d", s, sep, got, want)
		}
	}
	if got := lastIndex([]byte("abc"), ""); got != 3 {
		t.Errorf(`lastIndex("abc", "") = %d, want 3`, got)
	}
}

// TestSpan checks that scanned strings are found where they are: in the
// data when they point there, else in a copy in the arena.
func TestSpan(t *testing.T) {
	data := []byte("Nov  2 00:00:00 mx1 postfix/smtpd[1]: connect from x[192.0.2.1]")
	sc := &scanner{out: lineSrc{data: data[:40]}}
	other := []byte("elsewhere")
	for _, tc := range []struct {
		name  string
		b     []byte
		arena bool
	}{
		{"inside", data[20:35], false},
		{"at the end", data[30:40], false},
		{"past the data", data[35:45], true},
		{"another array", other, true},
		{"empty", data[5:5], false},
	} {
		s := sc.span(tc.b)
		if got := sc.out.bytes(s); !bytes.Equal(got, tc.b) {
			t.Errorf("%s: span gives %q, want %q", tc.name, got, tc.b)
		}
		if got := s.off&arenaBit != 0; got != tc.arena {
			t.Errorf("%s: in the arena = %v, want %v", tc.name, got, tc.arena)
		}
	}
}

func TestCounts(t *testing.T) {
	c := counts{}
	for _, s := range []string{"b", "a", "b", "c", "b", "a"} {
		c.add([]byte(s))
	}
	c.addString("c")
	want := []Count{{"b", 3}, {"a", 2}, {"c", 2}}
	if diff := cmp.Diff(want, countList(c)); diff != "" {
		t.Errorf("countList (-want +got):\n%s", diff)
	}
}
