// Package turnserver is the TURN server (RFC 8656) the signalling server
// can run in its own process, so that a consultation connects when a
// participant's network lets nothing through but a relay: over UDP, and
// over TCP or TLS for networks that allow only a port such as 443. It is
// github.com/pion/turn/v5 with what an operator needs around it:
// credentials in the TURN REST convention (the signalling server gives
// them in its joined message, under the secret both hold), a quota of
// allocations per user, relays on a port range, no relaying into the
// operator's own network (loopback, private and link-local peers refused
// unless configured), and Prometheus metrics.
package turnserver

import (
	"cmp"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"

	"github.com/pion/logging"
	"github.com/pion/turn/v5"
	"github.com/prometheus/client_golang/prometheus"
)

// Config configures a TURN server.
type Config struct {
	// Listen is the address (host:port) of the UDP and the TCP listener;
	// empty runs neither.
	Listen string
	// TLSListen is the address of the TURN-over-TLS listener (turns:),
	// with TLS; empty runs none.
	TLSListen string
	TLS       *tls.Config
	// RelayIP is the address relays are announced at: the server's public
	// IP address.
	RelayIP net.IP
	// RelayBind is the address relays listen on; empty means RelayIP.
	RelayBind string
	// MinPort and MaxPort bound the relays' ports.
	MinPort, MaxPort uint16
	// Secret is shared with the signalling server, which makes the
	// credentials (session.TURNCredentials).
	Secret []byte
	// Realm is the TURN realm.
	Realm string
	// MaxAllocationsPerUser bounds the relays one participant holds.
	MaxAllocationsPerUser int
	// AllowPrivatePeers lets clients relay to loopback, private and
	// link-local addresses (tests, or a TURN server inside the network
	// it serves); by default a relay reaches public addresses only, so
	// that no client uses it to enter the operator's network.
	AllowPrivatePeers bool
	// Registerer receives the metrics; nil registers none.
	Registerer prometheus.Registerer
	// Logger receives what the server refuses.
	Logger *slog.Logger
}

// Defaults for Config.
const (
	DefaultMinPort               = 49152
	DefaultMaxPort               = 65535
	DefaultMaxAllocationsPerUser = 4
	DefaultRealm                 = "telenotary"
)

// Server is a running TURN server.
type Server struct {
	turn      *turn.Server
	listeners []string
	metrics   *metrics
	mu        sync.Mutex
	perUser   map[string]int // allocations by user
}

type metrics struct {
	allocations prometheus.Gauge
	outcomes    *prometheus.CounterVec
	relayed     *prometheus.CounterVec
	refused     prometheus.Counter
}

