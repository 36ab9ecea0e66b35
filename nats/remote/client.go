package remote

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	natsgo "github.com/nats-io/nats.go"

	"github.com/callbridge/callbridge"
)

// Target is what a call is about, for routing: the tenant, the agent (empty for a
// supervisor's clear_call or update_call_data without an agent) and, for a command on a
// call, the call.
type Target struct {
	Tenant callbridge.TenantID
	Agent  callbridge.AgentID
	CallID callbridge.CallID
}

// Router returns the site that owns t (its engine holds the tenant's agent or call). An
// error should be a *callbridge.Error (ENotFound for an unknown tenant or agent,
// EUnavailable when the routing data cannot be read); the Client returns it as it is.
type Router func(ctx context.Context, t Target) (site callbridge.SiteID, err error)

// ClientConfig configures a Client.
type ClientConfig struct {
	// Route maps each call to its site. Required.
	Route Router
	// Prefix is the subjects' first part; "" means DefaultPrefix.
	Prefix string
	// Timeout bounds one call, retries included (default DefaultTimeout, 10 s, below the
	// gateway's 30 s command timeout); the caller's context may end it earlier.
	Timeout time.Duration
	// AttemptTimeout bounds one attempt of a call that may be retried (default
	// DefaultAttemptTimeout, 4 s; at most Timeout).
	AttemptTimeout time.Duration
	// LocalSite and Local, when both set, short-cut the calls routed to LocalSite to Local
	// (the node of this process) with no NATS round trip.
	LocalSite callbridge.SiteID
	Local     Backend
	// Logger receives the client's log lines (a reply it cannot read is logged at Error);
	// nil discards them.
	Logger *slog.Logger
}

// Client is a callbridge.Commander, callbridge.Presence and callbridge.AvailabilityService
// (and the gateway's HeartbeatReporter) whose calls run at the site that owns each tenant
// and agent, through that site's Service. It never waits longer than ClientConfig.Timeout:
// a site without a service answers EUnavailable "site <x> is unreachable" at once, a site
// that does not answer in time EUnavailable "site <x> did not answer in time". It is
// safe for concurrent use.
type Client struct {
	cfg ClientConfig
	nc  *natsgo.Conn
	log *slog.Logger
}

var (
	_ callbridge.Commander           = (*Client)(nil)
	_ callbridge.Presence            = (*Client)(nil)
	_ callbridge.AvailabilityService = (*Client)(nil)
	_ Backend                        = (*Client)(nil)
)

