package http_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	nethttp "net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callbridge/callbridge"
	cbhttp "github.com/callbridge/callbridge/http"
	"github.com/callbridge/callbridge/hub"
	"github.com/callbridge/callbridge/internal/testenv"
	"github.com/coder/websocket"
	"golang.org/x/crypto/bcrypt"
)

// testSecret is the token key of every test server.
var testSecret = []byte("0123456789abcdef0123456789abcdef-test")

// testBcryptCost is the cost of the fake store's password hashes, and the servers' cost.
const testBcryptCost = bcrypt.MinCost

// t0 is the fake clock's start: a whole second, so token expiry times are exact.
var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// Users of the fake store; the password of each is its username + "-pw".
// "pat" exists in two tenants.
var testUsers = []struct {
	tenant   callbridge.TenantID
	username string
	role     callbridge.Role
}{
	{"acme", "alice", callbridge.RoleAgent},
	{"acme", "bob", callbridge.RoleAgent},
	{"acme", "sam", callbridge.RoleSupervisor},
	{"acme", "pat", callbridge.RoleAgent},
	{"globex", "pat", callbridge.RoleAgent},
	{"globex", "gina", callbridge.RoleAgent},
}

// ---- fakes: the gateway's edges ---------------------------------------------------------

// fakeClock is a settable clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// fakeStore serves FindUsers from a fixed list and keeps sessions in memory (the SQL stores
// pass the same contract in storetest).
type fakeStore struct {
	mu       sync.Mutex
	users    []callbridge.User
	err      error
	sessions map[string]callbridge.Session
}

var (
	_ callbridge.Store        = (*fakeStore)(nil)
	_ callbridge.SessionStore = (*fakeStore)(nil)
)

func newFakeStore(t *testing.T) *fakeStore {
	t.Helper()
	s := &fakeStore{sessions: make(map[string]callbridge.Session)}
	for _, u := range testUsers {
		hash, err := bcrypt.GenerateFromPassword([]byte(u.username+"-pw"), testBcryptCost)
		if err != nil {
			t.Fatal(err)
		}
		s.users = append(s.users, callbridge.User{Tenant: u.tenant, Username: u.username, PasswordHash: string(hash), Role: u.role})
	}
	return s
}

func (s *fakeStore) Provision(context.Context, callbridge.Provisioning) error { return nil }
func (s *fakeStore) Directory(context.Context) (callbridge.Directory, error) {
	return callbridge.Directory{}, nil
}
func (s *fakeStore) Close() error { return nil }
func (s *fakeStore) DropDemo(context.Context) ([]callbridge.TenantID, error) {
	return nil, nil
}
func (s *fakeStore) FindUsers(_ context.Context, username string) ([]callbridge.User, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return nil, s.err
	}
	var out []callbridge.User
	for _, u := range s.users {
		if u.Username == username {
			out = append(out, u)
		}
	}
	return out, nil
}

// removeUser deletes a user and their sessions, as a re-provisioning that drops them does.
func (s *fakeStore) removeUser(tenant callbridge.TenantID, username string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users = slices.DeleteFunc(s.users, func(u callbridge.User) bool { return u.Tenant == tenant && u.Username == username })
	for id, sess := range s.sessions {
		if sess.Tenant == tenant && sess.Username == username {
			delete(s.sessions, id)
		}
	}
}

func (s *fakeStore) setErr(err error) {
	s.mu.Lock()
	s.err = err
	s.mu.Unlock()
}

func (s *fakeStore) CreateSession(_ context.Context, sess callbridge.Session) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !slices.ContainsFunc(s.users, func(u callbridge.User) bool { return u.Tenant == sess.Tenant && u.Username == sess.Username }) {
		return callbridge.Errorf(callbridge.ENotFound, "no such user")
	}
	if _, ok := s.sessions[sess.ID]; ok {
		return callbridge.Errorf(callbridge.EConflict, "session exists")
	}
	s.sessions[sess.ID] = sess
	return nil
}

func (s *fakeStore) Session(_ context.Context, id string) (callbridge.Session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return callbridge.Session{}, s.err
	}
	sess, ok := s.sessions[id]
	if !ok {
		return sess, callbridge.Errorf(callbridge.ENotFound, "no session")
	}
	return sess, nil
}

