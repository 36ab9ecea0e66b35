package http

import (
	"context"
	nethttp "net/http"
	"slices"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/callbridge/callbridge"
	"github.com/callbridge/callbridge/internal/ids"
	"github.com/callbridge/callbridge/webhook"
)

// maxWebhooks is how many webhooks a tenant may have.
const maxWebhooks = 50

// webhookLookupTimeout bounds the DNS lookup of a new webhook's host; a host that does not
// resolve in time is checked at every delivery instead.
const webhookLookupTimeout = 5 * time.Second

type createWebhookInput struct {
	Body struct {
		URL         string   `json:"url" minLength:"1" maxLength:"2048" doc:"http or https URL the events are POSTed to."`
		Events      []string `json:"events" minItems:"1" maxItems:"32" doc:"Event types: call.cleared, call.* (every call event), agent.state_changed, agent.*, call_record.completed, call_record.updated, call_record.*, or * for all."`
		Description string   `json:"description,omitempty" maxLength:"256"`
	}
}

// createdWebhook is the reply to a create: the signing secret, shown this once.
type createdWebhook struct {
	callbridge.Webhook
	Secret string `json:"secret" doc:"The signing secret (whsec_…) for the webhook-signature header. It is shown only now."`
}

type webhookList struct {
	Webhooks []callbridge.Webhook `json:"webhooks"`
}

type webhookIDInput struct {
	ID string `path:"id" maxLength:"64" doc:"The webhook's id (wh_…)."`
}

type deliveriesInput struct {
	ID     string `path:"id" maxLength:"64"`
	Status string `query:"status" enum:"pending,delivered,dead_letter" doc:"Only deliveries in this state; dead_letter lists the failures."`
	PageParams
}

// DeliveryPage is a page of a webhook's deliveries, newest first.
type DeliveryPage struct {
	Deliveries []callbridge.Delivery `json:"deliveries"`
	NextCursor string                `json:"next_cursor,omitempty"`
}

type redeliverInput struct {
	ID         string `path:"id" maxLength:"64"`
	DeliveryID string `path:"delivery_id" maxLength:"64" doc:"The delivery's id, which is also its webhook-id header (msg_…)."`
}

func (s *Server) webhookRoutes(api huma.API) {
	hooks := access{scope: callbridge.ScopeWebhooksWrite}
	tags := []string{"Webhooks"}
	register(s, api, hooks, huma.Operation{
		OperationID: "create-webhook", Method: nethttp.MethodPost, Path: "/v1/webhooks", Tags: tags,
		Summary: "Create a webhook",
		Description: "Subscribes an HTTP endpoint of the tenant to event types. Each event is POSTed as a CloudEvents 1.0 " +
			"JSON event (`application/cloudevents+json`), signed per Standard Webhooks (`webhook-id`, " +
			"`webhook-timestamp`, `webhook-signature`: v1 HMAC-SHA256 of `id.timestamp.body` keyed with the secret), " +
			"at least once: failures are retried with exponential backoff and become dead letters after the last attempt. " +
			"The reply carries the signing secret once. A URL whose host is, or resolves to, an address deliveries may not " +
			"reach (cloud metadata, link-local, loopback unless allowed, private when denied) is refused with 400.",
		DefaultStatus: nethttp.StatusCreated,
	}, s.createWebhook)
	register(s, api, hooks, huma.Operation{
		OperationID: "list-webhooks", Method: nethttp.MethodGet, Path: "/v1/webhooks", Tags: tags,
		Summary: "List webhooks", Description: "The tenant's webhooks, oldest first, without their secrets.",
	}, s.listWebhooks)
	register(s, api, hooks, huma.Operation{
		OperationID: "get-webhook", Method: nethttp.MethodGet, Path: "/v1/webhooks/{id}", Tags: tags,
		Summary: "Get a webhook",
	}, s.getWebhook)
	register(s, api, hooks, huma.Operation{
		OperationID: "delete-webhook", Method: nethttp.MethodDelete, Path: "/v1/webhooks/{id}", Tags: tags,
		Summary: "Delete a webhook", Description: "Stops the deliveries to it and forgets them.",
		DefaultStatus: nethttp.StatusNoContent,
	}, s.deleteWebhook)
	register(s, api, hooks, huma.Operation{
		OperationID: "list-deliveries", Method: nethttp.MethodGet, Path: "/v1/webhooks/{id}/deliveries", Tags: tags,
		Summary:     "List a webhook's deliveries",
		Description: "Newest first, with attempts, the last HTTP status and error. `?status=dead_letter` lists the failures.",
	}, s.listDeliveries)
	register(s, api, hooks, huma.Operation{
		OperationID: "redeliver", Method: nethttp.MethodPost, Path: "/v1/webhooks/{id}/deliveries/{delivery_id}/redeliver", Tags: tags,
		Summary:       "Redeliver",
		Description:   "Sends a delivery again (a dead letter, or one the receiver lost) with the same webhook-id; its attempts start again from 0.",
		DefaultStatus: nethttp.StatusAccepted,
	}, s.redeliver)
}

