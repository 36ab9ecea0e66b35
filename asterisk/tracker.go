package asterisk

import (
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/callbridge/callbridge"
	"github.com/callbridge/callbridge/asterisk/ami"
)

// TrackerConfig configures a Tracker.
type TrackerConfig struct {
	// Logger receives debug lines about input the tracker ignores. Default: discard.
	Logger *slog.Logger
	// TransferContexts are the dialplan contexts of Atxfer consultations: a Local channel
	// Local/<target>@<context>-…;1 in one of them is a consultation call of its own.
	// Default: ["transfer-targets"], the context of the recordings.
	TransferContexts []string
	// TrunkEndpoints names the PJSIP/SIP/IAX2 endpoints that are trunks (outside parties).
	// Empty: an endpoint whose name is all digits is a telset, any other is a trunk.
	TrunkEndpoints []string
	// Now is used for the Time of events without a Timestamp header (timestampevents=no).
	// Default: time.Now.
	Now func() time.Time
}

// Tracker translates Asterisk 22 AMI events, fed in the order received, into normalised
// switch events. It is pure (no I/O, no goroutines) and not safe for concurrent use.
//
// It keeps only protocol correlation: channels by Uniqueid, Local channel pairs, bridges,
// conversations and their parties, queue member states, and the ChannelIds of pending
// originates. Conversations are named by Linkedid, which Asterisk gives every leg derived from
// the first channel (README "What a CTI bridge should extract"), except Atxfer consultations,
// which share the Linkedid but are calls of their own (DESIGN.md §2) named by the Uniqueid of
// their Local ;1 channel.
type Tracker struct {
	log         *slog.Logger
	now         func() time.Time
	isTrunk     func(string) bool
	transferCtx map[string]bool

	chans    map[string]*channel   // by Uniqueid
	convs    map[string]*conv      // by PBXCallID
	byLinked map[string]*conv      // Linkedid → the conversation the Linkedid names
	pairs    map[string]*localPair // by Local base name
	bridges  map[string]*bridge    // by BridgeUniqueid
	members  map[memberKey]memberState
	expect   map[string]originate // by ChannelId
	dead     deadSet

	// Per Feed.
	ts   time.Time
	secs []section
	out  []callbridge.SwitchEvent
}

// channel is one Asterisk channel.
type channel struct {
	uid, linkedid string
	name          string
	chanName
	state     string // ChannelStateDesc
	firstUp   bool   // state at creation was not Down: the channel called in
	cidNum    string
	cidName   string
	connNum   string
	exten     string  // current Exten
	exten0    string  // Exten at creation (the DID of an inbound trunk leg)
	cidName0  string  // CallerIDName at creation
	conv      *conv   // the conversation the channel belongs to
	partyOf   []*conv // conversations in which the channel is a party
	bridge    string
	device    callbridge.DeviceID // once a party
	external  bool
	dialTrunk bool // this channel dialled a trunk
}

// conv is one conversation (the Call of SwitchEvent.PBXCallID).
type conv struct {
	id        string // PBXCallID
	linkedid  string
	root      *channel // first channel (nil when not seen)
	dataUID   string   // channel whose ChanVariables are the attached data
	consult   bool
	consultOf string   // PBXCallID consulted about
	consulter *channel // consulting device's channel (consultations)
	// consulterGone: the consulter hung up while the consultation was up; its connections
	// clear with the AttendedTransfer that follows, or when the consultation ends.
	consulterGone  bool
	consulterCause callbridge.Cause
	target         string // consultation target exten
	started        bool
	cleared        bool
	tenant         callbridge.TenantID
	queue          callbridge.QueueName // waiting in this queue
	queueLeg       *channel             // the channel that waits in it (QueueCallerJoin)
	data           map[string]string
	physical       int // physical (phone/trunk) channels that belong to the conversation
	channels       map[string]*channel
	parties        []*party         // in the order they joined
	endCause       callbridge.Cause // decided by the protocol (abandoned, transfer)
	lastCause      callbridge.Cause // cause of the last hangup
	corrID         string
	dialTo         string
}

// party is one device's connection to a conversation.
type party struct {
	ch       *channel
	state    callbridge.ConnectionState
	queue    callbridge.QueueName
	viaQueue bool // offered by app_queue: connected on AgentConnect
	answered bool // DialEnd ANSWER seen, AgentConnect not yet
	xferAway bool // it transferred the call away: cleared with CauseTransferred
}