func (s *fakeStore) RotateSession(_ context.Context, id, oldHash, newHash string, at, expires time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.sessions[id]
	switch {
	case !ok:
		return callbridge.Errorf(callbridge.ENotFound, "no session")
	case sess.RefreshHash != oldHash || !sess.Live(at):
		return callbridge.Errorf(callbridge.EConflict, "not current")
	}
	sess.PreviousHash, sess.RefreshHash, sess.RotatedAt, sess.ExpiresAt = oldHash, newHash, at, expires
	s.sessions[id] = sess
	return nil
}

func (s *fakeStore) RevokeSession(_ context.Context, id string, at time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.sessions[id]
	if !ok {
		return callbridge.Errorf(callbridge.ENotFound, "no session")
	}
	if sess.RevokedAt.IsZero() {
		sess.RevokedAt = at
	}
	s.sessions[id] = sess
	return nil
}

func (s *fakeStore) PruneSessions(_ context.Context, before time.Time) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for id, sess := range s.sessions {
		if sess.ExpiresAt.Before(before) {
			delete(s.sessions, id)
			n++
		}
	}
	return n, nil
}

func (s *fakeStore) RehashPassword(_ context.Context, tenant callbridge.TenantID, username, oldHash, newHash string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, u := range s.users {
		if u.Tenant == tenant && u.Username == username && u.PasswordHash == oldHash {
			s.users[i].PasswordHash = newHash
		}
	}
	return nil
}

// liveSessions counts the sessions live at now.
func (s *fakeStore) liveSessions(now time.Time) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, sess := range s.sessions {
		if sess.Live(now) {
			n++
		}
	}
	return n
}

// fakeCommander records commands. do, when set, decides the outcome; otherwise every command
// succeeds with an empty result.
type fakeCommander struct {
	mu        sync.Mutex
	do        func(ctx context.Context, cmd callbridge.Command) (callbridge.CommandResult, error)
	snapshots map[callbridge.AgentKey]callbridge.AgentSnapshot
	readyErr  error
	got       chan callbridge.Command
}

var _ callbridge.Commander = (*fakeCommander)(nil)

func newFakeCommander() *fakeCommander {
	return &fakeCommander{
		snapshots: make(map[callbridge.AgentKey]callbridge.AgentSnapshot),
		got:       make(chan callbridge.Command, 1000),
	}
}

func (f *fakeCommander) Do(ctx context.Context, cmd callbridge.Command) (callbridge.CommandResult, error) {
	f.got <- cmd
	f.mu.Lock()
	do := f.do
	f.mu.Unlock()
	if do != nil {
		return do(ctx, cmd)
	}
	return callbridge.CommandResult{}, nil
}

func (f *fakeCommander) Snapshot(_ context.Context, tenant callbridge.TenantID, agent callbridge.AgentID) (callbridge.AgentSnapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	snap, ok := f.snapshots[callbridge.AgentKey{Tenant: tenant, Agent: agent}]
	if !ok {
		return callbridge.AgentSnapshot{
			Agent: callbridge.Agent{ID: agent, Tenant: tenant, State: callbridge.AgentLoggedOut, Since: t0},
		}, nil
	}
	return snap, nil
}

func (f *fakeCommander) Ready() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.readyErr
}

func (f *fakeCommander) setDo(do func(ctx context.Context, cmd callbridge.Command) (callbridge.CommandResult, error)) {
	f.mu.Lock()
	f.do = do
	f.mu.Unlock()
}

func (f *fakeCommander) setSnapshot(snap callbridge.AgentSnapshot) {
	f.mu.Lock()
	f.snapshots[callbridge.AgentKey{Tenant: snap.Agent.Tenant, Agent: snap.Agent.ID}] = snap
	f.mu.Unlock()
}

// noCommand fails if the commander received a command.
func (f *fakeCommander) noCommand(t *testing.T) {
	t.Helper()
	select {
	case cmd := <-f.got:
		t.Fatalf("Commander.Do was called with %+v", cmd)
	default:
	}
}

