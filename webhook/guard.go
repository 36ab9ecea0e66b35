package webhook

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"syscall"
	"time"

	"github.com/callbridge/callbridge"
)

// Destinations says which addresses webhook deliveries may connect to. Webhook URLs are set by
// supervisors, admins and API keys, so a delivery must not become a way to reach the node's
// own services or a cloud's metadata endpoint (server-side request forgery). The check runs on
// the address actually dialled, after DNS resolution, so a name that resolves to a refused
// address is refused too; CheckURL runs the same check when a webhook is created.
type Destinations struct {
	// AllowLoopback permits 127.0.0.0/8 and ::1 (development, tests, a CRM on the same host).
	AllowLoopback bool
	// DenyPrivate refuses the private ranges (10/8, 172.16/12, 192.168/16, fc00::/7) as well;
	// off by default, since an on-premises CRM usually lives there.
	DenyPrivate bool
}

// metadataAddrs are cloud instance metadata endpoints outside the link-local ranges, always
// refused: fd00:ec2::254 is the IPv6 address of the AWS instance metadata service (EC2 user
// guide, "Instance metadata service"; a unique local address, which DenyPrivate off lets
// through), 100.100.100.200 is Alibaba Cloud's metadata service (ECS documentation,
// "Instance metadata"; in the 100.64/10 shared address space). 169.254.169.254 (AWS, Google
// Cloud, Azure, Oracle, …) is link-local and refused as such.
var metadataAddrs = []netip.Addr{
	netip.MustParseAddr("fd00:ec2::254"),
	netip.MustParseAddr("100.100.100.200"),
}

// Check returns an error when ip may not be dialled. Link-local (169.254/16 — cloud metadata —
// and fe80::/10), the cloud metadata addresses fd00:ec2::254 and 100.100.100.200,
// unspecified, multicast and broadcast addresses are always refused.
func (d Destinations) Check(ip netip.Addr) error {
	ip = ip.Unmap()
	if !ip.IsValid() {
		return fmt.Errorf("webhook: invalid address")
	}
	if why := d.refusal(ip); why != "" {
		return fmt.Errorf("webhook: destination %s is %s", ip, why)
	}
	return nil
}

// refusal says what ip (valid, unmapped) is when it may not be dialled, else "".
func (d Destinations) refusal(ip netip.Addr) string {
	switch {
	case slices.Contains(metadataAddrs, ip.WithZone("")):
		return "a cloud metadata address"
	case ip.IsLoopback() && !d.AllowLoopback:
		return "a loopback address"
	case ip.IsLinkLocalUnicast(), ip.IsLinkLocalMulticast(), ip.IsInterfaceLocalMulticast():
		return "a link-local address"
	case ip.IsUnspecified(), ip.IsMulticast(), ip == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return "not a unicast address"
	case ip.IsPrivate() && d.DenyPrivate:
		return "a private address"
	}
	return ""
}

// Resolver looks up a host's addresses; *net.Resolver is one.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// CheckURL is Check for a webhook URL when it is created: the URL's host is an address
// literal that must pass Check, or a name whose every address (looked up with r; nil means
// net.DefaultResolver) must pass it. The error is a *callbridge.Error with code invalid that
// names the host and the refused address, e.g. `url: host metadata.example resolves to
// 169.254.169.254, a link-local address; webhooks may not go there`. A name that does not
// resolve now (a lookup error) passes: deliveries check the address they dial, every time.
// ctx bounds the lookup.
func (d Destinations) CheckURL(ctx context.Context, r Resolver, rawURL string) error {
	u, err := url.Parse(rawURL)
	if err != nil || u.Hostname() == "" {
		return callbridge.Errorf(callbridge.EInvalid, "url must be an absolute http or https URL")
	}
	host := u.Hostname()
	if ip, err := netip.ParseAddr(host); err == nil {
		if why := d.refusal(ip.Unmap()); why != "" {
			return callbridge.Errorf(callbridge.EInvalid, "url: host %s is %s; webhooks may not go there", host, why)
		}
		return nil
	}
	if r == nil {
		r = net.DefaultResolver
	}
	ips, err := r.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil // not resolvable now: every delivery checks the address it dials
	}
	for _, ip := range ips {
		ip = ip.Unmap()
		if !ip.IsValid() {
			continue
		}
		if why := d.refusal(ip); why != "" {
			return callbridge.Errorf(callbridge.EInvalid, "url: host %s resolves to %s, %s; webhooks may not go there", host, ip, why)
		}
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
