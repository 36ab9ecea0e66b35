package nats

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
)

// LevelTrace is the slog level of nats-server protocol traces (below Debug). The server
// traces only when the Logger is enabled at this level.
const LevelTrace = slog.LevelDebug - 4

// serverLogger adapts *slog.Logger to nats-server's server.Logger: notices at Info (at Debug
// while the server starts: its banner and configuration dump are ~25 lines that StartServer
// sums up in one), warnings at Warn, errors at Error, debug at Debug, traces at LevelTrace.
// Fatal lines are logged at Error and remembered, because nats-server calls Fatalf and then
// gives up starting (for a listener it cannot bind, or a JetStream store it cannot open)
// instead of returning an error.
type serverLogger struct {
	log      *slog.Logger
	starting atomic.Bool

	mu    sync.Mutex
	fatal error
}

func newServerLogger(log *slog.Logger) *serverLogger {
	l := &serverLogger{log: log.With("component", "nats-server")}
	l.starting.Store(true)
	return l
}

// started ends the quiet start: notices are logged at Info from now on.
func (l *serverLogger) started() { l.starting.Store(false) }

func (l *serverLogger) logf(level slog.Level, format string, v []any) {
	ctx := context.Background()
	if !l.log.Enabled(ctx, level) {
		return
	}
	l.log.Log(ctx, level, fmt.Sprintf(format, v...))
}

func (l *serverLogger) Noticef(format string, v ...any) {
	if l.starting.Load() {
		l.logf(slog.LevelDebug, format, v)
		return
	}
	l.logf(slog.LevelInfo, format, v)
}

func (l *serverLogger) Warnf(format string, v ...any)  { l.logf(slog.LevelWarn, format, v) }
func (l *serverLogger) Errorf(format string, v ...any) { l.logf(slog.LevelError, format, v) }
func (l *serverLogger) Debugf(format string, v ...any) { l.logf(slog.LevelDebug, format, v) }
func (l *serverLogger) Tracef(format string, v ...any) { l.logf(LevelTrace, format, v) }

// Fatalf logs at Error and records the first fatal error for StartServer; it never exits.
func (l *serverLogger) Fatalf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	l.log.Error(msg, "fatal", true)
	l.mu.Lock()
	if l.fatal == nil {
		l.fatal = errors.New(msg)
	}
	l.mu.Unlock()
}

func (l *serverLogger) fatalErr() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.fatal
}
