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
	data        []byte // whole lines (the last one may lack its newline at EOF)
	ops         []op
	first, last stamp
	ready       chan struct{}
}

// ReadFrom counts every line of r. It returns the number of bytes read and
// the first read error; the lines read before the error stay counted.
// With more than one CPU, lines are scanned in parallel and applied in
// input order, so the result is the same as feeding AddLine line by line.
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
	jobs := make(chan *chunk, nchunks)
	order := make(chan *chunk, nchunks)
	var wg sync.WaitGroup
	for i := 0; i < workers; i++ {
		sc := a.scanner()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range jobs {
				sc.scanChunk(c)
				c.ready <- struct{}{}
			}
		}()
	}
	applied := make(chan struct{})
	go func() {
		defer close(applied)
		for c := range order {
			<-c.ready
			for i := range c.ops {
				a.apply(&c.ops[i])
			}
			if c.first.set {
				if !a.first.set {
					a.first = c.first
				}
				a.last = c.last
			}
			pool <- c
		}
	}()

	var total, tooLong int64
	var carry []byte
	skipping := false
	var rerr error
	for rerr == nil {
		c := <-pool
		buf := c.buf[:cap(c.buf)]
		n := copy(buf, carry)
		carry = carry[:0]
		eof := false
		for {
			for n < len(buf) {
				m, err := r.Read(buf[n:])
				total += int64(m)
				if skipping && m > 0 {
					// Drop the rest of an over-long line.
					if i := bytes.IndexByte(buf[n:n+m], '\n'); i >= 0 {
						copy(buf[n:], buf[n+i+1:n+m])
						m -= i + 1
						skipping = false
					} else {
						m = 0
					}
				}
				n += m
				if err != nil {
					if !errors.Is(err, io.EOF) {
						rerr = err
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
				tooLong++
				skipping = true
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
			carry = append(carry, data[cut+1:]...)
			data = data[:cut+1]
		}
		c.data = data
		jobs <- c
		order <- c
		if eof {
			break
		}
	}
	close(jobs)
	close(order)
	wg.Wait()
	<-applied
	a.lines.Total += tooLong
	a.lines.Unparsed += tooLong
	return total, rerr
}

// scanChunk scans every line of c.data.
func (sc *scanner) scanChunk(c *chunk) {
	c.ops = c.ops[:0]
	c.first, c.last = stamp{}, stamp{}
	d := c.data
	var st stamp
	for len(d) > 0 {
		i := bytes.IndexByte(d, '\n')
		line := d
		if i >= 0 {
			line, d = d[:i], d[i+1:]
		} else {
			d = nil
		}
		c.ops = append(c.ops, op{})
		st.set = false
		sc.scanLine(line, &c.ops[len(c.ops)-1], &st)
		if st.set {
			if !c.first.set {
				c.first = st
			}
			c.last = st
		}
	}
}