// nextCommand returns the next command Do received.
func (f *fakeCommander) nextCommand(t *testing.T) callbridge.Command {
	t.Helper()
	select {
	case cmd := <-f.got:
		return cmd
	case <-time.After(testenv.Patience):
		t.Fatal("Commander.Do was not called")
		return callbridge.Command{}
	}
}

// testLog is an in-memory event log in front of a real hub.Hub: Append gives the event the
// next sequence, keeps it (so the hub's Reader can serve positions older than a window) and
// publishes it to the hub synchronously, so once Append returns the event is in every
// matching socket's send queue.
type testLog struct {
	hub *hub.Hub

	mu      sync.Mutex
	msgs    []hub.Message
	first   uint64 // the oldest sequence kept (1 until trim)
	readErr error
	reads   int
	afters  []uint64 // afterSeq of every Subscribe, in order
}

func newTestLog(cfg hub.Config) *testLog {
	l := &testLog{first: 1}
	cfg.Reader = l
	cfg.OnSubscribe = func(_ hub.Key, after uint64) {
		l.mu.Lock()
		l.afters = append(l.afters, after)
		l.mu.Unlock()
	}
	l.hub = hub.New(cfg)
	l.hub.Start(0)
	return l
}

func (l *testLog) Append(_ context.Context, ev callbridge.Event) (uint64, error) {
	if ev.Tenant == "" {
		return 0, callbridge.Errorf(callbridge.EInvalid, "event without tenant")
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	seq := uint64(len(l.msgs) + 1)
	ev.Seq = seq
	frame, err := json.Marshal(ev)
	if err != nil {
		return 0, err
	}
	agents := ev.Audience
	if !ev.Type.IsCall() {
		agents = []callbridge.AgentID{ev.Agent}
	}
	m := hub.Message{Seq: seq, Tenant: ev.Tenant, Agents: agents, Frame: frame}
	l.msgs = append(l.msgs, m)
	l.hub.Publish(m)
	return seq, nil
}

// Read implements hub.Reader over the kept messages.
func (l *testLog) Read(_ context.Context, after, upto uint64, fn func(hub.Message) error) (uint64, error) {
	l.mu.Lock()
	l.reads++
	msgs, first, err := slices.Clone(l.msgs), l.first, l.readErr
	l.mu.Unlock()
	if err != nil {
		return 0, err
	}
	if after > uint64(len(msgs)) {
		return first, hub.ErrAhead
	}
	for _, m := range msgs {
		if m.Seq > after && m.Seq <= upto && m.Seq >= first {
			if err := fn(m); err != nil {
				return first, err
			}
		}
	}
	return first, nil
}

// trim forgets every event before seq (as MaxAge would).
func (l *testLog) trim(seq uint64) {
	l.mu.Lock()
	l.first = seq
	l.mu.Unlock()
}

// subscribedAfter returns the afterSeq of every Subscribe so far.
func (l *testLog) subscribedAfter() []uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.afters)
}

// subscribers counts the hub's live subscriptions.
func (l *testLog) subscribers() int { return l.hub.Stats().Subscriptions }

func (l *testLog) readCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.reads
}

// callEvent is a call event about device 1001 of agent in tenant, for the log.
func callEvent(tenant callbridge.TenantID, agent callbridge.AgentID, call callbridge.CallID, typ callbridge.EventType) callbridge.Event {
	state := callbridge.ConnAlerting
	if typ == callbridge.EventCallEstablished {
		state = callbridge.ConnConnected
	}
	return callbridge.Event{
		Type:   typ,
		Time:   t0,
		Tenant: tenant,
		CallID: call,
		Data: &callbridge.CallEvent{
			Call: callbridge.Call{
				ID: call, Tenant: tenant, Direction: callbridge.DirInbound,
				ANI: "+15551230001", DNIS: "+15550100", Queue: "support",
				AttachedData: map[string]string{"account": "42"},
				Connections:  []callbridge.Connection{{Device: "1001", Agent: agent, State: state}},
				StartedAt:    t0,
			},
			Device: "1001",
			Agent:  agent,
		},
		Audience: []callbridge.AgentID{agent},
	}
}

// append adds events to the log and returns their seqs.
func (l *testLog) append(t *testing.T, evs ...callbridge.Event) []uint64 {
	t.Helper()
	var seqs []uint64
	for _, ev := range evs {
		seq, err := l.Append(context.Background(), ev)
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, seq)
	}
	return seqs
}