// Start starts the listeners of cfg.
func Start(cfg Config) (*Server, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("turnserver: %w", err)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{perUser: map[string]int{}, metrics: newMetrics(cfg.Registerer)}
	gen := &countingRelays{
		inner: &turn.RelayAddressGeneratorPortRange{RelayAddress: cfg.RelayIP, Address: cmp.Or(cfg.RelayBind, cfg.RelayIP.String()), MinPort: cfg.MinPort, MaxPort: cfg.MaxPort},
		bytes: s.metrics.relayed,
	}
	permit := func(client net.Addr, peer net.IP) bool {
		if cfg.AllowPrivatePeers || publicIP(peer) {
			return true
		}
		s.metrics.refused.Inc()
		cfg.Logger.Warn("turn: a relay to a private address refused", "client", client.String(), "peer", peer.String())
		return false
	}
	var closers []func()
	fail := func(err error) (*Server, error) {
		for _, c := range closers {
			c()
		}
		return nil, fmt.Errorf("turnserver: %w", err)
	}
	// pion's own log lines are dropped: this package counts and logs what
	// the server refuses.
	quiet := &logging.DefaultLoggerFactory{DefaultLogLevel: logging.LogLevelDisabled}
	sc := turn.ServerConfig{
		Realm:         cfg.Realm,
		LoggerFactory: quiet,
		AuthHandler:   turn.LongTermTURNRESTAuthHandler(string(cfg.Secret), quiet.NewLogger("turn")),
		QuotaHandler:  s.quota(cfg.MaxAllocationsPerUser),
		EventHandler: turn.EventHandler{
			OnAllocationCreated: func(client, _ net.Addr, _, user, _ string, _ net.Addr, _ int) {
				s.allocated(user, 1)
				// pion names every allocation UDP (the relay is); the
				// client's address says how it reached the server.
				s.metrics.outcomes.WithLabelValues("created", client.Network()).Inc()
			},
			OnAllocationDeleted: func(_, _ net.Addr, _, user, _ string) { s.allocated(user, -1) },
		},
	}
	if cfg.Listen != "" {
		udp, err := net.ListenPacket("udp", cfg.Listen)
		if err != nil {
			return fail(fmt.Errorf("UDP %s: %w", cfg.Listen, err))
		}
		closers = append(closers, func() { udp.Close() })
		tcp, err := net.Listen("tcp", cfg.Listen)
		if err != nil {
			return fail(fmt.Errorf("TCP %s: %w", cfg.Listen, err))
		}
		closers = append(closers, func() { tcp.Close() })
		sc.PacketConnConfigs = append(sc.PacketConnConfigs, turn.PacketConnConfig{PacketConn: udp, RelayAddressGenerator: gen, PermissionHandler: permit})
		sc.ListenerConfigs = append(sc.ListenerConfigs, turn.ListenerConfig{Listener: tcp, RelayAddressGenerator: gen, PermissionHandler: permit})
		s.listeners = append(s.listeners, "udp "+udp.LocalAddr().String(), "tcp "+tcp.Addr().String())
	}
	if cfg.TLSListen != "" {
		ln, err := tls.Listen("tcp", cfg.TLSListen, cfg.TLS)
		if err != nil {
			return fail(fmt.Errorf("TLS %s: %w", cfg.TLSListen, err))
		}
		closers = append(closers, func() { ln.Close() })
		sc.ListenerConfigs = append(sc.ListenerConfigs, turn.ListenerConfig{Listener: ln, RelayAddressGenerator: gen, PermissionHandler: permit})
		s.listeners = append(s.listeners, "tls "+ln.Addr().String())
	}
	t, err := turn.NewServer(sc)
	if err != nil {
		return fail(err)
	}
	s.turn = t
	return s, nil
}

// Addrs are the listeners' addresses: "udp 1.2.3.4:3478", "tcp …",
// "tls …".
func (s *Server) Addrs() []string { return append([]string(nil), s.listeners...) }

// Addr is the address of the listener of a network ("udp", "tcp",
// "tls"), "" when there is none.
func (s *Server) Addr(network string) string {
	for _, l := range s.listeners {
		if n, a, _ := strings.Cut(l, " "); n == network {
			return a
		}
	}
	return ""
}

// Close stops the listeners and ends every allocation.
func (s *Server) Close() error { return s.turn.Close() }

func (cfg Config) validate() error {
	switch {
	case cfg.Listen == "" && cfg.TLSListen == "":
		return errors.New("no listener: set Listen, TLSListen or both")
	case cfg.TLSListen != "" && cfg.TLS == nil:
		return errors.New("TLSListen needs TLS: a certificate")
	case cfg.RelayIP == nil || cfg.RelayIP.IsUnspecified():
		return errors.New("RelayIP: the public IP address relays are announced at is required")
	case cfg.MinPort == 0 || cfg.MaxPort < cfg.MinPort:
		return fmt.Errorf("relay ports %d-%d: a range of 1-65535, low to high", cfg.MinPort, cfg.MaxPort)
	case len(cfg.Secret) < 16:
		return fmt.Errorf("Secret has %d bytes; it needs at least 16", len(cfg.Secret))
	case cfg.MaxAllocationsPerUser < 1:
		return fmt.Errorf("MaxAllocationsPerUser is %d; it must be at least 1", cfg.MaxAllocationsPerUser)
	case cfg.Realm == "":
		return errors.New("Realm is empty")
	}
	return nil
}

