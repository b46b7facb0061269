package maillog

import (
	"bytes"
	"errors"
	"io"
	"runtime"
	"sync"
)

// chunkSize is how much input one worker scans at a time.
const chunkSize = 256 << 10

// chunk is a run of whole lines and the ops scanned from them.
type chunk struct {
	buf         []byte
	src         lineSrc // data: whole lines (the last one may lack its newline at EOF)
	ops         []op
	first, last stamp
	ready       chan struct{}
}

// ReadFrom counts every line of r. It returns the number of bytes read and
// the first read error; the lines read before the error stay counted.
// With more than one CPU, lines are scanned in parallel and applied in
// input order, so the result is the same as feeding AddLine line by line.
//
// Each worker reads the chunk it scans (taking turns, so chunks stay in
// input order): the bytes the kernel copies in are then still in that
// core's cache when the scan reads them.
func (a *Accumulator) ReadFrom(r io.Reader) (int64, error) {
	workers := runtime.GOMAXPROCS(0)
	if workers > 4 {
		workers = 4
	}
	if a.sc == nil {
		a.sc = a.scanner()
	}
	nchunks := 2*workers + 1
	pool := make(chan *chunk, nchunks)
	for i := 0; i < nchunks; i++ {
		pool <- &chunk{buf: make([]byte, chunkSize), ready: make(chan struct{}, 1)}
	}
	// order never blocks a sender: it holds as many chunks as exist.
	order := make(chan *chunk, nchunks)
	in := &chunkReader{r: r}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := 0; i < workers; i++ {
		sc := a.scanner()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				c := <-pool
				mu.Lock()
				if in.done {
					mu.Unlock()
					pool <- c
					return
				}
				in.fill(c)
				order <- c
				mu.Unlock()
				sc.scanChunk(c)
				c.ready <- struct{}{}
			}
		}()
	}
	go func() {
		wg.Wait()
		close(order)
	}()
	for c := range order {
		<-c.ready
		a.q.prefetch(c.ops)
		for i := range c.ops {
			a.apply(&c.src, &c.ops[i])
		}
		if c.first.set {
			if !a.first.set {
				a.first = c.first
			}
			a.last = c.last
		}
		pool <- c
	}
	a.lines.Total += in.tooLong
	a.lines.Unparsed += in.tooLong
	return in.total, in.err
}

// chunkReader cuts a reader into chunks of whole lines.
type chunkReader struct {
	r        io.Reader
	carry    []byte // the start of a line the previous chunk could not hold
	skipping bool   // dropping the rest of an over-long line
	total    int64  // bytes read
	tooLong  int64  // lines dropped for length
	err      error  // the first read error other than EOF
	done     bool   // the reader is exhausted
}

// fill reads the next chunk into c.src.data.
func (in *chunkReader) fill(c *chunk) {
	buf := c.buf[:cap(c.buf)]
	n := copy(buf, in.carry)
	in.carry = in.carry[:0]
	eof := false
	for {
		for n < len(buf) {
			m, err := in.r.Read(buf[n:])
			in.total += int64(m)
			if in.skipping && m > 0 {
				// Drop the rest of an over-long line.
				if i := bytes.IndexByte(buf[n:n+m], '\n'); i >= 0 {
					copy(buf[n:], buf[n+i+1:n+m])
					m -= i + 1
					in.skipping = false
				} else {
					m = 0
				}
			}
			n += m
			if err != nil {
				if !errors.Is(err, io.EOF) {
					in.err = err
				}
				eof = true
				break
			}
		}
		if eof || bytes.IndexByte(buf[:n], '\n') >= 0 {
			break
		}
		// One line fills the buffer.
		if len(buf) >= MaxLineLength {
			in.tooLong++
			in.skipping = true
			n = 0
			continue
		}
		nb := make([]byte, 2*len(buf))
		copy(nb, buf[:n])
		buf = nb
		c.buf = nb
	}
	data := buf[:n]
	if !eof {
		cut := bytes.LastIndexByte(data, '\n')
		in.carry = append(in.carry, data[cut+1:]...)
		data = data[:cut+1]
	}
	c.src.data = data
	in.done = eof
}

// scanChunk scans every line of c.src.data.
func (sc *scanner) scanChunk(c *chunk) {
	c.ops = c.ops[:0]
	sc.out = lineSrc{data: c.src.data, arena: c.src.arena[:0], doves: c.src.doves[:0]}
	var first, last []byte
	d := c.src.data
	for len(d) > 0 {
		i := bytes.IndexByte(d, '\n')
		line := d
		if i >= 0 {
			line, d = d[:i], d[i+1:]
		} else {
			d = nil
		}
		c.ops = append(c.ops, op{})
		if sc.scanLine(line, &c.ops[len(c.ops)-1]) {
			if first == nil {
				first = line
			}
			last = line
		}
	}
	c.src = sc.out
	sc.out = lineSrc{}
	c.first, c.last = stamp{}, stamp{}
	if first != nil {
		c.first = sc.stampOf(first)
		c.last = sc.stampOf(last)
	}
}