// localPair is the two halves of a Local channel.
type localPair struct {
	base    string
	one     *channel
	two     *channel
	conv    *conv // conversation the pair works for
	consult bool
	queue   callbridge.QueueName // offered by this queue (AgentCalled Interface Local/…)
	phone   string               // Uniqueid of the channel the ;2 half dialled
}

type bridge struct {
	members []*channel
}

type originate struct {
	corrID string
	to     string
}

// section is one channel section of an event: the fields without prefix (Channel,
// Uniqueid …) or with one (DestChannel, TransfereeUniqueid …).
type section struct {
	prefix   string
	name     string
	state    string
	cidNum   string
	cidName  string
	connNum  string
	exten    string
	uid      string
	linkedid string
	ch       *channel
}

// NewTracker returns an empty Tracker.
func NewTracker(cfg TrackerConfig) *Tracker {
	t := &Tracker{
		log:         cfg.Logger,
		now:         cfg.Now,
		transferCtx: map[string]bool{},
	}
	if t.log == nil {
		t.log = slog.New(slog.DiscardHandler)
	}
	if t.now == nil {
		t.now = time.Now
	}
	ctxs := cfg.TransferContexts
	if len(ctxs) == 0 {
		ctxs = []string{DefaultTransferContext}
	}
	for _, c := range ctxs {
		t.transferCtx[c] = true
	}
	if len(cfg.TrunkEndpoints) > 0 {
		trunks := map[string]bool{}
		for _, e := range cfg.TrunkEndpoints {
			trunks[e] = true
		}
		t.isTrunk = func(ep string) bool { return trunks[ep] }
	} else {
		t.isTrunk = defaultIsTrunk
	}
	t.reset()
	return t
}

func (t *Tracker) reset() {
	t.chans = map[string]*channel{}
	t.convs = map[string]*conv{}
	t.byLinked = map[string]*conv{}
	t.pairs = map[string]*localPair{}
	t.bridges = map[string]*bridge{}
	t.members = map[memberKey]memberState{}
	if t.expect == nil {
		t.expect = map[string]originate{}
	}
	t.dead = deadSet{}
}

// ExpectOriginate tells the tracker that an Originate with ChannelId channelID was sent for
// the make_call with correlationID, dialling to. Asterisk gives the originated channel
// Uniqueid = Linkedid = ChannelId (click-to-call recording), so the call_started of that
// conversation carries CorrelationID and DNIS = to.
func (t *Tracker) ExpectOriginate(channelID, correlationID, to string) {
	if len(t.expect) >= maxExpect {
		for k := range t.expect { // drop an arbitrary old entry; they are tiny and rare
			delete(t.expect, k)
			break
		}
	}
	t.expect[channelID] = originate{corrID: correlationID, to: to}
}

// ForgetOriginate drops an expectation set by ExpectOriginate (the Originate was refused).
func (t *Tracker) ForgetOriginate(channelID string) { delete(t.expect, channelID) }

const maxExpect = 1024

// Feed processes one AMI event and returns the switch events it causes (often none).
// Responses, list items of the tracker's own resync actions and unknown events are ignored.
func (t *Tracker) Feed(m ami.Message) []callbridge.SwitchEvent {
	ev := m.Event()
	if ev == "" {
		return nil
	}
	t.out = nil
	switch ev {
	case "Newexten", "RTCPSent", "RTCPReceived", "Cdr", "DTMFBegin", "DTMFEnd",
		"SuccessfulAuth", "FullyBooted", "MusicOnHoldStart", "MusicOnHoldStop",
		"CoreShowChannel", "CoreShowChannelsComplete", "QueueParams", "QueueMember",
		"QueueEntry", "QueueStatusComplete", "QueueSummary", "QueueSummaryComplete",
		"BridgeListItem", "BridgeListComplete", "Status", "StatusComplete",
		"DeviceStateListComplete", "AgentComplete", "AgentDump", "BridgeMerge",
		"LocalOptimizationBegin", "LocalOptimizationEnd", "QueueMemberRinginuse",
		"NewAccountCode", "Registry", "PeerStatus", "ContactStatus", "Reload":
		// Noise for a CTI bridge (README "Noise you must tolerate"), list items of the
		// driver's own resync (handled by Snapshot), or information the other events carry:
		// AgentComplete comes in variants with and without Dest* after a transfer (README
		// "Run-to-run variation"); Hangup is the reliable end of a leg.
		return nil
	}
	t.ts = eventTime(m, t.now)
	switch ev {
	case "DeviceStateChange":
		t.onDeviceState(m)
	case "QueueMemberStatus", "QueueMemberAdded", "QueueMemberPause", "QueueMemberPenalty":
		t.onMember(m, true)
	case "QueueMemberRemoved":
		t.onMember(m, false)
	case "OriginateResponse":
		if !strings.EqualFold(m.Get("Response"), "Success") {
			t.ForgetOriginate(m.Get("Uniqueid"))
		}
	default:
		t.onChannelEvent(ev, m)
	}
	out := t.out
	t.out = nil
	return out
}

