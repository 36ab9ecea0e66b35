package freeswitch

import (
	"log/slog"
	"strings"
	"time"

	"github.com/callbridge/callbridge"
	"github.com/callbridge/callbridge/freeswitch/esl"
)

// TrackerConfig configures a Tracker.
type TrackerConfig struct {
	// Logger receives debug lines about input the tracker ignores. Default: discard.
	Logger *slog.Logger
	// Now is used for the Time of events without Event-Date-Timestamp. Default: time.Now.
	Now func() time.Time
	// DataVariables names the channel variables that are attached data; a name ending in "*"
	// is a prefix. Default: DefaultDataVariable (ivr_*). The tenant and DNIS variables are
	// never attached data.
	DataVariables []string
	// TenantVariable and DNISVariable name the variables with the tenant and the dialled
	// number. Defaults DefaultTenantVariable and DefaultDNISVariable.
	TenantVariable, DNISVariable string
	// UserContexts are the contexts of calls from the switch's own users. Default:
	// DefaultUserContext.
	UserContexts []string
	// BreakReason and IdleReason are the not_ready reasons of mod_callcenter's "On Break"
	// status and "Idle" state. Defaults DefaultBreakReason and DefaultIdleReason.
	BreakReason, IdleReason string
}

// Tracker translates FreeSWITCH 1.10 events, fed in the order received, into normalised
// switch events. It is pure (no I/O, no goroutines) and not safe for concurrent use.
//
// It keeps only protocol correlation: legs by Unique-ID, conversations and their parties,
// make_call and consultation_call expectations, and mod_callcenter agents (status, state,
// tiers). See the package documentation for how legs form conversations.
type Tracker struct {
	log        *slog.Logger
	now        func() time.Time
	dataExact  map[string]bool
	dataPrefix []string
	tenantVar  string
	dnisVar    string
	userCtx    map[string]bool
	breakWhy   string
	idleWhy    string

	legs   map[string]*leg  // by Unique-ID
	convs  map[string]*conv // by PBXCallID
	agents map[string]*agent
	expect map[string]expectation // by origination_uuid (make_call) or consulting leg (consultation_call)
	dead   deadSet

	// Per Feed.
	ts  time.Time
	out []callbridge.SwitchEvent
}

// leg is one FreeSWITCH channel.
type leg struct {
	uuid      string
	name      string // Channel-Name
	direction string // Call-Direction: inbound or outbound
	conv      *conv
	// Identity, fixed when the leg joins a conversation.
	device   callbridge.DeviceID
	external bool
	telset   bool
	// From the leg's creation.
	cidNum, cidName string
	dest            string // Caller-Destination-Number at creation
	context         string // Caller-Context at creation
	dialedUser      string // variable_dialed_user
	ccAgent         string // variable_cc_agent (mod_callcenter agent legs)
	ccQueue         string
	answered        bool
	hungUp          bool
	cause           string // Hangup-Cause
	xferSource      string // the last Caller-Transfer-Source seen
	partner         string // Unique-ID of the bridged leg
	consult         *conv  // the att_xfer consultation this leg started, while it runs
	departed        bool   // it left by a transfer: its hangup changes nothing
	// handover: it hung up while its att_xfer consultation was up, which is how a phone
	// completes an attended transfer. It stays on the consulted call until att_xfer bridges
	// the target to it (completeConsult: transferred) or the consultation ends without that
	// (endConv: it left).
	handover bool
}

// conv is one conversation (the Call of SwitchEvent.PBXCallID).
type conv struct {
	id        string
	root      *leg
	tenant    callbridge.TenantID
	dnis      string
	data      map[string]string
	started   bool
	cleared   bool
	consult   bool
	consultOf string
	consulter *leg
	target    string // consultation target (att_xfer data)
	queue     callbridge.QueueName
	inQueue   bool
	abandoned bool
	corrID    string
	dialTo    string
	legs      map[string]*leg
	parties   []*party
	// pending is a connected party whose leg hung up while others stayed: it may be the
	// transferring side of a transfer, which only the next events tell (README "Transfers").
	pending []*leg
}

