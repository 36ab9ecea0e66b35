package http

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"io"
	nethttp "net/http"
	"strconv"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/callbridge/callbridge"
)

// PageParams is the paging part of a list request.
type PageParams struct {
	Limit  int    `query:"limit" minimum:"1" maximum:"1000" default:"100" doc:"Page size."`
	Cursor string `query:"cursor" maxLength:"200" doc:"The next_cursor of the previous page."`
}

// FormatParams chooses JSON or CSV: ?format=csv, or Accept: text/csv.
type FormatParams struct {
	Format string `query:"format" enum:"json,csv" doc:"csv for CSV; the default follows the Accept header (text/csv or application/json)."`
	Accept string `header:"Accept" hidden:"true"`
}

// csv reports whether the client asked for CSV: ?format=csv, or, without ?format, an Accept
// header that ranks text/csv above application/json.
func (f FormatParams) csv() bool {
	if f.Format != "" {
		return f.Format == "csv"
	}
	var qcsv, qjson float64
	for _, part := range strings.Split(f.Accept, ",") {
		fields := strings.Split(part, ";")
		name := strings.ToLower(strings.TrimSpace(fields[0]))
		q := 1.0
		for _, p := range fields[1:] {
			if v, ok := strings.CutPrefix(strings.TrimSpace(p), "q="); ok {
				if n, err := strconv.ParseFloat(v, 64); err == nil {
					q = n
				}
			}
		}
		switch name {
		case "text/csv":
			qcsv = max(qcsv, q)
		case "application/json", "application/*":
			qjson = max(qjson, q)
		}
	}
	return qcsv > 0 && qcsv > qjson
}

// listOutput is a list answer: JSON, or CSV when ContentType is set to csvContentType.
type listOutput[B any] struct {
	ContentType string `header:"Content-Type" hidden:"true"`
	NextCursor  string `header:"X-Next-Cursor" doc:"The cursor of the next page (also in the body for JSON); absent on the last page."`
	Body        B
}

// csvResponses documents the CSV form of a list operation's 200 answer.
func csvResponses(desc string) map[string]*huma.Response {
	return map[string]*huma.Response{"200": {
		Description: desc,
		Content: map[string]*huma.MediaType{
			"application/json": {},
			"text/csv":         {Schema: &huma.Schema{Type: "string", Description: "One header row, then one row per item; times RFC 3339 UTC, empty when unset."}},
		},
	}}
}

type listCallRecordsInput struct {
	From      time.Time `query:"from" doc:"Only calls that started at or after this time (RFC 3339)."`
	To        time.Time `query:"to" doc:"Only calls that started before this time (RFC 3339)."`
	Agent     string    `query:"agent" maxLength:"64" doc:"Only calls this agent answered."`
	Queue     string    `query:"queue" maxLength:"64"`
	ANI       string    `query:"ani" maxLength:"64" doc:"Only calls from this number."`
	Result    string    `query:"result" enum:"answered,abandoned,failed,transferred"`
	Direction string    `query:"direction" enum:"inbound,outbound,internal"`
	PageParams
	FormatParams
}

// CallRecordPage is a page of call records, newest first.
type CallRecordPage struct {
	Records    []callbridge.CallRecord `json:"records"`
	NextCursor string                  `json:"next_cursor,omitempty" doc:"Pass as cursor for the next page; absent on the last page."`
}

type callRecordInput struct {
	CallID string `path:"call_id" maxLength:"64"`
}

type agentStatesInput struct {
	From  time.Time `query:"from" doc:"Only periods that started at or after this time (RFC 3339)."`
	To    time.Time `query:"to" doc:"Only periods that started before this time (RFC 3339)."`
	Agent string    `query:"agent" maxLength:"64"`
	State string    `query:"state" enum:"logged_out,not_ready,ready,busy,working_after_call"`
	PageParams
	FormatParams
}

// AgentStatePage is a page of agent state periods, newest first.
type AgentStatePage struct {
	States     []callbridge.AgentStateRecord `json:"states"`
	NextCursor string                        `json:"next_cursor,omitempty"`
}

func (s *Server) recordRoutes(api huma.API) {
	read := access{scope: callbridge.ScopeRecordsRead}
	register(s, api, read, huma.Operation{
		OperationID: "list-call-records", Method: nethttp.MethodGet, Path: "/v1/call-records", Tags: []string{"Call records"},
		Summary: "List call records",
		Description: "Ended calls of the tenant, newest first, filtered by the query parameters. " +
			"As CSV with `?format=csv` or `Accept: text/csv` (same page; the next cursor in `X-Next-Cursor`).",
		Responses: csvResponses("A page of call records."),
	}, s.listCallRecords)
	register(s, api, read, huma.Operation{
		OperationID: "get-call-record", Method: nethttp.MethodGet, Path: "/v1/call-records/{call_id}", Tags: []string{"Call records"},
		Summary: "Get a call record", Description: "The record of one ended call. 404 while the call is in progress.",
	}, s.getCallRecord)
	register(s, api, read, huma.Operation{
		OperationID: "list-agent-states", Method: nethttp.MethodGet, Path: "/v1/agent-states", Tags: []string{"Agent states"},
		Summary: "List agent state history",
		Description: "Every state period of the tenant's agents (state, reason, start, end, duration), newest first. " +
			"As CSV with `?format=csv` or `Accept: text/csv`.",
		Responses: csvResponses("A page of agent state periods."),
	}, s.listAgentStates)
}

