package http

import (
	"context"
	"sync"

	"github.com/callbridge/callbridge"
)

// hashPool runs password hashing (bcrypt: tens of milliseconds of CPU each) on a few worker
// goroutines of its own with a bounded queue, so that a burst of logins takes at most
// `workers` cores and never the goroutines that serve WebSockets, and a full queue is
// answered at once instead of piling up.
type hashPool struct {
	workers int
	jobs    chan func()
	start   sync.Once
	stop    sync.Once
	quit    chan struct{}
	wg      sync.WaitGroup
}

func newHashPool(workers, queue int) *hashPool {
	return &hashPool{workers: workers, jobs: make(chan func(), queue), quit: make(chan struct{})}
}

// do runs fn on a worker and waits for it to return, or for ctx to end (fn then still runs
// to its end, unobserved). Errors: EUnavailable when the queue is full or the pool closed;
// ctx's error.
func (p *hashPool) do(ctx context.Context, fn func()) error {
	p.start.Do(func() {
		for range p.workers {
			p.wg.Go(p.work)
		}
	})
	done := make(chan struct{})
	job := func() { defer close(done); fn() }
	select {
	case <-p.quit:
		return callbridge.Errorf(callbridge.EUnavailable, "server is shutting down")
	default:
	}
	select {
	case p.jobs <- job:
	default:
		return callbridge.Errorf(callbridge.EUnavailable, "too many logins at once; try again in a moment")
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (p *hashPool) work() {
	for {
		select {
		case <-p.quit:
			return
		case job := <-p.jobs:
			job()
		}
	}
}

// close stops the workers after their current job; queued jobs are dropped (their callers
// have gone with the HTTP server's shutdown).
func (p *hashPool) close() {
	p.stop.Do(func() { close(p.quit) })
	p.wg.Wait()
}
