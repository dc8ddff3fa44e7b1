package peer_test

import (
	"context"
	"encoding/json"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/pion/logging"
	"github.com/pion/turn/v5"
	"github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/telenotary/telenotary/session"
	"github.com/telenotary/telenotary/session/internal/sessiontest"
	"github.com/telenotary/telenotary/session/peer"
	"github.com/telenotary/telenotary/session/signalapi"
	"github.com/telenotary/telenotary/session/turnserver"
)

// startTURN runs a TURN server on loopback UDP that checks TURN REST
// credentials under secret, as coturn does with use-auth-secret (pion's
// TURN server stands in for an external one), and returns its address.
func startTURN(t *testing.T, secret string) string {
	t.Helper()
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	quiet := &logging.DefaultLoggerFactory{DefaultLogLevel: logging.LogLevelDisabled}
	srv, err := turn.NewServer(turn.ServerConfig{
		Realm:         "telenotary.test",
		LoggerFactory: quiet,
		AuthHandler:   turn.LongTermTURNRESTAuthHandler(secret, quiet.NewLogger("turn")),
		PacketConnConfigs: []turn.PacketConnConfig{{
			PacketConn:            conn,
			RelayAddressGenerator: &turn.RelayAddressGeneratorStatic{RelayAddress: net.IPv4(127, 0, 0, 1), Address: "127.0.0.1"},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return conn.LocalAddr().String()
}

// joinRaw joins a room over a bare WebSocket and returns the joined
// message.
func joinRaw(t *testing.T, ctx context.Context, url, token string) *signalapi.Message {
	t.Helper()
	ws, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.CloseNow() })
	data, _ := json.Marshal(signalapi.Message{Type: signalapi.TypeJoin, Token: token})
	if err := ws.Write(ctx, websocket.MessageText, data); err != nil {
		t.Fatal(err)
	}
	_, data, err = ws.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var m signalapi.Message
	if err := json.Unmarshal(data, &m); err != nil || m.Type != signalapi.TypeJoined {
		t.Fatalf("join answered %s (%v)", data, err)
	}
	return &m
}

// allocate asks a TURN server for a relay with credentials.
func allocate(t *testing.T, server string, s signalapi.ICEServer) error {
	t.Helper()
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c, err := turn.NewClient(&turn.ClientConfig{TURNServerAddr: server, STUNServerAddr: server, Username: s.Username, Password: s.Credential, Realm: "telenotary.test", Conn: conn, RTO: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Listen(); err != nil {
		t.Fatal(err)
	}
	relay, err := c.Allocate()
	if err == nil {
		relay.Close()
	}
	return err
}

// TestTURNCredentials: the joined message gives each participant its STUN
// and TURN servers, with TURN REST credentials that a TURN server holding
// the same secret accepts, and one holding another refuses; expired ones
// are refused too.
func TestTURNCredentials(t *testing.T) {
	const secret = "turn-shared-secret-0123456789"
	server := startTURN(t, secret)
	n := sessiontest.StartNotary(t)
	s := sessiontest.StartSignal(t, n, func(c *session.Config) {
		c.ICE = session.ICEConfig{URLs: []string{"stun:" + server, "turn:" + server + "?transport=udp"}, TURNSecret: []byte(secret)}
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	patientTok, _ := s.Tokens(t, "room-ice")
	joined := joinRaw(t, ctx, s.WS, patientTok)
	if len(joined.ICEServers) != 2 || joined.ICEServers[0].URLs[0] != "stun:"+server || joined.ICEServers[0].Username != "" {
		t.Fatalf("ice_servers %+v: want the STUN server, then the TURN server with credentials", joined.ICEServers)
	}
	turnServer := joined.ICEServers[1]
	expiry, user, _ := strings.Cut(turnServer.Username, ":")
	if !strings.HasSuffix(user, "-patient") || strings.Contains(turnServer.Username, "room-ice") {
		t.Fatalf("TURN user name %q: want <expiry>:<session>-patient, nothing the app chose", turnServer.Username)
	}
	if at, err := strconv.ParseInt(expiry, 10, 64); err != nil || time.Until(time.Unix(at, 0)) < 3*time.Hour {
		t.Fatalf("TURN user name %q: the expiry is not the session's maximum length (4 h) away", turnServer.Username)
	}
	if err := allocate(t, server, turnServer); err != nil {
		t.Fatalf("the TURN server refused the credentials the signalling server gave: %v", err)
	}
	forged := turnServer
	forged.Username, forged.Credential = session.TURNCredentials([]byte("another-secret-0123456789"), "x-patient", time.Now().Add(time.Hour))
	if err := allocate(t, server, forged); err == nil {
		t.Fatal("credentials made with another secret were accepted")
	}
	expired := turnServer
	expired.Username, expired.Credential = session.TURNCredentials([]byte(secret), "x-patient", time.Now().Add(-time.Minute))
	if err := allocate(t, server, expired); err == nil {
		t.Fatal("expired credentials were accepted")
	}
}

// TestConsultationThroughTURN: two peers that may use TURN relays only
// connect through the TURN server the signalling server names, with the
// credentials it gives, and the consultation is notarized as usual.
func TestConsultationThroughTURN(t *testing.T) {
	const secret = "turn-shared-secret-0123456789"
	server := startTURN(t, secret)
	n := sessiontest.StartNotary(t)
	s := sessiontest.StartSignal(t, n, func(c *session.Config) {
		c.ICE = session.ICEConfig{URLs: []string{"turn:" + server}, TURNSecret: []byte(secret)}
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	patientCfg, physicianCfg := pairConfigs(t, n, s, "room-relay")
	patientCfg.ICETransportPolicy, physicianCfg.ICETransportPolicy = webrtc.ICETransportPolicyRelay, webrtc.ICETransportPolicyRelay
	patient, physician, err := peer.Pair(ctx, patientCfg, physicianCfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { patient.Close(); physician.Close() })
	for _, p := range []*peer.Peer{patient, physician} {
		if err := p.Connected(ctx); err != nil {
			t.Fatal(err)
		}
		if got := p.PathType(); got != "relay" {
			t.Fatalf("selected path %q, want relay", got)
		}
	}
	if _, err := physician.Leave(ctx, ""); err != nil {
		t.Fatal(err)
	}
}

// TestConsultationThroughEmbeddedTURN: the TURN server the signalling
// server embeds relays a consultation whose peers may use relays only,
// reached over TCP (a network that lets no UDP out), with the credentials
// the signalling server gives.
func TestConsultationThroughEmbeddedTURN(t *testing.T) {
	const secret = "turn-shared-secret-0123456789"
	reg := prometheus.NewRegistry()
	ts, err := turnserver.Start(turnserver.Config{
		Listen: "127.0.0.1:0", RelayIP: net.IPv4(127, 0, 0, 1), MinPort: 40000, MaxPort: 49999,
		Secret: []byte(secret), Realm: turnserver.DefaultRealm, MaxAllocationsPerUser: turnserver.DefaultMaxAllocationsPerUser,
		AllowPrivatePeers: true, // the peers' relays are on loopback here
		Registerer:        reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ts.Close()
	n := sessiontest.StartNotary(t)
	s := sessiontest.StartSignal(t, n, func(c *session.Config) {
		c.ICE = session.ICEConfig{URLs: []string{"turn:" + ts.Addr("tcp") + "?transport=tcp"}, TURNSecret: []byte(secret)}
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	patientCfg, physicianCfg := pairConfigs(t, n, s, "room-embedded-turn")
	patientCfg.ICETransportPolicy, physicianCfg.ICETransportPolicy = webrtc.ICETransportPolicyRelay, webrtc.ICETransportPolicyRelay
	patient, physician, err := peer.Pair(ctx, patientCfg, physicianCfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { patient.Close(); physician.Close() })
	for _, p := range []*peer.Peer{patient, physician} {
		if err := p.Connected(ctx); err != nil {
			t.Fatal(err)
		}
		if got := p.PathType(); got != "relay" {
			t.Fatalf("selected path %q, want relay", got)
		}
	}
	// Both peers told the server their path: a relay.
	sessiontest.WaitFor(t, "both paths reported", func() bool {
		si := s.Server.Sessions().Sessions
		return len(si) == 1 && len(si[0].Participants) == 2 && si[0].Participants[0].Path == "relay" && si[0].Participants[1].Path == "relay"
	})
	// Both relays were allocated over TCP.
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	byTransport := map[string]float64{}
	for _, f := range families {
		if f.GetName() == "telenotary_turn_allocations_total" {
			for _, m := range f.GetMetric() {
				labels := map[string]string{}
				for _, l := range m.GetLabel() {
					labels[l.GetName()] = l.GetValue()
				}
				if labels["outcome"] == "created" {
					byTransport[labels["transport"]] += m.GetCounter().GetValue()
				}
			}
		}
	}
	if byTransport["tcp"] < 2 || byTransport["udp"] != 0 {
		t.Fatalf("relays allocated by transport: %v; want both peers' over TCP", byTransport)
	}
	if _, err := physician.Leave(ctx, ""); err != nil {
		t.Fatal(err)
	}
}
