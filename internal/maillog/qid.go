package maillog

// Per-message state is keyed by queue id. Short Postfix queue ids are
// upper-case hexadecimal; packing them into an integer keeps the table
// small (no string per message), which matters because pflogsumm's
// semantics require remembering every message's size to the end. Other
// ids (long queue ids, and whatever pflogsumm's [^:\s]+ captured) get a
// synthetic integer key from a map, once per distinct id.

// hexVal maps a byte to its value as an upper-case hexadecimal digit, or
// 0xff. Postfix writes short queue ids in upper case only.
var hexVal = func() (t [256]uint8) {
	for i := range t {
		t[i] = 0xff
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = uint8(c - '0')
	}
	for c := 'A'; c <= 'F'; c++ {
		t[c] = uint8(c - 'A' + 10)
	}
	return t
}()

// qidKey packs a hexadecimal queue id of up to 15 digits, with its length
// so that leading zeros stay distinct. The length nibble is never zero,
// which leaves the keys below 1<<60 to synthetic ones.
func qidKey(q []byte) (uint64, bool) {
	if len(q) == 0 || len(q) > 15 {
		return 0, false
	}
	var v uint64
	for _, c := range q {
		d := hexVal[c]
		if d == 0xff {
			return 0, false
		}
		v = v<<4 | uint64(d)
	}
	return uint64(len(q))<<60 | v, true
}

// qref is a queue id with its packed key, computed once per line by the
// scanning goroutine.
type qref struct {
	id     []byte
	key    uint64
	packed bool
}

func newQref(id []byte) qref {
	k, ok := qidKey(id)
	return qref{id, k, ok}
}

// msgState is what pflogsumm remembers about one queue id across its
// hashes %msgSizes (never pruned), %rcvdMsg (pruned once the sender is
// counted) and %msgDfrdFlgs. It holds no pointers, so the garbage
// collector never scans the table.
type msgState struct {
	key  uint64
	size int64
	// rcvd is the %rcvdMsg value: a packed IPv4 address (rcvdIPv4 set) or
	// an index into qidState.names; 0 is "" (Perl's false).
	rcvd     uint64
	sizeSet  bool
	truthy   bool // Perl truth of the size string: false only for "0"
	rcvdSet  bool
	deferred bool
}

const rcvdIPv4 = 1 << 63

// qidState is a hash table from queue-id keys to msgState. The states
// live in pages, in order of first appearance, so that the states of the
// messages in flight sit together in the cache; the index is a compact
// open-addressing table (linear probing) of a fingerprint and a position.
type qidState struct {
	index []uint64 // fingerprint<<32 | position+1; 0 is an empty slot
	shift uint     // 64 - log2(len(index))
	pages [][]msgState
	n     int
	sink  uint64            // keeps prefetch's loads
	long  map[string]uint64 // synthetic keys of unpackable ids

	names   []string          // %rcvdMsg values other than IPv4 addresses
	nameIDs map[string]uint64 // their indexes
	falsy   []bool            // names[i] is "" or "0", false in Perl
}

const (
	qidPageBits = 12
	qidPageSize = 1 << qidPageBits
)

func newQIDState() qidState {
	const bits = 14 // 128 KiB; a busy day's log needs 2^18
	return qidState{
		index:   make([]uint64, 1<<bits),
		shift:   64 - bits,
		long:    make(map[string]uint64),
		names:   []string{"", "pickup"},
		nameIDs: map[string]uint64{"": 0, "pickup": rcvdPickup},
		falsy:   []bool{true, false},
	}
}

const rcvdPickup = 1 // index of "pickup" in names

// keyOf returns the table key of id.
func (q *qidState) keyOf(id qref) uint64 {
	if id.packed {
		return id.key
	}
	k, ok := q.long[string(id.id)]
	if !ok {
		k = uint64(len(q.long) + 1)
		q.long[string(id.id)] = k
	}
	return k
}

// hash returns the first slot and the fingerprint of key.
func (q *qidState) hash(key uint64) (uint64, uint64) {
	fp := ((key ^ key>>31) * 0xbf58476d1ce4e5b9) >> 32
	return (key * 0x9e3779b97f4a7c15) >> q.shift, fp
}

func (q *qidState) at(pos uint64) *msgState {
	return &q.pages[pos>>qidPageBits][pos&(qidPageSize-1)]
}

