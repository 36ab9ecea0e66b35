package asterisk

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/callbridge/callbridge"
	"github.com/callbridge/callbridge/asterisk/ami"
)

// Capabilities lists the commands Execute carries out. Not supported: answer_call (Asterisk
// cannot make a SIP phone go off-hook) and hold_call/retrieve_call (AMI has no action that
// puts a PJSIP phone's call on hold the way the phone does; the phone's own Hold/Unhold are
// followed as events).
func (d *Driver) Capabilities() callbridge.Capabilities {
	return callbridge.Capabilities{
		callbridge.SwitchMakeCall:           true,
		callbridge.SwitchClearConnection:    true,
		callbridge.SwitchClearCall:          true,
		callbridge.SwitchSingleStepTransfer: true,
		callbridge.SwitchConsultationCall:   true,
		callbridge.SwitchTransferCall:       true,
		callbridge.SwitchConferenceCall:     true,
		callbridge.SwitchSetMemberState:     true,
	}
}

// Execute carries out cmd with AMI actions (see callbridge.Driver for the errors). Every
// value written into an action is checked first: targets with callbridge.CheckDialTarget,
// everything else with callbridge.CheckSwitchValue.
func (d *Driver) Execute(ctx context.Context, cmd callbridge.SwitchCommand) error {
	switch cmd.Type {
	case callbridge.SwitchAnswerCall:
		return callbridge.Errorf(callbridge.ENotSupported,
			"Asterisk cannot answer a SIP phone remotely; answer on the phone, or use auto-answer")
	case callbridge.SwitchHoldCall, callbridge.SwitchRetrieveCall:
		return callbridge.Errorf(callbridge.ENotSupported,
			"Asterisk AMI cannot put a phone's call on hold or take it off hold; use the hold key on the phone (callbridge follows it)")
	case callbridge.SwitchMakeCall:
		return d.makeCall(ctx, cmd)
	case callbridge.SwitchClearConnection:
		return d.clearConnection(ctx, cmd)
	case callbridge.SwitchClearCall:
		return d.clearCall(ctx, cmd)
	case callbridge.SwitchSingleStepTransfer:
		return d.transferTo(ctx, cmd, "BlindTransfer")
	case callbridge.SwitchConsultationCall:
		return d.transferTo(ctx, cmd, "Atxfer")
	case callbridge.SwitchTransferCall:
		return d.completeTransfer(ctx, cmd)
	case callbridge.SwitchConferenceCall:
		return d.conference(ctx, cmd)
	case callbridge.SwitchSetMemberState:
		return d.setMemberState(ctx, cmd)
	}
	return callbridge.Errorf(callbridge.ENotSupported, "command %q is not supported by the Asterisk driver", cmd.Type)
}

// makeCall is the agent-first click-to-call of the click-to-call recording: Originate rings
// the agent's phone (Channel PJSIP/<device>) and, once it answers, the agent's channel runs
// Exten = the number in the tenant's outbound context, which dials the customer. ChannelId
// makes the agent leg's Uniqueid and Linkedid known before any event, so the call_started it
// causes carries cmd.CorrelationID.
func (d *Driver) makeCall(ctx context.Context, cmd callbridge.SwitchCommand) error {
	if err := callbridge.CheckDialTarget("to", cmd.To); err != nil {
		return err
	}
	if !callbridge.ValidToken(string(cmd.Tenant)) {
		return callbridge.Errorf(callbridge.EInvalid, "tenant %q is not valid", cmd.Tenant)
	}
	channel, err := d.phoneInterface(cmd)
	if err != nil {
		return err
	}
	dialplan := d.cfg.OriginateContext(cmd.Tenant)
	if err := checkContext(dialplan); err != nil {
		return err
	}
	if err := callbridge.CheckSwitchValue("correlation_id", cmd.CorrelationID); err != nil {
		return err
	}
	vars, err := originateVars(cmd)
	if err != nil {
		return err
	}
	id := newUUID()
	fields := []ami.Field{
		{Key: "Channel", Value: channel},
		{Key: "Context", Value: dialplan},
		{Key: "Exten", Value: cmd.To},
		{Key: "Priority", Value: "1"},
		{Key: "CallerID", Value: `"Call: ` + cmd.To + `" <` + cmd.To + `>`},
		{Key: "Timeout", Value: strconv.FormatInt(d.cfg.OriginateTimeout.Milliseconds(), 10)},
		{Key: "Async", Value: "true"},
		{Key: "ChannelId", Value: id},
	}
	fields = append(fields, vars...)
	d.mu.Lock()
	d.tr.ExpectOriginate(id, cmd.CorrelationID, cmd.To)
	d.mu.Unlock()
	if _, err := d.do(ctx, ami.Action{Name: "Originate", Fields: fields}); err != nil {
		d.mu.Lock()
		d.tr.ForgetOriginate(id)
		d.mu.Unlock()
		return err
	}
	return nil
}

