package http

import "sync"

// outMsg is one encoded server → client message.
type outMsg struct {
	data []byte
	// event marks a log event, which a resume may drop before it is written.
	event bool
}

// outbox is a WebSocket's send queue, capped in bytes. push never blocks: a message that
// would take the queue over its limit empties it and marks it overflowed, and every later
// push fails, so the connection is cut instead of the publisher waiting.
type outbox struct {
	mu       sync.Mutex
	queue    []outMsg
	bytes    int
	limit    int
	overflow bool
	// wake has room for one signal: "the queue may hold something".
	wake chan struct{}
}

func newOutbox(limit int) *outbox {
	return &outbox{limit: limit, wake: make(chan struct{}, 1)}
}

// push queues m and returns true, or returns false when the queue has overflowed (now or
// before).
func (o *outbox) push(m outMsg) bool {
	o.mu.Lock()
	if o.overflow {
		o.mu.Unlock()
		return false
	}
	if o.bytes+len(m.data) > o.limit {
		o.overflow = true
		o.queue, o.bytes = nil, 0
		o.mu.Unlock()
		return false
	}
	o.queue = append(o.queue, m)
	o.bytes += len(m.data)
	o.mu.Unlock()
	select {
	case o.wake <- struct{}{}:
	default:
	}
	return true
}

// pop takes the oldest message, or returns false when there is none (or the queue overflowed).
func (o *outbox) pop() (outMsg, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.queue) == 0 {
		return outMsg{}, false
	}
	m := o.queue[0]
	o.queue[0] = outMsg{}
	o.queue = o.queue[1:]
	o.bytes -= len(m.data)
	if len(o.queue) == 0 {
		o.queue = nil // let the backing array go
	}
	return m, true
}

// dropEvents removes the queued log events, keeping replies and other messages in order.
func (o *outbox) dropEvents() {
	o.mu.Lock()
	defer o.mu.Unlock()
	kept := o.queue[:0]
	bytes := 0
	for _, m := range o.queue {
		if !m.event {
			kept = append(kept, m)
			bytes += len(m.data)
		}
	}
	clear(o.queue[len(kept):])
	o.queue, o.bytes = kept, bytes
}