// get returns the state of id, creating it. The pointer is valid until the
// next call of get.
func (q *qidState) get(id qref) *msgState {
	key := q.keyOf(id)
	i, fp := q.hash(key)
	mask := uint64(len(q.index) - 1)
	for ; ; i = (i + 1) & mask {
		v := q.index[i]
		if v == 0 {
			break
		}
		if v>>32 == fp {
			if m := q.at(v&0xffffffff - 1); m.key == key {
				return m
			}
		}
	}
	if 4*(q.n+1) > 3*len(q.index) {
		q.grow()
		i, _ = q.hash(key)
		mask = uint64(len(q.index) - 1)
		for q.index[i] != 0 {
			i = (i + 1) & mask
		}
	}
	pos := uint64(q.n)
	if pos&(qidPageSize-1) == 0 {
		q.pages = append(q.pages, make([]msgState, qidPageSize))
	}
	q.n++
	q.index[i] = fp<<32 | (pos + 1)
	m := q.at(pos)
	m.key = key
	return m
}

// find returns the state of id, or nil when it has none.
func (q *qidState) find(id qref) *msgState {
	var key uint64
	if id.packed {
		key = id.key
	} else {
		k, ok := q.long[string(id.id)]
		if !ok {
			return nil
		}
		key = k
	}
	i, fp := q.hash(key)
	mask := uint64(len(q.index) - 1)
	for ; ; i = (i + 1) & mask {
		v := q.index[i]
		if v == 0 {
			return nil
		}
		if v>>32 == fp {
			if m := q.at(v&0xffffffff - 1); m.key == key {
				return m
			}
		}
	}
}

// prefetch touches the index slots the queue ids of ops hash to, so that
// their cache misses overlap instead of stalling apply one by one.
func (q *qidState) prefetch(ops []op) {
	var sink uint64
	for i := range ops {
		if ops[i].qpacked {
			j, _ := q.hash(ops[i].qkey)
			sink += q.index[j]
		}
	}
	q.sink = sink
}

func (q *qidState) grow() {
	old := q.index
	q.index = make([]uint64, 2*len(old))
	q.shift--
	mask := uint64(len(q.index) - 1)
	for _, v := range old {
		if v == 0 {
			continue
		}
		j, _ := q.hash(q.at(v&0xffffffff - 1).key)
		for q.index[j] != 0 {
			j = (j + 1) & mask
		}
		q.index[j] = v
	}
}

// setRcvd stores v as the %rcvdMsg value of m.
func (q *qidState) setRcvd(m *msgState, v []byte) {
	m.rcvdSet = true
	if p, ok := packIPv4(v); ok {
		m.rcvd = p
		return
	}
	id, ok := q.nameIDs[string(v)]
	if !ok {
		s := string(v)
		id = uint64(len(q.names))
		q.names = append(q.names, s)
		q.nameIDs[s] = id
		q.falsy = append(q.falsy, s == "0")
	}
	m.rcvd = id
}

// rcvdFalsy reports whether the %rcvdMsg value of m is false in Perl.
func (q *qidState) rcvdFalsy(m *msgState) bool {
	return m.rcvd&rcvdIPv4 == 0 && q.falsy[m.rcvd]
}

// appendRcvd appends the %rcvdMsg value of m to b.
func (q *qidState) appendRcvd(b []byte, m *msgState) []byte {
	if m.rcvd&rcvdIPv4 == 0 {
		return append(b, q.names[m.rcvd]...)
	}
	for part := 3; part >= 0; part-- {
		f := m.rcvd >> (12 * part) & 0xfff
		n, v := int(f>>10), int(f&0x3ff)
		b = appendInt(b, v, n)
		if part > 0 {
			b = append(b, '.')
		}
	}
	return b
}

// packIPv4 packs a dotted quad of one- to three-digit parts, keeping each
// part's width so that "010.1.1.1" comes back as written.
func packIPv4(s []byte) (uint64, bool) {
	if len(s) < 7 || len(s) > 15 {
		return 0, false
	}
	var p uint64
	i := 0
	for part := 0; part < 4; part++ {
		v, n := 0, 0
		for i < len(s) && n < 3 && isDigit(s[i]) {
			v = v*10 + int(s[i]-'0')
			n++
			i++
		}
		if n == 0 {
			return 0, false
		}
		p = p<<12 | uint64(n)<<10 | uint64(v)
		if part < 3 {
			if i >= len(s) || s[i] != '.' {
				return 0, false
			}
			i++
		}
	}
	if i != len(s) {
		return 0, false
	}
	return p | rcvdIPv4, true
}