func (s *Server) listCallRecords(ctx context.Context, in *listCallRecordsInput) (*listOutput[CallRecordPage], error) {
	store := s.cfg.CRM.Records
	if store == nil {
		return nil, s.restErr(unavailable("call records"))
	}
	recs, next, err := store.CallRecords(ctx, callerOf(ctx).Tenant, callbridge.CallRecordFilter{
		From: in.From, To: in.To, Agent: callbridge.AgentID(in.Agent), Queue: callbridge.QueueName(in.Queue),
		ANI: in.ANI, Result: callbridge.CallResult(in.Result), Direction: callbridge.Direction(in.Direction),
		Limit: in.Limit, Cursor: in.Cursor,
	})
	if err != nil {
		return nil, s.restErr(err)
	}
	out := &listOutput[CallRecordPage]{NextCursor: next, Body: CallRecordPage{Records: recs, NextCursor: next}}
	if in.csv() {
		out.ContentType = csvContentType
	}
	return out, nil
}

func (s *Server) getCallRecord(ctx context.Context, in *callRecordInput) (*struct{ Body callbridge.CallRecord }, error) {
	store := s.cfg.CRM.Records
	if store == nil {
		return nil, s.restErr(unavailable("call records"))
	}
	rec, err := store.CallRecord(ctx, callerOf(ctx).Tenant, callbridge.CallID(in.CallID))
	if err != nil {
		return nil, s.restErr(err)
	}
	return &struct{ Body callbridge.CallRecord }{Body: rec}, nil
}

func (s *Server) listAgentStates(ctx context.Context, in *agentStatesInput) (*listOutput[AgentStatePage], error) {
	store := s.cfg.CRM.Records
	if store == nil {
		return nil, s.restErr(unavailable("agent states"))
	}
	recs, next, err := store.AgentStates(ctx, callerOf(ctx).Tenant, callbridge.AgentStateFilter{
		From: in.From, To: in.To, Agent: callbridge.AgentID(in.Agent), State: callbridge.AgentState(in.State),
		Limit: in.Limit, Cursor: in.Cursor,
	})
	if err != nil {
		return nil, s.restErr(err)
	}
	out := &listOutput[AgentStatePage]{NextCursor: next, Body: AgentStatePage{States: recs, NextCursor: next}}
	if in.csv() {
		out.ContentType = csvContentType
	}
	return out, nil
}

// Columns of the CSV forms.
var (
	callRecordColumns = []string{"call_id", "pbx_call_id", "consult_of", "direction", "ani", "ani_name", "dnis", "queue",
		"agents", "started_at", "queued_at", "answered_at", "ended_at", "wait_seconds", "ring_seconds", "talk_seconds",
		"hold_seconds", "wrap_up_seconds", "result", "cause", "disposition", "notes", "complete", "attached_data"}
	agentStateColumns = []string{"id", "agent", "device", "state", "reason", "previous_state", "started_at", "ended_at", "duration_seconds"}
)

func (p CallRecordPage) writeCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	cw.Write(callRecordColumns)
	for _, r := range p.Records {
		agents := make([]string, len(r.Agents))
		for i, a := range r.Agents {
			agents[i] = string(a)
		}
		data, _ := json.Marshal(r.AttachedData)
		cw.Write(csvRow(string(r.CallID), r.PBXCallID, string(r.ConsultOf), string(r.Direction), r.ANI, r.ANIName, r.DNIS,
			string(r.Queue), strings.Join(agents, ";"), csvTime(r.StartedAt), csvTime(r.QueuedAt), csvTime(r.AnsweredAt),
			csvTime(r.EndedAt), itoa(r.WaitSeconds), itoa(r.RingSeconds), itoa(r.TalkSeconds), itoa(r.HoldSeconds),
			itoa(r.WrapUpSeconds), string(r.Result), string(r.Cause), r.Disposition, r.Notes, strconv.FormatBool(r.Complete), string(data)))
	}
	cw.Flush()
	return cw.Error()
}

func (p AgentStatePage) writeCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	cw.Write(agentStateColumns)
	for _, r := range p.States {
		dur := ""
		if r.DurationSeconds != nil {
			dur = itoa(*r.DurationSeconds)
		}
		cw.Write(csvRow(r.ID, string(r.Agent), string(r.Device), string(r.State), r.Reason, string(r.PreviousState),
			csvTime(r.StartedAt), csvTime(r.EndedAt), dur))
	}
	cw.Flush()
	return cw.Error()
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func csvTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// csvRow guards the cells against formula injection when the file is opened in a
// spreadsheet (OWASP "CSV injection"): a cell that starts with = @ TAB or CR, or with + or -
// not followed by a plain number (phone numbers such as +15551230001 stay as they are),
// gets a leading apostrophe.
func csvRow(cells ...string) []string {
	for i, c := range cells {
		if c == "" {
			continue
		}
		switch c[0] {
		case '=', '@', '\t', '\r':
			cells[i] = "'" + c
		case '+', '-':
			if !plainNumber(c[1:]) {
				cells[i] = "'" + c
			}
		}
	}
	return cells
}

// plainNumber reports whether s is digits, spaces and . ( ) - only.
func plainNumber(s string) bool {
	for _, r := range s {
		if !(r >= '0' && r <= '9' || strings.ContainsRune(" .()-", r)) {
			return false
		}
	}
	return s != ""
}