// ---- the harness: a real server on 127.0.0.1:0 -------------------------------------------

type harness struct {
	srv   *cbhttp.Server
	url   string
	cmd   *fakeCommander
	store *fakeStore
	log   *testLog
	clock *fakeClock
}

// newServer starts a gateway with fakes behind it; change sets more Config fields.
func newServer(t *testing.T, change ...func(*cbhttp.Config)) *harness {
	t.Helper()
	return newServerHub(t, hub.Config{}, change...)
}

// newServerHub is newServer with a hub configured by hcfg (its Reader is the test log).
func newServerHub(t *testing.T, hcfg hub.Config, change ...func(*cbhttp.Config)) *harness {
	t.Helper()
	h := &harness{cmd: newFakeCommander(), store: newFakeStore(t), log: newTestLog(hcfg), clock: &fakeClock{now: t0}}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go h.log.hub.Run(ctx)
	cfg := cbhttp.Config{
		Addr:       "127.0.0.1:0",
		Store:      h.store,
		Sessions:   h.store,
		Hub:        h.log.hub,
		Commander:  h.cmd,
		Secret:     testSecret,
		Now:        h.clock.Now,
		BcryptCost: testBcryptCost,
	}
	for _, f := range change {
		f(&cfg)
	}
	srv, err := cbhttp.NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Close(testenv.Context(t)); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	h.srv, h.url = srv, srv.URL()
	return h
}

// response is a decoded HTTP response.
type response struct {
	status int
	header nethttp.Header
	body   []byte
}

// json decodes the body into a map.
func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("body %q is not a JSON object: %v", r.body, err)
	}
	return m
}

// wantError checks an error response: status, {"error":{"code":code,...}} and a message
// containing msg.
func (r response) wantError(t *testing.T, status int, code, msg string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status = %d, want %d (body %s)", r.status, status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	var e struct {
		Error struct{ Code, Message string }
	}
	if err := json.Unmarshal(r.body, &e); err != nil {
		t.Fatalf("body %q: %v", r.body, err)
	}
	if e.Error.Code != code || !strings.Contains(e.Error.Message, msg) {
		t.Fatalf("error = %+v, want code %q with message containing %q", e.Error, code, msg)
	}
}

// do sends an HTTP request to the server.
func (h *harness) do(t *testing.T, method, path, token string, body io.Reader) response {
	t.Helper()
	req, err := nethttp.NewRequest(method, h.url+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := nethttp.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: res.StatusCode, header: res.Header, body: b}
}

func (h *harness) postLogin(t *testing.T, body string) response {
	t.Helper()
	return h.do(t, "POST", "/v1/login", "", strings.NewReader(body))
}

// token logs username in (password username+"-pw") and returns the token.
func (h *harness) token(t *testing.T, username string) string {
	t.Helper()
	res := h.postLogin(t, `{"username":"`+username+`","password":"`+username+`-pw"}`)
	if res.status != 200 {
		t.Fatalf("login %s: %d %s", username, res.status, res.body)
	}
	return res.json(t)["token"].(string)
}

// wsURL is the WebSocket URL with the given query ("" for none).
func (h *harness) wsURL(query string) string {
	u := "ws" + strings.TrimPrefix(h.url, "http") + "/v1/ws"
	if query != "" {
		u += "?" + query
	}
	return u
}

// dialWS opens a raw WebSocket with the token as bearer header (when set) and extra headers.
func (h *harness) dialWS(t *testing.T, token, query string, hdr nethttp.Header) (*websocket.Conn, *nethttp.Response, error) {
	t.Helper()
	if hdr == nil {
		hdr = nethttp.Header{}
	}
	if token != "" {
		hdr.Set("Authorization", "Bearer "+token)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Patience)
	defer cancel()
	return websocket.Dial(ctx, h.wsURL(query), &websocket.DialOptions{HTTPHeader: hdr})
}

// wsClient is a WebSocket client that reads in the background, so that waiting for a
// message never cancels the connection.
type wsClient struct {
	t      *testing.T
	conn   *websocket.Conn
	msgs   chan []byte
	done   chan struct{}
	err    error // why reading stopped; valid after done
	nextID int
}

