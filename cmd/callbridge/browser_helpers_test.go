package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callbridge/callbridge/internal/testenv"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"
	"github.com/coder/websocket"
)

// The browser tests drive the real desktop and <callbridge-bar> (package web, as embedded) in
// headless Chromium against a real `callbridge serve` on the simulated PBX: engine, embedded
// NATS, SQLite and the gateway are the real ones. Without Chromium they are skipped, or fail
// under CI (testenv.RequireChromium), where .ci/run installs Debian's chromium. Every wait is
// for a condition, bounded by testenv.Patience.

// browserNode starts the embedded default with HTTP on a free loopback port. interval is the
// simulated PBX's mean time between inbound calls (0: none); origins is --allowed-origins.
func browserNode(t *testing.T, interval time.Duration, origins string) *Main {
	t.Helper()
	return runMainWith(t, func(m *Main) { m.SimInterval, m.AllowedOrigins = interval, origins })
}

// browser is one headless Chromium with its own profile; tabs share its storage.
type browser struct {
	t       *testing.T
	ctx     context.Context // the browser's first tab
	mu      sync.Mutex
	tabs    int
	exposed []string // uncaught exceptions and CSP violations seen in any tab
}

func startBrowser(t *testing.T) *browser {
	t.Helper()
	bin := testenv.RequireChromium(t)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(bin),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		// No UserDataDir: chromedp makes a fresh profile and removes it after the browser exits
		// (a t.TempDir could still be written by helper processes when the test removes it).
		chromedp.WindowSize(1280, 1000),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
		chromedp.Flag("disable-backgrounding-occluded-windows", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("password-store", "basic"),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	b := &browser{t: t, ctx: ctx}
	// The first Run starts the browser; its context must not have a timeout.
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		cancel()
		cancelAlloc()
		t.Fatalf("start chromium: %v", err)
	}
	b.watch(ctx, "tab1")
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
		b.mu.Lock()
		defer b.mu.Unlock()
		for _, e := range b.exposed {
			t.Errorf("browser: %s", e)
		}
	})
	return b
}

// watch logs the tab's console and records uncaught exceptions and CSP violations, which fail
// the test at the end.
func (b *browser) watch(ctx context.Context, name string) {
	msgs := chromedp.Console(ctx)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			b.t.Logf("%s console %s: %s", name, m.Type, m.Text)
			if m.IsException() || strings.Contains(m.Text, "Content Security Policy") {
				b.mu.Lock()
				b.exposed = append(b.exposed, name+": "+m.Text)
				b.mu.Unlock()
			}
		}
	}()
}

// tab is one page of the browser.
type tab struct {
	b      *browser
	t      *testing.T
	ctx    context.Context
	cancel context.CancelFunc
	name   string
}

// firstTab returns the browser's first tab.
func (b *browser) firstTab() *tab {
	return &tab{b: b, t: b.t, ctx: b.ctx, cancel: func() {}, name: "tab1"}
}

// newTab opens another tab in the same profile (shared localStorage, own sessionStorage).
func (b *browser) newTab() *tab {
	b.mu.Lock()
	b.tabs++
	name := fmt.Sprintf("tab%d", b.tabs+1)
	b.mu.Unlock()
	ctx, cancel := chromedp.NewContext(b.ctx)
	tb := &tab{b: b, t: b.t, ctx: ctx, cancel: cancel, name: name}
	// The first Run opens the tab; its context must not have a timeout (chromedp binds the
	// tab to it).
	if err := chromedp.Do(ctx); err != nil {
		b.t.Fatalf("%s: open: %v", name, err)
	}
	b.watch(ctx, name)
	b.t.Cleanup(cancel)
	return tb
}

func (tb *tab) run(actions ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, testenv.Patience)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		tb.t.Fatalf("%s: %v", tb.name, err)
	}
}

func (tb *tab) navigate(url string) {
	tb.t.Helper()
	tb.run(chromedp.Navigate(url))
}

