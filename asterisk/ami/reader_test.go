package ami_test

import (
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/callbridge/callbridge/asterisk/ami"
	"github.com/callbridge/callbridge/internal/fixtures"
)

// Every "in" frame of every recording comes back exactly, in order, from the joined stream.
func TestReaderSplitsEveryFixtureFrameExactly(t *testing.T) {
	for _, path := range fixtures.Files(t, "asterisk-22", "*.ami.jsonl") {
		t.Run(filepath.Base(path), func(t *testing.T) {
			frames := inFrames(loadFixture(t, path))
			stream := strings.Join(frames, "")
			// One byte per read exercises every partial-read path of the buffer.
			r := ami.NewReader(iotest.OneByteReader(strings.NewReader(stream)))
			banner, err := r.ReadBanner()
			if err != nil || banner != frames[0] {
				t.Fatalf("ReadBanner = %q, %v; want %q", banner, err, frames[0])
			}
			for i, want := range frames[1:] {
				got, err := r.ReadFrame()
				if err != nil {
					t.Fatalf("frame %d: %v", i+1, err)
				}
				if got != want {
					t.Fatalf("frame %d = %q, want %q", i+1, got, want)
				}
			}
			if _, err := r.ReadFrame(); !errors.Is(err, io.EOF) {
				t.Fatalf("after the last frame: err = %v, want io.EOF", err)
			}
		})
	}
}

func TestReaderAcceptsBareLF(t *testing.T) {
	r := ami.NewReader(strings.NewReader("Asterisk Call Manager/11.0.0\n" +
		"Event: Hangup\nChannel: PJSIP/1001-00000001\nCause: 16\n\n" +
		"Response: Success\r\nActionID: a1\nMessage: mixed\r\n\r\n"))
	if b, err := r.ReadBanner(); err != nil || b != "Asterisk Call Manager/11.0.0\n" {
		t.Fatalf("banner %q, %v", b, err)
	}
	m, err := r.ReadMessage()
	if err != nil || m.Event() != "Hangup" || m.Get("Cause") != "16" || len(m.Fields) != 3 {
		t.Fatalf("first message = %+v, %v", m, err)
	}
	m, err = r.ReadMessage()
	if err != nil || m.Response() != "Success" || m.ActionID() != "a1" || m.Get("Message") != "mixed" {
		t.Fatalf("second message = %+v, %v", m, err)
	}
}

// app_queue.c ends the QueueRule response with "\r\n\r\n" after the last field's CRLF: the
// extra empty line belongs to no frame.
func TestReaderSkipsEmptyLinesBetweenFrames(t *testing.T) {
	r := ami.NewReader(strings.NewReader("\r\n" +
		"Response: Success\r\nActionID: r1\r\nRuleList: slow\r\nRule: 60,+10,+0\r\n\r\n\r\n" +
		"Event: FullyBooted\r\n\r\n"))
	raw, err := r.ReadFrame()
	if err != nil || raw != "Response: Success\r\nActionID: r1\r\nRuleList: slow\r\nRule: 60,+10,+0\r\n\r\n" {
		t.Fatalf("frame 1 = %q, %v", raw, err)
	}
	raw, err = r.ReadFrame()
	if err != nil || raw != "Event: FullyBooted\r\n\r\n" {
		t.Fatalf("frame 2 = %q, %v", raw, err)
	}
}

