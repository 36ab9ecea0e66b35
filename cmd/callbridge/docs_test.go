package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/callbridge/callbridge"
	"github.com/callbridge/callbridge/internal/testenv"
	"github.com/callbridge/callbridge/provision"
)

// The shell examples of the documentation (```sh blocks in docs/*.md and README.md) are
// tested as they are written. Two kinds:
//
//   - command lines (`callbridge serve|capture|replay …`, `go run ./cmd/callbridge serve …`,
//     `go test …`), which start a server or a long benchmark: their arguments are checked by
//     the real flag parser and the files and packages they name must exist
//     (TestDocsCommandLines);
//   - every other block is a step of a walk-through: the blocks of one page run in order in
//     one bash against a live node that the test starts (TestDocsShellExamples).

// shellBlock is one ```sh block of a page.
type shellBlock struct {
	file string // relative to the repository's root
	line int    // of the opening fence
	text string
}

func (b shellBlock) String() string { return fmt.Sprintf("%s:%d", b.file, b.line) }

var fenceRe = regexp.MustCompile("^```(sh|bash|shell)\\s*$")

// repoRoot is the repository's root (the tests run in cmd/callbridge).
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// docShellBlocks returns the shell blocks of README.md and docs/*.md, in page order.
func docShellBlocks(t *testing.T) []shellBlock {
	t.Helper()
	root := repoRoot(t)
	pages, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	pages = append([]string{filepath.Join(root, "README.md")}, pages...)
	var out []shellBlock
	for _, p := range pages {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, p)
		lines := strings.Split(string(b), "\n")
		for i := 0; i < len(lines); i++ {
			if !fenceRe.MatchString(lines[i]) {
				continue
			}
			start := i
			var body []string
			for i++; i < len(lines) && !strings.HasPrefix(lines[i], "```"); i++ {
				body = append(body, lines[i])
			}
			out = append(out, shellBlock{file: rel, line: start + 1, text: strings.Join(body, "\n") + "\n"})
		}
	}
	if len(out) == 0 {
		t.Fatal("no shell blocks found in the documentation")
	}
	return out
}

// commands returns the block's commands: continuation lines joined, comments and blank lines
// dropped, leading VAR=value assignments removed.
func commands(text string) []string {
	var out []string
	cur := ""
	for _, l := range strings.Split(text, "\n") {
		if strings.HasSuffix(l, "\\") {
			cur += strings.TrimSuffix(l, "\\") + " "
			continue
		}
		l = strings.TrimSpace(cur + l)
		cur = ""
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		out = append(out, l)
	}
	return out
}

var commandLineRe = regexp.MustCompile(`^(?:[A-Z_][A-Z0-9_]*=\S*\s+)*((?:callbridge|go run \./cmd/callbridge|go test)\s.*)$`)

// commandLine returns the block's commands without their environment assignments when every
// one is a command line (see the top of this file), else nil.
func commandLine(b shellBlock) []string {
	cmds := commands(b.text)
	var out []string
	for _, c := range cmds {
		m := commandLineRe.FindStringSubmatch(c)
		if m == nil {
			return nil
		}
		out = append(out, m[1])
	}
	return out
}

// shellWords splits a command line as sh would for the simple lines of the docs: words
// separated by blanks, with '…' and "…" quoting.
func shellWords(s string) ([]string, error) {
	var out []string
	var cur strings.Builder
	in, quote := false, byte(0)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0 && c == quote:
			quote = 0
		case quote != 0:
			cur.WriteByte(c)
		case c == '\'' || c == '"':
			quote, in = c, true
		case c == ' ' || c == '\t':
			if in {
				out = append(out, cur.String())
				cur.Reset()
				in = false
			}
		case strings.IndexByte("$`|&;<>()*?", c) >= 0:
			return nil, fmt.Errorf("%q is more than a simple command line (%q)", s, c)
		default:
			cur.WriteByte(c)
			in = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("%q: unterminated quote", s)
	}
	if in {
		out = append(out, cur.String())
	}
	return out, nil
}

