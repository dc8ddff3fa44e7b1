package cluster

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"time"

	"github.com/hashicorp/raft"
)

// tlsStreamLayer carries raft's traffic over mutual TLS: the listener
// demands and verifies a client certificate, and dialing presents one.
type tlsStreamLayer struct {
	net.Listener
	advertise net.Addr
	config    *tls.Config
}

// newTLSStreamLayer listens on bind. config must hold the node's
// certificate, the CA that signs every node's (RootCAs and ClientCAs) and
// ClientAuth tls.RequireAndVerifyClientCert.
func newTLSStreamLayer(bind string, advertise net.Addr, config *tls.Config) (*tlsStreamLayer, error) {
	if config.ClientAuth != tls.RequireAndVerifyClientCert {
		return nil, fmt.Errorf("raft TLS must require and verify client certificates")
	}
	ln, err := tls.Listen("tcp", bind, config)
	if err != nil {
		return nil, err
	}
	if advertise == nil {
		advertise = ln.Addr()
	}
	return &tlsStreamLayer{Listener: ln, advertise: advertise, config: config}, nil
}

// Dial implements raft.StreamLayer.
func (t *tlsStreamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	d := &net.Dialer{Timeout: timeout}
	return tls.DialWithDialer(d, "tcp", string(address), t.config)
}

// Addr implements net.Listener with the advertised address.
func (t *tlsStreamLayer) Addr() net.Addr { return t.advertise }

// MutualTLS returns the raft TLS configuration of a node: it presents cert
// and accepts and dials only peers whose certificates ca signs.
func MutualTLS(cert tls.Certificate, ca *x509.CertPool) *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		RootCAs:      ca,
		ClientCAs:    ca,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS13,
	}
}
