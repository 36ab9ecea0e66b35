package http_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	nethttp "net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/callbridge/callbridge"
	cbhttp "github.com/callbridge/callbridge/http"
	"github.com/callbridge/callbridge/internal/testenv"
	"github.com/coder/websocket"
)

// TestAgentPageInBrowser drives the agent desktop (package web, with <callbridge-bar>) in
// headless Chromium over the DevTools protocol against the gateway with a fake engine: sign in,
// screen pop of a ringing call (escaped), Answer, an event updating the call, a command error,
// and a reload that shows the call again from the snapshot. The end-to-end tests against a real
// node are in cmd/callbridge/browser_test.go. Without Chromium it is skipped, or fails under CI
// (testenv.RequireChromium).
func TestAgentPageInBrowser(t *testing.T) {
	bin := testenv.RequireChromium(t)
	t.Parallel()
	h := newServer(t)
	call := callEvent("acme", "alice", "CALL1", callbridge.EventCallDelivered).Data.(*callbridge.CallEvent).Call
	call.ANIName = "Jane Customer"
	call.AttachedData["note"] = `<img src=x onerror="document.title='pwned'">`
	h.cmd.setSnapshot(callbridge.AgentSnapshot{
		Agent:       callbridge.Agent{ID: "alice", Tenant: "acme", Device: "1001", State: callbridge.AgentNotReady, Reason: "break", Since: t0},
		Calls:       []callbridge.Call{call},
		ReasonCodes: []string{"break", "lunch"},
	})
	h.cmd.setDo(func(_ context.Context, cmd callbridge.Command) (callbridge.CommandResult, error) {
		switch cmd.Name {
		case callbridge.CmdClearConnection:
			return callbridge.CommandResult{}, callbridge.Errorf(callbridge.EConflict, "the call is on hold elsewhere")
		case callbridge.CmdConsultationCall:
			return callbridge.CommandResult{}, callbridge.Errorf(callbridge.ENotSupported, "this switch cannot start a consultation call remotely; use the phone")
		}
		return callbridge.CommandResult{}, nil
	})
	// sr is the bar's shadow root; the page text includes it.
	const sr = `document.querySelector("callbridge-bar").shadowRoot`
	const pageText = `document.body.innerText + " | " + ` + sr + `.textContent`
	linkOpen := sr + `.querySelector("[data-link=open]") !== null`

	b := startBrowser(t, bin)
	b.navigate(h.url + "/")
	b.waitFor(sr + `.querySelector("form[data-form=login]") !== null`)
	b.eval(`(() => {
		const f = ` + sr + `.querySelector("form[data-form=login]");
		for (const [k, v] of [["username", "alice"], ["password", "alice-pw"]]) {
			const el = f.querySelector("input[name=" + k + "]");
			el.value = v; el.dispatchEvent(new Event("input", {bubbles: true}));
		}
		f.requestSubmit();
	})()`)
	b.waitFor(linkOpen)
	b.waitFor(sr + `.querySelectorAll(".card.call").length === 1`)

	text := b.evalString(pageText)
	for _, want := range []string{"+15551230001", "Jane Customer", "+15550100", "support", "account", "42", "Ringing", "Not ready", "Break", call.AttachedData["note"]} {
		if !strings.Contains(text, want) {
			t.Errorf("page text lacks %q:\n%s", want, text)
		}
	}
	if n := b.evalString(`String(document.querySelectorAll("img").length + ` + sr + `.querySelectorAll("img").length)`); n != "0" {
		t.Errorf("attached data became %s HTML elements", n)
	}
	if opts := b.evalString(`[...` + sr + `.querySelectorAll("select[data-key=reason] option")].map(o => o.value).join(",")`); opts != "break,lunch" {
		t.Errorf("reason options = %q", opts)
	}

	b.eval(sr + `.querySelector(".card.call button[data-action=answer]").click()`)
	if cmd := h.cmd.nextCommand(t); cmd.Name != callbridge.CmdAnswerCall || cmd.CallID != "CALL1" || cmd.Agent != "alice" {
		t.Errorf("Answer sent %+v", cmd)
	}
	h.log.append(t, callEvent("acme", "alice", "CALL1", callbridge.EventCallEstablished))
	b.waitFor(sr + `.querySelector(".card.call").dataset.state === "connected"`)

	b.eval(sr + `.querySelector(".card.call button[data-action=hangup]").click()`)
	h.cmd.nextCommand(t)
	b.waitFor(sr + `.querySelector("[role=alert]").textContent.includes("the call is on hold elsewhere (conflict)")`)

	// A command the switch cannot do is named as such, with the server's words.
	b.eval(`(() => { const el = ` + sr + `.querySelector(".card.call input[data-key^='to:']");
		el.value = "agent2"; el.dispatchEvent(new Event("input", {bubbles: true})); })()`)
	b.eval(sr + `.querySelector(".card.call button[data-action=consult]").click()`)
	if cmd := h.cmd.nextCommand(t); cmd.Name != callbridge.CmdConsultationCall || cmd.To != "agent2" {
		t.Errorf("Consult sent %+v", cmd)
	}
	b.waitFor(sr + `.querySelector("[role=alert]").textContent === "Consult is not possible here: this switch cannot start a consultation call remotely; use the phone (not_supported)"`)

	b.eval(sr + `.querySelector("button[data-action=not-ready]").click()`)
	if cmd := h.cmd.nextCommand(t); cmd.Name != callbridge.CmdSetAgentState || cmd.State != callbridge.AgentNotReady || cmd.Reason != "break" {
		t.Errorf("Not ready sent %+v", cmd)
	}

	// The server restarts; the page reconnects by itself with after_seq and gets the event it
	// missed meanwhile.
	if err := h.srv.Close(testenv.Context(t)); err != nil {
		t.Fatal(err)
	}
	b.waitFor(`!(` + linkOpen + `)`)
	b.waitFor(`document.getElementById("link").dataset.state === "down"`)
	missed := callEvent("acme", "alice", "CALL1", callbridge.EventCallDataUpdated)
	missed.Data.(*callbridge.CallEvent).AttachedData["survey"] = "yes please"
	h.log.append(t, missed) // seq 2
	restarted, err := cbhttp.NewServer(cbhttp.Config{Addr: h.srv.Addr(), Store: h.store, Sessions: h.store, BcryptCost: testBcryptCost, Hub: h.log.hub, Commander: h.cmd, Secret: testSecret, Now: h.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if err := restarted.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = restarted.Close(context.Background()) })
	b.waitFor(`(` + pageText + `).includes("yes please")`)
	b.waitFor(`document.getElementById("link").textContent.includes("recovered")`)

	// A reload keeps the session and shows the call again from a fresh snapshot.
	b.eval(`window.beforeReload = true`)
	b.navigate(h.url + "/")
	b.waitFor(`!window.beforeReload && ` + linkOpen)
	b.waitFor(`!window.beforeReload && ` + sr + `.querySelectorAll(".card.call").length === 1`)
	if title := b.evalString(`document.title`); title != "callbridge agent" {
		t.Errorf("title = %q", title)
	}

	// "Not ready after this call": the state pill shows what comes next.
	h.log.append(t, callbridge.Event{Type: callbridge.EventAgentStateChanged, Tenant: "acme", Agent: "alice",
		Audience: []callbridge.AgentID{"alice"}, Time: t0,
		Data: &callbridge.Agent{ID: "alice", Tenant: "acme", Device: "1001", State: callbridge.AgentBusy,
			PreviousState: callbridge.AgentBusy, NextState: callbridge.AgentNotReady, NextReason: "lunch", Since: t0}})
	b.waitFor(sr + `.querySelector("[part=state] [data-next=not_ready]") !== null && ` +
		sr + `.querySelector("[part=state] [data-next=not_ready]").textContent === "then Not ready — Lunch"`)
}