// TestDocsCommandLines checks every command-line example of the docs: serve's flags parse and
// --pbx, --provision and --db are usable; capture names a switch and a file; replay reads a
// file the block captured or one in the repository; go test names packages and benchmarks
// that exist.
func TestDocsCommandLines(t *testing.T) {
	root := repoRoot(t)
	n := 0
	for _, b := range docShellBlocks(t) {
		cmds := commandLine(b)
		if cmds == nil {
			continue
		}
		captured := map[string]bool{}
		for _, c := range cmds {
			n++
			words, err := shellWords(c)
			if err != nil {
				t.Errorf("%s: %v", b, err)
				continue
			}
			if words[0] == "go" && words[1] == "run" {
				words = append([]string{"callbridge"}, words[3:]...)
			}
			if err := checkCommandLine(root, words, captured); err != nil {
				t.Errorf("%s: %s: %v", b, c, err)
			}
		}
	}
	if n < 10 {
		t.Fatalf("only %d command lines found in the docs; the extraction is broken", n)
	}
}

func checkCommandLine(root string, words []string, captured map[string]bool) error {
	if words[0] == "go" {
		return checkGoTest(root, words[2:])
	}
	if len(words) < 2 {
		return errors.New("no subcommand")
	}
	args := words[2:]
	switch words[1] {
	case "serve":
		m := NewMain(io.Discard, io.Discard)
		if err := m.ParseFlags(args); err != nil {
			return err
		}
		if _, err := pbxKind(m.PBX); err != nil {
			return err
		}
		if m.ProvisionFile != "" {
			if _, err := provision.LoadFile(filepath.Join(root, m.ProvisionFile)); err != nil {
				return err
			}
		}
		if db := m.DB; db != "" && !strings.HasPrefix(db, "postgres://") && !strings.HasSuffix(db, ".db") {
			return fmt.Errorf("--db %q is neither postgres:// nor a .db file", db)
		}
		return nil
	case "capture":
		var pbx, out string
		for i := 0; i+1 < len(args); i += 2 {
			switch args[i] {
			case "--pbx":
				pbx = args[i+1]
			case "--out":
				out = args[i+1]
			default:
				return fmt.Errorf("capture has no flag %s", args[i])
			}
		}
		if kind, err := pbxKind(pbx); err != nil || kind == pbxSim || out == "" {
			return fmt.Errorf("capture needs --pbx with a switch URL and --out (pbx: %v)", err)
		}
		captured[out] = true
		return nil
	case "replay":
		if len(args) != 1 {
			return fmt.Errorf("replay takes one file, got %q", args)
		}
		if captured[args[0]] {
			return nil
		}
		_, err := os.Stat(filepath.Join(root, args[0]))
		return err
	}
	return fmt.Errorf("no check for the command %q: add one to checkCommandLine", words[1])
}

// checkGoTest checks `go test` arguments: the packages exist, and each -bench pattern's
// first element names a Benchmark function of them.
func checkGoTest(root string, args []string) error {
	var bench string
	var pkgs []string
	for _, a := range args {
		switch {
		case strings.HasPrefix(a, "-bench="):
			bench = strings.TrimPrefix(a, "-bench=")
		case strings.HasPrefix(a, "-"):
		default:
			pkgs = append(pkgs, a)
		}
	}
	if len(pkgs) == 0 {
		return errors.New("go test without packages")
	}
	var sources []byte
	for _, p := range pkgs {
		dir := filepath.Join(root, strings.TrimSuffix(p, "..."))
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			return fmt.Errorf("package %s does not exist", p)
		}
		tests, _ := filepath.Glob(filepath.Join(dir, "*_test.go"))
		for _, f := range tests {
			b, _ := os.ReadFile(f)
			sources = append(sources, b...)
		}
	}
	if bench != "" {
		name := strings.SplitN(bench, "/", 2)[0]
		if !regexp.MustCompile(`func Benchmark` + regexp.QuoteMeta(name)).Match(sources) {
			return fmt.Errorf("no Benchmark%s in %v", name, pkgs)
		}
	}
	return nil
}