// prelude gives every expression `bar` (the first <callbridge-bar>) and `sr` (its shadow root).
const prelude = `const bar = document.querySelector("callbridge-bar"); const sr = bar && bar.shadowRoot; `

// eval runs the JavaScript expression expr (with the prelude; a promise is awaited) and stores
// its JSON value in out (nil: discard).
func (tb *tab) eval(expr string, out any) {
	tb.t.Helper()
	js := "(async () => { " + prelude + "return (" + expr + "); })()"
	ctx, cancel := context.WithTimeout(tb.ctx, testenv.Patience)
	defer cancel()
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[[]byte](js, chromedp.EvalAwaitPromise))
	if err != nil {
		tb.t.Fatalf("%s: %s: %v", tb.name, expr, err)
	}
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			tb.t.Fatalf("%s: %s = %s: %v", tb.name, expr, raw, err)
		}
	}
}

func (tb *tab) str(expr string) string {
	tb.t.Helper()
	var s string
	tb.eval(expr, &s)
	return s
}

// waitFor polls the boolean expression cond until it holds, failing after testenv.Patience
// with the page's text.
func (tb *tab) waitFor(cond string) {
	tb.t.Helper()
	deadline := time.Now().Add(testenv.Patience)
	js := "(() => { try { " + prelude + "return Boolean(" + cond + "); } catch (e) { return false; } })()"
	for {
		ctx, cancel := context.WithTimeout(tb.ctx, testenv.Patience)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](js))
		cancel()
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			tb.t.Fatalf("%s: timed out after %s waiting for %s (last error %v)\npage:\n%s", tb.name, testenv.Patience, cond, err, tb.text())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// text is the page's visible text, with the bar's shadow DOM and its desk model (for failure reports).
func (tb *tab) text() string {
	ctx, cancel := context.WithTimeout(tb.ctx, 10*time.Second) // a failure report: a best effort
	defer cancel()
	s, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`(() => { const bar = document.querySelector("callbridge-bar");
		return (document.body ? document.body.innerText : "") + "\n--- bar ---\n" + (bar && bar.shadowRoot ? bar.shadowRoot.textContent : "") +
			"\n--- desk ---\n" + JSON.stringify(bar && bar.desk && {agent: bar.desk.agent, calls: [...bar.desk.calls.values()]}); })()`))
	return s
}

// click clicks the element that the JavaScript expression sel returns, as a user would: a
// real mouse press at its centre, once the element is the one a press there would hit (not
// covered, not moving).
func (tb *tab) click(sel string) {
	tb.t.Helper()
	x, y := tb.pointAt(sel)
	tb.run(chromedp.MouseClickXY(x, y))
}

// clickAcrossRedraw is click with the JavaScript statement redraw run between the mouse press
// and its release, as when an event redraws the bar under an agent's pointer.
func (tb *tab) clickAcrossRedraw(sel, redraw string) {
	tb.t.Helper()
	x, y := tb.pointAt(sel)
	tb.run(chromedp.MouseEvent(input.DispatchMouseEventTypeMousePressed, x, y, chromedp.ButtonLeft, chromedp.ClickCount(1)))
	tb.eval(`(() => { `+redraw+`; return true; })()`, nil)
	tb.run(chromedp.MouseEvent(input.DispatchMouseEventTypeMouseReleased, x, y, chromedp.ButtonLeft, chromedp.ClickCount(1)))
}