// The legacy Command form (Asterisk ≤ 13): raw output, possibly with empty lines, ended by
// "--END COMMAND--" and an empty line.
func TestReaderLegacyCommandOutput(t *testing.T) {
	legacy := "Response: Follows\r\nPrivilege: Command\r\nActionID: c7\r\n" +
		"Channel              Location\n" +
		"PJSIP/1001-00000001  s@default:1\n" +
		"\n" +
		"1 active channel\n" +
		"--END COMMAND--\r\n\r\n"
	r := ami.NewReader(strings.NewReader(legacy + "Event: Next\r\n\r\n"))
	raw, err := r.ReadFrame()
	if err != nil || raw != legacy {
		t.Fatalf("frame = %q, %v", raw, err)
	}
	m := ami.ParseMessage(raw)
	if m.Response() != "Follows" || m.ActionID() != "c7" || m.Get("Privilege") != "Command" {
		t.Fatalf("headers = %+v", m.Fields)
	}
	want := []string{"Channel              Location", "PJSIP/1001-00000001  s@default:1", "", "1 active channel"}
	if got := m.Values("Output"); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("Output = %q, want %q", got, want)
	}
	if err := (ami.Response{Message: m}).Err(); err != nil {
		t.Fatalf("Follows must be a success, got %v", err)
	}
	if m, err := r.ReadMessage(); err != nil || m.Event() != "Next" {
		t.Fatalf("next frame = %+v, %v", m, err)
	}
}

// Asterisk 22 answers Command with one frame of repeated Output fields (resync.ami.jsonl).
func TestReaderAsterisk22CommandOutput(t *testing.T) {
	var found bool
	for _, raw := range inFrames(loadFixture(t, "resync.ami.jsonl")) {
		m := ami.ParseMessage(raw)
		if m.Get("Message") != "Command output follows" {
			continue
		}
		found = true
		out := m.Values("Output")
		if len(out) < 2 {
			t.Fatalf("Output lines = %q", out)
		}
		if strings.Contains(raw, "--END COMMAND--") {
			t.Fatal("Asterisk 22 output has no --END COMMAND--")
		}
	}
	if !found {
		t.Fatal("no Command response in resync.ami.jsonl")
	}
}

func TestReaderFrameTooLarge(t *testing.T) {
	big := "Event: Huge\r\n" + strings.Repeat("Output: "+strings.Repeat("x", 1000)+"\r\n", 1100) + "\r\n"
	oneLine := "Event: OneLine\r\nData: " + strings.Repeat("y", ami.MaxFrameSize+10) + "\r\n\r\n"
	r := ami.NewReader(strings.NewReader(big + "Event: After\r\n\r\n" + oneLine + "Event: Last\r\n\r\n"))
	for _, want := range []string{"", "After", "", "Last"} {
		m, err := r.ReadMessage()
		if want == "" {
			if !errors.Is(err, ami.ErrFrameTooLarge) {
				t.Fatalf("err = %v, want ErrFrameTooLarge", err)
			}
			continue
		}
		if err != nil || m.Event() != want {
			t.Fatalf("got %q, %v; want event %s", m.Event(), err, want)
		}
	}
}

func TestReaderEOF(t *testing.T) {
	if _, err := ami.NewReader(strings.NewReader("")).ReadFrame(); !errors.Is(err, io.EOF) {
		t.Errorf("empty stream: %v, want io.EOF", err)
	}
	if _, err := ami.NewReader(strings.NewReader("\r\n\r\n")).ReadFrame(); !errors.Is(err, io.EOF) {
		t.Errorf("only empty lines: %v, want io.EOF", err)
	}
	if _, err := ami.NewReader(strings.NewReader("Event: Cut\r\nChannel: PJSIP/1")).ReadFrame(); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("cut frame: %v, want io.ErrUnexpectedEOF", err)
	}
	if _, err := ami.NewReader(strings.NewReader("Asterisk Call Man")).ReadBanner(); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("cut banner: %v, want io.ErrUnexpectedEOF", err)
	}
}

func TestReadBannerRefusesOtherProtocols(t *testing.T) {
	for _, in := range []string{
		"Content-Type: auth/request\n\n", // FreeSWITCH ESL
		"SSH-2.0-OpenSSH_9.6\r\n",
		"HTTP/1.1 400 Bad Request\r\n\r\n",
	} {
		if b, err := ami.NewReader(strings.NewReader(in)).ReadBanner(); err == nil {
			t.Errorf("ReadBanner(%q) = %q, want an error", in, b)
		}
	}
	if _, err := ami.NewReader(strings.NewReader(strings.Repeat("A", 5000) + "\r\n")).ReadBanner(); err == nil {
		t.Error("a 5000-byte banner line was accepted")
	}
}
