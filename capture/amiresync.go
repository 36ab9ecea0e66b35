package capture

import (
	"slices"

	"github.com/callbridge/callbridge/asterisk/ami"
)

// AMIChannelsAt rebuilds what Asterisk 22 would list for CoreShowChannels after the frames
// msgs of a recording (a resync at that moment, for tests and replays of a restart): for
// every channel not hung up, the channel fields of the last event that was about it (the same
// fields as a CoreShowChannel item: Channel … Linkedid, ChanVariable), its BridgeId from
// BridgeEnter/BridgeLeave, and Application/ApplicationData from its last Newexten.
func AMIChannelsAt(msgs []ami.Message) []ami.Message {
	type state struct {
		fields []ami.Field
		bridge string
		app    [2]string
	}
	live := map[string]*state{}
	var order []string
	chanKeys := []string{"Channel", "ChannelState", "ChannelStateDesc", "CallerIDNum", "CallerIDName",
		"ConnectedLineNum", "ConnectedLineName", "Language", "AccountCode", "Context", "Exten",
		"Priority", "Uniqueid", "Linkedid", "ChanVariable"}
	for _, m := range msgs {
		uid := m.Get("Uniqueid")
		ev := m.Event()
		if uid == "" || m.Get("Linkedid") == "" || ev == "Cdr" || ev == "CoreShowChannel" {
			continue // only events with a whole channel section (not OriginateResponse)
		}
		if ev == "Hangup" {
			delete(live, uid)
			continue
		}
		st := live[uid]
		if st == nil {
			if ev != "Newchannel" {
				continue
			}
			st = &state{}
			live[uid] = st
			order = append(order, uid)
		}
		st.fields = st.fields[:0]
		for _, f := range m.Fields {
			if slices.Contains(chanKeys, f.Key) {
				st.fields = append(st.fields, f)
			}
		}
		switch ev {
		case "BridgeEnter":
			st.bridge = m.Get("BridgeUniqueid")
		case "BridgeLeave":
			st.bridge = ""
		case "Newexten":
			st.app = [2]string{m.Get("Application"), m.Get("AppData")}
		}
	}
	var out []ami.Message
	for _, uid := range order {
		st := live[uid]
		if st == nil {
			continue
		}
		m := ami.Message{Fields: []ami.Field{{Key: "Event", Value: "CoreShowChannel"}}}
		m.Fields = append(m.Fields, st.fields...)
		m.Fields = append(m.Fields, ami.Field{Key: "Application", Value: st.app[0]},
			ami.Field{Key: "ApplicationData", Value: st.app[1]}, ami.Field{Key: "BridgeId", Value: st.bridge})
		out = append(out, m)
	}
	return out
}

// AMIQueueEntriesAt rebuilds the QueueEntry items of QueueStatus after the frames msgs:
// callers that joined a queue and have not left.
func AMIQueueEntriesAt(msgs []ami.Message) []ami.Message {
	in := map[string]ami.Message{}
	var order []string
	for _, m := range msgs {
		switch m.Event() {
		case "QueueCallerJoin":
			uid := m.Get("Uniqueid")
			in[uid] = ami.Message{Fields: []ami.Field{{Key: "Event", Value: "QueueEntry"},
				{Key: "Queue", Value: m.Get("Queue")}, {Key: "Uniqueid", Value: uid}}}
			order = append(order, uid)
		case "QueueCallerLeave", "QueueCallerAbandon", "Hangup":
			delete(in, m.Get("Uniqueid"))
		}
	}
	var out []ami.Message
	for _, uid := range order {
		if m, ok := in[uid]; ok {
			out = append(out, m)
		}
	}
	return out
}