// bashSession is one bash that runs walk-through blocks sent on its standard input, in the
// repository's root, and says when each is done.
type bashSession struct {
	t      *testing.T
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string
	exited chan struct{}
	mu     sync.Mutex
	output bytes.Buffer // everything bash and its children wrote, for failure messages
}

// lockedWriter appends to the session's output under its lock.
type lockedWriter struct{ s *bashSession }

func (w lockedWriter) Write(p []byte) (int, error) {
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	return w.s.output.Write(p)
}

func startBash(t *testing.T, dir string) *bashSession {
	t.Helper()
	s := &bashSession{t: t, lines: make(chan string, 1024), exited: make(chan struct{})}
	s.cmd = exec.Command("bash", "--noprofile", "--norc", "-s")
	s.cmd.Dir = dir
	s.cmd.Stderr = lockedWriter{s}
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // the walk-through's background jobs too
	stdin, err := s.cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := s.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	s.stdin = stdin
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.exited
	})
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lockedWriter{s}.Write([]byte(sc.Text() + "\n"))
			s.lines <- sc.Text()
		}
	}()
	go func() {
		s.cmd.Wait()
		close(s.exited)
	}()
	// Test scaffolding, not part of the examples: stop at the first failing command, and make
	// curl fail on an HTTP error status (printing the body) instead of exiting 0.
	s.send("set -euo pipefail\ncurl() { command curl --fail-with-body --show-error \"$@\"; }\n")
	return s
}

func (s *bashSession) send(text string) {
	s.t.Helper()
	if _, err := io.WriteString(s.stdin, text); err != nil {
		s.t.Fatalf("bash: %v\n%s", err, s.out())
	}
}

func (s *bashSession) out() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.output.String()
}

// await reads stdout lines until one starts with prefix and returns the rest of it.
func (s *bashSession) await(prefix, what string) string {
	s.t.Helper()
	deadline := time.After(3 * testenv.Patience)
	for {
		select {
		case l := <-s.lines:
			if rest, ok := strings.CutPrefix(l, prefix); ok {
				return rest
			}
		case <-s.exited: // set -e: a command failed
			s.t.Fatalf("bash stopped during %s (%v); output:\n%s", what, s.cmd.ProcessState, s.out())
		case <-deadline:
			s.t.Fatalf("%s did not finish; output:\n%s", what, s.out())
		}
	}
}

// run runs one block and waits for it to finish.
func (s *bashSession) run(b shellBlock, text string) {
	s.t.Helper()
	marker := fmt.Sprintf("@@done %d", b.line)
	s.send(text + "\necho '" + marker + "'\n")
	s.await(marker, b.String())
}

