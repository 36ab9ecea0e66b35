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

// replayWriteTimeout bounds each write to a client; a client that stops reading is dropped.
const replayWriteTimeout = 10 * time.Second

// replayer is what both replay servers hold: their scripts, compiled to plans of type P by
// listen, and the TCP server.
type replayer[P any] struct {
	proto   string // "AMI", "ESL": for errors
	scripts []Script
	opts    ServerOptions
	log     *slog.Logger
	srv     *replayServer
	compile func([]Record) (P, error)

	mu    sync.Mutex
	plans []P
}

func newReplayer[P any](proto string, scripts []Script, opts ServerOptions, compile func([]Record) (P, error)) *replayer[P] {
	r := &replayer[P]{proto: proto, scripts: scripts, opts: opts, log: opts.Logger, compile: compile}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	return r
}

// listen checks the options, compiles every script and listens on addr.
func (r *replayer[P]) listen(addr string) error {
	if len(r.scripts) == 0 {
		return fmt.Errorf("capture: %s replay server needs at least one script", r.proto)
	}
	if err := r.opts.check(); err != nil {
		return err
	}
	plans := make([]P, len(r.scripts))
	for i, sc := range r.scripts {
		p, err := r.compile(sc.Records)
		if err != nil {
			return fmt.Errorf("capture: script %d: %w", i, err)
		}
		plans[i] = p
	}
	r.mu.Lock()
	r.plans = plans
	r.mu.Unlock()
	return r.srv.listen(addr)
}

// script returns the plan and script of connection k: the last ones serve every connection
// past them.
func (r *replayer[P]) script(k int) (P, Script) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.plans[min(k, len(r.plans)-1)], r.scripts[min(k, len(r.scripts)-1)]
}

// session is the protocol-neutral part of the playback of one connection: writes, DropAfter,
// pacing and the queue of the client's requests (R: an AMI action, an ESL command line),
// which handle answers. Only the playing goroutine writes to nc.
type session[R any] struct {
	nc        net.Conn
	log       *slog.Logger
	speed     float64
	dropAfter int
	played    func()
	handle    func(R) error // answers one request

	sent int    // recorded frames sent (what DropAfter counts)
	reqs chan R // the client's requests; closed when it is gone
}

func newSession[R any](nc net.Conn, log *slog.Logger, speed float64, dropAfter int, played func()) session[R] {
	return session[R]{nc: nc, log: log, speed: speed, dropAfter: dropAfter, played: played, reqs: make(chan R, 64)}
}

// errStop ends a session (Logoff or exit, drop, client gone, write failure).
var errStop = errors.New("stop")

// play runs one connection: read (the client's next request) feeds the queue from its own
// goroutine until it fails, while run plays the script; then the connection is closed and
// both have ended.
func (ss *session[R]) play(ctx context.Context, read func() (R, error), run func(context.Context)) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(ss.reqs)
		for {
			req, err := read()
			if err != nil {
				return
			}
			select {
			case ss.reqs <- req:
			case <-ctx.Done():
				return
			}
		}
	})
	run(ctx)
	ss.nc.Close()
	cancel()
	wg.Wait()
}

// delay waits for a recorded distance of ms, scaled by speed; false when ctx ended first.
func (ss *session[R]) delay(ctx context.Context, ms int64) bool {
	return sleep(ctx, pacer{speed: ss.speed}.scale(ms))
}

// serveUntil answers the client's requests until due. Requests already waiting are answered
// first, so at Speed 0 a reply still comes before the next recorded frame.
func (ss *session[R]) serveUntil(ctx context.Context, due time.Time) error {
	var t *time.Timer
	defer func() {
		if t != nil {
			t.Stop()
		}
	}()
	for {
		select {
		case req, ok := <-ss.reqs:
			if !ok {
				return errStop
			}
			if err := ss.handle(req); err != nil {
				return err
			}
			continue
		default:
		}
		d := time.Until(due)
		if d <= 0 {
			return nil
		}
		if t == nil {
			t = time.NewTimer(d)
		} else {
			t.Reset(d)
		}
		select {
		case req, ok := <-ss.reqs:
			if !ok {
				return errStop
			}
			if err := ss.handle(req); err != nil {
				return err
			}
		case <-t.C:
			return nil
		case <-ctx.Done():
			return errStop
		}
	}
}

// serveRest answers the client's requests until it is gone, ctx ends or an answer stops the
// session.
func (ss *session[R]) serveRest(ctx context.Context) {
	for {
		req, ok := ss.next(ctx)
		if !ok || ss.handle(req) != nil {
			return
		}
	}
}

// next waits for the client's next request; false when the client is gone or ctx ended.
func (ss *session[R]) next(ctx context.Context) (R, bool) {
	select {
	case req, ok := <-ss.reqs:
		return req, ok
	case <-ctx.Done():
		var zero R
		return zero, false
	}
}

// writeRecorded writes one recorded frame and applies DropAfter.
func (ss *session[R]) writeRecorded(raw string) error {
	if err := ss.write(raw); err != nil {
		return err
	}
	ss.sent++
	if ss.dropAfter > 0 && ss.sent >= ss.dropAfter {
		ss.log.Debug("replay: dropping connection", "after", ss.sent)
		ss.played()
		return errStop
	}
	return nil
}

func (ss *session[R]) write(raw string) error {
	_ = ss.nc.SetWriteDeadline(time.Now().Add(replayWriteTimeout))
	if _, err := ss.nc.Write([]byte(raw)); err != nil {
		ss.log.Debug("replay: write", "err", err)
		return errStop
	}
	return nil
}
