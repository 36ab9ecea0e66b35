package remote

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/callbridge/callbridge"
)

// Backend is what a Service serves: a site's node (node.Node implements it).
type Backend interface {
	callbridge.Commander
	callbridge.Presence
	callbridge.AvailabilityService
	// DesktopHeartbeats records that each agent's desktop showed life, in one turn of the
	// engine (the gateway's HeartbeatReporter).
	DesktopHeartbeats(ctx context.Context, agents []callbridge.AgentKey, desktop string) error
}

// ServiceConfig configures a Service.
type ServiceConfig struct {
	// Site is the site id, a token (callbridge.ValidToken). Required.
	Site callbridge.SiteID
	// Backend runs the requests. Required.
	Backend Backend
	// Prefix is the subjects' first part; "" means DefaultPrefix. Client and Service must
	// agree.
	Prefix string
	// MaxInFlight bounds the do, snapshot and availability requests being carried out at
	// once (default 1024); one more is answered at once with EUnavailable ("busy"). A retry
	// joined to a command in progress counts too.
	MaxInFlight int
	// Logger receives the service's log lines (a request failing with EInternal is logged
	// with its details at Error); nil discards them.
	Logger *slog.Logger
}

// Counters are a Service's own counts, also in the micro STATS of every endpoint ("data").
type Counters struct {
	// InFlight is the number of requests being carried out now.
	InFlight int64 `json:"in_flight"`
	// Refused counts requests answered "busy" (MaxInFlight reached) or "stopping".
	Refused uint64 `json:"refused"`
	// Joined counts retried commands joined to the same command still in progress.
	Joined uint64 `json:"joined"`
	// Errors counts requests answered with an error (any code).
	Errors uint64 `json:"errors"`
}

// Service serves one site's Backend on NATS. Create it with NewService; stop it with Stop.
//
// do, snapshot and availability requests are carried out concurrently (each on its own
// goroutine, at most MaxInFlight); presence and ready requests one at a time in the order
// they arrive, so that a desktop's detach never overtakes its attach.
type Service struct {
	cfg ServiceConfig
	nc  *natsgo.Conn
	svc micro.Service
	log *slog.Logger

	mu       sync.Mutex
	closed   bool
	inflight int64
	flights  map[flightKey]*flight
	wg       sync.WaitGroup

	refused, joined, errs atomic.Uint64
}

// flightKey identifies a command by its idempotency key, as the engine does.
type flightKey struct {
	tenant callbridge.TenantID
	agent  callbridge.AgentID
	key    string
}

// flight is a command with an idempotency key in progress; done is closed once res and err
// are set.
type flight struct {
	name callbridge.CommandName
	done chan struct{}
	res  callbridge.CommandResult
	err  error
}