// pointAt is the centre of the element sel returns, once a press there would hit it (it is
// neither covered nor moving).
func (tb *tab) pointAt(sel string) (x, y float64) {
	tb.t.Helper()
	var box struct {
		X, Y float64
		Hit  bool
	}
	deadline := time.Now().Add(testenv.Patience)
	for {
		tb.eval(`(async () => { const el = `+sel+`; if (!el) throw new Error("no element: "+`+jsString(sel)+`);
			el.scrollIntoView({block: "center"});
			const at = () => { const r = el.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; };
			const [x, y] = at();
			await new Promise((ok) => setTimeout(ok, 30));
			const [x2, y2] = at();
			const hit = el.getRootNode().elementFromPoint(x2, y2);
			return {X: x2, Y: y2, Hit: x === x2 && y === y2 && !!hit && el.contains(hit)}; })()`, &box)
		if box.Hit {
			break
		}
		if time.Now().After(deadline) {
			tb.t.Fatalf("%s: %s is covered or moving at (%.0f, %.0f)\npage:\n%s", tb.name, sel, box.X, box.Y, tb.text())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return box.X, box.Y
}

// typeInto focuses the input sel returns, selects its text and types s with real key events.
func (tb *tab) typeInto(sel, s string) {
	tb.t.Helper()
	tb.eval(`(() => { const el = `+sel+`; if (!el) throw new Error("no element: "+`+jsString(sel)+`);
		el.focus(); el.select && el.select(); return true; })()`, nil)
	tb.run(chromedp.KeyEvent(s))
}

// altKey presses Alt with the letter key, as the desktop's shortcuts want.
func (tb *tab) altKey(letter string) {
	tb.t.Helper()
	tb.run(chromedp.KeyEvent(letter, chromedp.KeyModifiers(chromedp.ModifierAlt)))
}

// screenshot writes a PNG of the viewport to path.
func (tb *tab) screenshot(path string) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, testenv.Patience)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		tb.t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		tb.t.Fatal(err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		tb.t.Fatal(err)
	}
	tb.t.Logf("screenshot: %s", path)
}

// close closes the tab, as a user closing it.
func (tb *tab) close() {
	tb.t.Helper()
	if err := chromedp.Cancel(tb.ctx); err != nil {
		tb.t.Logf("%s: close: %v", tb.name, err)
	}
	tb.cancel()
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// signIn signs in through the bar's form and waits until its link is up.
func (tb *tab) signIn(user, pass string) {
	tb.t.Helper()
	tb.waitFor(`sr && sr.querySelector("form[data-form=login]")`)
	tb.typeInto(`sr.querySelector("input[name=username]")`, user)
	tb.typeInto(`sr.querySelector("input[name=password]")`, pass)
	tb.click(`sr.querySelector("button[data-action=login]")`)
	tb.waitFor(`sr.querySelector("[data-link=open]") && bar.desk && bar.desk.agent`)
}

// ---- a proxy whose link can be cut ----

// linkProxy forwards TCP connections to target; cut closes every connection and, while down,
// refuses new ones (accepts and closes at once), like a network that drops and comes back.
type linkProxy struct {
	t      *testing.T
	ln     net.Listener
	target string

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	frozen map[net.Conn]bool // connections whose bytes are dropped (a half-open link)
	down   bool
	cuts   int
}

func startProxy(t *testing.T, target string) *linkProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &linkProxy{t: t, ln: ln, target: target, conns: make(map[net.Conn]struct{}), frozen: make(map[net.Conn]bool)}
	go p.serve()
	t.Cleanup(func() {
		ln.Close()
		p.cut(true)
	})
	return p
}

func (p *linkProxy) URL() string { return "http://" + p.ln.Addr().String() }

func (p *linkProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		down := p.down
		p.mu.Unlock()
		if down {
			c.Close()
			continue
		}
		go p.pipe(c)
	}
}

func (p *linkProxy) pipe(c net.Conn) {
	u, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	if p.down {
		p.mu.Unlock()
		c.Close()
		u.Close()
		return
	}
	p.conns[c] = struct{}{}
	p.conns[u] = struct{}{}
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	go func() { p.copy(u, c); done <- struct{}{} }()
	go func() { p.copy(c, u); done <- struct{}{} }()
	<-done
	c.Close()
	u.Close()
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, u)
	delete(p.frozen, c)
	p.mu.Unlock()
}

// copy forwards src to dst until either fails, dropping the bytes once src is frozen.
func (p *linkProxy) copy(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			frozen := p.frozen[src] || p.frozen[dst]
			p.mu.Unlock()
			if !frozen {
				if _, werr := dst.Write(buf[:n]); werr != nil {
					return
				}
			}
		}
		if err != nil {
			return
		}
	}
}

