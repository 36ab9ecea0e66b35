package main

import (
	"context"
	"fmt"
	"net"
	"strings"

	"golang.org/x/crypto/bcrypt"

	"github.com/callbridge/callbridge/provision"
)

// provision fills the store before the node starts:
//
//   - with --provision FILE: the demo tenant of an earlier embedded-default run is removed
//     (with its users and their sessions), then the file is provisioned;
//   - the embedded default (--pbx sim, no file): the demo tenant, with its demo users
//     (password "demo") only when --http is a loopback address; otherwise the tenant without
//     users, and the banner says why there are no logins;
//   - a real switch without a file: the demo tenant is removed and the stored directory used.
//
// The demo tenant is stored marked as a demo, so that it never outlives the demo runs: the
// next run that is not the embedded default drops it.
func (m *Main) provision(ctx context.Context, store serveStore) error {
	if m.ProvisionFile == "" && m.PBX == "sim" {
		p := provision.Demo()
		if why := notLoopback(m.HTTPAddr); why != "" {
			m.noDemo = why
			p.Tenants[0].Users = nil
		} else {
			m.demo = true
		}
		if err := store.Provision(ctx, p); err != nil {
			return fmt.Errorf("provision demo tenant: %w", err)
		}
		return nil
	}
	if _, err := store.DropDemo(ctx); err != nil {
		return err
	}
	if m.ProvisionFile == "" {
		return nil
	}
	p, err := provision.LoadFile(m.ProvisionFile)
	if err != nil {
		return fmt.Errorf("provision: %w", err)
	}
	if err := store.Provision(ctx, p); err != nil {
		return fmt.Errorf("provision %s: %w", m.ProvisionFile, err)
	}
	return nil
}

// notLoopback returns "" when the listen address addr ("host:port") is on loopback
// (127.0.0.0/8, ::1 or "localhost"), and otherwise why the demo has no logins there.
func notLoopback(addr string) string {
	if isLoopback(addr) {
		return ""
	}
	return fmt.Sprintf("--http %s is not a loopback address (the demo password is public); give --provision FILE with your users", addr)
}

// isLoopback reports whether the listen address addr is a loopback address or "localhost".
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// bcrypt is the cost of password hashes: Main.bcryptCost, or bcrypt.DefaultCost.
func (m *Main) bcrypt() int {
	if m.bcryptCost == 0 {
		return bcrypt.DefaultCost
	}
	return m.bcryptCost
}
