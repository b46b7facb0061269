package web

import (
	"sync"
	"time"
)

// limiter counts events per key in a sliding window: at most max in any
// window. Memory stays bounded by the request rate: keys whose events
// have all expired are dropped whenever the map grows past sweepAt.
type limiter struct {
	mu     sync.Mutex
	max    int
	window time.Duration
	now    func() time.Time
	hits   map[string][]time.Time
}

const sweepAt = 4096

func newLimiter(max int, window time.Duration, now func() time.Time) *limiter {
	return &limiter{max: max, window: window, now: now, hits: map[string][]time.Time{}}
}

// live returns key's events still in the window; l.mu held.
func (l *limiter) live(key string, now time.Time) []time.Time {
	h := l.hits[key]
	i := 0
	for i < len(h) && now.Sub(h[i]) >= l.window {
		i++
	}
	h = h[i:]
	if len(h) == 0 {
		delete(l.hits, key)
	} else {
		l.hits[key] = h
	}
	return h
}

// blocked reports whether key has used up its events, and how long until
// the oldest expires.
func (l *limiter) blocked(key string) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	h := l.live(key, now)
	if len(h) < l.max {
		return 0, false
	}
	return l.window - now.Sub(h[0]), true
}

// add records one event of key.
func (l *limiter) add(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.addLocked(key, l.now())
}

func (l *limiter) addLocked(key string, now time.Time) {
	if len(l.hits) >= sweepAt {
		for k := range l.hits {
			l.live(k, now)
		}
	}
	l.hits[key] = append(l.live(key, now), now)
}

// take records an event of key if it is not blocked.
func (l *limiter) take(key string) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if h := l.live(key, now); len(h) >= l.max {
		return l.window - now.Sub(h[0]), false
	}
	l.addLocked(key, now)
	return 0, true
}

// reset forgets key's events.
func (l *limiter) reset(key string) {
	l.mu.Lock()
	delete(l.hits, key)
	l.mu.Unlock()
}
