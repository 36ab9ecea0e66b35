// Package driverkit holds the protocol-neutral pieces of the switch drivers (asterisk,
// freeswitch): emitting events in order, the link_down event, Sync's wait for a live link, the
// mapping of a failed switch command to a *callbridge.Error, and the port of a switch URL.
package driverkit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/callbridge/callbridge"
)

// Emitter hands events to the engine's emit function, one batch at a time and never
// concurrently.
type Emitter struct {
	mu   sync.Mutex
	emit func(callbridge.SwitchEvent)
}

// Set installs emit (Driver.Run's argument); Send must not be called before.
func (e *Emitter) Set(emit func(callbridge.SwitchEvent)) {
	e.mu.Lock()
	e.emit = emit
	e.mu.Unlock()
}

// Send emits evs in order.
func (e *Emitter) Send(evs ...callbridge.SwitchEvent) {
	if len(evs) == 0 {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, ev := range evs {
		e.emit(ev)
	}
}

// LinkDown is the link_down event for a connection that ended with err (nil: "connection
// closed").
func LinkDown(err error) callbridge.SwitchEvent {
	reason := "connection closed"
	if err != nil {
		reason = err.Error()
	}
	return callbridge.SwitchEvent{Type: callbridge.SwitchLinkDown, Time: time.Now().UTC(), Reason: reason}
}

// Sync runs ping until it goes through: up reports whether the link is up, ping sends the
// protocol's no-op through the client. An error wrapping notConnected but not closed means
// the client has not yet delivered the events buffered during the resync: ping is retried
// after 5 ms. The error is ctx's, or EUnavailable naming pbx ("Asterisk") when the link is
// down or lost.
func Sync(ctx context.Context, pbx string, up func() bool, ping func(context.Context) error, notConnected, closed error) error {
	for {
		if !up() {
			return callbridge.Errorf(callbridge.EUnavailable, "not connected to %s", pbx)
		}
		err := ping(ctx)
		if err == nil {
			return nil
		}
		if !errors.Is(err, notConnected) || errors.Is(err, closed) {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return callbridge.Errorf(callbridge.EUnavailable, "%s link lost during Sync", pbx)
		}
		t := time.NewTimer(5 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// CommandErr maps the error of a command named name that got no answer: an EInvalid error
// (a value the protocol encoder refused) as it is, ctx's error when ctx ended, else a logged
// EUnavailable "<pbx> link lost during <name>". kind ("action", "command") and prefix
// ("asterisk") shape the log line. A nil err gives nil.
func CommandErr(ctx context.Context, log *slog.Logger, prefix, pbx, kind, name string, err error) error {
	switch {
	case err == nil:
		return nil
	case callbridge.ErrorCode(err) == callbridge.EInvalid:
		return err
	case ctx.Err() != nil:
		return ctx.Err()
	default:
		log.Warn(prefix+": "+kind+" failed", kind, name, "err", err)
		return callbridge.Errorf(callbridge.EUnavailable, "%s link lost during %s", pbx, name)
	}
}

// Rejected is the ESwitchRejected error of a command the switch refused with msg ("" gives
// "refused").
func Rejected(pbx, name, msg string) error {
	if msg == "" {
		msg = "refused"
	}
	return callbridge.Errorf(callbridge.ESwitchRejected, "%s refused %s: %s", pbx, name, msg)
}

// ParseURL is url.Parse for a switch URL whose error does not repeat the URL, which holds a
// secret: "invalid port \":x\" after host" rather than "parse \"ami://user:secret@…\": …".
func ParseURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			return nil, ue.Err
		}
		return nil, errors.New("malformed URL")
	}
	return u, nil
}

// URLPort returns the port of a switch URL (ami://…, esl://…), which must be given: a switch
// listens where its configuration says, so callbridge never assumes a port. Errors: "URL has
// no port", "URL port "x" is not a number from 1 to 65535".
func URLPort(u *url.URL) (string, error) {
	port := u.Port()
	if port == "" {
		return "", errors.New("URL has no port")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("URL port %q is not a number from 1 to 65535", port)
	}
	return port, nil
}