// onChannelEvent handles the events that carry channel sections.
func (t *Tracker) onChannelEvent(ev string, m ami.Message) {
	create := true
	switch ev {
	case "Hangup", "HangupRequest", "SoftHangupRequest":
		// A hangup of a channel never seen (or already gone) must not bring it back.
		create = false
	}
	t.parseSections(m, create)
	for i := range t.secs {
		t.refreshData(m, &t.secs[i])
	}
	switch ev {
	case "Newstate":
		if s := t.sec(""); s != nil && s.ch != nil && s.ch.conv != nil && s.ch == s.ch.conv.root {
			if s.ch.conv.started {
				if s.ch.state == "Up" {
					t.rootUp(s.ch)
				}
			} else {
				t.ensureStarted(s.ch.conv, nil)
			}
		}
	case "DialBegin":
		t.onDialBegin()
	case "DialEnd":
		t.onDialEnd(m.Get("DialStatus"))
	case "AgentCalled":
		t.onAgentCalled(callbridge.QueueName(m.Get("Queue")))
	case "AgentConnect":
		t.onAgentConnect()
	case "AgentRingNoAnswer":
		t.onAgentRingNoAnswer()
	case "QueueCallerJoin":
		t.onQueueJoin(callbridge.QueueName(m.Get("Queue")))
	case "QueueCallerLeave":
		t.onQueueLeave(callbridge.QueueName(m.Get("Queue")), "")
	case "QueueCallerAbandon":
		t.onQueueLeave(callbridge.QueueName(m.Get("Queue")), callbridge.CauseAbandoned)
	case "LocalBridge":
		t.onLocalBridge()
	case "BridgeEnter":
		t.onBridgeEnter(m.Get("BridgeUniqueid"))
	case "BridgeLeave":
		t.onBridgeLeave(m.Get("BridgeUniqueid"))
	case "BridgeDestroy":
		delete(t.bridges, m.Get("BridgeUniqueid"))
	case "Hold":
		t.onHold(true)
	case "Unhold":
		t.onHold(false)
	case "BlindTransfer":
		t.onBlindTransfer(m)
	case "AttendedTransfer":
		t.onAttendedTransfer(m)
	case "Hangup":
		t.onHangup(m.Get("Cause"))
	}
}

// eventTime reads the Timestamp header ("1795305582.588586", seconds.microseconds since the
// epoch; manager.conf timestampevents=yes in the recordings), or returns now().
func eventTime(m ami.Message, now func() time.Time) time.Time {
	ts, ok := m.Lookup("Timestamp")
	if !ok {
		return now()
	}
	sec, frac, _ := strings.Cut(ts, ".")
	s, err := strconv.ParseInt(sec, 10, 64)
	if err != nil || s < 0 {
		return now()
	}
	var ns int64
	if frac != "" {
		if len(frac) > 9 {
			frac = frac[:9]
		}
		f, err := strconv.ParseInt(frac, 10, 64)
		if err == nil && f >= 0 {
			for i := len(frac); i < 9; i++ {
				f *= 10
			}
			ns = f
		}
	}
	return time.Unix(s, ns).UTC()
}

// sectionField splits an event field key into its channel-section prefix and the per-channel
// field name ("DestUniqueid" → "Dest", "Uniqueid"), for the fields the tracker uses, or
// returns ok = false. Asterisk spells these keys the same way in every event, so the match is
// case-sensitive; it looks at the last byte first because most keys are not section fields
// and this runs for every field of every event.
func sectionField(k string) (prefix, name string, ok bool) {
	if len(k) < 5 {
		return "", "", false
	}
	var cands []string
	switch k[len(k)-1] {
	case 'l':
		cands = sfxL
	case 'c':
		cands = sfxC
	case 'm':
		cands = sfxM
	case 'e':
		cands = sfxE
	case 'd':
		cands = sfxD
	case 'n':
		cands = sfxN
	default:
		return "", "", false
	}
	for _, c := range cands {
		if strings.HasSuffix(k, c) {
			return k[:len(k)-len(c)], c, true
		}
	}
	return "", "", false
}

