package hub

// entry is one event in a window.
type entry struct {
	seq   uint64
	frame []byte
}

// ring is a window of the most recent entries, at most cap. It grows as entries come, so
// an audience that had few events holds little.
type ring struct {
	cap   int
	buf   []entry
	start int // index of the oldest entry once the buffer is full
}

// push adds e and returns the sequence of the entry it evicted, if any.
func (r *ring) push(e entry) (evicted uint64, ok bool) {
	if len(r.buf) < r.cap {
		r.buf = append(r.buf, e)
		return 0, false
	}
	old := r.buf[r.start]
	r.buf[r.start] = e
	r.start = (r.start + 1) % len(r.buf)
	return old.seq, true
}

// each calls fn for every entry, oldest first.
func (r *ring) each(fn func(entry)) {
	n := len(r.buf)
	for i := 0; i < n; i++ {
		fn(r.buf[(r.start+i)%n])
	}
}
