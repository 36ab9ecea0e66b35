package ami

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/callbridge/callbridge/internal/redial"
)

// Backoff defaults for ClientConfig fields left zero.
const (
	DefaultMinBackoff = 500 * time.Millisecond
	DefaultMaxBackoff = 30 * time.Second
)

// MaxConnectBacklog is how many events a Client holds while OnConnect runs. A switch that
// sends more than this during one resync drops the connection (and the Client retries)
// rather than growing memory without bound.
const MaxConnectBacklog = 100_000

// ClientConfig configures a Client. Config.OnEvent receives the events of every connection
// (see Client for when).
type ClientConfig struct {
	Config
	// MinBackoff is the first wait before reconnecting (default 500 ms); each failed attempt
	// doubles it up to MaxBackoff (default 30 s). Every wait is jittered: a random duration
	// between half the backoff and the full backoff. The backoff starts again at MinBackoff
	// after a connection that stayed up at least MaxBackoff.
	MinBackoff, MaxBackoff time.Duration
	// OnConnect is called after each login, before events are considered live; the driver
	// resynchronises here (CoreShowChannels, QueueStatus …) through c. An error drops the
	// connection and the Client retries. Nil means nothing to do.
	OnConnect func(ctx context.Context, c *Conn) error
	// OnDisconnect is called once for each connection whose OnConnect succeeded, when it
	// ends, with the reason (Conn.Err, or ctx's error when Run is ending). Not called for
	// failed dials or failed OnConnects, which are only logged.
	OnDisconnect func(err error)
}

// Client keeps one AMI connection up: it dials, reconnects with exponential backoff and
// jitter, and calls OnConnect after every login.
//
// Event order: events that arrive while Dial and OnConnect run (FullyBooted, SuccessfulAuth,
// anything the switch raises during the resync) are buffered and delivered to OnEvent only
// after OnConnect returns nil, in wire order, followed by live events. So a driver applies
// its snapshot first and then every change since, and OnEvent is never called concurrently
// with itself or with OnConnect. Events buffered on a connection whose OnConnect fails are
// dropped with it.
type Client struct {
	loop *redial.Loop[*Conn, Message]
}

// NewClient returns a Client for cfg; call Run to connect.
func NewClient(cfg ClientConfig) *Client {
	cfg.Config = cfg.Config.withDefaults()
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = DefaultMinBackoff
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = DefaultMaxBackoff
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = cfg.MinBackoff
	}
	return &Client{loop: redial.New(redial.Config[*Conn, Message]{
		Prefix:     "ami",
		Addr:       cfg.Addr,
		Logger:     cfg.Logger.With("pbx", cfg.Addr),
		MinBackoff: cfg.MinBackoff,
		MaxBackoff: cfg.MaxBackoff,
		MaxBacklog: MaxConnectBacklog,
		Dial: func(ctx context.Context, onEvent func(Message)) (*Conn, error) {
			conf := cfg.Config
			conf.OnEvent = onEvent
			return Dial(ctx, conf)
		},
		Fatal:        func(err error) bool { return errors.Is(err, ErrAuthFailed) },
		OnEvent:      cfg.OnEvent,
		OnConnect:    cfg.OnConnect,
		OnDisconnect: cfg.OnDisconnect,
	})}
}

// Run connects and stays connected until ctx ends, then closes the connection and returns
// ctx.Err(). An ErrAuthFailed on the very first attempt is returned at once (the
// configuration is wrong); later ones are retried like any other failure, since a switch
// that is restarting may refuse logins for a moment. Run must not be called twice at once.
func (c *Client) Run(ctx context.Context) error { return c.loop.Run(ctx) }

// Action runs a on the current connection (see Conn.Action). When there is none, or it ends
// before the response, the error wraps ErrNotConnected.
func (c *Client) Action(ctx context.Context, a Action) (Response, error) {
	conn, ok := c.loop.Conn()
	if !ok {
		if _, err := a.Encode("x"); err != nil {
			return Response{}, err
		}
		return Response{}, fmt.Errorf("ami: %s: %w", a.Name, ErrNotConnected)
	}
	resp, err := conn.Action(ctx, a)
	return resp, redial.NotConnected(err, ErrClosed, ErrNotConnected)
}
