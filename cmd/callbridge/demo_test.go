package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/coder/websocket"

	"github.com/callbridge/callbridge"
	"github.com/callbridge/callbridge/internal/testenv"
)

// post sends a JSON body (nil: none) with an optional bearer token to the node and returns the
// status and body.
func post(t *testing.T, m *Main, path, token string, body any) (int, []byte) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest("POST", m.HTTP.URL()+path, r)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, b
}

func loginStatus(t *testing.T, m *Main, user, pass string) int {
	t.Helper()
	status, _ := post(t, m, "/v1/login", "", map[string]string{"username": user, "password": pass})
	return status
}

// meStatus is the status of GET /v1/me with token.
func meStatus(t *testing.T, m *Main, token string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", m.HTTP.URL()+"/v1/me", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

// runBanner runs a node on dataDir with change, prints its banner and returns both.
func runBanner(t *testing.T, dataDir string, change func(*Main)) (*Main, string) {
	t.Helper()
	var out bytes.Buffer
	m := runMainWith(t, func(m *Main) {
		m.DataDir = dataDir
		m.stdout = &out
		if change != nil {
			change(m)
		}
	})
	m.PrintBanner()
	return m, out.String()
}

func closeMain(t *testing.T, m *Main) {
	t.Helper()
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestDemoLoginsOnlyOnLoopback (issue 10, item 6): the embedded default creates the demo
// users (password "demo") only when HTTP listens on loopback, and says in the banner why
// there are none otherwise; a later run with a provisioning file removes the demo users and
// their sessions from the store.
func TestDemoLoginsOnlyOnLoopback(t *testing.T) {
	data := t.TempDir()

	public, banner := runBanner(t, data, func(m *Main) { m.HTTPAddr = "0.0.0.0:0" })
	if strings.Contains(banner, `password "demo"`) || !strings.Contains(banner, "demo logins:   none, --http 0.0.0.0:0 is not a loopback address") {
		t.Errorf("banner on 0.0.0.0:\n%s", banner)
	}
	if got := loginStatus(t, public, "agent1", "demo"); got != http.StatusUnauthorized {
		t.Fatalf("demo login on a public address: %d, want 401", got)
	}
	closeMain(t, public)

	local, banner := runBanner(t, data, nil)
	if !strings.Contains(banner, `demo logins (demo only, loopback only): agent1`) {
		t.Errorf("banner on loopback:\n%s", banner)
	}
	tok := login(t, local, "agent1", "demo")
	closeMain(t, local)

	file := filepath.Join(t.TempDir(), "site.yaml")
	if err := os.WriteFile(file, []byte("tenants:\n  - id: site\n    users:\n      - {username: boss, password: s3cret, role: admin}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	site, banner := runBanner(t, data, func(m *Main) { m.ProvisionFile = file })
	if strings.Contains(banner, "demo logins") {
		t.Errorf("banner of a provisioned run mentions demo logins:\n%s", banner)
	}
	if got := loginStatus(t, site, "agent1", "demo"); got != http.StatusUnauthorized {
		t.Errorf("demo login after a provisioned start: %d, want 401", got)
	}
	if got := meStatus(t, site, tok); got != http.StatusUnauthorized {
		t.Errorf("a demo user's token after a provisioned start: %d, want 401", got)
	}
	dir, err := site.store.Directory(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if slices.ContainsFunc(dir.Tenants, func(t callbridge.TenantConfig) bool { return t.ID == "demo" }) {
		t.Errorf("the demo tenant is still stored: %+v", dir.Tenants)
	}
	if got := loginStatus(t, site, "boss", "s3cret"); got != http.StatusOK {
		t.Errorf("the provisioned user: %d", got)
	}
}

// TestReprovisioningRemovesUsersAndLogoutSurvivesRestart (issue 10, item 3), on the real
// store across a restart: a user the new provisioning file drops can no longer log in and
// their token and socket are refused; a logged-out token stays refused; other sessions go on.
func TestReprovisioningRemovesUsersAndLogoutSurvivesRestart(t *testing.T) {
	data, dir := t.TempDir(), t.TempDir()
	write := func(name string, users ...string) string {
		var b strings.Builder
		b.WriteString("tenants:\n  - id: site\n    users:\n")
		for _, u := range users {
			b.WriteString("      - {username: " + u + ", password: pw-" + u + ", role: supervisor}\n")
		}
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	before, after := write("before.yaml", "kept", "dropped"), write("after.yaml", "kept")

	m := runMainWith(t, func(m *Main) { m.DataDir, m.ProvisionFile = data, before })
	keptTok := login(t, m, "kept", "pw-kept")
	outTok := login(t, m, "kept", "pw-kept")
	droppedTok := login(t, m, "dropped", "pw-dropped")
	if status, body := post(t, m, "/v1/logout", outTok, nil); status != http.StatusNoContent {
		t.Fatalf("logout: %d %s", status, body)
	}
	closeMain(t, m)

	m = runMainWith(t, func(m *Main) { m.DataDir, m.ProvisionFile = data, after })
	if got := loginStatus(t, m, "dropped", "pw-dropped"); got != http.StatusUnauthorized {
		t.Errorf("login of a dropped user: %d, want 401", got)
	}
	if got := meStatus(t, m, droppedTok); got != http.StatusUnauthorized {
		t.Errorf("token of a dropped user: %d, want 401", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Patience)
	defer cancel()
	if _, res, err := websocket.Dial(ctx, "ws://"+m.HTTP.Addr()+"/v1/ws?access_token="+droppedTok, nil); err == nil || res == nil || res.StatusCode != http.StatusUnauthorized {
		t.Errorf("socket of a dropped user: %v %v, want 401", err, res)
	}
	if got := meStatus(t, m, outTok); got != http.StatusUnauthorized {
		t.Errorf("logged-out token after a restart: %d, want 401", got)
	}
	if got := meStatus(t, m, keptTok); got != http.StatusOK {
		t.Errorf("a live session after the restart: %d, want 200", got)
	}
}
