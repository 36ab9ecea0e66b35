package callbridge

import (
	"context"
	"net/url"
	"strings"
	"time"
)

// Webhook event types that are not domain events: package records sends them when a call
// record is complete, and when a disposition changes a complete record.
const (
	EventCallRecordCompleted EventType = "call_record.completed"
	EventCallRecordUpdated   EventType = "call_record.updated"
)

// WebhookEventTypes lists every event type a webhook can subscribe to.
var WebhookEventTypes = []EventType{
	EventCallOriginated, EventCallDelivered, EventCallEstablished, EventCallHeld,
	EventCallRetrieved, EventCallTransferred, EventCallConferenced, EventCallDiverted,
	EventCallQueued, EventCallFailed, EventCallConnectionCleared, EventCallCleared,
	EventCallDataUpdated, EventCallDispositionSet,
	EventAgentStateChanged, EventAgentLoggedOn, EventAgentLoggedOff,
	EventCallRecordCompleted, EventCallRecordUpdated,
}

// Webhook is a tenant's HTTP endpoint that receives events (Standard Webhooks signing,
// CloudEvents 1.0 structured JSON; see package webhook).
type Webhook struct {
	ID     string   `json:"id" doc:"Webhook id (wh_…)."`
	Tenant TenantID `json:"tenant"`
	URL    string   `json:"url" doc:"http or https URL the events are POSTed to."`
	// Events are the subscribed event types: exact types ("call.cleared"), a family
	// ("call.*", "agent.*", "call_record.*"), or "*" for all.
	Events      []string  `json:"events" doc:"Subscribed event types: \"call.cleared\", \"call.*\", \"agent.*\", \"call_record.*\" or \"*\"."`
	Description string    `json:"description,omitempty"`
	Secret      string    `json:"-"` // whsec_<base64 key>; shown once, when created
	CreatedAt   time.Time `json:"created_at"`
}

// Subscribes reports whether w receives events of type t.
func (w *Webhook) Subscribes(t EventType) bool {
	for _, p := range w.Events {
		if MatchEventPattern(p, t) {
			return true
		}
	}
	return false
}

// MatchEventPattern reports whether pattern ("*", "call.*", or an exact type) matches t.
func MatchEventPattern(pattern string, t EventType) bool {
	switch {
	case pattern == "*":
		return true
	case strings.HasSuffix(pattern, ".*"):
		return strings.HasPrefix(string(t), pattern[:len(pattern)-1])
	default:
		return pattern == string(t)
	}
}

// CheckWebhook validates the fields a client sets: URL (absolute http or https, with a host,
// without user info or fragment, at most 2048 bytes), Events (1-32 patterns, each matching at
// least one of WebhookEventTypes) and Description (at most 256 bytes). The error is an
// *Error with code invalid.
func CheckWebhook(w Webhook) error {
	if len(w.URL) > 2048 {
		return Errorf(EInvalid, "url is longer than 2048 bytes")
	}
	u, err := url.Parse(w.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return Errorf(EInvalid, "url must be an absolute http or https URL")
	}
	if u.User != nil || u.Fragment != "" {
		return Errorf(EInvalid, "url must not contain user info or a fragment")
	}
	if len(w.Events) == 0 || len(w.Events) > 32 {
		return Errorf(EInvalid, "events must list 1 to 32 event types")
	}
	for _, p := range w.Events {
		known := false
		for _, t := range WebhookEventTypes {
			if MatchEventPattern(p, t) {
				known = true
				break
			}
		}
		if !known {
			return Errorf(EInvalid, "events: %q is not an event type (e.g. call.cleared, call.*, agent.state_changed, call_record.completed, *)", p)
		}
	}
	if len(w.Description) > 256 {
		return Errorf(EInvalid, "description is longer than 256 bytes")
	}
	return nil
}

// DeliveryStatus is the state of one webhook delivery.
type DeliveryStatus string

// Delivery statuses.
const (
	// DeliveryPending: not delivered yet; retried with exponential backoff.
	DeliveryPending DeliveryStatus = "pending"
	// DeliveryDelivered: the endpoint answered 2xx.
	DeliveryDelivered DeliveryStatus = "delivered"
	// DeliveryDeadLetter: every attempt failed; no more retries until a redeliver.
	DeliveryDeadLetter DeliveryStatus = "dead_letter"
)

// Valid reports whether s is a delivery status.
func (s DeliveryStatus) Valid() bool {
	switch s {
	case DeliveryPending, DeliveryDelivered, DeliveryDeadLetter:
		return true
	}
	return false
}

