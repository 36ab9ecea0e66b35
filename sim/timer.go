package sim

import (
	"container/heap"
	"time"
)

// timerKind says what a timer does when it fires.
type timerKind uint8

const (
	tArrival  timerKind = iota + 1 // a tenant's next automatic inbound call arrives
	tStart                         // an injected call starts (call_started)
	tIVR                           // the IVR is done: data_updated, then the call is queued
	tPatience                      // the caller in queue gives up (abandon)
	tTalk                          // the outside party hangs up
	tRing                          // an alerting party was not answered in time
	tAnswer                        // an alerting party answers by itself (phone, customer)
	tWrapUp                        // a member's wrap-up time (HonourWrapUp) is over
)

// timer is one pending deadline. at orders timers; seq breaks ties in scheduling order, so
// timers due at the same instant fire in the order they were set (deterministic).
type timer struct {
	at     time.Time
	seq    uint64
	kind   timerKind
	tenant *tenant
	call   *call
	party  *party
	index  int // position in the heap; -1 once popped or removed
}

// timerHeap is a min-heap of timers by (at, seq).
type timerHeap []*timer

func (h timerHeap) Len() int { return len(h) }
func (h timerHeap) Less(i, j int) bool {
	if !h[i].at.Equal(h[j].at) {
		return h[i].at.Before(h[j].at)
	}
	return h[i].seq < h[j].seq
}
func (h timerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}
func (h *timerHeap) Push(x any) {
	t := x.(*timer)
	t.index = len(*h)
	*h = append(*h, t)
}
func (h *timerHeap) Pop() any {
	old := *h
	n := len(old)
	t := old[n-1]
	old[n-1] = nil
	t.index = -1
	*h = old[:n-1]
	return t
}

// schedule sets a timer of kind k to fire d after the PBX's current time.
func (p *PBX) schedule(d time.Duration, k timerKind, tn *tenant, c *call, pa *party) *timer {
	if d < 0 {
		d = 0
	}
	p.timerSeq++
	t := &timer{at: p.now.Add(d), seq: p.timerSeq, kind: k, tenant: tn, call: c, party: pa}
	heap.Push(&p.timers, t)
	return t
}

// cancel removes t from the heap if it is still pending, and clears *tp.
func (p *PBX) cancel(tp **timer) {
	t := *tp
	if t != nil && t.index >= 0 {
		heap.Remove(&p.timers, t.index)
	}
	*tp = nil
}
