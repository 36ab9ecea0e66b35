package esl_test

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/callbridge/callbridge/freeswitch/esl"
)

// TestReaderSplitsRecordedStreams joins every received frame of every recording, as the
// README says the byte stream was, and checks that the Reader gives back exactly the frames.
func TestReaderSplitsRecordedStreams(t *testing.T) {
	for _, path := range eslRecordings(t) {
		frames := received(readAll(t, path))
		r := esl.NewReader(strings.NewReader(strings.Join(frames, "")))
		for i, want := range frames {
			f, err := r.ReadFrame()
			if err != nil {
				t.Fatalf("%s frame %d: %v", path, i, err)
			}
			if f.Raw != want {
				t.Fatalf("%s frame %d: raw differs\n got %q\nwant %q", path, i, truncate(f.Raw), truncate(want))
			}
		}
		if _, err := r.ReadFrame(); !errors.Is(err, io.EOF) {
			t.Fatalf("%s: after the last frame err = %v, want EOF", path, err)
		}
	}
}

func truncate(s string) string {
	if len(s) > 200 {
		return s[:200] + "…"
	}
	return s
}

func TestReaderFraming(t *testing.T) {
	cases := []struct {
		name   string
		stream string
		types  []string
		bodies []string
		err    error
	}{
		{
			name:   "api response without trailing newline (agent get status, fs-agent-state)",
			stream: "Content-Type: api/response\nContent-Length: 9\n\nAvailable" + "Content-Type: command/reply\nReply-Text: +OK bye\n\n",
			types:  []string{esl.TypeAPIResponse, esl.TypeCommandReply},
			bodies: []string{"Available", ""},
		},
		{
			name:   "blank lines between frames are skipped",
			stream: "\n\nContent-Type: auth/request\n\n\nContent-Type: command/reply\nReply-Text: +OK accepted\n\n",
			types:  []string{esl.TypeAuthRequest, esl.TypeCommandReply},
			bodies: []string{"", ""},
		},
		{
			name:   "body containing empty lines",
			stream: "Content-Type: api/response\nContent-Length: 5\n\na\n\nb\n\n",
			types:  []string{esl.TypeAPIResponse},
			bodies: []string{"a\n\nb\n"},
			err:    nil,
		},
		{
			name:   "stream ends inside a body",
			stream: "Content-Type: api/response\nContent-Length: 10\n\nabc",
			err:    io.ErrUnexpectedEOF,
		},
		{
			name:   "stream ends inside a header block",
			stream: "Content-Type: api/resp",
			err:    io.ErrUnexpectedEOF,
		},
		{
			name:   "bad Content-Length",
			stream: "Content-Type: api/response\nContent-Length: ten\n\n",
			err:    esl.ErrMalformedFrame,
		},
		{
			name:   "negative Content-Length",
			stream: "Content-Type: api/response\nContent-Length: -1\n\n",
			err:    esl.ErrMalformedFrame,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := esl.NewReader(strings.NewReader(tc.stream))
			for i := range tc.types {
				f, err := r.ReadFrame()
				if err != nil {
					t.Fatalf("frame %d: %v", i, err)
				}
				if f.ContentType() != tc.types[i] || f.Body != tc.bodies[i] {
					t.Fatalf("frame %d = %q %q, want %q %q", i, f.ContentType(), f.Body, tc.types[i], tc.bodies[i])
				}
			}
			_, err := r.ReadFrame()
			want := tc.err
			if want == nil {
				want = io.EOF
			}
			if !errors.Is(err, want) {
				t.Fatalf("err = %v, want %v", err, want)
			}
		})
	}
}

// TestReaderDropsOversizedBody: a body over the limit is skipped whole, so the next frame is
// read in step.
func TestReaderDropsOversizedBody(t *testing.T) {
	big := esl.MaxBodyBytes + 1
	var b bytes.Buffer
	b.WriteString("Content-Type: api/response\nContent-Length: ")
	b.WriteString(itoa(big))
	b.WriteString("\n\n")
	b.Write(bytes.Repeat([]byte("x"), big))
	b.WriteString("Content-Type: command/reply\nReply-Text: +OK\n\n")
	r := esl.NewReader(&b)
	f, err := r.ReadFrame()
	if !errors.Is(err, esl.ErrFrameTooLarge) || f.ContentType() != esl.TypeAPIResponse {
		t.Fatalf("first frame: %q, %v; want api/response headers with ErrFrameTooLarge", f.ContentType(), err)
	}
	f, err = r.ReadFrame()
	if err != nil || f.Get("Reply-Text") != "+OK" {
		t.Fatalf("next frame: %+v, %v", f, err)
	}
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var d []byte
	for ; n > 0; n /= 10 {
		d = append([]byte{byte('0' + n%10)}, d...)
	}
	return string(d)
}