// originateVars are the Variable lines of a make_call: __CTI_TENANT (inherited by the
// customer leg, as in the click-to-call recording), then the command's data as inherited
// variables. Keys must be identifiers ([A-Za-z0-9_], at most 64).
func originateVars(cmd callbridge.SwitchCommand) ([]ami.Field, error) {
	out := []ami.Field{{Key: "Variable", Value: "__CTI_TENANT=" + string(cmd.Tenant)}}
	keys := make([]string, 0, len(cmd.Data))
	for k := range cmd.Data {
		keys = append(keys, k)
	}
	if len(keys) > 32 {
		return nil, callbridge.Errorf(callbridge.EInvalid, "make_call carries %d data keys; at most 32", len(keys))
	}
	slices.Sort(keys)
	for _, k := range keys {
		if !identifier(k) || strings.HasPrefix(k, "CTI_") {
			return nil, callbridge.Errorf(callbridge.EInvalid, "data key %q is not a usable Asterisk variable name", k)
		}
		v := cmd.Data[k]
		if err := callbridge.CheckSwitchValue("data "+k, v); err != nil {
			return nil, err
		}
		out = append(out, ami.Field{Key: "Variable", Value: "__" + k + "=" + v})
	}
	return out, nil
}

// phoneInterface is the dial string of the agent's phone: cmd.Interface when it names a
// device directly (PJSIP/1003), else PJSIP/<device>. A Local member interface
// (Local/2001@globex-agents/n) is a queue path, not the phone, so it is not originated.
func (d *Driver) phoneInterface(cmd callbridge.SwitchCommand) (string, error) {
	if err := callbridge.CheckDialTarget("device", string(cmd.Device)); err != nil {
		return "", err
	}
	if cmd.Interface != "" {
		if err := checkInterface(cmd.Interface); err != nil {
			return "", err
		}
		if techDevice(cmd.Interface) != "" {
			return cmd.Interface, nil
		}
	}
	return "PJSIP/" + string(cmd.Device), nil
}