// NewService starts serving cfg.Backend on nc as the micro service ServiceName with metadata
// site=cfg.Site, on the subjects <prefix>.<site>.{do,snapshot,availability,presence,ready}
// (queue group "q"). It returns once the subscriptions are registered with the server (a
// request sent after it returns finds them). Errors: a bad Site or Prefix, a nil Backend, or
// NATS refusing the subscriptions.
//
// Run one Service per site, on the node that is active for it: every instance subscribed
// in the queue group gets a share of the requests.
func NewService(ctx context.Context, nc *natsgo.Conn, cfg ServiceConfig) (*Service, error) {
	if err := validSite(cfg.Site); err != nil {
		return nil, fmt.Errorf("remote: new service: %w", err)
	}
	if cfg.Backend == nil {
		return nil, errors.New("remote: new service: Backend is required")
	}
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	if err := validPrefix(cfg.Prefix); err != nil {
		return nil, fmt.Errorf("remote: new service: %w", err)
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = 1024
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Service{cfg: cfg, nc: nc, log: cfg.Logger.With("site", string(cfg.Site)), flights: map[flightKey]*flight{}}
	svc, err := micro.AddService(nc, micro.Config{
		Name:         ServiceName,
		Version:      ServiceVersion,
		Description:  "callbridge site " + string(cfg.Site) + ": commands, snapshots, availability and desktop presence",
		Metadata:     map[string]string{"site": string(cfg.Site)},
		StatsHandler: func(*micro.Endpoint) any { return s.Counters() },
		ErrorHandler: func(_ micro.Service, e *micro.NATSError) {
			s.log.Warn("site service: NATS error", "subject", e.Subject, "err", e.Description)
		},
	})
	if err != nil {
		return nil, fmt.Errorf("remote: new service: %w", err)
	}
	g := svc.AddGroup(cfg.Prefix + "." + string(cfg.Site))
	for _, ep := range []struct {
		name string
		h    micro.HandlerFunc
	}{
		{epDo, s.concurrent(epDo)},
		{epSnapshot, s.concurrent(epSnapshot)},
		{epAvailability, s.concurrent(epAvailability)},
		{epPresence, s.inline(epPresence)},
		{epReady, s.inline(epReady)},
	} {
		if err := g.AddEndpoint(ep.name, ep.h); err != nil {
			_ = svc.Stop()
			return nil, fmt.Errorf("remote: new service: endpoint %s: %w", ep.name, err)
		}
	}
	s.svc = svc
	if err := nc.FlushWithContext(ctx); err != nil {
		_ = svc.Stop()
		return nil, fmt.Errorf("remote: new service: %w", err)
	}
	s.log.Info("site service started", "subjects", cfg.Prefix+"."+string(cfg.Site)+".>", "id", svc.Info().ID)
	return s, nil
}

// Site returns the site the service serves.
func (s *Service) Site() callbridge.SiteID { return s.cfg.Site }

// Counters returns the service's counts.
func (s *Service) Counters() Counters {
	s.mu.Lock()
	n := s.inflight
	s.mu.Unlock()
	return Counters{InFlight: n, Refused: s.refused.Load(), Joined: s.joined.Load(), Errors: s.errs.Load()}
}

// Stop stops taking requests (the server knows it once Stop returns: a client then gets
// no-responders unless another instance serves the site), then waits until the requests in
// progress are answered or ctx ends (ctx's error). Commands in progress are carried out to
// the end either way (node.Do commits what the switch accepted). Safe to call more than once.
func (s *Service) Stop(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	if err := s.svc.Stop(); err != nil {
		return fmt.Errorf("remote: stop service: %w", err)
	}
	if !s.nc.IsClosed() {
		if err := s.nc.FlushWithContext(ctx); err != nil && !errors.Is(err, natsgo.ErrConnectionClosed) {
			return fmt.Errorf("remote: stop service: %w", err)
		}
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		s.log.Info("site service stopped")
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// concurrent returns the handler of an endpoint whose requests run on their own goroutines.
// It runs on the endpoint's subscription goroutine: it decodes, takes a slot, joins a
// command to the same one in progress (registered here, so in arrival order), and hands the
// rest to a goroutine that answers on the connection (never through micro.Request, which
// is not safe to use once the handler has returned).
func (s *Service) concurrent(ep string) micro.HandlerFunc {
	return func(req micro.Request) {
		reply := req.Reply()
		if reply == "" {
			return // a publish without a reply subject: nobody to answer
		}
		r, err := decodeRequest(ep, natsgo.Header(req.Headers()), req.Data())
		if err != nil {
			s.respond(reply, ep, nil, err)
			return
		}
		if err := s.acquire(); err != nil {
			s.respond(reply, ep, nil, err)
			return
		}
		var f *flight
		leader := false
		if ep == epDo && r.cmd.IdempotencyKey != "" {
			f, leader = s.flightFor(r.cmd)
		}
		go func() {
			defer s.release()
			ctx, cancel := context.WithTimeout(context.Background(), s.timeout(r))
			defer cancel()
			var v any
			var err error
			switch {
			case f != nil && !leader:
				s.joined.Add(1)
				select {
				case <-f.done:
					v, err = f.res, f.err
				case <-ctx.Done():
					err = callbridge.Errorf(callbridge.EUnavailable, "site %s did not answer in time", s.cfg.Site)
				}
			case ep == epDo:
				res, derr := s.cfg.Backend.Do(ctx, r.cmd)
				if f != nil {
					s.land(r.cmd, f, res, derr)
				}
				v, err = res, derr
			case ep == epSnapshot:
				v, err = s.cfg.Backend.Snapshot(ctx, r.agent.Tenant, r.agent.Agent)
			case ep == epAvailability:
				v, err = s.cfg.Backend.Availability(ctx, r.agent.Tenant, r.agent.Agent)
			}
			s.respond(reply, ep, v, err)
		}()
	}
}

// inline returns the handler of an endpoint whose requests run one at a time, in order.
func (s *Service) inline(ep string) micro.HandlerFunc {
	return func(req micro.Request) {
		reply := req.Reply()
		if reply == "" {
			return
		}
		r, err := decodeRequest(ep, natsgo.Header(req.Headers()), req.Data())
		if err != nil {
			s.respond(reply, ep, nil, err)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), s.timeout(r))
		defer cancel()
		b := s.cfg.Backend
		switch ep {
		case epReady:
			err = b.Ready()
		case epPresence:
			p := r.presence
			switch p.Op {
			case opAttached:
				err = b.DesktopAttached(ctx, p.Tenant, p.Agent, p.Desktop)
			case opDetached:
				err = b.DesktopDetached(ctx, p.Tenant, p.Agent, p.Desktop)
			case opHeartbeat:
				err = b.DesktopHeartbeat(ctx, p.Tenant, p.Agent, p.Desktop)
			case opHeartbeats:
				keys := make([]callbridge.AgentKey, len(p.Agents))
				for i, a := range p.Agents {
					keys[i] = callbridge.AgentKey{Tenant: a.Tenant, Agent: a.Agent}
				}
				err = b.DesktopHeartbeats(ctx, keys, p.Desktop)
			}
		}
		s.respond(reply, ep, struct{}{}, err)
	}
}

// timeout is how long the service waits for the backend for r.
func (s *Service) timeout(r request) time.Duration {
	if r.timeout > 0 {
		return r.timeout
	}
	return DefaultTimeout
}

// acquire takes a slot for a concurrent request, or says why there is none.
func (s *Service) acquire() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		s.refused.Add(1)
		return callbridge.Errorf(callbridge.EUnavailable, "site %s is stopping its service", s.cfg.Site)
	}
	if s.inflight >= int64(s.cfg.MaxInFlight) {
		s.refused.Add(1)
		return callbridge.Errorf(callbridge.EUnavailable, "site %s is busy (%d requests in progress); try again", s.cfg.Site, s.inflight)
	}
	s.inflight++
	s.wg.Add(1)
	return nil
}