// party is one device's connection to a conversation.
type party struct {
	leg   *leg
	state callbridge.ConnectionState
	queue callbridge.QueueName
}

// expectation is a command whose call is about to appear.
type expectation struct {
	corrID string
	to     string
}

const maxExpect = 1024

// NewTracker returns an empty Tracker.
func NewTracker(cfg TrackerConfig) *Tracker {
	t := &Tracker{
		log:       cfg.Logger,
		now:       cfg.Now,
		dataExact: map[string]bool{},
		tenantVar: cfg.TenantVariable,
		dnisVar:   cfg.DNISVariable,
		userCtx:   map[string]bool{},
		breakWhy:  cfg.BreakReason,
		idleWhy:   cfg.IdleReason,
		expect:    map[string]expectation{},
	}
	if t.log == nil {
		t.log = slog.New(slog.DiscardHandler)
	}
	if t.now == nil {
		t.now = time.Now
	}
	if t.tenantVar == "" {
		t.tenantVar = DefaultTenantVariable
	}
	if t.dnisVar == "" {
		t.dnisVar = DefaultDNISVariable
	}
	if t.breakWhy == "" {
		t.breakWhy = DefaultBreakReason
	}
	if t.idleWhy == "" {
		t.idleWhy = DefaultIdleReason
	}
	vars := cfg.DataVariables
	if len(vars) == 0 {
		vars = []string{DefaultDataVariable}
	}
	for _, v := range vars {
		if p, ok := strings.CutSuffix(v, "*"); ok {
			t.dataPrefix = append(t.dataPrefix, p)
		} else if v != "" {
			t.dataExact[v] = true
		}
	}
	ctxs := cfg.UserContexts
	if len(ctxs) == 0 {
		ctxs = []string{DefaultUserContext}
	}
	for _, c := range ctxs {
		t.userCtx[c] = true
	}
	t.reset()
	t.agents = map[string]*agent{}
	return t
}

func (t *Tracker) reset() {
	t.legs = map[string]*leg{}
	t.convs = map[string]*conv{}
	t.dead = deadSet{}
}

// ExpectOriginate tells the tracker that make_call originated a leg with origination_uuid
// uuid for correlationID, dialling to: the call_started of that conversation carries
// CorrelationID and DNIS = to.
func (t *Tracker) ExpectOriginate(uuid, correlationID, to string) {
	t.setExpect(uuid, expectation{corrID: correlationID, to: to})
}

// ForgetOriginate drops an expectation set by ExpectOriginate (the originate was refused).
func (t *Tracker) ForgetOriginate(uuid string) { delete(t.expect, uuid) }

// ExpectConsult tells the tracker that consultation_call started att_xfer on the leg
// consulting to reach to: the consultation's call_started carries correlationID.
func (t *Tracker) ExpectConsult(consulting, correlationID, to string) {
	t.setExpect("consult:"+consulting, expectation{corrID: correlationID, to: to})
}

func (t *Tracker) setExpect(k string, e expectation) {
	if len(t.expect) >= maxExpect {
		for old := range t.expect { // drop an arbitrary entry; they are tiny and rare
			delete(t.expect, old)
			break
		}
	}
	t.expect[k] = e
}