func (d *Driver) leg(cmd callbridge.SwitchCommand, callID string) (string, error) {
	if err := callbridge.CheckSwitchValue("pbx_call_id", callID); err != nil {
		return "", err
	}
	if err := callbridge.CheckSwitchValue("device", string(cmd.Device)); err != nil {
		return "", err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	ch, err := d.tr.Leg(callID, cmd.Device)
	if err != nil {
		return "", err
	}
	return ch, callbridge.CheckSwitchValue("channel", ch)
}

// clearConnection hangs up the device's channel in the call (Hangup, Cause 16). An Atxfer
// transferer has a single channel in both the original call and its consultation: leaving
// the consultation hangs up the consulted party instead (Asterisk then gives the transferer
// back the held caller), and leaving the original call is refused, since hanging up would
// complete the transfer.
func (d *Driver) clearConnection(ctx context.Context, cmd callbridge.SwitchCommand) error {
	ch, err := d.leg(cmd, cmd.PBXCallID)
	if err != nil {
		return err
	}
	d.mu.Lock()
	consult, consulting := d.tr.Consulting(cmd.PBXCallID, cmd.Device)
	d.mu.Unlock()
	switch {
	case consulting && consult == cmd.PBXCallID:
		return d.clearCall(ctx, cmd)
	case consulting:
		return callbridge.Errorf(callbridge.EConflict,
			"device %s is consulting in call %s; transfer the call or end the consultation first", cmd.Device, consult)
	}
	return d.hangup(ctx, ch)
}

func (d *Driver) hangup(ctx context.Context, ch string) error {
	_, err := d.do(ctx, ami.Action{Name: "Hangup", Fields: []ami.Field{{Key: "Channel", Value: ch}, {Key: "Cause", Value: "16"}}})
	return err
}

// clearCall hangs up every party's channel (for a consultation, every party but the
// consulting device: see Tracker.Legs). A channel that is already gone ("No such channel")
// is not an error as long as one hangup was accepted.
func (d *Driver) clearCall(ctx context.Context, cmd callbridge.SwitchCommand) error {
	if err := callbridge.CheckSwitchValue("pbx_call_id", cmd.PBXCallID); err != nil {
		return err
	}
	d.mu.Lock()
	legs, err := d.tr.Legs(cmd.PBXCallID)
	d.mu.Unlock()
	if err != nil {
		return err
	}
	var first error
	ok := false
	for _, ch := range legs {
		if err := d.hangup(ctx, ch); err != nil {
			if first == nil {
				first = err
			}
			if callbridge.ErrorCode(err) == callbridge.EUnavailable || ctx.Err() != nil {
				return err
			}
			continue
		}
		ok = true
	}
	if ok || first == nil {
		return nil
	}
	return first
}

// transferTo sends BlindTransfer (single_step_transfer) or Atxfer (consultation_call) on the
// acting agent's channel, with Context = TransferContext and Exten = cmd.To, exactly as in
// the blind-transfer and attended-transfer-b recordings. There is no fallback to Redirect:
// a Redirect of the partner moves the caller without the BlindTransfer event, so callbridge
// would not see a transfer; Asterisk's refusal is reported instead.
func (d *Driver) transferTo(ctx context.Context, cmd callbridge.SwitchCommand, action string) error {
	if err := callbridge.CheckDialTarget("to", cmd.To); err != nil {
		return err
	}
	ch, err := d.leg(cmd, cmd.PBXCallID)
	if err != nil {
		return err
	}
	_, err = d.do(ctx, ami.Action{Name: action, Fields: []ami.Field{
		{Key: "Channel", Value: ch},
		{Key: "Context", Value: d.cfg.TransferContext},
		{Key: "Exten", Value: cmd.To},
	}})
	return err
}

// consultLeg returns the consulting agent's channel for transfer_call and conference_call,
// checking that ConsultPBXCallID is a consultation of PBXCallID when the tracker knows it.
func (d *Driver) consultLeg(cmd callbridge.SwitchCommand) (string, error) {
	if cmd.ConsultPBXCallID == "" {
		return "", callbridge.Errorf(callbridge.EInvalid, "%s needs the consultation call", cmd.Type)
	}
	d.mu.Lock()
	of, known := d.tr.ConsultOf(cmd.ConsultPBXCallID)
	d.mu.Unlock()
	if known && cmd.PBXCallID != "" && of != cmd.PBXCallID {
		return "", callbridge.Errorf(callbridge.EInvalid, "call %q is not a consultation of %q", cmd.ConsultPBXCallID, cmd.PBXCallID)
	}
	ch, err := d.leg(cmd, cmd.ConsultPBXCallID)
	if err != nil && cmd.PBXCallID != "" {
		ch, err = d.leg(cmd, cmd.PBXCallID)
	}
	return ch, err
}

// completeTransfer completes an Atxfer consultation by hanging up the consulting agent's
// channel: Asterisk then joins the held caller and the consulted party (attended-transfer-b:
// BYE from phone 1003, then AttendedTransfer DestType Bridge).
func (d *Driver) completeTransfer(ctx context.Context, cmd callbridge.SwitchCommand) error {
	ch, err := d.consultLeg(cmd)
	if err != nil {
		return err
	}
	return d.hangup(ctx, ch)
}

// conference turns an Atxfer consultation into a three-way call: AMI has no action for it,
// so the atxferthreeway code (default *3) is injected into the consulting agent's channel as
// received DTMF with PlayDTMF Receive: true, one digit at a time (conference-threeway).
func (d *Driver) conference(ctx context.Context, cmd callbridge.SwitchCommand) error {
	digits := d.cfg.ThreewayDigits
	for _, c := range digits {
		if !strings.ContainsRune("0123456789*#ABCD", c) {
			return callbridge.Errorf(callbridge.EInvalid, "threeway digits %q: only 0-9 * # A-D", digits)
		}
	}
	ch, err := d.consultLeg(cmd)
	if err != nil {
		return err
	}
	for i, c := range digits {
		if i > 0 {
			t := time.NewTimer(d.cfg.DTMFGap)
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
		}
		if _, err := d.do(ctx, ami.Action{Name: "PlayDTMF", Fields: []ami.Field{
			{Key: "Channel", Value: ch}, {Key: "Digit", Value: string(c)}, {Key: "Receive", Value: "true"},
		}}); err != nil {
			return err
		}
	}
	return nil
}

// setMemberState maps member add/remove/pause onto QueueAdd, QueueRemove and QueuePause
// (agent-state recording). "Already there" on QueueAdd and "Not there" on QueueRemove are
// what Asterisk 22 answers when the membership already is as asked, so they count as success.
func (d *Driver) setMemberState(ctx context.Context, cmd callbridge.SwitchCommand) error {
	iface, stateIface, err := d.memberInterface(cmd)
	if err != nil {
		return err
	}
	for _, q := range cmd.Queues {
		if err := checkName("queue", string(q)); err != nil {
			return err
		}
	}
	if err := callbridge.CheckSwitchValue("reason", cmd.Reason); err != nil {
		return err
	}
	if err := callbridge.CheckSwitchValue("member_name", cmd.MemberName); err != nil {
		return err
	}
	queues := cmd.Queues
	switch cmd.Action {
	case callbridge.MemberAdd:
		if len(queues) == 0 {
			return callbridge.Errorf(callbridge.EInvalid, "member add needs at least one queue")
		}
		for _, q := range queues {
			f := []ami.Field{{Key: "Queue", Value: string(q)}, {Key: "Interface", Value: iface}}
			if cmd.MemberName != "" {
				f = append(f, ami.Field{Key: "MemberName", Value: cmd.MemberName})
			}
			f = append(f, ami.Field{Key: "StateInterface", Value: stateIface},
				ami.Field{Key: "Penalty", Value: "0"}, ami.Field{Key: "Paused", Value: strconv.FormatBool(cmd.Paused)})
			if cmd.Paused && cmd.Reason != "" {
				f = append(f, ami.Field{Key: "Reason", Value: cmd.Reason})
			}
			if err := d.idempotent(ctx, ami.Action{Name: "QueueAdd", Fields: f}, "Already there"); err != nil {
				return err
			}
		}
	case callbridge.MemberRemove:
		if len(queues) == 0 {
			d.mu.Lock()
			queues = d.tr.MemberQueues(cmd.Device)
			d.mu.Unlock()
		}
		for _, q := range queues {
			f := []ami.Field{{Key: "Queue", Value: string(q)}, {Key: "Interface", Value: iface}}
			if err := d.idempotent(ctx, ami.Action{Name: "QueueRemove", Fields: f}, "Not there"); err != nil {
				return err
			}
		}
	case callbridge.MemberPause:
		pause := func(q callbridge.QueueName) error {
			var f []ami.Field
			if q != "" {
				f = append(f, ami.Field{Key: "Queue", Value: string(q)})
			}
			f = append(f, ami.Field{Key: "Interface", Value: iface}, ami.Field{Key: "Paused", Value: strconv.FormatBool(cmd.Paused)})
			if cmd.Paused && cmd.Reason != "" {
				f = append(f, ami.Field{Key: "Reason", Value: cmd.Reason})
			}
			_, err := d.do(ctx, ami.Action{Name: "QueuePause", Fields: f})
			return err
		}
		if len(queues) == 0 {
			// Without Queue, Asterisk pauses the interface in every queue it is in and sends
			// one QueueMemberPause per queue (agent-state, PJSIP/1001).
			return pause("")
		}
		for _, q := range queues {
			if err := pause(q); err != nil {
				return err
			}
		}
	default:
		return callbridge.Errorf(callbridge.EInvalid, "member action %q: want add, remove or pause", cmd.Action)
	}
	return nil
}

// memberInterface is the queue-member interface of the command's device: cmd.Interface
// (from provisioning), else what Asterisk last reported for the device, else PJSIP/<device>.
// The state interface is PJSIP/<device> for a Local interface (FreePBX style, as in
// globex-sales), else the interface itself.
func (d *Driver) memberInterface(cmd callbridge.SwitchCommand) (string, string, error) {
	if err := callbridge.CheckDialTarget("device", string(cmd.Device)); err != nil {
		return "", "", err
	}
	iface := cmd.Interface
	if iface == "" {
		d.mu.Lock()
		iface = d.tr.MemberInterface(cmd.Device, "")
		d.mu.Unlock()
	}
	if iface == "" {
		iface = "PJSIP/" + string(cmd.Device)
	}
	if err := checkInterface(iface); err != nil {
		return "", "", err
	}
	state := iface
	if techDevice(iface) == "" {
		state = "PJSIP/" + string(cmd.Device)
	}
	return iface, state, nil
}

// idempotent runs a and treats the refusal whose message contains ok as success.
func (d *Driver) idempotent(ctx context.Context, a ami.Action, ok string) error {
	resp, err := d.do(ctx, a)
	if err != nil && callbridge.ErrorCode(err) == callbridge.ESwitchRejected &&
		strings.Contains(resp.Get("Message"), ok) {
		return nil
	}
	return err
}

// checkInterface accepts a tech/resource dial string such as PJSIP/1001 or
// Local/2001@globex-agents/n: no CR/LF/NUL, no spaces, and no dial-string separators
// (& , | ( ) ; ^ $ { }) that would dial more than one device or run an expression.
func checkInterface(s string) error {
	if err := callbridge.CheckSwitchValue("interface", s); err != nil {
		return err
	}
	tech, res, ok := strings.Cut(s, "/")
	if !ok || tech == "" || res == "" || len(s) > 128 {
		return callbridge.Errorf(callbridge.EInvalid, "interface %q: want tech/resource, e.g. PJSIP/1001", s)
	}
	for _, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.ContainsRune("+*#_.@/-", c):
		default:
			return callbridge.Errorf(callbridge.EInvalid, "interface %q contains %q", s, c)
		}
	}
	return nil
}

// checkContext accepts a dialplan context name: [A-Za-z0-9_.-], 1-80 characters.
func checkContext(s string) error { return checkName("context", s) }

func checkName(what, s string) error {
	if err := callbridge.CheckSwitchValue(what, s); err != nil {
		return err
	}
	if s == "" || len(s) > 80 {
		return callbridge.Errorf(callbridge.EInvalid, "%s %q: 1-80 characters", what, s)
	}
	for _, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-', c == '.':
		default:
			return callbridge.Errorf(callbridge.EInvalid, "%s %q contains %q", what, s, c)
		}
	}
	return nil
}

func identifier(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// newUUID returns a random (version 4) UUID, the form of ChannelId in the click-to-call
// recording ("9f8984fd-9c27-4827-b3d2-15c44c3c6841").
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand, Go 1.24+)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
