package capture_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/callbridge/callbridge/asterisk/ami"
	"github.com/callbridge/callbridge/capture"
	"github.com/callbridge/callbridge/internal/fixtures"
	"github.com/callbridge/callbridge/internal/testenv"
)

func loadFixture(t testing.TB, name string) []capture.Record {
	t.Helper()
	path := name
	if !filepath.IsAbs(name) {
		path = filepath.Join(fixtures.Dir(t, "asterisk-22"), name)
	}
	recs, err := capture.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// startAMI starts a replay server on 127.0.0.1 and closes it when the test ends.
func startAMI(t *testing.T, scripts []capture.Script, opts capture.ServerOptions) *capture.AMIServer {
	t.Helper()
	s := capture.NewAMIServer(scripts, opts)
	if err := s.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// rawClient is a plain TCP client that reads AMI frames.
type rawClient struct {
	t  *testing.T
	nc net.Conn
	rd *ami.Reader
}

func dialRaw(t *testing.T, addr string) *rawClient {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(testenv.Patience))
	return &rawClient{t: t, nc: nc, rd: ami.NewReader(nc)}
}

func (c *rawClient) send(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.nc, s); err != nil {
		c.t.Fatal(err)
	}
}

func (c *rawClient) banner() string {
	c.t.Helper()
	b, err := c.rd.ReadBanner()
	if err != nil {
		c.t.Fatal(err)
	}
	return b
}

func (c *rawClient) frame() string {
	c.t.Helper()
	raw, err := c.rd.ReadFrame()
	if err != nil {
		c.t.Fatalf("read frame: %v", err)
	}
	return raw
}

// expectEOF reads on and fails unless the server closes the connection.
func (c *rawClient) expectEOF() {
	c.t.Helper()
	if raw, err := c.rd.ReadFrame(); !errors.Is(err, io.EOF) {
		c.t.Fatalf("got %q, %v; want the connection closed", raw, err)
	}
}

// readN reads exactly n bytes.
func (c *rawClient) readN(n int) string {
	c.t.Helper()
	buf := make([]byte, n)
	if _, err := io.ReadFull(c.nc, buf); err != nil {
		c.t.Fatalf("read %d bytes: %v (got %q)", n, err, truncate(string(buf), 200))
	}
	return string(buf)
}

func waitClosed(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(testenv.Patience):
		t.Fatalf("%s: not closed", what)
	}
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// firstDiff describes where two byte streams differ.
func firstDiff(got, want string) string {
	n := min(len(got), len(want))
	for i := 0; i < n; i++ {
		if got[i] != want[i] {
			lo := max(0, i-60)
			return fmt.Sprintf("at byte %d: got %q, want %q", i, got[lo:min(len(got), i+60)], want[lo:min(len(want), i+60)])
		}
	}
	return fmt.Sprintf("lengths %d and %d", len(got), len(want))
}