// quota refuses a user's allocation beyond max. The TURN REST user name
// is "<expiry>:<user>"; pion hands over the user, so the quota holds
// whatever the expiry.
func (s *Server) quota(max int) turn.QuotaHandler {
	return func(user, _ string, _ net.Addr) bool {
		s.mu.Lock()
		ok := s.perUser[user] < max
		s.mu.Unlock()
		if !ok {
			s.metrics.outcomes.WithLabelValues("quota", "").Inc()
		}
		return ok
	}
}

// allocated counts a user's allocation made (+1) or ended (-1).
func (s *Server) allocated(user string, delta int) {
	s.mu.Lock()
	s.perUser[user] += delta
	if s.perUser[user] <= 0 {
		delete(s.perUser, user)
	}
	s.mu.Unlock()
	s.metrics.allocations.Add(float64(delta))
}

// notPublic are ranges that net.IP's own tests leave out and that lead
// into an operator's network or nowhere: shared address space (carrier
// NAT, and many clouds' internal networks), "this network", IETF protocol
// assignments, benchmarking, reserved and broadcast, and NAT64 prefixes
// (whose addresses carry an IPv4 address, possibly a private one).
var notPublic = []netip.Prefix{
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("64:ff9b::/96"),
	netip.MustParsePrefix("64:ff9b:1::/48"),
}

// publicIP reports whether ip is an address on the internet: not
// loopback, private, link-local, multicast, unspecified, or in notPublic
// (IPv4-mapped IPv6 addresses are judged as IPv4 ones).
func publicIP(ip net.IP) bool {
	if ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsInterfaceLocalMulticast() || ip.IsMulticast() || ip.IsUnspecified() {
		return false
	}
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return false
	}
	a = a.Unmap()
	for _, p := range notPublic {
		if p.Contains(a) {
			return false
		}
	}
	return true
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		allocations: prometheus.NewGauge(prometheus.GaugeOpts{Name: "telenotary_turn_allocations", Help: "TURN relays held."}),
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "telenotary_turn_allocations_total", Help: "TURN allocation requests by outcome (created; quota: refused over the user's quota) and the client's transport to the server (udp, tcp; tls counts as tcp)."},
			[]string{"outcome", "transport"}),
		relayed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "telenotary_turn_relayed_bytes_total", Help: "Bytes relayed over UDP relays, by direction (to_peer, from_peer)."},
			[]string{"direction"}),
		refused: prometheus.NewCounter(prometheus.CounterOpts{Name: "telenotary_turn_private_peers_refused_total", Help: "Permissions refused because the peer address is loopback, private or link-local."}),
	}
	if reg != nil {
		reg.MustRegister(m.allocations, m.outcomes, m.relayed, m.refused)
	}
	return m
}

// countingRelays makes relays on a port range and counts the bytes that
// go through the UDP ones.
type countingRelays struct {
	inner *turn.RelayAddressGeneratorPortRange
	bytes *prometheus.CounterVec
}

func (g *countingRelays) Validate() error { return g.inner.Validate() }

func (g *countingRelays) AllocatePacketConn(c turn.AllocateListenerConfig) (net.PacketConn, net.Addr, error) {
	conn, addr, err := g.inner.AllocatePacketConn(c)
	if err != nil {
		return nil, nil, err
	}
	return &countingConn{PacketConn: conn, in: g.bytes.WithLabelValues("from_peer"), out: g.bytes.WithLabelValues("to_peer")}, addr, nil
}

func (g *countingRelays) AllocateListener(c turn.AllocateListenerConfig) (net.Listener, net.Addr, error) {
	return g.inner.AllocateListener(c)
}

func (g *countingRelays) AllocateConn(c turn.AllocateConnConfig) (net.Conn, error) {
	return g.inner.AllocateConn(c)
}

// countingConn counts the bytes a relay reads from and writes to peers.
type countingConn struct {
	net.PacketConn
	in, out prometheus.Counter
}

func (c *countingConn) ReadFrom(p []byte) (int, net.Addr, error) {
	n, addr, err := c.PacketConn.ReadFrom(p)
	c.in.Add(float64(n))
	return n, addr, err
}

func (c *countingConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	n, err := c.PacketConn.WriteTo(p, addr)
	c.out.Add(float64(n))
	return n, err
}
