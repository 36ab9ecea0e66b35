package main

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"

	"github.com/callbridge/callbridge"
	cbhttp "github.com/callbridge/callbridge/http"
	"github.com/callbridge/callbridge/postgres"
	"github.com/callbridge/callbridge/records"
	"github.com/callbridge/callbridge/sqlite"
	"github.com/callbridge/callbridge/webhook"
)

// serveStore is what serve needs of its store: configuration, history, webhooks, API keys.
// sqlite.DB (embedded default) and postgres.DB (--db postgres://…) both are one.
type serveStore interface {
	callbridge.Store
	callbridge.SessionStore
	callbridge.RecordStore
	callbridge.WebhookStore
	callbridge.APIKeyStore
	Ping(ctx context.Context) error
}

var (
	_ serveStore = (*sqlite.DB)(nil)
	_ serveStore = (*postgres.DB)(nil)
)

// openStore opens the store --db names: empty for SQLite in the data directory,
// postgres://… (or postgresql://…) for PostgreSQL, or a path ending in .db for SQLite there.
func (m *Main) openStore(ctx context.Context, lg *slog.Logger) (serveStore, error) {
	switch db := strings.TrimSpace(m.DB); {
	case db == "":
		return sqlite.Open(ctx, filepath.Join(m.DataDir, "callbridge.db"), lg.With("component", "sqlite"), sqlite.WithBcryptCost(m.bcrypt()))
	case strings.HasPrefix(db, "postgres://"), strings.HasPrefix(db, "postgresql://"):
		return postgres.Open(ctx, db, lg.With("component", "postgres"), postgres.WithBcryptCost(m.bcrypt()))
	case strings.HasSuffix(db, ".db"):
		return sqlite.Open(ctx, db, lg.With("component", "sqlite"), sqlite.WithBcryptCost(m.bcrypt()))
	default:
		return nil, fmt.Errorf(`--db %q: want postgres://user:pass@host:5432/db or a SQLite file name ending in .db`, redactURL(db))
	}
}

// crm runs the history consumer (call records, agent states, webhook outbox) and the
// webhook dispatcher. Neither is on the call path: they read the event log and the store.
type crm struct {
	dispatcher *webhook.Dispatcher
	dest       webhook.Destinations // the delivery guard, also checked at creation
	cancel     context.CancelFunc
	wg         sync.WaitGroup
}

// startCRM starts both for every provisioned tenant (new tenants are picked up within
// records.DefaultRescanInterval).
func (m *Main) startCRM(store serveStore, evlog callbridge.EventLog, lg *slog.Logger) *crm {
	dest := webhook.Destinations{AllowLoopback: m.WebhookAllowLoopback, DenyPrivate: m.WebhookDenyPrivate}
	c := &crm{dest: dest, dispatcher: webhook.New(webhook.Config{Store: store, Logger: lg, Metrics: m.Metrics, Destinations: dest})}
	consumer := records.New(records.Config{
		Log: evlog, Store: store, Logger: lg, OnEnqueue: c.dispatcher.Notify,
		Tenants: func(ctx context.Context) ([]callbridge.TenantID, error) {
			dir, err := store.Directory(ctx)
			if err != nil {
				return nil, err
			}
			ids := make([]callbridge.TenantID, len(dir.Tenants))
			for i, t := range dir.Tenants {
				ids[i] = t.ID
			}
			return ids, nil
		},
	})
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	c.wg.Go(func() { consumer.Run(ctx) })
	c.wg.Go(func() { c.dispatcher.Run(ctx) })
	return c
}

// httpConfig is the gateway's CRM configuration.
func (c *crm) httpConfig(store serveStore) cbhttp.CRMConfig {
	return cbhttp.CRMConfig{Records: store, Webhooks: store, APIKeys: store, NotifyWebhooks: c.dispatcher.Notify,
		WebhookDestinations: c.dest}
}

// stop stops both and waits (an attempt in flight runs to its timeout, at most 10 s).
func (c *crm) stop() {
	c.cancel()
	c.wg.Wait()
}
