package httptransport

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"path"
	"strings"

	"github.com/skyring/skyring/transports"
)

// ErrDenied marks a delivery refused by the callback policy: the
// destination address (or host name) is denied, or not allowed. It is
// final (matches transports.ErrPermanent): the node does not retry it.
var ErrDenied = errors.New("httptransport: destination denied by the callback policy")

// DefaultDeny are the destinations no callback may reach unless the
// operator allows them explicitly: link-local addresses, which hold the
// cloud metadata services (169.254.169.254, fd00:ec2::254), and the
// unspecified addresses.
var DefaultDeny = []string{"169.254.0.0/16", "fe80::/10", "fd00:ec2::254/128", "0.0.0.0/8", "::/128"}

// Policy says where callbacks may go (--callback:deny, --callback:allow).
// An entry is a CIDR ("10.0.0.0/8", "::1/128"), an address, or a host name
// pattern ("*.internal", "metadata.google.internal"; path.Match syntax,
// lower case). A destination is refused when it matches Deny (DefaultDeny
// included), or when Allow is not empty and it matches no Allow entry;
// an Allow entry lifts a DefaultDeny entry it names exactly (e.g. Allow
// "169.254.0.0/16"). Addresses are checked when the node dials, on the
// address DNS resolved to, so a name cannot be used to reach a denied
// address; a literal address or a denied name is refused at create (400).
// Through an HTTP proxy (HTTP_PROXY), the proxy's address is what is dialled.
type Policy struct {
	denyNets, allowNets   []netip.Prefix
	denyHosts, allowHosts []string
}

// NewPolicy builds a Policy from deny and allow entries, DefaultDeny
// added to deny unless allow names the entry.
func NewPolicy(deny, allow []string) (*Policy, error) {
	p := &Policy{}
	allowed := map[string]bool{}
	for _, a := range allow {
		allowed[strings.TrimSpace(a)] = true
	}
	all := append([]string(nil), deny...)
	for _, d := range DefaultDeny {
		if !allowed[d] {
			all = append(all, d)
		}
	}
	var err error
	if p.denyNets, p.denyHosts, err = parseEntries(all); err != nil {
		return nil, fmt.Errorf("--callback:deny: %w", err)
	}
	if p.allowNets, p.allowHosts, err = parseEntries(allow); err != nil {
		return nil, fmt.Errorf("--callback:allow: %w", err)
	}
	return p, nil
}

func parseEntries(entries []string) (nets []netip.Prefix, hosts []string, err error) {
	for _, e := range entries {
		e = strings.ToLower(strings.TrimSpace(e))
		switch {
		case e == "":
		case strings.Contains(e, "/"):
			pf, perr := netip.ParsePrefix(e)
			if perr != nil {
				return nil, nil, fmt.Errorf("bad CIDR %q: %w", e, perr)
			}
			nets = append(nets, pf.Masked())
		default:
			if a, aerr := netip.ParseAddr(e); aerr == nil {
				nets = append(nets, netip.PrefixFrom(a, a.BitLen()))
				continue
			}
			if _, merr := path.Match(e, "x"); merr != nil {
				return nil, nil, fmt.Errorf("bad host pattern %q: %w", e, merr)
			}
			hosts = append(hosts, e)
		}
	}
	return nets, hosts, nil
}

// CheckHost checks a URL's host (a name or a literal address) as far as
// it can be before dialling: a denied literal address or name, or, with an
// allow-list, a literal address or a name it leaves out (a name passes if
// it matches an allowed host pattern, or if allowed networks are given:
// its addresses are checked at dial time).
func (p *Policy) CheckHost(host string) error {
	if p == nil {
		return nil
	}
	host = strings.ToLower(strings.Trim(host, "[]"))
	if a, err := netip.ParseAddr(host); err == nil {
		return p.checkAddr(a, false)
	}
	if matchHost(p.denyHosts, host) {
		return fmt.Errorf("%w: host %s is denied", ErrDenied, host)
	}
	if len(p.allowHosts) > 0 && len(p.allowNets) == 0 && !matchHost(p.allowHosts, host) {
		return fmt.Errorf("%w: host %s is not allowed", ErrDenied, host)
	}
	return nil
}

// nameAllowed reports whether host matches an allowed host pattern.
func (p *Policy) nameAllowed(host string) bool {
	return matchHost(p.allowHosts, strings.ToLower(host))
}

// checkAddr checks an address about to be dialled; byName says the host
// name it was resolved from is allowed by name.
func (p *Policy) checkAddr(a netip.Addr, byName bool) error {
	a = a.Unmap()
	for _, n := range p.denyNets {
		if n.Contains(a) {
			return fmt.Errorf("%w: address %s is in %s", ErrDenied, a, n)
		}
	}
	if byName || len(p.allowNets)+len(p.allowHosts) == 0 {
		return nil
	}
	for _, n := range p.allowNets {
		if n.Contains(a) {
			return nil
		}
	}
	return fmt.Errorf("%w: address %s is not allowed", ErrDenied, a)
}

func matchHost(patterns []string, host string) bool {
	for _, pat := range patterns {
		if ok, _ := path.Match(pat, host); ok {
			return true
		}
	}
	return false
}

// dialer returns a DialContext that resolves the host itself, checks every
// address against the policy and dials only an address that passed (the
// one checked: no second resolution can swap it). A destination with no
// address that passes is a final failure wrapping ErrDenied.
func (p *Policy) dialer(d *net.Dialer) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		if err := p.CheckHost(host); err != nil {
			return nil, transports.Permanent(err)
		}
		var ips []netip.Addr
		if a, err := netip.ParseAddr(host); err == nil {
			ips = []netip.Addr{a}
		} else if ips, err = net.DefaultResolver.LookupNetIP(ctx, "ip", host); err != nil {
			return nil, err
		}
		byName := p.nameAllowed(host)
		var refused error
		for _, ip := range ips {
			if err := p.checkAddr(ip, byName); err != nil {
				refused = err
				continue
			}
			return d.DialContext(ctx, network, net.JoinHostPort(ip.Unmap().String(), port))
		}
		if refused == nil {
			refused = fmt.Errorf("%w: %s has no address", ErrDenied, host)
		}
		return nil, transports.Permanent(refused)
	}
}