// Feed processes one event and returns the switch events it causes (often none).
func (t *Tracker) Feed(ev *esl.Event) []callbridge.SwitchEvent {
	if ev == nil {
		return nil
	}
	name := ev.Name()
	switch name {
	case "", "HEARTBEAT", "RE_SCHEDULE", "API", "BACKGROUND_JOB", "CODEC", "PRESENCE_IN",
		"DTMF", "CHANNEL_STATE", "CHANNEL_CALLSTATE", "PLAYBACK_START", "PLAYBACK_STOP",
		"PRIVATE_COMMAND", "COMMAND", "CHANNEL_PARK", "CHANNEL_UNPARK", "MESSAGE_QUERY",
		"RECV_RTCP_MESSAGE", "SEND_MESSAGE", "MESSAGE_WAITING", "RECORD_START", "RECORD_STOP",
		"LOG", "MODULE_LOAD", "MODULE_UNLOAD", "RELOADXML", "SHUTDOWN", "STARTUP":
		// Noise for a CTI bridge (README "Noise you must tolerate"), replies to commands
		// (API, BACKGROUND_JOB), or information other events carry: ANI and variables come
		// with CHANNEL_CREATE and the events that carry variables.
		return nil
	}
	t.out = nil
	t.ts = ev.Time()
	if t.ts.IsZero() {
		t.ts = t.now().UTC()
	}
	switch name {
	case "CUSTOM":
		if ev.Subclass() == "callcenter::info" {
			t.onCallcenter(ev)
		}
	default:
		if strings.HasPrefix(name, "CHANNEL_") || name == "CALL_UPDATE" {
			t.onChannel(name, ev)
		}
	}
	out := t.out
	t.out = nil
	return out
}

// callEvent appends an event of type typ for cv and returns it for the caller to fill in.
func (t *Tracker) callEvent(cv *conv, typ callbridge.SwitchEventType) *callbridge.SwitchEvent {
	t.out = append(t.out, callbridge.SwitchEvent{Type: typ, Time: t.ts, Tenant: cv.tenant, PBXCallID: cv.id})
	return &t.out[len(t.out)-1]
}

func (t *Tracker) partyEvent(cv *conv, p *party, typ callbridge.SwitchEventType) *callbridge.SwitchEvent {
	e := t.callEvent(cv, typ)
	e.Device, e.Leg, e.External = p.leg.device, p.leg.uuid, p.leg.external
	return e
}

func (t *Tracker) emit(e callbridge.SwitchEvent) { t.out = append(t.out, e) }

// isData reports whether variable name is attached data.
func (t *Tracker) isData(name string) bool {
	if name == t.tenantVar || name == t.dnisVar || name == CorrelationVariable {
		return false
	}
	if t.dataExact[name] {
		return true
	}
	for _, p := range t.dataPrefix {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// dataOf returns the attached-data variables of ev (without the "variable_" prefix).
func (t *Tracker) dataOf(ev *esl.Event) map[string]string {
	var out map[string]string
	for _, h := range ev.Headers {
		name, ok := strings.CutPrefix(h.Name, "variable_")
		if !ok || !t.isData(name) {
			continue
		}
		if out == nil {
			out = map[string]string{}
		}
		out[name] = h.Value
	}
	return out
}

func copyData(d map[string]string) map[string]string {
	if len(d) == 0 {
		return nil
	}
	out := make(map[string]string, len(d))
	for k, v := range d {
		out[k] = v
	}
	return out
}

// tenantOf returns the tenant variable of ev when it is a valid token.
func (t *Tracker) tenantOf(ev *esl.Event) callbridge.TenantID {
	v := ev.Var(t.tenantVar)
	if v == "" || !callbridge.ValidToken(v) {
		if v != "" {
			t.log.Debug("freeswitch: ignoring tenant variable that is not a token", "value", v)
		}
		return ""
	}
	return callbridge.TenantID(v)
}

// deadSet remembers the Unique-IDs of the last legs destroyed, so that events arriving after
// CHANNEL_DESTROY in the same burst (README "Run-to-run variation") cannot recreate them.
type deadSet struct {
	ring [256]string
	n    int
	set  map[string]struct{}
}

func (d *deadSet) add(uid string) {
	if d.set == nil {
		d.set = map[string]struct{}{}
	}
	i := d.n % len(d.ring)
	if old := d.ring[i]; old != "" {
		delete(d.set, old)
	}
	d.ring[i] = uid
	d.set[uid] = struct{}{}
	d.n++
}

func (d *deadSet) has(uid string) bool {
	_, ok := d.set[uid]
	return ok
}
