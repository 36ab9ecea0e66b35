package freeswitch

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/callbridge/callbridge"
	"github.com/callbridge/callbridge/freeswitch/esl"
)

// Row is one row of a FreeSWITCH listing: a "show … as json" row or a callcenter_config
// table row, by column name.
type Row map[string]string

// ParseJSONRows parses the output of "show channels as json" (and the other "show … as
// json" commands): {"row_count":N,"rows":[{…},…]} (fs-resync). An empty listing is
// {"row_count":0} without rows. Non-string values are kept as their JSON text. A body that
// is not such an object is an error.
func ParseJSONRows(body string) ([]Row, error) {
	var doc struct {
		RowCount int               `json:"row_count"`
		Rows     []json.RawMessage `json:"rows"`
	}
	if err := json.Unmarshal([]byte(strings.TrimSpace(body)), &doc); err != nil {
		return nil, fmt.Errorf("freeswitch: listing is not JSON: %w", err)
	}
	out := make([]Row, 0, len(doc.Rows))
	for _, raw := range doc.Rows {
		ev, err := esl.ParseJSON(raw)
		if err != nil {
			continue
		}
		r := make(Row, len(ev.Headers))
		for _, h := range ev.Headers {
			r[h.Name] = h.Value
		}
		out = append(out, r)
	}
	return out, nil
}

// ParseTable parses a callcenter_config listing: a "|"-separated header row, one row per
// line, and a final "+OK" (fs-agent-state, fs-resync). Rows with another number of columns
// are skipped. "+OK" alone, "-ERR …" or an empty body give no rows.
func ParseTable(body string) []Row {
	lines := strings.Split(body, "\n")
	var header []string
	var out []Row
	for _, line := range lines {
		line = strings.TrimRight(line, "\r")
		if line == "" {
			continue
		}
		if strings.HasPrefix(line, "+OK") || strings.HasPrefix(line, "-ERR") {
			break
		}
		cols := strings.Split(line, "|")
		if header == nil {
			header = cols
			continue
		}
		if len(cols) != len(header) {
			continue
		}
		r := make(Row, len(cols))
		for i, c := range cols {
			r[header[i]] = c
		}
		out = append(out, r)
	}
	return out
}

// QueueListing is what callcenter_config says about one queue: "queue list agents <queue>"
// (agents with a tier in it: status, state, uuid of their current leg, contact) and "queue
// list members <queue>" (callers: session_uuid = the caller's leg, state Waiting, Trying or
// Answered, serving_agent).
type QueueListing struct {
	Queue   callbridge.QueueName
	Agents  []Row
	Members []Row
}

// ErrNoListing is returned by Snapshot for a nil channel listing.
var ErrNoListing = errors.New("freeswitch: no channel listing")