// freeze makes every live connection silent in both directions without closing it, like a
// link that died without telling anyone; new connections work.
func (p *linkProxy) freeze() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		p.frozen[c] = true
	}
	return len(p.conns)
}

// cut closes every live connection; down keeps refusing new ones until up.
func (p *linkProxy) cut(down bool) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = down
	n := 0
	for c := range p.conns {
		c.Close()
		n++
	}
	p.cuts++
	return n
}

func (p *linkProxy) up() {
	p.mu.Lock()
	p.down = false
	p.mu.Unlock()
}

// ---- a reference desktop in Go ----

// apiLogin logs in over REST and returns the token.
func apiLogin(t *testing.T, m *Main, user, pass string) string {
	t.Helper()
	body := strings.NewReader(fmt.Sprintf(`{"username":%q,"password":%q}`, user, pass))
	resp, err := http.Post(m.HTTP.URL()+"/v1/login", "application/json", body)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Token string `json:"token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK || out.Token == "" {
		t.Fatalf("login %s: %s (%v)", user, resp.Status, err)
	}
	return out.Token
}

// refDesk is a WebSocket client of the v1 protocol that records every event it receives.
type refDesk struct {
	t    *testing.T
	c    *websocket.Conn
	n    int
	mu   sync.Mutex
	seqs []uint64
	evs  []map[string]any
	rep  map[string]chan map[string]any
}

func dialRef(t *testing.T, m *Main, token string) *refDesk {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Patience)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws://"+m.HTTP.Addr()+"/v1/ws?access_token="+token, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadLimit(1 << 20)
	d := &refDesk{t: t, c: c, rep: make(map[string]chan map[string]any)}
	go func() {
		for {
			_, b, err := c.Read(context.Background())
			if err != nil {
				return
			}
			var msg map[string]any
			if json.Unmarshal(b, &msg) != nil {
				continue
			}
			d.mu.Lock()
			if re, ok := msg["re"].(string); ok {
				if ch := d.rep[re]; ch != nil {
					ch <- msg
				}
			} else if seq, ok := msg["seq"].(float64); ok && msg["type"] != "snapshot" {
				d.seqs = append(d.seqs, uint64(seq))
				d.evs = append(d.evs, msg)
			}
			d.mu.Unlock()
		}
	}()
	t.Cleanup(func() { c.CloseNow() })
	return d
}

// cmd sends a command and waits for its reply.
func (d *refDesk) cmd(name string, params map[string]any) map[string]any {
	d.t.Helper()
	r, err := d.send(name, params)
	if err != nil {
		d.t.Fatal(err)
	}
	return r
}

// send is cmd for any goroutine: it returns errors instead of failing the test.
func (d *refDesk) send(name string, params map[string]any) (map[string]any, error) {
	d.mu.Lock()
	d.n++
	id := fmt.Sprintf("r%d", d.n)
	ch := make(chan map[string]any, 1)
	d.rep[id] = ch
	d.mu.Unlock()
	b, _ := json.Marshal(map[string]any{"id": id, "cmd": name, "params": params})
	if err := d.c.Write(context.Background(), websocket.MessageText, b); err != nil {
		return nil, err
	}
	select {
	case r := <-ch:
		return r, nil
	case <-time.After(testenv.Patience):
		return nil, fmt.Errorf("no reply to %s", name)
	}
}

func (d *refDesk) events() ([]uint64, []map[string]any) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]uint64(nil), d.seqs...), append([]map[string]any(nil), d.evs...)
}

var errNoEvent = errors.New("no such event")

// waitEvent waits until the desk has an event for which match is true and returns it.
func (d *refDesk) waitEvent(what string, match func(map[string]any) bool) map[string]any {
	d.t.Helper()
	deadline := time.Now().Add(testenv.Patience)
	for {
		_, evs := d.events()
		for _, e := range evs {
			if match(e) {
				return e
			}
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("%v: %s", errNoEvent, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
