//go:build linux

package session_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/telenotary/telenotary/session"
	"github.com/telenotary/telenotary/session/internal/browser"
	"github.com/telenotary/telenotary/session/internal/sessiontest"
	"github.com/telenotary/telenotary/session/signalapi"
	"github.com/telenotary/telenotary/session/turnserver"
)

// TestBrowserThroughTURN: with the server asking for relays only, a
// consultation between Chromium and the Go SDK, then between two Chromium
// tabs, connects through the embedded TURN server, reached over UDP, over
// TCP and over TLS: the pair each page selects (from getStats) is a relay
// candidate, the relays were allocated over that transport, and receipts
// are delivered and verify.
func TestBrowserThroughTURN(t *testing.T) {
	if inLoopbackNetns(t) {
		return
	}
	const secret = "turn-shared-secret-0123456789"
	rxFile, err := os.ReadFile(rxExample)
	if err != nil {
		t.Fatal(err)
	}
	cert := selfSignedIP(t)
	// The Go SDK (pion) checks a TURN server's certificate against the
	// system's roots, which Go reads from SSL_CERT_FILE when this process
	// first needs them: nothing in it has before this test, in a process
	// of its own (inLoopbackNetns).
	roots := filepath.Join(t.TempDir(), "roots.pem")
	if err := os.WriteFile(roots, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SSL_CERT_FILE", roots)
	for _, transport := range []string{"udp", "tcp", "tls"} {
		t.Run(transport, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			ts, err := turnserver.Start(turnserver.Config{
				Listen: "127.0.0.1:0", RelayIP: net.IPv4(127, 0, 0, 1), MinPort: 40000, MaxPort: 49999,
				TLSListen: "127.0.0.1:0", TLS: &tls.Config{Certificates: []tls.Certificate{cert}},
				Secret: []byte(secret), Realm: turnserver.DefaultRealm, MaxAllocationsPerUser: turnserver.DefaultMaxAllocationsPerUser,
				AllowPrivatePeers: true, // every relay is on loopback here
				Registerer:        reg,
			})
			if err != nil {
				t.Fatal(err)
			}
			defer ts.Close()
			n := sessiontest.StartNotary(t)
			sig := sessiontest.StartSignal(t, n, func(c *session.Config) {
				url := "turn:" + ts.Addr(transport) + "?transport=" + transport
				if transport == "tls" {
					url = "turns:" + ts.Addr("tls") + "?transport=tcp"
				}
				c.ICE = session.ICEConfig{URLs: []string{url}, TURNSecret: []byte(secret), RelayOnly: true}
			})
			opts := browserOptions()
			opts.Flags["ignore-certificate-errors"] = true // the TURN server's certificate is self-signed
			ctx := browser.New(t, opts)

			withGoPhysician(t, ctx, n, sig, transport, rxFile)

			// Two Chromium tabs.
			patientTok, physicianTok := sig.Tokens(t, "turn-browsers-"+transport)
			p2 := openApp(t, browser.NewTab(t, ctx), "patient", sig, patientTok)
			d2 := openApp(t, browser.NewTab(t, ctx), "physician", sig, physicianTok)
			p2.join(true)
			d2.join(true)
			for _, p := range []*appPage{p2, d2} {
				s := p.waitFor("a relay pair selected and the session-start receipt", func(s appState) bool {
					return s.Connected && s.SelectedPair.known() && s.verified("session-start", "") != nil
				})
				checkRelay(t, "browser", s.SelectedPair)
			}

			// Every participant told the server its path: a relay.
			sessiontest.WaitFor(t, "both browsers' paths reported", func() bool {
				for _, si := range sig.Server.Sessions().Sessions {
					if si.Room != "turn-browsers-"+transport {
						continue
					}
					for _, p := range si.Participants {
						if p.Path != "relay" {
							return false
						}
					}
					return len(si.Participants) == 2
				}
				return false
			})

			// Four participants' relays, over the transport (TLS is a
			// stream over TCP).
			network, want := transport, 4.0
			if transport == "tls" {
				network = "tcp"
			}
			created := allocationsBy(t, reg)
			if created[network] < want || len(created) != 1 {
				t.Errorf("relays allocated by transport: %v; want %v participants' over %s", created, want, network)
			}
		})
	}
}

// withGoPhysician runs a consultation between a Chromium patient and the Go
// SDK's physician, both through relays.
func withGoPhysician(t *testing.T, ctx context.Context, n *sessiontest.Notary, sig *sessiontest.Signal, transport string, rxFile []byte) {
	t.Helper()
	patientTok, physicianTok := sig.Tokens(t, "turn-go-"+transport)
	patient := openApp(t, ctx, "patient", sig, patientTok)
	patient.join(true)
	patient.waitFor("the join", func(s appState) bool { return s.Signal == "joined" })
	jctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	physician := newGoPhysician(t, jctx, sig.WS, physicianTok, &n.Policy)
	if err := physician.Connected(jctx); err != nil {
		t.Fatalf("Go physician: data channel: %v", err)
	}
	if got := physician.PathType(); got != "relay" {
		t.Errorf("the Go physician's selected path is %q, want relay", got)
	}
	s := patient.waitFor("a relay pair selected and the session-start receipt", func(s appState) bool {
		return s.Connected && s.SelectedPair.known() && s.verified("session-start", "") != nil
	})
	checkRelay(t, "patient (with Go)", s.SelectedPair)
	rc, err := physician.Prescribe(jctx, "rx-relay", rxFile)
	if err != nil {
		t.Fatalf("Go physician: prescribe: %v", err)
	}
	if rc.Holder != signalapi.HolderPatient {
		t.Errorf("the prescription's holder is %q", rc.Holder)
	}
	patient.waitFor("the verified prescription", func(s appState) bool { return s.verified("prescription", "rx-relay") != nil })
	patient.leave()
	physician.WaitEnd(jctx)
}

// checkRelay fails unless the page's selected pair is a relay candidate of
// its own.
func checkRelay(t *testing.T, name string, pair *candidatePair) {
	t.Helper()
	if pair.Local.Type != "relay" {
		t.Errorf("%s: the selected candidate pair %+v is not through a relay", name, *pair)
	}
}

// selfSignedIP is a certificate for 127.0.0.1.
func selfSignedIP(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// allocationsBy counts the TURN relays created, by the transport their
// client reached the server over.
func allocationsBy(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range families {
		if f.GetName() != "telenotary_turn_allocations_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["outcome"] == "created" {
				out[labels["transport"]] += m.GetCounter().GetValue()
			}
		}
	}
	return out
}