func (s *Service) release() {
	s.mu.Lock()
	s.inflight--
	s.mu.Unlock()
	s.wg.Done()
}

// flightFor returns the flight of cmd's idempotency key: the one in progress for the same
// command (leader false: wait for it), or a new one (leader true: run cmd, then land it). A
// key in progress for another command gets no flight (nil): the engine refuses it with
// EConflict, as it would locally.
func (s *Service) flightFor(cmd callbridge.Command) (*flight, bool) {
	k := flightKey{cmd.Tenant, cmd.Agent, cmd.IdempotencyKey}
	s.mu.Lock()
	defer s.mu.Unlock()
	if f, ok := s.flights[k]; ok {
		if f.name == cmd.Name {
			return f, false
		}
		return nil, false
	}
	f := &flight{name: cmd.Name, done: make(chan struct{})}
	s.flights[k] = f
	return f, true
}

// land records the result of a flight's command and wakes the requests joined to it. A
// retry arriving after this finds the command committed in the engine (a Duplicate plan,
// same result) or, when it failed, runs it anew, as a local retry would.
func (s *Service) land(cmd callbridge.Command, f *flight, res callbridge.CommandResult, err error) {
	s.mu.Lock()
	delete(s.flights, flightKey{cmd.Tenant, cmd.Agent, cmd.IdempotencyKey})
	s.mu.Unlock()
	f.res, f.err = res, err
	close(f.done)
}

// respond answers on reply: v as JSON, or err in the error headers. An error that is not a
// *callbridge.Error is logged here and sent as "internal error".
func (s *Service) respond(reply, ep string, v any, err error) {
	msg := &natsgo.Msg{Subject: reply}
	if err != nil {
		s.errs.Add(1)
		if callbridge.ErrorCode(err) == callbridge.EInternal {
			s.log.Error("site service request failed", "endpoint", ep, "err", err)
		}
		msg.Header = errorHeaders(err)
	} else {
		data, merr := json.Marshal(v)
		if merr != nil {
			s.errs.Add(1)
			s.log.Error("site service reply cannot be encoded", "endpoint", ep, "err", merr)
			msg.Header = errorHeaders(merr)
		} else {
			msg.Data = data
		}
	}
	if err := s.nc.PublishMsg(msg); err != nil {
		s.log.Warn("site service reply not sent", "endpoint", ep, "err", err)
	}
}