// Snapshot replaces the tracker's state with the switch's (after a connect) and returns the
// snapshot event. channels are the rows of "show channels as json", calls those of "show
// calls as json" (uuid and b_uuid of each bridged pair), queues the callcenter_config
// listings, and dumps the "uuid_dump <uuid> json" events of conversations' first legs (for
// their variables: tenant, DNIS, attached data), by Unique-ID.
//
// Legs are grouped into conversations through call_uuid (which names the A leg while a leg
// is bridged), the bridged pairs of "show calls", the uuid_bridge application's data (the
// partner's uuid, fs-resync), and
// mod_callcenter's listings (an agent's uuid is its leg in the call it serves, whose caller
// is the member with that serving_agent). The first leg (oldest, inbound first) names the
// conversation. An outbound leg is a telset when it is a mod_callcenter agent's leg or has a
// presence_id (user/ dial strings set presence_id=<user>@<domain>), else an outside party.
func (t *Tracker) Snapshot(channels, calls []Row, queues []QueueListing, dumps map[string]*esl.Event) callbridge.SwitchEvent {
	t.reset()
	ev := callbridge.SwitchEvent{Type: callbridge.SwitchSnapshot, Time: t.now().UTC(), Snapshot: &callbridge.Snapshot{
		Calls: []callbridge.SnapshotCall{}, Members: []callbridge.SnapshotMember{},
	}}
	t.ts = ev.Time

	// Agents and members.
	old := t.agents
	t.agents = map[string]*agent{}
	agentLeg := map[string]string{} // leg uuid → agent name
	type member struct {
		queue   callbridge.QueueName
		waiting bool
	}
	members := map[string]member{}  // session uuid → its queue entry
	servedBy := map[string]string{} // agent name → session uuid
	for _, q := range queues {
		for _, r := range q.Agents {
			name := r["name"]
			if CheckAgentName("agent", name) != nil {
				continue
			}
			a := t.agentFor(name)
			if o := old[name]; o != nil {
				a.reason = o.reason
			}
			if u := contactUser(r["contact"]); u != "" {
				a.device = callbridge.DeviceID(u)
			}
			a.status, a.state = r["status"], r["state"]
			if !slices.Contains(a.queues, q.Queue) {
				a.queues = append(a.queues, q.Queue)
			}
			if u := r["uuid"]; u != "" {
				agentLeg[u] = name
			}
		}
		for _, r := range q.Members {
			s := r["session_uuid"]
			if s == "" {
				continue
			}
			m := member{queue: q.Queue, waiting: r["state"] == "Waiting" || r["state"] == "Trying"}
			members[s] = m
			if sa := r["serving_agent"]; sa != "" {
				servedBy[sa] = s
			}
		}
	}

	// Legs and their groups.
	byUUID := map[string]Row{}
	var uuids []string
	for _, r := range channels {
		u := r["uuid"]
		if u == "" || byUUID[u] != nil {
			continue
		}
		byUUID[u] = r
		uuids = append(uuids, u)
	}
	uf := unionFind{}
	for _, u := range uuids {
		r := byUUID[u]
		uf.add(u)
		if c := r["call_uuid"]; c != "" && byUUID[c] != nil {
			uf.union(u, c)
		}
		if r["application"] == "uuid_bridge" && byUUID[r["application_data"]] != nil {
			uf.union(u, r["application_data"])
		}
		if name := agentLeg[u]; name != "" {
			if s := servedBy[name]; byUUID[s] != nil {
				uf.union(u, s)
			}
		}
	}
	for _, r := range calls {
		if a, b := r["uuid"], r["b_uuid"]; byUUID[a] != nil && byUUID[b] != nil {
			uf.union(a, b)
		}
	}
	groups := map[string][]string{}
	for _, u := range uuids {
		root := uf.find(u)
		groups[root] = append(groups[root], u)
	}
	keys := make([]string, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		g := groups[k]
		slices.SortFunc(g, func(a, b string) int { return compareLegs(byUUID[a], byUUID[b]) })
		rootRow := byUUID[g[0]]
		cv := &conv{id: g[0], legs: map[string]*leg{}, data: map[string]string{}, started: true}
		dump := dumps[g[0]]
		for i, u := range g {
			r := byUUID[u]
			l := t.snapLeg(r, agentLeg[u])
			l.conv = cv
			cv.legs[u] = l
			t.legs[u] = l
			if i == 0 {
				cv.root = l
			}
			p := t.addParty(cv, l)
			p.state = snapState(r["callstate"], i == 0, l.direction)
			if l.ccAgent != "" {
				p.queue = members[g[0]].queue
			}
		}
		if dump != nil {
			cv.tenant = t.tenantOf(dump)
			cv.dnis = dump.Var(t.dnisVar)
			for name, v := range t.dataOf(dump) {
				if v != "" {
					cv.data[name] = v
				}
			}
			if cv.root.direction == "outbound" && cv.root.telset {
				cv.dialTo = dump.Var("origination_caller_id_number")
			}
			cv.corrID = dump.Var(CorrelationVariable)
		}
		if cv.dnis == "" {
			cv.dnis = rootRow["initial_dest"]
		}
		if m, ok := members[g[0]]; ok {
			cv.queue, cv.inQueue = m.queue, m.waiting
		}
		t.convs[cv.id] = cv
		d := t.describe(cv)
		sc := callbridge.SnapshotCall{
			PBXCallID: cv.id, Tenant: cv.tenant, Direction: d.Direction, ANI: d.ANI, ANIName: d.ANIName,
			DNIS: d.DNIS, Queue: cv.queue, Data: copyData(cv.data), Parties: []callbridge.SnapshotParty{},
		}
		for _, p := range cv.parties {
			sc.Parties = append(sc.Parties, callbridge.SnapshotParty{
				Device: p.leg.device, Leg: p.leg.uuid, State: p.state, External: p.leg.external,
			})
		}
		if cv.inQueue {
			// The member waits in the queue ("queue list members" state Waiting or Trying):
			// a queued connection at the queue's device, as the Asterisk driver reports it.
			sc.Parties = append(sc.Parties, callbridge.SnapshotParty{Device: callbridge.DeviceID(cv.queue), State: callbridge.ConnQueued})
		}
		ev.Snapshot.Calls = append(ev.Snapshot.Calls, sc)
	}

	// Member states, agents in name order.
	names := make([]string, 0, len(t.agents))
	for n := range t.agents {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		a := t.agents[n]
		if a.status == "" {
			continue
		}
		on, paused, why := t.present(a)
		a.emitted, a.on, a.paused, a.why = true, on, paused, why
		if !on {
			continue
		}
		for _, q := range a.queues {
			ev.Snapshot.Members = append(ev.Snapshot.Members, callbridge.SnapshotMember{
				Device: a.device, Queue: q, Paused: paused, Reason: why,
			})
		}
	}
	return ev
}