func (s *Server) createWebhook(ctx context.Context, in *createWebhookInput) (*struct{ Body createdWebhook }, error) {
	c := callerOf(ctx)
	store := s.cfg.CRM.Webhooks
	if store == nil {
		return nil, s.restErr(unavailable("webhooks"))
	}
	now := s.now().UTC()
	w := callbridge.Webhook{
		ID: ids.New("wh_", now), Tenant: c.Tenant, URL: in.Body.URL, Events: slices.Compact(slices.Clone(in.Body.Events)),
		Description: in.Body.Description, Secret: webhook.NewSecret(), CreatedAt: now,
	}
	if err := callbridge.CheckWebhook(w); err != nil {
		return nil, s.restErr(err)
	}
	lctx, cancel := context.WithTimeout(ctx, webhookLookupTimeout)
	err := s.cfg.CRM.WebhookDestinations.CheckURL(lctx, s.cfg.CRM.Resolver, w.URL)
	cancel()
	if err != nil {
		return nil, s.restErr(err)
	}
	existing, err := store.Webhooks(ctx, c.Tenant)
	if err != nil {
		return nil, s.restErr(err)
	}
	if len(existing) >= maxWebhooks {
		return nil, s.restErr(callbridge.Errorf(callbridge.EConflict, "the tenant has %d webhooks, the most it may have", maxWebhooks))
	}
	if err := store.CreateWebhook(ctx, w); err != nil {
		return nil, s.restErr(err)
	}
	s.log.Info("webhook created", "tenant", c.Tenant, "webhook", w.ID, "events", w.Events, "by", c.who())
	return &struct{ Body createdWebhook }{Body: createdWebhook{Webhook: w, Secret: w.Secret}}, nil
}

func (s *Server) listWebhooks(ctx context.Context, _ *struct{}) (*struct{ Body webhookList }, error) {
	store := s.cfg.CRM.Webhooks
	if store == nil {
		return nil, s.restErr(unavailable("webhooks"))
	}
	hooks, err := store.Webhooks(ctx, callerOf(ctx).Tenant)
	if err != nil {
		return nil, s.restErr(err)
	}
	return &struct{ Body webhookList }{Body: webhookList{Webhooks: hooks}}, nil
}

func (s *Server) getWebhook(ctx context.Context, in *webhookIDInput) (*struct{ Body callbridge.Webhook }, error) {
	store := s.cfg.CRM.Webhooks
	if store == nil {
		return nil, s.restErr(unavailable("webhooks"))
	}
	w, err := store.Webhook(ctx, callerOf(ctx).Tenant, in.ID)
	if err != nil {
		return nil, s.restErr(err)
	}
	return &struct{ Body callbridge.Webhook }{Body: w}, nil
}

func (s *Server) deleteWebhook(ctx context.Context, in *webhookIDInput) (*struct{}, error) {
	c := callerOf(ctx)
	store := s.cfg.CRM.Webhooks
	if store == nil {
		return nil, s.restErr(unavailable("webhooks"))
	}
	if err := store.DeleteWebhook(ctx, c.Tenant, in.ID); err != nil {
		return nil, s.restErr(err)
	}
	s.log.Info("webhook deleted", "tenant", c.Tenant, "webhook", in.ID, "by", c.who())
	return &struct{}{}, nil
}

func (s *Server) listDeliveries(ctx context.Context, in *deliveriesInput) (*struct{ Body DeliveryPage }, error) {
	store := s.cfg.CRM.Webhooks
	if store == nil {
		return nil, s.restErr(unavailable("webhooks"))
	}
	ds, next, err := store.Deliveries(ctx, callerOf(ctx).Tenant, in.ID, callbridge.DeliveryFilter{
		Status: callbridge.DeliveryStatus(in.Status), Limit: in.Limit, Cursor: in.Cursor,
	})
	if err != nil {
		return nil, s.restErr(err)
	}
	return &struct{ Body DeliveryPage }{Body: DeliveryPage{Deliveries: ds, NextCursor: next}}, nil
}

func (s *Server) redeliver(ctx context.Context, in *redeliverInput) (*struct{ Body callbridge.Delivery }, error) {
	c := callerOf(ctx)
	store := s.cfg.CRM.Webhooks
	if store == nil {
		return nil, s.restErr(unavailable("webhooks"))
	}
	d, err := store.Redeliver(ctx, c.Tenant, in.ID, in.DeliveryID, s.now().UTC())
	if err != nil {
		return nil, s.restErr(err)
	}
	s.log.Info("webhook delivery redelivered", "tenant", c.Tenant, "webhook", in.ID, "delivery", in.DeliveryID, "by", c.who())
	if s.cfg.CRM.NotifyWebhooks != nil {
		s.cfg.CRM.NotifyWebhooks()
	}
	return &struct{ Body callbridge.Delivery }{Body: d}, nil
}