// TestAPIDocsInBrowser renders /docs in headless Chromium: Swagger UI from the embedded build
// (the page's CSP allows no other origin) shows the generated OpenAPI document's operations.
func TestAPIDocsInBrowser(t *testing.T) {
	bin := testenv.RequireChromium(t)
	t.Parallel()
	h := newServer(t)
	b := startBrowser(t, bin)
	b.navigate(h.url + "/docs")
	b.waitFor(`document.querySelector(".swagger-ui .info .title") !== null && document.querySelector(".swagger-ui .info .title").textContent.includes("callbridge API")`)
	b.waitFor(`document.body.innerText.includes("/v1/call-records") && document.body.innerText.includes("/v1/webhooks")`)
}

// browser is a minimal DevTools-protocol client for one page.
type browser struct {
	t    *testing.T
	conn *websocket.Conn

	mu      sync.Mutex
	nextID  int
	pending map[int]chan cdpReply
}

type cdpReply struct {
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Message string `json:"message"`
	} `json:"error"`
}

func startBrowser(t *testing.T, bin string) *browser {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	// Chromium's helper processes can outlive a killed parent and keep writing into the
	// profile, so the profile is not a t.TempDir (whose removal would then fail the test): the
	// whole process group is killed, and the profile removed best-effort afterwards.
	profile, err := os.MkdirTemp("", "callbridge-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, bin, "--headless=new", "--no-sandbox", "--disable-gpu",
		"--disable-quic", "--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--no-first-run", "--remote-debugging-port=0", "--user-data-dir="+profile, "about:blank")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		for i := 0; i < 20 && os.RemoveAll(profile) != nil; i++ {
			time.Sleep(50 * time.Millisecond)
		}
	})

	found := make(chan string, 1)
	go func() {
		re := regexp.MustCompile(`DevTools listening on (ws://\S+)`)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				found <- m[1]
			}
		}
	}()
	var browserURL string
	select {
	case browserURL = <-found:
	case <-time.After(testenv.Patience):
		t.Fatal("chromium did not start")
	}
	// The page target of about:blank.
	host := strings.TrimPrefix(browserURL, "ws://")
	host = host[:strings.Index(host, "/")]
	var pageURL string
	for deadline := time.Now().Add(testenv.Patience); pageURL == "" && time.Now().Before(deadline); {
		res, err := nethttp.Get("http://" + host + "/json/list")
		if err == nil {
			var targets []struct{ Type, WebSocketDebuggerURL string }
			_ = json.NewDecoder(res.Body).Decode(&targets)
			res.Body.Close()
			for _, tg := range targets {
				if tg.Type == "page" {
					pageURL = tg.WebSocketDebuggerURL
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	if pageURL == "" {
		t.Fatal("no page target")
	}
	conn, _, err := websocket.Dial(context.Background(), pageURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	conn.SetReadLimit(64 << 20)
	b := &browser{t: t, conn: conn, pending: make(map[int]chan cdpReply)}
	go b.readLoop()
	t.Cleanup(func() { _ = conn.CloseNow() })
	b.call("Page.enable", nil)
	b.call("Runtime.enable", nil)
	return b
}

func (b *browser) readLoop() {
	for {
		_, data, err := b.conn.Read(context.Background())
		if err != nil {
			return
		}
		var msg struct {
			ID int `json:"id"`
			cdpReply
		}
		if json.Unmarshal(data, &msg) != nil || msg.ID == 0 {
			continue // an event
		}
		b.mu.Lock()
		ch := b.pending[msg.ID]
		delete(b.pending, msg.ID)
		b.mu.Unlock()
		if ch != nil {
			ch <- msg.cdpReply
		}
	}
}

func (b *browser) call(method string, params any) json.RawMessage {
	b.t.Helper()
	b.mu.Lock()
	b.nextID++
	id := b.nextID
	ch := make(chan cdpReply, 1)
	b.pending[id] = ch
	b.mu.Unlock()
	msg, _ := json.Marshal(map[string]any{"id": id, "method": method, "params": params})
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Patience)
	defer cancel()
	if err := b.conn.Write(ctx, websocket.MessageText, msg); err != nil {
		b.t.Fatalf("%s: %v", method, err)
	}
	select {
	case r := <-ch:
		if r.Error != nil {
			b.t.Fatalf("%s: %s", method, r.Error.Message)
		}
		return r.Result
	case <-time.After(testenv.Patience):
		b.t.Fatalf("%s: no answer", method)
		return nil
	}
}

func (b *browser) navigate(url string) {
	b.t.Helper()
	b.call("Page.navigate", map[string]any{"url": url})
}

// eval runs expr in the page and returns its value as JSON.
func (b *browser) eval(expr string) json.RawMessage {
	b.t.Helper()
	res := b.call("Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true, "awaitPromise": true})
	var r struct {
		Result struct {
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		ExceptionDetails *struct {
			Text      string `json:"text"`
			Exception struct {
				Description string `json:"description"`
			} `json:"exception"`
		} `json:"exceptionDetails"`
	}
	if err := json.Unmarshal(res, &r); err != nil {
		b.t.Fatal(err)
	}
	if r.ExceptionDetails != nil {
		b.t.Fatalf("%s: %s %s", expr, r.ExceptionDetails.Text, r.ExceptionDetails.Exception.Description)
	}
	return r.Result.Value
}

func (b *browser) evalString(expr string) string {
	b.t.Helper()
	var s string
	if v := b.eval(expr); json.Unmarshal(v, &s) != nil {
		b.t.Fatalf("%s = %s, not a string", expr, v)
	}
	return s
}

// waitFor polls the boolean expression cond in the page until it holds, for up to
// testenv.Patience.
func (b *browser) waitFor(cond string) {
	b.t.Helper()
	b.waitWithin(testenv.Patience, cond)
}

// waitWithin is waitFor for at most d: for a condition that needs time to pass first (a
// timer in the page), d is that time plus testenv.Patience.
func (b *browser) waitWithin(d time.Duration, cond string) {
	b.t.Helper()
	deadline := time.Now().Add(d)
	for {
		var ok bool
		// While a navigation is under way the document may not have the elements yet.
		expr := fmt.Sprintf("(() => { try { return Boolean(%s); } catch (e) { return false; } })()", cond)
		if v := b.eval(expr); json.Unmarshal(v, &ok) == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("timed out after %s waiting for %s; page text:\n%s", d, cond, b.evalString(`document.body ? document.body.innerText : ""`))
		}
		time.Sleep(50 * time.Millisecond)
	}
}