// OutboxEvent is one event in the webhook outbox: the CloudEvents body is encoded once, so
// every attempt to every endpoint sends the same bytes.
type OutboxEvent struct {
	// ID is the CloudEvents id (the same for every endpoint).
	ID     string
	Tenant TenantID
	Type   EventType
	Body   []byte
	// Time is when the event entered the outbox: its deliveries are created and first due
	// then (the event's own time is in Body).
	Time time.Time
}

// Delivery is one event for one webhook: its webhook-id header is ID, the same on every
// attempt and redelivery.
type Delivery struct {
	ID             string         `json:"id" doc:"Delivery id, sent as the webhook-id header on every attempt (msg_…)."`
	WebhookID      string         `json:"webhook_id"`
	EventID        string         `json:"event_id" doc:"The CloudEvents id of the event."`
	EventType      EventType      `json:"event_type"`
	Status         DeliveryStatus `json:"status" enum:"pending,delivered,dead_letter"`
	Attempts       int            `json:"attempts" doc:"Attempts since it was created or last redelivered."`
	NextAttemptAt  time.Time      `json:"next_attempt_at,omitzero"`
	LastAttemptAt  time.Time      `json:"last_attempt_at,omitzero"`
	LastStatusCode int            `json:"last_status_code,omitempty" doc:"HTTP status of the last attempt (0: no response)."`
	LastError      string         `json:"last_error,omitempty"`
	CreatedAt      time.Time      `json:"created_at"`
	DeliveredAt    time.Time      `json:"delivered_at,omitzero"`
}

// PendingDelivery is a delivery claimed by the dispatcher, with what it needs to send it.
type PendingDelivery struct {
	Delivery
	URL    string
	Secret string
	Body   []byte
}

// DeliveryAttempt is the outcome of one attempt, for WebhookStore.FinishAttempt.
type DeliveryAttempt struct {
	At         time.Time
	StatusCode int    // 0 when no response came
	Error      string // empty on success
	// Status is the delivery's new status; NextAttemptAt is when a pending one is retried.
	Status        DeliveryStatus
	NextAttemptAt time.Time
}

// DeliveryFilter chooses deliveries of one webhook, newest first.
type DeliveryFilter struct {
	Status DeliveryStatus // "" for all
	Limit  int
	Cursor string
}

// WebhookStore keeps webhook endpoints and the outbox of their deliveries.
type WebhookStore interface {
	// CreateWebhook stores w; ID, Secret and CreatedAt are set by the caller.
	CreateWebhook(ctx context.Context, w Webhook) error
	// Webhooks lists tenant's webhooks, oldest first, with their secrets.
	Webhooks(ctx context.Context, tenant TenantID) ([]Webhook, error)
	// Webhook returns one. Errors: ENotFound (also for another tenant's).
	Webhook(ctx context.Context, tenant TenantID, id string) (Webhook, error)
	// DeleteWebhook removes a webhook and its deliveries. Errors: ENotFound.
	DeleteWebhook(ctx context.Context, tenant TenantID, id string) error
	// Deliveries lists a webhook's deliveries, newest first. Errors: ENotFound for an unknown
	// webhook, EInvalid for a bad cursor or limit.
	Deliveries(ctx context.Context, tenant TenantID, webhookID string, f DeliveryFilter) (deliveries []Delivery, next string, err error)
	// Redeliver makes a delivery pending again, due at, with its attempts reset to 0; its id
	// (the webhook-id) stays. Errors: ENotFound.
	Redeliver(ctx context.Context, tenant TenantID, webhookID, deliveryID string, at time.Time) (Delivery, error)

	// DueWebhooks returns the ids of webhooks with pending deliveries due at or before now.
	DueWebhooks(ctx context.Context, now time.Time) ([]string, error)
	// ClaimDeliveries takes up to limit pending deliveries of webhook that are due at now,
	// oldest first, and leases them: they are not due again before leaseUntil, so that a
	// crashed dispatcher's deliveries are retried and no two dispatchers send the same one at
	// the same time.
	ClaimDeliveries(ctx context.Context, webhookID string, now, leaseUntil time.Time, limit int) ([]PendingDelivery, error)
	// FinishAttempt records an attempt of a claimed delivery: Attempts+1, the outcome, the new
	// status. A delivery deleted meanwhile is ignored.
	FinishAttempt(ctx context.Context, deliveryID string, a DeliveryAttempt) error
	// PruneDeliveries deletes delivered and dead-letter deliveries created before before, and
	// outbox events no delivery needs any more; it returns how many deliveries it deleted.
	PruneDeliveries(ctx context.Context, before time.Time) (int64, error)
}

// String forms, for logging.
func (s DeliveryStatus) String() string { return string(s) }
