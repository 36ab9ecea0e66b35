package webhook

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/callbridge/callbridge"
)

// ContentType is the Content-Type of every delivery: a CloudEvents 1.0 event in structured
// JSON mode (CloudEvents JSON Event Format §3).
const ContentType = "application/cloudevents+json"

// Event is the body of a delivery, a CloudEvents 1.0 event in structured JSON mode:
//
//	{"specversion":"1.0","id":"evt_01JD…","source":"/callbridge/tenants/acme",
//	 "type":"call.cleared","subject":"01JD…","time":"2026-03-02T09:01:20Z",
//	 "datacontenttype":"application/json","tenant":"acme","seq":42,"data":{…}}
//
// type is the callbridge event type (call.*, agent.*, call_record.*), as subscribed. data
// is the domain event's data (the whole call for call events, the agent for agent events)
// or, for call_record.*, the callbridge.CallRecord. Two extension attributes: tenant, and
// seq, the event-log sequence of the event (of the event that completed or changed the
// record, for call_record.*), increasing per tenant: deliveries are not ordered, seq
// orders them. id is the same for every endpoint that receives the event.
type Event struct {
	SpecVersion     string               `json:"specversion"`
	ID              string               `json:"id"`
	Source          string               `json:"source"`
	Type            callbridge.EventType `json:"type"`
	Subject         string               `json:"subject,omitempty"`
	Time            time.Time            `json:"time"`
	DataContentType string               `json:"datacontenttype"`
	Tenant          callbridge.TenantID  `json:"tenant"`
	Seq             uint64               `json:"seq,omitempty"`
	Data            json.RawMessage      `json:"data"`
}

// Source returns the CloudEvents source of tenant's events: "/callbridge/tenants/<tenant>".
func Source(tenant callbridge.TenantID) string { return "/callbridge/tenants/" + string(tenant) }

// Encode returns the JSON body of an event with id, type, subject, time (UTC), tenant, seq
// and data (which must be a JSON value).
func Encode(id string, tenant callbridge.TenantID, typ callbridge.EventType, subject string, t time.Time, seq uint64, data json.RawMessage) ([]byte, error) {
	if !json.Valid(data) {
		return nil, fmt.Errorf("webhook: event %s: data is not JSON", id)
	}
	return json.Marshal(Event{
		SpecVersion: "1.0", ID: id, Source: Source(tenant), Type: typ, Subject: subject,
		Time: t.UTC(), DataContentType: "application/json", Tenant: tenant, Seq: seq, Data: data,
	})
}