// snapLeg builds a leg from a "show channels as json" row.
func (t *Tracker) snapLeg(r Row, agentName string) *leg {
	l := &leg{
		uuid: r["uuid"], name: r["name"], direction: r["direction"],
		cidNum: r["cid_num"], cidName: r["cid_name"], dest: r["dest"],
		context: r["initial_context"],
	}
	if l.context == "" {
		l.context = r["context"]
	}
	switch r["callstate"] {
	case "ACTIVE", "HELD", "UNHELD", "RING_WAIT":
		l.answered = true
	}
	switch {
	case agentName != "":
		l.ccAgent = agentName
		l.telset, l.device = true, t.agentDevice(agentName)
	case l.direction == "inbound" && t.userCtx[l.context]:
		l.telset, l.device = true, callbridge.DeviceID(orUnknown(l.cidNum))
	case l.direction == "inbound":
		l.external, l.device = true, callbridge.DeviceID(orUnknown(l.cidNum))
	case r["presence_id"] != "":
		u, _, _ := strings.Cut(r["presence_id"], "@")
		l.telset, l.device = true, callbridge.DeviceID(orUnknown(u))
	default:
		num := l.dest
		if num == "" {
			num = r["callee_num"]
		}
		l.external, l.device = true, callbridge.DeviceID(orUnknown(num))
	}
	return l
}

// snapState maps a channel's callstate (show channels) to the party's connection state.
func snapState(callstate string, first bool, direction string) callbridge.ConnectionState {
	switch callstate {
	case "HELD":
		return callbridge.ConnHeld
	case "ACTIVE", "UNHELD", "RING_WAIT", "HANGUP":
		return callbridge.ConnConnected
	}
	switch {
	case first && direction == "inbound":
		return callbridge.ConnConnected // the caller is there from the start
	case first:
		return callbridge.ConnInitiated // an originate still ringing the first party
	}
	return callbridge.ConnAlerting
}

// compareLegs orders legs by creation (created_epoch), inbound first, then by uuid.
func compareLegs(a, b Row) int {
	ea, _ := strconv.ParseInt(a["created_epoch"], 10, 64)
	eb, _ := strconv.ParseInt(b["created_epoch"], 10, 64)
	switch {
	case ea < eb:
		return -1
	case ea > eb:
		return 1
	}
	ia, ib := a["direction"] == "inbound", b["direction"] == "inbound"
	switch {
	case ia && !ib:
		return -1
	case ib && !ia:
		return 1
	}
	return strings.Compare(a["uuid"], b["uuid"])
}

// unionFind groups legs.
type unionFind map[string]string

func (u unionFind) add(x string) {
	if _, ok := u[x]; !ok {
		u[x] = x
	}
}

func (u unionFind) find(x string) string {
	for i := 0; i < 1000 && u[x] != x; i++ {
		u[x] = u[u[x]]
		x = u[x]
	}
	return x
}

func (u unionFind) union(a, b string) {
	u.add(a)
	u.add(b)
	ra, rb := u.find(a), u.find(b)
	if ra != rb {
		if rb < ra {
			ra, rb = rb, ra
		}
		u[rb] = ra
	}
}
