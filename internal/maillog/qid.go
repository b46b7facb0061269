package maillog

// Per-message state is keyed by queue id. Short Postfix queue ids are
// upper-case hexadecimal; packing them into an integer keeps the map small
// (no string per message), which matters because pflogsumm's semantics
// require remembering every message's size to the end. Other ids (long
// queue ids, and whatever pflogsumm's [^:\s]+ captured) use string keys.

// qidKey packs a hexadecimal queue id of up to 15 digits, with its length
// so that leading zeros stay distinct.
func qidKey(q []byte) (uint64, bool) {
	if len(q) == 0 || len(q) > 15 {
		return 0, false
	}
	var v uint64
	for _, c := range q {
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'A' && c <= 'F':
			d = c - 'A' + 10
		default:
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
// counted) and %msgDfrdFlgs.
type msgState struct {
	size     int64
	rcvd     string // client domain or "pickup"; "" is Perl's false
	sizeSet  bool
	truthy   bool // Perl truth of the size string: false only for "0"
	rcvdSet  bool
	deferred bool
}

type qidState struct {
	h map[uint64]*msgState
	s map[string]*msgState
}

func newQIDState() qidState {
	return qidState{h: make(map[uint64]*msgState), s: make(map[string]*msgState)}
}

// get returns the state of id, creating it.
func (q *qidState) get(id qref) *msgState {
	if id.packed {
		m := q.h[id.key]
		if m == nil {
			m = new(msgState)
			q.h[id.key] = m
		}
		return m
	}
	m := q.s[string(id.id)]
	if m == nil {
		m = new(msgState)
		q.s[string(id.id)] = m
	}
	return m
}
