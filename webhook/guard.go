package webhook

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"
)

// Destinations says which addresses webhook deliveries may connect to. Webhook URLs are set by
// supervisors, admins and API keys, so a delivery must not become a way to reach the node's
// own services or a cloud's metadata endpoint (server-side request forgery). The check runs on
// the address actually dialled, after DNS resolution, so a name that resolves to a refused
// address is refused too.
type Destinations struct {
	// AllowLoopback permits 127.0.0.0/8 and ::1 (development, tests, a CRM on the same host).
	AllowLoopback bool
	// DenyPrivate refuses the private ranges (10/8, 172.16/12, 192.168/16, fc00::/7) as well;
	// off by default, since an on-premises CRM usually lives there.
	DenyPrivate bool
}

// Check returns an error when ip may not be dialled. Link-local (169.254/16 — cloud metadata —
// and fe80::/10), unspecified, multicast and broadcast addresses are always refused.
func (d Destinations) Check(ip netip.Addr) error {
	ip = ip.Unmap()
	switch {
	case !ip.IsValid():
		return fmt.Errorf("webhook: invalid address")
	case ip.IsLoopback() && !d.AllowLoopback:
		return fmt.Errorf("webhook: destination %s is a loopback address", ip)
	case ip.IsLinkLocalUnicast(), ip.IsLinkLocalMulticast(), ip.IsInterfaceLocalMulticast():
		return fmt.Errorf("webhook: destination %s is a link-local address", ip)
	case ip.IsUnspecified(), ip.IsMulticast(), ip == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return fmt.Errorf("webhook: destination %s is not a unicast address", ip)
	case ip.IsPrivate() && d.DenyPrivate:
		return fmt.Errorf("webhook: destination %s is a private address", ip)
	}
	return nil
}

// Client returns an http.Client for deliveries that dials only addresses Check allows, does
// not follow redirects (a 3xx is a failed attempt) and gives up after timeout.
func (d Destinations) Client(timeout time.Duration) *http.Client {
	dialer := &net.Dialer{
		Timeout: 10 * time.Second,
		Control: func(_, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return fmt.Errorf("webhook: dial %s: %w", address, err)
			}
			return d.Check(ap.Addr())
		},
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil // the check is on the address dialled; a proxy would hide it
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		return dialer.DialContext(ctx, network, addr)
	}
	return &http.Client{
		Timeout:       timeout,
		Transport:     tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}
