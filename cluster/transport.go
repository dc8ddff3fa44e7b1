package cluster

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"github.com/telenotary/telenotary/cluster/httpapi"
)

// Limits of raft's listener: a cluster has a handful of peers, each with a
// few pooled connections, so these are far above what members need and far
// below what would let a stranger who reaches the port hold the node's
// resources.
const (
	raftMaxConns      = 256
	raftMaxConnsPerIP = 32
)

// streamLayer is raft's network layer: TCP, with mutual TLS when tlsConfig
// is set (the listener demands and verifies a client certificate of the
// cluster's CA, dialing presents one); accepted connections are capped in
// number, total and per address, and must finish their handshake (or send
// their first byte) within handshake.
type streamLayer struct {
	net.Listener
	advertise net.Addr
	tls       *tls.Config
	handshake time.Duration
}

// newStreamLayer listens on bind. tlsConfig, when set, must hold the
// node's certificate, the CA that signs every node's (RootCAs and
// ClientCAs) and ClientAuth tls.RequireAndVerifyClientCert (see MutualTLS).
func newStreamLayer(bind string, advertise net.Addr, tlsConfig *tls.Config, handshake time.Duration) (*streamLayer, error) {
	if tlsConfig != nil && tlsConfig.ClientAuth != tls.RequireAndVerifyClientCert {
		return nil, errors.New("raft TLS must require and verify client certificates")
	}
	ln, err := net.Listen("tcp", bind)
	if err != nil {
		return nil, err
	}
	if advertise == nil {
		advertise = ln.Addr()
	}
	if a, ok := advertise.(*net.TCPAddr); ok && a.IP.IsUnspecified() {
		ln.Close()
		return nil, fmt.Errorf("%s is not an address other nodes can dial: give the raft advertise address", advertise)
	}
	return &streamLayer{Listener: httpapi.LimitListener(ln, raftMaxConns, raftMaxConnsPerIP), advertise: advertise, tls: tlsConfig, handshake: handshake}, nil
}

// Accept implements net.Listener.
func (s *streamLayer) Accept() (net.Conn, error) {
	c, err := s.Listener.Accept()
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(s.handshake))
	if s.tls != nil {
		return &handshakeConn{Conn: tls.Server(c, s.tls)}, nil
	}
	return &handshakeConn{Conn: c}, nil
}

// Dial implements raft.StreamLayer.
func (s *streamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	d := &net.Dialer{Timeout: timeout}
	if s.tls == nil {
		return d.Dial("tcp", string(address))
	}
	return tls.DialWithDialer(d, "tcp", string(address), s.tls)
}

// Addr implements net.Listener with the advertised address.
func (s *streamLayer) Addr() net.Addr { return s.advertise }

// handshakeConn lifts the deadline Accept set once the peer has proven
// itself: the TLS handshake done, or without TLS its first byte read. A
// stranger who connects and stalls is dropped at the deadline, so it never
// holds one of raft's connection goroutines.
type handshakeConn struct {
	net.Conn
	once sync.Once
	err  error
}

func (c *handshakeConn) Read(b []byte) (int, error) {
	if tc, ok := c.Conn.(*tls.Conn); ok {
		c.once.Do(func() {
			if c.err = tc.Handshake(); c.err == nil {
				c.Conn.SetDeadline(time.Time{})
			}
		})
		if c.err != nil {
			return 0, c.err
		}
		return c.Conn.Read(b)
	}
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.once.Do(func() { c.Conn.SetDeadline(time.Time{}) })
	}
	return n, err
}

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

// loopback reports whether addr (host:port) is on a loopback interface:
// localhost or a loopback IP.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// checkRaftSecurity refuses raft without mutual TLS, except on loopback
// with InsecureRaft for development.
func (c Config) checkRaftSecurity() error {
	if c.RaftTLS != nil {
		return nil
	}
	if !c.InsecureRaft {
		return fmt.Errorf("%w: raft without it lets anyone who reaches the raft port write to the log (InsecureRaft allows plain raft on loopback addresses, for development)", ErrRaftTLSRequired)
	}
	for _, a := range []string{c.RaftAddr, c.RaftAdvertise} {
		if a != "" && !loopback(a) {
			return fmt.Errorf("%w, and %s is not one: configure RaftTLS", ErrInsecureRaftOffLoopback, a)
		}
	}
	return nil
}

// transportLogger is the logger of raft's network transport. A connection
// that ends because the transport is shutting down ("failed to decode
// incoming command", error "transport shutdown") is part of every clean
// stop, not an error: it is logged at debug level. Every other record
// passes unchanged.
type transportLogger struct{ hclog.Logger }

// Error implements hclog.Logger.
func (l transportLogger) Error(msg string, args ...any) {
	l.Log(hclog.Error, msg, args...)
}

// Log implements hclog.Logger.
func (l transportLogger) Log(level hclog.Level, msg string, args ...any) {
	if level == hclog.Error && shuttingDown(args) {
		level = hclog.Debug
	}
	l.Logger.Log(level, msg, args...)
}

// shuttingDown reports whether a record's "error" is the transport's
// shutdown.
func shuttingDown(args []any) bool {
	for i := 0; i+1 < len(args); i += 2 {
		if err, ok := args[i+1].(error); ok && args[i] == "error" && errors.Is(err, raft.ErrTransportShutdown) {
			return true
		}
	}
	return false
}

// raftLogger is raft's own logger. It makes two of raft's records read as
// they mean: hclog.Fmt values are formatted (raft logs the servers of its
// "initial configuration" that way, which came out as "[%+v [...]]"), and
// that record's "index", the index of the configuration entry, is called
// configuration_index, so that it is not read as a second applied index
// beside the node's own "node started" line.
type raftLogger struct{ hclog.Logger }

// Log implements hclog.Logger.
func (l raftLogger) Log(level hclog.Level, msg string, args ...any) {
	l.Logger.Log(level, msg, tidyRaftArgs(msg, args)...)
}

// Trace implements hclog.Logger.
func (l raftLogger) Trace(msg string, args ...any) { l.Log(hclog.Trace, msg, args...) }

// Debug implements hclog.Logger.
func (l raftLogger) Debug(msg string, args ...any) { l.Log(hclog.Debug, msg, args...) }

// Info implements hclog.Logger.
func (l raftLogger) Info(msg string, args ...any) { l.Log(hclog.Info, msg, args...) }

// Warn implements hclog.Logger.
func (l raftLogger) Warn(msg string, args ...any) { l.Log(hclog.Warn, msg, args...) }

// Error implements hclog.Logger.
func (l raftLogger) Error(msg string, args ...any) { l.Log(hclog.Error, msg, args...) }

// tidyRaftArgs returns a record's key-value pairs as raftLogger logs them.
func tidyRaftArgs(msg string, args []any) []any {
	out := make([]any, len(args))
	copy(out, args)
	for i := 0; i+1 < len(out); i += 2 {
		if f, ok := out[i+1].(hclog.Format); ok && len(f) > 0 {
			if format, ok := f[0].(string); ok {
				out[i+1] = fmt.Sprintf(format, f[1:]...)
			}
		}
		if msg == "initial configuration" && out[i] == "index" {
			out[i] = "configuration_index"
		}
	}
	return out
}
