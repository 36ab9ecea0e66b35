package asterisk_test

import (
	"strings"
	"testing"

	"github.com/callbridge/callbridge/asterisk"
	"github.com/callbridge/callbridge/asterisk/ami"
	"github.com/callbridge/callbridge/capture"
)

// FuzzTracker feeds arbitrary AMI frames (separated by a blank line) to a Tracker, then a
// resync of the same frames: it must never panic, whatever the order, the missing fields or
// the garbage. The seeds are the frames of the recordings.
func FuzzTracker(f *testing.F) {
	for _, name := range []string{"attended-transfer-b", "inbound-agent-hangup", "click-to-call-busy", "resync", "telset-pause"} {
		recs, err := capture.ReadFile(recording(f, name))
		if err != nil {
			f.Fatal(err)
		}
		var b strings.Builder
		for i, r := range recs {
			if r.Dir != capture.DirIn || i == 0 {
				continue
			}
			b.WriteString(r.Raw)
			if b.Len() > 16<<10 {
				f.Add(b.String())
				b.Reset()
			}
		}
		f.Add(b.String())
	}
	f.Add("Event: Hangup\r\nUniqueid: 1\r\nLinkedid: 1\r\nChannel: Local/x;1\r\n\r\nEvent: DialBegin\r\nDestUniqueid: 1\r\n\r\n")
	f.Add("Event: AttendedTransfer\r\nResult: Success\r\nTransfereeUniqueid: a\r\nTransferTargetUniqueid: a\r\n\r\n")
	f.Fuzz(func(t *testing.T, s string) {
		tr := asterisk.NewTracker(asterisk.TrackerConfig{})
		var msgs []ami.Message
		for _, frame := range strings.Split(s, "\r\n\r\n") {
			m := ami.ParseMessage(frame)
			msgs = append(msgs, m)
			tr.Feed(m)
		}
		tr.Snapshot(msgs, msgs, msgs)
		for _, m := range msgs {
			tr.Feed(m)
		}
		for _, id := range tr.OpenCalls() {
			_, _ = tr.Legs(id)
			_, _ = tr.Leg(id, "1001")
		}
	})
}