var (
	sfxL = []string{"Channel"}
	sfxC = []string{"ChannelStateDesc"}
	sfxM = []string{"CallerIDNum", "ConnectedLineNum"}
	sfxE = []string{"CallerIDName"}
	sfxD = []string{"Uniqueid", "Linkedid"}
	sfxN = []string{"Exten"}
)

// parseSections splits m into its channel sections (t.secs) and binds each to its channel,
// creating channels never seen when create is set.
func (t *Tracker) parseSections(m ami.Message, create bool) {
	t.secs = t.secs[:0]
	for _, f := range m.Fields {
		prefix, sfx, ok := sectionField(f.Key)
		if !ok {
			continue
		}
		if strings.HasSuffix(prefix, "Bridge") || prefix == "Swap" {
			continue
		}
		s := t.secFor(prefix)
		switch sfx {
		case "Channel":
			s.name = f.Value
		case "ChannelStateDesc":
			s.state = f.Value
		case "CallerIDNum":
			s.cidNum = f.Value
		case "CallerIDName":
			s.cidName = f.Value
		case "ConnectedLineNum":
			s.connNum = f.Value
		case "Exten":
			s.exten = f.Value
		case "Uniqueid":
			s.uid = f.Value
		case "Linkedid":
			s.linkedid = f.Value
		}
	}
	for i := range t.secs {
		s := &t.secs[i]
		if s.uid == "" {
			continue
		}
		s.ch = t.chans[s.uid]
		if s.ch == nil && create && s.name != "" && s.linkedid != "" && !t.dead.has(s.uid) {
			s.ch = t.newChannel(s)
		}
		if s.ch != nil {
			t.updateChannel(s.ch, s)
		}
	}
}

func (t *Tracker) secFor(prefix string) *section {
	for i := range t.secs {
		if t.secs[i].prefix == prefix {
			return &t.secs[i]
		}
	}
	if len(t.secs) >= 16 { // a garbage frame with many prefixes: keep the work bounded
		return &section{}
	}
	t.secs = append(t.secs, section{prefix: prefix})
	return &t.secs[len(t.secs)-1]
}

// sec returns the section with prefix, or nil.
func (t *Tracker) sec(prefix string) *section {
	for i := range t.secs {
		if t.secs[i].prefix == prefix {
			return &t.secs[i]
		}
	}
	return nil
}

// chanOf returns the channel of the section with prefix, or nil.
func (t *Tracker) chanOf(prefix string) *channel {
	if s := t.sec(prefix); s != nil {
		return s.ch
	}
	return nil
}

func (t *Tracker) updateChannel(ch *channel, s *section) {
	if s.name != "" && s.name != ch.name {
		ch.name = s.name
	}
	if s.state != "" {
		ch.state = s.state
	}
	if s.cidNum != "" {
		ch.cidNum = s.cidNum
	}
	if s.cidName != "" {
		ch.cidName = s.cidName
	}
	if s.connNum != "" {
		ch.connNum = s.connNum
	}
	if s.exten != "" {
		ch.exten = s.exten
	}
}

// newChannel registers the channel of section s and puts it into its conversation.
func (t *Tracker) newChannel(s *section) *channel {
	ch := &channel{
		uid: s.uid, linkedid: s.linkedid, name: s.name,
		chanName: parseChannel(s.name, t.isTrunk),
		state:    s.state, firstUp: s.state != "" && s.state != "Down",
		cidNum: s.cidNum, cidName: s.cidName, connNum: s.connNum,
		exten: s.exten, exten0: s.exten, cidName0: s.cidName,
	}
	t.chans[ch.uid] = ch
	switch ch.kind {
	case kindOther:
		return ch
	case kindLocal:
		p := t.pairs[ch.localBase]
		if p == nil {
			p = &localPair{base: ch.localBase}
			t.pairs[ch.localBase] = p
		}
		if ch.localHalf == 1 {
			p.one = ch
		} else {
			p.two = ch
		}
		if ch.localHalf == 1 && p.conv == nil && t.transferCtx[ch.localContext] {
			// Atxfer: Local/<target>@transfer-targets-…;1 (attended-transfer-b and
			// conference-threeway recordings). A consultation is a call of its own.
			cv := t.newConv(ch.uid, ch.linkedid)
			cv.consult = true
			cv.dataUID = ch.uid
			cv.target = ch.localExten
			if orig := t.byLinked[ch.linkedid]; orig != nil {
				cv.consultOf = orig.id
				cv.tenant = orig.tenant
			} else {
				cv.consultOf = ch.linkedid
			}
			p.consult = true
			p.conv = cv
			if p.two != nil {
				t.moveChan(p.two, cv)
			}
		}
		if p.conv != nil {
			t.moveChan(ch, p.conv)
			return ch
		}
	}
	cv := t.byLinked[ch.linkedid]
	if cv == nil {
		cv = t.newConv(ch.linkedid, ch.linkedid)
		t.byLinked[ch.linkedid] = cv
	}
	if ch.uid == ch.linkedid && cv.root == nil && ch.kind != kindLocal {
		cv.root = ch
		cv.dataUID = ch.uid
		if o, ok := t.expect[ch.uid]; ok {
			cv.corrID, cv.dialTo = o.corrID, o.to
			delete(t.expect, ch.uid)
		}
	}
	if cv.dataUID == "" && ch.kind != kindLocal {
		cv.dataUID = ch.uid
	}
	t.moveChan(ch, cv)
	if p := t.pairs[ch.localBase]; ch.kind == kindLocal && ch.localHalf == 1 && p != nil && p.conv == nil {
		// A Local pair works for the call of its ;1 half (the half that is dialled).
		p.conv = cv
		if p.two != nil {
			t.moveChan(p.two, cv)
		}
	}
	return ch
}

