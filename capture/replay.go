package capture

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"sync"
	"time"
)

// This file is the protocol-neutral core of the replay servers: scripts, pacing, and a TCP
// server that numbers its connections and reports when each has played its script. The AMI
// server (amiserver.go) adds the Asterisk dialogue on top; the ESL server (eslserver.go) adds
// FreeSWITCH's (auth/request, command/reply, api/response) the same way.

// Script is what one replayed connection plays: the records of one capture session (a whole
// .ami.jsonl or .esl.jsonl file: "in", "out" and "eof" records in file order).
type Script struct {
	Records []Record
	// DropAfter closes the TCP connection once this many recorded "in" frames after the
	// banner have been sent (the login response counts; replies made up for the client's own
	// actions do not). 0 means never.
	DropAfter int
}

// ServerOptions configures a replay server.
type ServerOptions struct {
	// Speed scales the recorded pace (t_ms): 0 plays as fast as possible, 1 at the recorded
	// pace, 2 twice as fast. Negative, NaN and infinite values are refused by Listen.
	Speed float64
	// Logger receives connection-level logs; nil discards them.
	Logger *slog.Logger
}

func (o ServerOptions) check() error {
	if o.Speed < 0 || math.IsNaN(o.Speed) || math.IsInf(o.Speed, 0) {
		return fmt.Errorf("capture: replay speed %v: want 0 (as fast as possible) or a positive factor", o.Speed)
	}
	return nil
}

// pacer maps recorded times (t_ms) to wall-clock times: t_ms origin is played at start, and
// later records follow at the recorded distance divided by speed. Speed 0 means now.
type pacer struct {
	speed  float64
	origin int64
	start  time.Time
}

// at returns when the record at tms is due. Records before origin are due at start.
func (p pacer) at(tms int64) time.Time {
	return p.start.Add(p.scale(tms - p.origin))
}

// scale converts a recorded distance in milliseconds to a wall-clock duration.
func (p pacer) scale(ms int64) time.Duration {
	if p.speed <= 0 || ms <= 0 {
		return 0
	}
	return time.Duration(float64(ms) * float64(time.Millisecond) / p.speed)
}

// sleep waits for d or until ctx ends; it reports whether the full wait elapsed.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// connHandler plays one accepted connection, number k (0-based), until it is done or ctx
// ends. It calls played once every frame of its script has been sent. The server closes nc
// after the handler returns.
type connHandler func(ctx context.Context, nc net.Conn, k int, played func())

// replayServer is the TCP part shared by the replay servers.
type replayServer struct {
	log    *slog.Logger
	handle connHandler

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	ln     net.Listener
	closed bool
	n      int // connections accepted
	conns  map[net.Conn]struct{}
	played map[int]chan struct{}
}

func newReplayServer(log *slog.Logger, handle connHandler) *replayServer {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &replayServer{
		log: log, handle: handle, ctx: ctx, cancel: cancel,
		conns: map[net.Conn]struct{}{}, played: map[int]chan struct{}{},
	}
}

// listen binds addr synchronously and serves in a goroutine.
func (s *replayServer) listen(addr string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("capture: replay server is closed")
	}
	if s.ln != nil {
		return errors.New("capture: replay server is already listening")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("capture: listen: %w", err)
	}
	s.ln = ln
	s.wg.Add(1)
	go s.accept(ln)
	return nil
}

func (s *replayServer) accept(ln net.Listener) {
	defer s.wg.Done()
	for {
		nc, err := ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				s.log.Warn("replay accept", "err", err)
			}
			return
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			nc.Close()
			return
		}
		k := s.n
		s.n++
		s.conns[nc] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			defer func() {
				nc.Close()
				s.mu.Lock()
				delete(s.conns, nc)
				s.mu.Unlock()
			}()
			s.log.Debug("replay connection", "n", k, "remote", nc.RemoteAddr().String())
			s.handle(s.ctx, nc, k, func() { s.markPlayed(k) })
		}()
	}
}

func (s *replayServer) addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

func (s *replayServer) playedChan(n int) chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch, ok := s.played[n]
	if !ok {
		ch = make(chan struct{})
		s.played[n] = ch
	}
	return ch
}

func (s *replayServer) markPlayed(n int) {
	ch := s.playedChan(n)
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-ch:
	default:
		close(ch)
	}
}

func (s *replayServer) connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

// close stops accepting, closes every connection and waits for the handlers to return.
func (s *replayServer) close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	var err error
	if s.ln != nil {
		err = s.ln.Close()
	}
	for nc := range s.conns {
		nc.Close()
	}
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
	return err
}
