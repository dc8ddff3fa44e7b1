package turnserver_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"math/big"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/pion/turn/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/telenotary/telenotary/session"
	"github.com/telenotary/telenotary/session/turnserver"
)

var secret = []byte("turn-shared-secret-0123456789")

// start runs a TURN server on loopback with a registry of its own.
func start(t *testing.T, change func(*turnserver.Config)) (*turnserver.Server, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	cfg := turnserver.Config{
		Listen: "127.0.0.1:0", RelayIP: net.IPv4(127, 0, 0, 1), MinPort: 40000, MaxPort: 49999,
		Secret: secret, Realm: turnserver.DefaultRealm, MaxAllocationsPerUser: turnserver.DefaultMaxAllocationsPerUser,
		Registerer: reg,
	}
	if change != nil {
		change(&cfg)
	}
	s, err := turnserver.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, reg
}

// client is a TURN client of user over conn (UDP, or a stream wrapped in
// turn.NewSTUNConn), its credentials made as the signalling server makes
// them.
func client(t *testing.T, server string, conn net.PacketConn, user string) *turn.Client {
	t.Helper()
	name, password := session.TURNCredentials(secret, user, time.Now().Add(time.Hour))
	c, err := turn.NewClient(&turn.ClientConfig{TURNServerAddr: server, STUNServerAddr: server, Username: name, Password: password,
		Realm: turnserver.DefaultRealm, Conn: conn, RTO: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Listen(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func udpClient(t *testing.T, server, user string) *turn.Client {
	t.Helper()
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return client(t, server, conn, user)
}

// echoPeer is a UDP peer that sends back what it gets.
func echoPeer(t *testing.T) net.Addr {
	t.Helper()
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := conn.ReadFrom(buf)
			if err != nil {
				return
			}
			conn.WriteTo(buf[:n], from)
		}
	}()
	return conn.LocalAddr()
}

// TestNoRelayIntoPrivateNetworks: by default a relay reaches no loopback
// or private address (no client can use the server to enter the
// operator's network); allowed, the same relay carries data both ways and
// the bytes are counted.
func TestNoRelayIntoPrivateNetworks(t *testing.T) {
	peer := echoPeer(t)
	s, reg := start(t, nil)
	relay, err := udpClient(t, s.Addr("udp"), "sess-patient").Allocate()
	if err != nil {
		t.Fatalf("allocation with the signalling server's credentials: %v", err)
	}
	if _, err := relay.WriteTo([]byte("hello"), peer); err == nil {
		t.Fatal("a relay to a loopback peer was permitted")
	}
	// Private, shared and link-local ranges: refused too, each counted.
	for i, addr := range []string{"10.1.2.3:9", "172.16.0.1:9", "192.168.1.1:9", "100.64.0.1:9", "169.254.169.254:80"} {
		to, err := net.ResolveUDPAddr("udp", addr)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := relay.WriteTo([]byte("hello"), to); err == nil {
			t.Errorf("a relay to %s was permitted", addr)
		}
		if got := value(t, reg, "telenotary_turn_private_peers_refused_total", ""); got < float64(i+2) {
			t.Fatalf("after %s, refusals counted: %v, want %d", addr, got, i+2)
		}
	}

	open, reg := start(t, func(c *turnserver.Config) { c.AllowPrivatePeers = true })
	relay, err = udpClient(t, open.Addr("udp"), "sess-patient").Allocate()
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Close()
	if _, err := relay.WriteTo([]byte("hello"), peer); err != nil {
		t.Fatalf("relay to an allowed private peer: %v", err)
	}
	relay.SetReadDeadline(time.Now().Add(20 * time.Second))
	buf := make([]byte, 100)
	n, _, err := relay.ReadFrom(buf)
	if err != nil || string(buf[:n]) != "hello" {
		t.Fatalf("the echo through the relay: %q, %v", buf[:n], err)
	}
	// The relay counts after each write returns, which may be after the
	// echo came back.
	for deadline := time.Now().Add(20 * time.Second); ; {
		out := value(t, reg, "telenotary_turn_relayed_bytes_total", "to_peer")
		in := value(t, reg, "telenotary_turn_relayed_bytes_total", "from_peer")
		if out == 5 && in == 5 {
			break
		}
		if out > 5 || in > 5 || time.Now().After(deadline) {
			t.Fatalf("relayed bytes counted: %v to the peer, %v from it; want 5 and 5", out, in)
		}
		runtime.Gosched()
	}
}

// TestCredentials: the embedded server takes the credentials the
// signalling server hands out (TURN REST: an expiry and a user, under the
// shared secret) until they expire, and none made with another secret.
func TestCredentials(t *testing.T) {
	s, _ := start(t, nil)
	for name, cred := range map[string][2]string{
		"expired a minute ago": pair(session.TURNCredentials(secret, "sess-patient", time.Now().Add(-time.Minute))),
		"another secret":       pair(session.TURNCredentials([]byte("another-shared-secret-0123456"), "sess-patient", time.Now().Add(time.Hour))),
		"a bad expiry":         {"soon:sess-patient", "x"},
	} {
		conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		c, err := turn.NewClient(&turn.ClientConfig{TURNServerAddr: s.Addr("udp"), STUNServerAddr: s.Addr("udp"), Username: cred[0], Password: cred[1],
			Realm: turnserver.DefaultRealm, Conn: conn, RTO: 200 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Listen(); err != nil {
			t.Fatal(err)
		}
		if r, err := c.Allocate(); err == nil {
			r.Close()
			t.Errorf("%s: a relay was allocated", name)
		}
		c.Close()
		conn.Close()
	}
	// The same user with fresh credentials: allocated.
	r, err := udpClient(t, s.Addr("udp"), "sess-patient").Allocate()
	if err != nil {
		t.Fatalf("fresh credentials: %v", err)
	}
	r.Close()
}

func pair(user, password string) [2]string { return [2]string{user, password} }

// TestQuotaPerUser: a user holds at most MaxAllocationsPerUser relays;
// another user is not affected, and an ended relay frees its place.
func TestQuotaPerUser(t *testing.T) {
	s, _ := start(t, func(c *turnserver.Config) { c.MaxAllocationsPerUser = 2 })
	var relays []net.PacketConn
	for range 2 {
		r, err := udpClient(t, s.Addr("udp"), "sess-physician").Allocate()
		if err != nil {
			t.Fatal(err)
		}
		relays = append(relays, r)
	}
	if _, err := udpClient(t, s.Addr("udp"), "sess-physician").Allocate(); err == nil || !strings.Contains(err.Error(), "486") {
		t.Fatalf("a third relay of one user: %v, want 486 Allocation Quota Reached", err)
	}
	if r, err := udpClient(t, s.Addr("udp"), "sess-patient").Allocate(); err != nil {
		t.Fatalf("another user: %v", err)
	} else {
		r.Close()
	}
	relays[0].Close() // deallocates (a refresh with lifetime 0)
	deadline := time.Now().Add(20 * time.Second)
	for {
		r, err := udpClient(t, s.Addr("udp"), "sess-physician").Allocate()
		if err == nil {
			r.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after one relay ended, the user still cannot allocate: %v", err)
		}
	}
}

// TestStreamListeners: clients that can reach only TCP, or only TLS (a
// network that lets port 443 out and nothing else), get relays too.
func TestStreamListeners(t *testing.T) {
	cert := selfSigned(t)
	s, _ := start(t, func(c *turnserver.Config) {
		c.TLSListen, c.TLS = "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}}
	})
	tcp, err := net.Dial("tcp", s.Addr("tcp"))
	if err != nil {
		t.Fatal(err)
	}
	if r, err := client(t, s.Addr("tcp"), turn.NewSTUNConn(tcp), "sess-patient").Allocate(); err != nil {
		t.Fatalf("over TCP: %v", err)
	} else {
		r.Close()
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert.Leaf)
	tlsConn, err := tls.Dial("tcp", s.Addr("tls"), &tls.Config{RootCAs: pool, ServerName: "turn.test"})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := client(t, s.Addr("tls"), turn.NewSTUNConn(tlsConn), "sess-patient").Allocate(); err != nil {
		t.Fatalf("over TLS: %v", err)
	} else {
		r.Close()
	}
}

// TestBadConfig: a server that cannot work is refused, naming the field.
func TestBadConfig(t *testing.T) {
	good := turnserver.Config{Listen: "127.0.0.1:0", RelayIP: net.IPv4(127, 0, 0, 1), MinPort: 40000, MaxPort: 49999,
		Secret: secret, Realm: "r", MaxAllocationsPerUser: 1}
	for want, change := range map[string]func(*turnserver.Config){
		"no listener":           func(c *turnserver.Config) { c.Listen = "" },
		"TLSListen needs TLS":   func(c *turnserver.Config) { c.TLSListen = "127.0.0.1:0" },
		"RelayIP":               func(c *turnserver.Config) { c.RelayIP = net.IPv4zero },
		"relay ports":           func(c *turnserver.Config) { c.MinPort, c.MaxPort = 50000, 40000 },
		"Secret":                func(c *turnserver.Config) { c.Secret = []byte("short") },
		"MaxAllocationsPerUser": func(c *turnserver.Config) { c.MaxAllocationsPerUser = 0 },
	} {
		cfg := good
		change(&cfg)
		if s, err := turnserver.Start(cfg); err == nil || !strings.Contains(err.Error(), want) {
			if s != nil {
				s.Close()
			}
			t.Errorf("%s: %v", want, err)
		}
	}
}

// value is a counter's value: of the metric's one series, or of the series
// whose label has that value.
func value(t *testing.T, reg *prometheus.Registry, name, label string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if label == "" || len(m.GetLabel()) == 1 && m.GetLabel()[0].GetValue() == label {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), DNSNames: []string{"turn.test"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}
