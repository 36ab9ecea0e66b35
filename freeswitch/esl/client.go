package esl

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
	// OnConnect is called after each connect (authenticated and subscribed), before events are
	// considered live; the driver resynchronises here (show channels as json, callcenter_config
	// listings) through c. An error drops the connection and the Client retries. Nil means
	// nothing to do.
	OnConnect func(ctx context.Context, c *Conn) error
	// OnDisconnect is called once for each connection whose OnConnect succeeded, when it
	// ends, with the reason (Conn.Err, or ctx's error when Run is ending).
	OnDisconnect func(err error)
}

// Client keeps one event socket connection up: it dials, reconnects with exponential backoff
// and jitter, and calls OnConnect after every connect.
//
// Event order: events that arrive while OnConnect runs (the switch goes on while the driver
// reads its channels) are buffered and delivered to OnEvent only after OnConnect returns nil,
// in wire order, followed by live events. So a driver applies its snapshot first and then
// every change since, and OnEvent is never called concurrently with itself or with OnConnect.
// Events buffered on a connection whose OnConnect fails are dropped with it.
type Client struct {
	loop *redial.Loop[*Conn, *Event]
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
	return &Client{loop: redial.New(redial.Config[*Conn, *Event]{
		Prefix:     "esl",
		Addr:       cfg.Addr,
		Logger:     cfg.Logger.With("pbx", cfg.Addr),
		MinBackoff: cfg.MinBackoff,
		MaxBackoff: cfg.MaxBackoff,
		MaxBacklog: MaxConnectBacklog,
		Dial: func(ctx context.Context, onEvent func(*Event)) (*Conn, error) {
			conf := cfg.Config
			conf.OnEvent = onEvent
			return Dial(ctx, conf)
		},
		Fatal: func(err error) bool {
			return errors.Is(err, ErrAuthFailed) || errors.Is(err, ErrAccessDenied)
		},
		OnEvent:      cfg.OnEvent,
		OnConnect:    cfg.OnConnect,
		OnDisconnect: cfg.OnDisconnect,
	})}
}

// Run connects and stays connected until ctx ends, then closes the connection and returns
// ctx.Err(). ErrAuthFailed or ErrAccessDenied on the very first attempt is returned at once
// (the configuration is wrong); later ones are retried like any other failure, since a
// switch that is restarting may refuse clients for a moment. Run must not be called twice at
// once.
func (c *Client) Run(ctx context.Context) error { return c.loop.Run(ctx) }

// Conn returns the live connection (nil while connecting or resynchronising).
func (c *Client) Conn() *Conn {
	conn, _ := c.loop.Conn()
	return conn
}

// API runs an api command on the live connection (see Conn.API). Without one, or when it
// ends before the reply, the error wraps ErrNotConnected.
func (c *Client) API(ctx context.Context, cmd string) (Reply, error) {
	conn := c.Conn()
	if conn == nil {
		if err := CheckCommand(cmd); err != nil {
			return Reply{}, err
		}
		return Reply{}, fmt.Errorf("esl: api: %w", ErrNotConnected)
	}
	r, err := conn.API(ctx, cmd)
	return r, redial.NotConnected(err, ErrClosed, ErrNotConnected)
}

// BGAPI runs a bgapi command on the live connection (see Conn.BGAPI and API).
func (c *Client) BGAPI(ctx context.Context, cmd string) (*Job, error) {
	conn := c.Conn()
	if conn == nil {
		if err := CheckCommand(cmd); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("esl: bgapi: %w", ErrNotConnected)
	}
	j, err := conn.BGAPI(ctx, cmd)
	return j, redial.NotConnected(err, ErrClosed, ErrNotConnected)
}
