package engine_test

import (
	"testing"
	"time"

	"github.com/callbridge/callbridge"
)

// FuzzSwitchEvents decodes the input into a sequence of switch events over a few calls and
// devices (four bytes per event) and feeds them: no input may panic, and every output must be
// well-formed. An empty snapshot at the end must leave no call and no busy agent.
func FuzzSwitchEvents(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 3, 0, 1, 0, 4, 0, 1, 0, 12, 0, 0, 0})
	f.Add([]byte{0, 1, 0, 0, 0, 2, 0, 1, 10, 1, 1, 2, 11, 1, 1, 2, 4, 2, 3, 0})
	f.Add([]byte{13, 0, 1, 1, 13, 0, 1, 0, 3, 0, 1, 0, 12, 0, 0, 0, 15, 0, 0, 0})
	typesList := []callbridge.SwitchEventType{
		callbridge.SwitchCallStarted, callbridge.SwitchDataUpdated, callbridge.SwitchQueued, callbridge.SwitchAlerting,
		callbridge.SwitchConnected, callbridge.SwitchHeld, callbridge.SwitchRetrieved, callbridge.SwitchFailed,
		callbridge.SwitchConnectionCleared, callbridge.SwitchDequeued, callbridge.SwitchTransferred, callbridge.SwitchConferenced,
		callbridge.SwitchCallCleared, callbridge.SwitchMemberState, callbridge.SwitchDeviceState, callbridge.SwitchSnapshot,
	}
	devices := []callbridge.DeviceID{caller, "1001", "1002", "2001", "1003", "", "+15550000001", "2002"}
	pbxs := []string{"a", "b", "c", ""}
	queues := []callbridge.QueueName{"acme-support", "acme-load", "globex-sales", ""}
	f.Fuzz(func(t *testing.T, in []byte) {
		fx := newFixture(t)
		for i := 0; i+4 <= len(in) && i < 4*500; i += 4 {
			b0, b1, b2, b3 := in[i], in[i+1], in[i+2], in[i+3]
			ev := callbridge.SwitchEvent{
				Type:      typesList[int(b0)%len(typesList)],
				PBXCallID: pbxs[int(b1)%len(pbxs)],
				Device:    devices[int(b2)%len(devices)],
				External:  b3&1 != 0,
				Queue:     queues[int(b3>>1)%len(queues)],
				LoggedOn:  b3&8 == 0,
				Paused:    b3&16 != 0,
				Data:      map[string]string{"IVR_REASON": "x", "IVR_ACCOUNT": ""},
				ANI:       caller,
				DNIS:      []string{didAcme, didGlob, "999"}[int(b3>>5)%3],
			}
			switch ev.Type {
			case callbridge.SwitchCallStarted:
				ev.Direction = []callbridge.Direction{callbridge.DirInbound, callbridge.DirOutbound, callbridge.DirInternal, ""}[int(b3>>2)%4]
				if b3&32 != 0 {
					ev.ConsultOf = pbxs[int(b3>>6)%len(pbxs)]
				}
			case callbridge.SwitchTransferred, callbridge.SwitchConferenced:
				ev.TransferringDevice = ev.Device
				ev.TransferredTo = devices[int(b3)%len(devices)]
				ev.ConsultPBXCallID = pbxs[int(b3>>2)%len(pbxs)]
			case callbridge.SwitchMemberState:
				ev.Reason = []string{"", "lunch", callbridge.ReasonWrapUp}[int(b3>>5)%3]
			case callbridge.SwitchSnapshot:
				ev.Snapshot = &callbridge.Snapshot{
					Calls: []callbridge.SnapshotCall{{PBXCallID: ev.PBXCallID, DNIS: ev.DNIS, ConsultOf: pbxs[int(b3)%len(pbxs)],
						Parties: []callbridge.SnapshotParty{{Device: ev.Device, State: callbridge.ConnHeld}}}},
					Members: []callbridge.SnapshotMember{{Device: ev.Device, Queue: ev.Queue, Paused: ev.Paused, Reason: callbridge.ReasonWrapUp}},
				}
			}
			fx.wait(time.Duration(b3) * 100 * time.Millisecond)
			fx.ev(ev)
			if b0&0x80 != 0 {
				fx.tick()
			}
		}
		fx.ev(snapshot(callbridge.Snapshot{}))
		for _, tn := range []callbridge.TenantID{acme, globex} {
			if cs := fx.e.Calls(tn); len(cs) != 0 {
				t.Fatalf("calls after an empty snapshot: %+v", cs)
			}
			for _, a := range fx.e.Agents(tn) {
				if a.State != callbridge.AgentLoggedOut {
					t.Fatalf("agent after an empty snapshot: %+v", a)
				}
			}
		}
	})
}