// connect opens a WebSocket for token with query and starts reading.
func (h *harness) connect(t *testing.T, token, query string) *wsClient {
	t.Helper()
	conn, res, err := h.dialWS(t, token, query, nil)
	if err != nil {
		status := 0
		if res != nil {
			status = res.StatusCode
		}
		t.Fatalf("dial: %v (status %d)", err, status)
	}
	return startClient(t, conn)
}

func startClient(t *testing.T, conn *websocket.Conn) *wsClient {
	c := &wsClient{t: t, conn: conn, msgs: make(chan []byte, 10000), done: make(chan struct{})}
	go func() {
		defer close(c.done)
		for {
			_, b, err := conn.Read(context.Background())
			if err != nil {
				c.err = err
				return
			}
			c.msgs <- b
		}
	}()
	t.Cleanup(func() { _ = conn.CloseNow() })
	return c
}

// next returns the next message as a map.
func (c *wsClient) next() map[string]any {
	c.t.Helper()
	select {
	case b := <-c.msgs:
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			c.t.Fatalf("message %q is not a JSON object: %v", b, err)
		}
		return m
	case <-c.done:
		select {
		case b := <-c.msgs:
			var m map[string]any
			_ = json.Unmarshal(b, &m)
			return m
		default:
		}
		c.t.Fatalf("connection closed while waiting for a message: %v", c.err)
	case <-time.After(testenv.Patience):
		c.t.Fatalf("no message within %s", testenv.Patience)
	}
	return nil
}

// sendRaw sends one text message.
func (c *wsClient) sendRaw(s string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Patience)
	defer cancel()
	if err := c.conn.Write(ctx, websocket.MessageText, []byte(s)); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// send sends {"id":id,"cmd":cmd,"params":params}.
func (c *wsClient) send(id, cmd string, params any) {
	c.t.Helper()
	m := map[string]any{"id": id, "cmd": cmd}
	if params != nil {
		m["params"] = params
	}
	b, err := json.Marshal(m)
	if err != nil {
		c.t.Fatal(err)
	}
	c.sendRaw(string(b))
}

// reply waits for the reply to id, failing on any other message before it.
func (c *wsClient) reply(id string) map[string]any {
	c.t.Helper()
	m := c.next()
	if m["re"] != id {
		c.t.Fatalf("got %v, want the reply to %q", m, id)
	}
	return m
}

// drain sends a ping and returns every message that arrives before its reply. Since the
// fake log delivers synchronously, an event appended before drain is among them.
func (c *wsClient) drain() []map[string]any {
	c.t.Helper()
	c.nextID++
	id := fmt.Sprintf("drain-%d", c.nextID)
	c.send(id, "ping", nil)
	var out []map[string]any
	for {
		m := c.next()
		if m["re"] == id {
			if m["ok"] != true {
				c.t.Fatalf("ping failed: %v", m)
			}
			return out
		}
		out = append(out, m)
	}
}

// seqs returns the "seq" of each event message.
func seqs(msgs []map[string]any) []uint64 {
	var out []uint64
	for _, m := range msgs {
		if s, ok := m["seq"].(float64); ok && m["type"] != "snapshot" {
			out = append(out, uint64(s))
		}
	}
	return out
}

// closeStatus waits for the connection to end and returns its close error.
func (c *wsClient) closeStatus() error {
	c.t.Helper()
	select {
	case <-c.done:
		return c.err
	case <-time.After(testenv.Patience):
		c.t.Fatal("connection did not close")
		return nil
	}
}

// errorOf returns the error object of a reply.
func errorOf(t *testing.T, m map[string]any) (code, msg string) {
	t.Helper()
	e, ok := m["error"].(map[string]any)
	if !ok || m["ok"] != false {
		t.Fatalf("reply %v is not an error", m)
	}
	return e["code"].(string), e["message"].(string)
}

func jsonBody(t *testing.T, v any) io.Reader {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.NewReader(b)
}

var errBoom = errors.New("database exploded at 10.0.0.7")

// waitFor polls cond until it holds, for at most testenv.Patience.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testenv.Eventually(t, what, cond)
}