func (t *Tracker) newConv(id, linkedid string) *conv {
	cv := &conv{
		id: id, linkedid: linkedid,
		data:     map[string]string{},
		channels: map[string]*channel{},
	}
	t.convs[id] = cv
	return cv
}

// moveChan makes ch belong to cv.
func (t *Tracker) moveChan(ch *channel, cv *conv) {
	if ch.conv == cv {
		return
	}
	if old := ch.conv; old != nil {
		delete(old.channels, ch.uid)
		if ch.physical() {
			old.physical--
		}
	}
	ch.conv = cv
	cv.channels[ch.uid] = ch
	if ch.physical() {
		cv.physical++
	}
}

func (ch *channel) physical() bool { return ch.kind == kindPhone || ch.kind == kindTrunk }

// refreshData compares the ChanVariable lines of section s with the attached data of the
// conversation whose data channel it is, and emits data_updated with the changed keys.
// Asterisk 22 appends every manager.conf channelvars variable to every channel section, empty
// until set ("ChanVariable: CTI_TENANT="), and a VarSet already shows the new value.
func (t *Tracker) refreshData(m ami.Message, s *section) {
	ch := s.ch
	if ch == nil || ch.conv == nil || ch.conv.dataUID != ch.uid || ch.conv.cleared {
		return
	}
	cv := ch.conv
	want := s.prefix + "ChanVariable"
	var diff map[string]string
	for _, f := range m.Fields {
		if len(f.Key) != len(want) || !strings.EqualFold(f.Key, want) {
			continue
		}
		name, val, ok := strings.Cut(f.Value, "=")
		if !ok || name == "" {
			continue
		}
		old, had := cv.data[name]
		if val == old && (had || val == "") {
			continue
		}
		if diff == nil {
			diff = map[string]string{}
		}
		diff[name] = val
		if val == "" {
			delete(cv.data, name)
		} else {
			cv.data[name] = val
		}
	}
	if diff == nil {
		return
	}
	if tn, ok := diff["CTI_TENANT"]; ok && tn != "" {
		if callbridge.ValidToken(tn) {
			cv.tenant = callbridge.TenantID(tn)
		} else {
			t.log.Debug("asterisk: ignoring CTI_TENANT that is not a token", "value", tn)
		}
	}
	if cv.started {
		e := t.callEvent(cv, callbridge.SwitchDataUpdated)
		e.Data = diff
		return
	}
	// An inbound call starts as soon as the dialplan has said whose it is (Set(__CTI_TENANT)
	// a few steps after Newchannel in the recordings), so call_started carries the tenant.
	if cv.root == ch && ch.kind == kindTrunk && cv.tenant != "" {
		t.ensureStarted(cv, nil)
	}
}

// callEvent appends an event of type typ for cv and returns it for the caller to fill in.
func (t *Tracker) callEvent(cv *conv, typ callbridge.SwitchEventType) *callbridge.SwitchEvent {
	t.out = append(t.out, callbridge.SwitchEvent{Type: typ, Time: t.ts, Tenant: cv.tenant, PBXCallID: cv.id})
	return &t.out[len(t.out)-1]
}

func (t *Tracker) emit(e callbridge.SwitchEvent) { t.out = append(t.out, e) }

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

// deadSet remembers the Uniqueids of the last channels hung up, so that events arriving
// after a Hangup in the same burst (README "Run-to-run variation") cannot recreate them.
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