// variable returns a shell variable's value.
func (s *bashSession) variable(name string) string {
	s.t.Helper()
	s.send(fmt.Sprintf("echo \"@@var %s=${%s:-}\"\n", name, name))
	return s.await("@@var "+name+"=", "reading $"+name)
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestDocsShellExamples runs the walk-through blocks of each page, in order, in one bash
// against a live node (the embedded default, webhooks to loopback allowed), as written: the
// only change is the node's address for localhost:8080 and a free port for the example
// receiver's 127.0.0.1:9090. Between blocks the test waits, as a reader would, for what the
// next block relies on (the agent's phone answered, the call's record, a delivery). At the
// end the example receiver has verified and acknowledged a delivery, and the CSV export is on
// disk.
func TestDocsShellExamples(t *testing.T) {
	for _, tool := range []string{"bash", "curl", "jq"} {
		if _, err := exec.LookPath(tool); err != nil {
			testenv.Missing(t, tool, "install it (apt-get install "+tool+"); .ci/run does")
		}
	}
	root := repoRoot(t)
	pages := map[string][]shellBlock{}
	var order []string
	for _, b := range docShellBlocks(t) {
		if commandLine(b) != nil {
			continue
		}
		if pages[b.file] == nil {
			order = append(order, b.file)
		}
		pages[b.file] = append(pages[b.file], b)
	}
	if len(pages["docs/crm.md"]) < 5 {
		t.Fatalf("docs/crm.md has %d walk-through blocks; the extraction is broken", len(pages["docs/crm.md"]))
	}
	for _, page := range order {
		t.Run(page, func(t *testing.T) { runWalkThrough(t, root, pages[page]) })
	}
}

func runWalkThrough(t *testing.T, root string, blocks []shellBlock) {
	csv := filepath.Join(root, "calls.csv")
	if _, err := os.Stat(csv); err == nil {
		t.Fatalf("%s exists; the walk-through would overwrite it", csv)
	}
	t.Cleanup(func() { os.Remove(csv) })
	m := runMain(t)
	receiver := freeAddr(t)
	const tenant = callbridge.TenantID("demo")
	sh := startBash(t, root)
	ctx := testenv.Context(t)
	for _, b := range blocks {
		text := strings.ReplaceAll(b.text, "localhost:8080", m.HTTP.Addr())
		text = strings.ReplaceAll(text, "127.0.0.1:9090", receiver)
		// What the block relies on, as a reader would wait for it.
		switch {
		case strings.Contains(text, "/clear"):
			call := callbridge.CallID(sh.variable("CALL"))
			testenv.Eventually(t, "agent1's phone answered call "+string(call), func() bool {
				snap, err := m.Node.Snapshot(ctx, tenant, "agent1")
				if err != nil {
					return false
				}
				for _, c := range snap.Calls {
					for _, cn := range c.Connections {
						if c.ID == call && cn.Agent == "agent1" && cn.State == callbridge.ConnConnected {
							return true
						}
					}
				}
				return false
			})
		case strings.Contains(text, "call-records"):
			call := callbridge.CallID(sh.variable("CALL"))
			testenv.Eventually(t, "the record of call "+string(call), func() bool {
				_, err := m.store.CallRecord(ctx, tenant, call)
				return err == nil
			})
		case strings.Contains(text, "/redeliver"):
			wh := sh.variable("WH")
			testenv.Eventually(t, "a delivery of webhook "+wh, func() bool {
				ds, _, err := m.store.Deliveries(ctx, tenant, wh, callbridge.DeliveryFilter{Limit: 1})
				return err == nil && len(ds) > 0
			})
		}
		sh.run(b, text)
		if strings.Contains(text, "webhook-receiver") {
			// go run builds the receiver first: wait until it listens.
			deadline := time.Now().Add(3 * testenv.Patience)
			for {
				c, err := net.DialTimeout("tcp", receiver, time.Second)
				if err == nil {
					c.Close()
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the example receiver never listened on %s; output:\n%s", receiver, sh.out())
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
	}
	t.Logf("the walk-through's output:\n%s", sh.out())
	if t.Name() != "TestDocsShellExamples/docs/crm.md" {
		return
	}
	// The receiver verified the signature of at least one delivery and acknowledged it.
	wh := sh.variable("WH")
	testenv.Eventually(t, "a delivery acknowledged by the example receiver", func() bool {
		ds, _, err := m.store.Deliveries(ctx, tenant, wh, callbridge.DeliveryFilter{Status: callbridge.DeliveryDelivered, Limit: 1})
		return err == nil && len(ds) > 0
	})
	b, err := os.ReadFile(csv)
	if err != nil || !bytes.HasPrefix(b, []byte("call_id,")) {
		t.Fatalf("calls.csv: %v %.200q", err, b)
	}
}
