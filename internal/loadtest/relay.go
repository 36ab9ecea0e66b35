package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/nats-io/nats-server/v2/server"
	natsgo "github.com/nats-io/nats.go"
)

// Relay is the baseline the load harness measures callbridge against (issue 9): the
// smallest honest NATS → WebSocket relay. An embedded nats-server (core NATS, no JetStream),
// one subscription per connected user on relay.<user>, and github.com/coder/websocket with
// two goroutines per socket (the handler writes what the subscription delivers, another
// reads the client's messages). It keeps nothing: no log, no resume, no snapshot, no
// authentication (the access token is the user name). A socket gets Hello first, then
// every message published for its user; {"id":…,"cmd":"ping"} is answered
// {"re":…,"ok":true}.
type Relay struct {
	ns    *server.Server
	sub   *natsgo.Conn // the sockets' subscriptions
	pub   *natsgo.Conn // the publisher (the switch's side)
	hello []byte

	mu    sync.Mutex
	addr  string
	ln    net.Listener
	hs    *http.Server
	ctx   context.Context // the current listener's sockets end with it
	stop  context.CancelFunc
	conns map[*websocket.Conn]struct{}
	wg    sync.WaitGroup
}

// relayQueue is how many messages a socket's subscription may hold before NATS drops them
// (a slow consumer).
const relayQueue = 1024

// StartRelay starts a relay listening on addr (127.0.0.1:0 for any port); every socket
// gets hello first.
func StartRelay(addr string, hello []byte) (*Relay, error) {
	ns, err := server.NewServer(&server.Options{DontListen: true, NoSigs: true, NoLog: true})
	if err != nil {
		return nil, fmt.Errorf("relay: nats server: %w", err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(30 * time.Second) {
		ns.Shutdown()
		return nil, errors.New("relay: nats server not ready")
	}
	r := &Relay{ns: ns, hello: hello, conns: map[*websocket.Conn]struct{}{}}
	for _, c := range []**natsgo.Conn{&r.sub, &r.pub} {
		if *c, err = natsgo.Connect("", natsgo.InProcessServer(ns)); err != nil {
			r.Close()
			return nil, fmt.Errorf("relay: connect: %w", err)
		}
	}
	if err := r.listen(addr); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

// Addr is the address the relay listens on.
func (r *Relay) Addr() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.addr
}

func (r *Relay) listen(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("relay: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/login", r.handleLogin)
	mux.HandleFunc("GET /v1/ws", r.handleWS)
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	r.mu.Lock()
	r.addr, r.ln, r.hs = ln.Addr().String(), ln, hs
	r.ctx, r.stop = context.WithCancel(context.Background())
	r.mu.Unlock()
	go func() { _ = hs.Serve(ln) }()
	return nil
}

// Restart closes every socket (1001 going away) and the listener, and listens again on the
// same address: the reconnect storm.
func (r *Relay) Restart() error {
	r.shutdownHTTP()
	return r.listen(r.Addr())
}

func (r *Relay) shutdownHTTP() {
	r.mu.Lock()
	hs, stop := r.hs, r.stop
	conns := make([]*websocket.Conn, 0, len(r.conns))
	for c := range r.conns {
		conns = append(conns, c)
	}
	r.hs = nil
	r.mu.Unlock()
	if hs == nil {
		return
	}
	_ = hs.Close() // the listener; hijacked sockets are ours
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Go(func() { _ = c.Close(websocket.StatusGoingAway, "restart") })
	}
	wg.Wait()
	stop()
	r.wg.Wait()
}

// Close stops the relay.
func (r *Relay) Close() {
	r.shutdownHTTP()
	for _, c := range []*natsgo.Conn{r.sub, r.pub} {
		if c != nil {
			c.Close()
		}
	}
	r.ns.Shutdown()
	r.ns.WaitForShutdown()
}

// Publish sends frame to each of users' sockets (one core NATS message per user).
func (r *Relay) Publish(users []string, frame []byte) error {
	for _, u := range users {
		if err := r.pub.Publish("relay."+u, frame); err != nil {
			return err
		}
	}
	return nil
}

// Flush waits until the server has every message published so far.
func (r *Relay) Flush() error { return r.pub.Flush() }

func (r *Relay) handleLogin(w http.ResponseWriter, req *http.Request) {
	var in struct {
		Username string `json:"username"`
	}
	if err := json.NewDecoder(req.Body).Decode(&in); err != nil || in.Username == "" || strings.ContainsAny(in.Username, ".*> \t\r\n") {
		http.Error(w, `{"error":"bad login"}`, http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]string{"token": in.Username})
}

func (r *Relay) handleWS(w http.ResponseWriter, req *http.Request) {
	user := req.URL.Query().Get("access_token")
	if user == "" || strings.ContainsAny(user, ".*> \t\r\n") {
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	r.mu.Lock()
	base := r.ctx
	r.mu.Unlock()
	c, err := websocket.Accept(w, req, nil)
	if err != nil {
		return
	}
	ch := make(chan *natsgo.Msg, relayQueue)
	sub, err := r.sub.ChanSubscribe("relay."+user, ch)
	if err == nil {
		err = r.sub.Flush() // the subscription is in place before the hello
	}
	if err != nil {
		c.Close(websocket.StatusInternalError, "subscribe")
		return
	}
	defer sub.Unsubscribe()
	r.mu.Lock()
	if base.Err() != nil {
		r.mu.Unlock()
		c.Close(websocket.StatusGoingAway, "restart")
		return
	}
	r.conns[c] = struct{}{}
	r.wg.Add(1)
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		delete(r.conns, c)
		r.mu.Unlock()
		r.wg.Done()
	}()
	ctx, cancel := context.WithCancel(base)
	defer cancel()
	go func() { // the second goroutine: the client's messages
		defer cancel()
		for {
			_, b, err := c.Read(ctx)
			if err != nil {
				return
			}
			var m struct {
				ID  string `json:"id"`
				Cmd string `json:"cmd"`
			}
			if json.Unmarshal(b, &m) == nil && m.Cmd == "ping" {
				reply, _ := json.Marshal(map[string]any{"re": m.ID, "ok": true})
				if c.Write(ctx, websocket.MessageText, reply) != nil {
					return
				}
			}
		}
	}()
	if c.Write(ctx, websocket.MessageText, r.hello) != nil {
		return
	}
	for {
		select {
		case <-ctx.Done():
			c.CloseNow()
			return
		case m := <-ch:
			if c.Write(ctx, websocket.MessageText, m.Data) != nil {
				c.CloseNow()
				return
			}
		}
	}
}

// Restamp returns frame ({"seq":…,"type":…,"time":"…",…}) with its top-level "time" set to
// t, so that a replayed event's latency counts from its replay.
func Restamp(frame []byte, t time.Time) []byte {
	const key = `"time":"`
	i := bytes.Index(frame, []byte(key))
	if i < 0 {
		return frame
	}
	j := -1 // the closing quote of the value (a time has no escapes, but skip any)
	for k := i + len(key); k < len(frame); k++ {
		if frame[k] == '\\' {
			k++
			continue
		}
		if frame[k] == '"' {
			j = k - (i + len(key))
			break
		}
	}
	if j < 0 {
		return frame
	}
	out := make([]byte, 0, len(frame)+8)
	out = append(out, frame[:i+len(key)]...)
	out = t.UTC().AppendFormat(out, time.RFC3339Nano)
	return append(out, frame[i+len(key)+j:]...)
}