// NewClient returns a Client on nc. Errors: no Route, a bad Prefix or LocalSite.
func NewClient(nc *natsgo.Conn, cfg ClientConfig) (*Client, error) {
	if cfg.Route == nil {
		return nil, errors.New("remote: new client: Route is required")
	}
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	if err := validPrefix(cfg.Prefix); err != nil {
		return nil, fmt.Errorf("remote: new client: %w", err)
	}
	if cfg.Local != nil {
		if err := validSite(cfg.LocalSite); err != nil {
			return nil, fmt.Errorf("remote: new client: local %w", err)
		}
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.AttemptTimeout <= 0 {
		cfg.AttemptTimeout = DefaultAttemptTimeout
	}
	cfg.AttemptTimeout = min(cfg.AttemptTimeout, cfg.Timeout)
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Client{cfg: cfg, nc: nc, log: cfg.Logger}, nil
}

// route returns the site of t, or the Backend to call directly (local).
func (c *Client) route(ctx context.Context, t Target) (site callbridge.SiteID, local Backend, err error) {
	site, err = c.cfg.Route(ctx, t)
	if err != nil {
		if callbridge.ErrorCode(err) == callbridge.EInternal {
			c.log.Error("route", "tenant", t.Tenant, "agent", t.Agent, "call", t.CallID, "err", err)
		}
		return "", nil, err
	}
	if c.cfg.Local != nil && site == c.cfg.LocalSite {
		return site, c.cfg.Local, nil
	}
	if err := validSite(site); err != nil {
		c.log.Error("route", "tenant", t.Tenant, "agent", t.Agent, "err", err)
		return "", nil, callbridge.Errorf(callbridge.EInternal, "internal error")
	}
	return site, nil, nil
}

// Do runs cmd at the site of its tenant, agent and call (callbridge.Commander). Errors are
// the site's (the node's *callbridge.Error, same code and message), or EUnavailable when the
// site is unreachable or does not answer in time. A command with an IdempotencyKey is
// retried after an attempt without a reply; one without is sent once, and when it times out
// it may still have been carried out.
func (c *Client) Do(ctx context.Context, cmd callbridge.Command) (callbridge.CommandResult, error) {
	var res callbridge.CommandResult
	site, local, err := c.route(ctx, Target{Tenant: cmd.Tenant, Agent: cmd.Agent, CallID: cmd.CallID})
	if err != nil {
		return res, err
	}
	if local != nil {
		return local.Do(ctx, cmd)
	}
	data, err := json.Marshal(cmd)
	if err != nil {
		return res, fmt.Errorf("encode command: %w", err)
	}
	err = c.request(ctx, site, epDo, data, cmd.IdempotencyKey != "", &res)
	return res, err
}

// Snapshot returns the agent's snapshot from their site (callbridge.Commander). Seq is a
// position in that site's event log.
func (c *Client) Snapshot(ctx context.Context, tenant callbridge.TenantID, agent callbridge.AgentID) (callbridge.AgentSnapshot, error) {
	var snap callbridge.AgentSnapshot
	site, local, err := c.route(ctx, Target{Tenant: tenant, Agent: agent})
	if err != nil {
		return snap, err
	}
	if local != nil {
		return local.Snapshot(ctx, tenant, agent)
	}
	data, _ := json.Marshal(agentRequest{Tenant: tenant, Agent: agent})
	err = c.request(ctx, site, epSnapshot, data, true, &snap)
	return snap, err
}

// Availability returns the agent's availability from their site
// (callbridge.AvailabilityService).
func (c *Client) Availability(ctx context.Context, tenant callbridge.TenantID, agent callbridge.AgentID) (callbridge.Availability, error) {
	var av callbridge.Availability
	site, local, err := c.route(ctx, Target{Tenant: tenant, Agent: agent})
	if err != nil {
		return av, err
	}
	if local != nil {
		return local.Availability(ctx, tenant, agent)
	}
	data, _ := json.Marshal(agentRequest{Tenant: tenant, Agent: agent})
	err = c.request(ctx, site, epAvailability, data, true, &av)
	return av, err
}

// Ready returns the local node's readiness when the client has one, and EUnavailable while
// the NATS connection is not up (callbridge.Commander). SiteReady asks a site.
func (c *Client) Ready() error {
	if c.cfg.Local != nil {
		if err := c.cfg.Local.Ready(); err != nil {
			return err
		}
	}
	if !c.nc.IsConnected() {
		return callbridge.Errorf(callbridge.EUnavailable, "not connected to NATS (%s)", c.nc.Status())
	}
	return nil
}

// SiteReady returns the readiness of site's node (its Ready: switch link up and
// resynchronised, event log taking appends), or EUnavailable when the site cannot be asked.
func (c *Client) SiteReady(ctx context.Context, site callbridge.SiteID) error {
	if c.cfg.Local != nil && site == c.cfg.LocalSite {
		return c.cfg.Local.Ready()
	}
	if err := validSite(site); err != nil {
		return callbridge.Errorf(callbridge.EInvalid, "%s", err.Error())
	}
	return c.request(ctx, site, epReady, nil, true, nil)
}

// DesktopAttached reports a desktop of the agent to their site (callbridge.Presence).
func (c *Client) DesktopAttached(ctx context.Context, tenant callbridge.TenantID, agent callbridge.AgentID, desktop string) error {
	return c.presence(ctx, presenceRequest{Op: opAttached, Tenant: tenant, Agent: agent, Desktop: desktop},
		func(b Backend) error { return b.DesktopAttached(ctx, tenant, agent, desktop) })
}

// DesktopDetached reports that a desktop of the agent went away (callbridge.Presence).
func (c *Client) DesktopDetached(ctx context.Context, tenant callbridge.TenantID, agent callbridge.AgentID, desktop string) error {
	return c.presence(ctx, presenceRequest{Op: opDetached, Tenant: tenant, Agent: agent, Desktop: desktop},
		func(b Backend) error { return b.DesktopDetached(ctx, tenant, agent, desktop) })
}

// DesktopHeartbeat reports that a desktop of the agent showed life (callbridge.Presence).
func (c *Client) DesktopHeartbeat(ctx context.Context, tenant callbridge.TenantID, agent callbridge.AgentID, desktop string) error {
	return c.presence(ctx, presenceRequest{Op: opHeartbeat, Tenant: tenant, Agent: agent, Desktop: desktop},
		func(b Backend) error { return b.DesktopHeartbeat(ctx, tenant, agent, desktop) })
}

func (c *Client) presence(ctx context.Context, p presenceRequest, local func(Backend) error) error {
	site, lb, err := c.route(ctx, Target{Tenant: p.Tenant, Agent: p.Agent})
	if err != nil {
		return err
	}
	if lb != nil {
		return local(lb)
	}
	data, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("encode presence: %w", err)
	}
	return c.request(ctx, site, epPresence, data, false, nil)
}

