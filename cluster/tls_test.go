package cluster_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/telenotary/telenotary/cluster"
	"github.com/telenotary/telenotary/cluster/notaryapi"
)

// testCA is a certificate authority for tests.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

// issue returns a certificate for 127.0.0.1, for servers and clients.
func (ca *testCA) issue(t *testing.T, name string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		KeyUsage:    x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// TestTLSCluster runs a cluster with its API over TLS and raft over mutual
// TLS, and checks that a raft peer without a certificate from the cluster's
// CA cannot even complete a handshake.
func TestTLSCluster(t *testing.T) {
	apiCA, raftCA := newTestCA(t, "api-ca"), newTestCA(t, "raft-ca")
	c := newTestCluster(t)
	secure := func(cfg cluster.Config) cluster.Config {
		cfg.TLS = &tls.Config{Certificates: []tls.Certificate{apiCA.issue(t, cfg.ID)}, MinVersion: tls.VersionTLS12}
		cfg.ClientTLS = &tls.Config{RootCAs: apiCA.pool, MinVersion: tls.VersionTLS12}
		cfg.RaftTLS = cluster.MutualTLS(raftCA.issue(t, cfg.ID), raftCA.pool)
		return cfg
	}
	cfg1 := secure(c.config("node-1"))
	cfg1.Bootstrap, cfg1.Origin = true, testOrigin
	n1 := c.start(cfg1)
	n1.url = "https://" + n1.HTTPAddr()
	c.waitFor("bootstrap", n1.Ready)
	var nodes []*testNode
	for _, id := range []string{"node-2", "node-3"} {
		cfg := secure(c.config(id))
		cfg.Join = []string{n1.url}
		n := c.start(cfg)
		n.url = "https://" + n.HTTPAddr()
		nodes = append(nodes, n)
	}
	c.waitVoters(3)

	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: apiCA.pool}}}
	cl := notaryapi.NewClient(notaryapi.ClientConfig{Nodes: []string{nodes[0].url}, Token: submitterToken, HTTPClient: hc})
	ctx := context.Background()
	for i := range 20 {
		resp, err := cl.Notarize(ctx, entryOf("tls", i))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(resp.Receipt.Origin, testOrigin) {
			t.Fatalf("origin %q", resp.Receipt.Origin)
		}
	}
	// A follower forwards a submission to the leader over TLS, checking
	// the leader's certificate with the cluster's client TLS settings.
	leader := c.waitLeader()
	for _, n := range nodes {
		if n == leader {
			continue
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, n.url+"/v1/notarize", strings.NewReader(`{"kind":"consent","commitment":"`+hex64()+`"}`))
		req.Header.Set("Authorization", "Bearer "+submitterToken)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("a submission to follower %s: HTTP %d %s", n.cfg.ID, resp.StatusCode, b)
		}
	}
	resp, err := hc.Get(nodes[0].url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if h := resp.Header.Get("Strict-Transport-Security"); !strings.HasPrefix(h, "max-age=") {
		t.Errorf("an API over TLS answers without HSTS (Strict-Transport-Security %q)", h)
	}
	tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := notaryapi.NewClient(notaryapi.ClientConfig{Nodes: []string{nodes[0].url}, Token: submitterToken}).Status(tctx); err == nil || tctx.Err() != nil {
		t.Fatalf("a client that does not trust the API's CA: %v (it must fail at once, not retry)", err)
	}

	// A peer with a certificate of another CA, or none, is refused by raft.
	rogue := newTestCA(t, "rogue").issue(t, "rogue")
	for name, certs := range map[string][]tls.Certificate{"foreign certificate": {rogue}, "no certificate": nil} {
		conn, err := tls.Dial("tcp", n1.RaftAddr(), &tls.Config{RootCAs: raftCA.pool, Certificates: certs, MinVersion: tls.VersionTLS13})
		if err == nil {
			// TLS 1.3 reports a refused client certificate on first read.
			conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, err = conn.Read(make([]byte, 1))
			conn.Close()
		}
		if err == nil {
			t.Errorf("%s: raft accepted the connection", name)
		}
	}
}