// DesktopHeartbeats reports the heartbeat of the desktop for every agent, with one request
// per site, to all sites at once (the gateway's HeartbeatReporter). Agents the Router cannot
// place are skipped, as the node skips agents gone from its directory. The error is the
// first site's error, if any; the other sites' reports are made either way.
func (c *Client) DesktopHeartbeats(ctx context.Context, agents []callbridge.AgentKey, desktop string) error {
	bySite := map[callbridge.SiteID][]callbridge.AgentKey{}
	var order []callbridge.SiteID
	var localKeys []callbridge.AgentKey
	for _, k := range agents {
		site, lb, err := c.route(ctx, Target{Tenant: k.Tenant, Agent: k.Agent})
		switch {
		case err != nil:
			continue
		case lb != nil:
			localKeys = append(localKeys, k)
		default:
			if _, ok := bySite[site]; !ok {
				order = append(order, site)
			}
			bySite[site] = append(bySite[site], k)
		}
	}
	errs := make([]error, len(order)+1)
	var wg sync.WaitGroup
	for i, site := range order {
		wg.Go(func() {
			p := presenceRequest{Op: opHeartbeats, Agents: make([]agentRef, len(bySite[site])), Desktop: desktop}
			for j, k := range bySite[site] {
				p.Agents[j] = agentRef{Tenant: k.Tenant, Agent: k.Agent}
			}
			data, err := json.Marshal(p)
			if err == nil {
				err = c.request(ctx, site, epPresence, data, false, nil)
			}
			errs[i] = err
		})
	}
	if len(localKeys) > 0 {
		errs[len(order)] = c.cfg.Local.DesktopHeartbeats(ctx, localKeys, desktop)
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// request sends data to endpoint of site and decodes the reply into v (nil: an empty
// object is expected). When retry is set, an attempt that gets no reply within
// AttemptTimeout is sent again while the call's Timeout allows; anything else ends the call.
// Errors: the site's *callbridge.Error; EUnavailable for no responders, no reply in time, or
// no NATS connection; ctx's error when ctx is cancelled; EInternal for a reply that cannot
// be read (logged).
func (c *Client) request(ctx context.Context, site callbridge.SiteID, ep string, data []byte, retry bool, v any) error {
	if !c.nc.IsConnected() {
		return callbridge.Errorf(callbridge.EUnavailable, "site %s is unreachable: not connected to NATS (%s)", site, c.nc.Status())
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	subj := subject(c.cfg.Prefix, site, ep)
	for attempt := 1; ; attempt++ {
		actx, acancel := ctx, context.CancelFunc(func() {})
		if retry {
			actx, acancel = context.WithTimeout(ctx, c.cfg.AttemptTimeout)
		}
		wait := c.cfg.Timeout
		if d, ok := actx.Deadline(); ok {
			wait = time.Until(d)
		}
		msg := &natsgo.Msg{Subject: subj, Data: data, Header: natsgo.Header{
			TimeoutHeader: {strconv.FormatInt(max(wait.Milliseconds(), 1), 10)},
		}}
		reply, err := c.nc.RequestMsgWithContext(actx, msg)
		acancel()
		switch {
		case err == nil:
			if err := decodeReply(reply, v); err != nil {
				var cbErr *callbridge.Error
				if errors.As(err, &cbErr) {
					return cbErr
				}
				c.log.Error("site reply cannot be read", "site", site, "endpoint", ep, "err", err)
				return callbridge.Errorf(callbridge.EInternal, "internal error")
			}
			return nil
		case errors.Is(err, natsgo.ErrNoResponders):
			return callbridge.Errorf(callbridge.EUnavailable, "site %s is unreachable", site)
		case errors.Is(err, context.Canceled) && ctx.Err() == context.Canceled:
			return err
		case errors.Is(err, context.DeadlineExceeded), errors.Is(err, natsgo.ErrTimeout):
			if retry && ctx.Err() == nil {
				c.log.Debug("site did not answer; retrying", "site", site, "endpoint", ep, "attempt", attempt)
				continue
			}
			if ep == epDo {
				return callbridge.Errorf(callbridge.EUnavailable, "site %s did not answer in time; the command may still be carried out", site)
			}
			return callbridge.Errorf(callbridge.EUnavailable, "site %s did not answer in time", site)
		default:
			// The connection closed or is reconnecting, a bad subject: unreachable either way.
			c.log.Debug("site request failed", "site", site, "endpoint", ep, "err", err)
			return callbridge.Errorf(callbridge.EUnavailable, "site %s is unreachable: %s", site, clip(err.Error()))
		}
	}
}
