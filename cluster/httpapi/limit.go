package httpapi

import (
	"net"
	"sync"
)

// LimitListener returns a listener that holds at most total connections at
// once, and at most perIP from one address; a connection over either cap
// is closed as soon as it is accepted, so a flood from one address cannot
// take the whole server. Connections from the exempt addresses (such as
// the other instances of a group, which relay many clients each) count
// toward total only.
func LimitListener(ln net.Listener, total, perIP int, exempt ...string) net.Listener {
	l := &limitListener{Listener: ln, total: total, perIP: perIP, byIP: map[string]int{}, exempt: map[string]bool{}}
	for _, ip := range exempt {
		l.exempt[ip] = true
	}
	return l
}

type limitListener struct {
	net.Listener
	total, perIP int

	mu     sync.Mutex // guards open and byIP
	open   int
	byIP   map[string]int
	exempt map[string]bool // read only
}

// Accept returns the next connection within the caps.
func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := hostOf(c.RemoteAddr())
		l.mu.Lock()
		ok := l.open < l.total && (l.byIP[ip] < l.perIP || l.exempt[ip])
		if ok {
			l.open++
			l.byIP[ip]++
		}
		l.mu.Unlock()
		if !ok {
			c.Close()
			continue
		}
		return &limitedConn{Conn: c, l: l, ip: ip}, nil
	}
}

func (l *limitListener) release(ip string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.open--
	if l.byIP[ip]--; l.byIP[ip] == 0 {
		delete(l.byIP, ip)
	}
}

// hostOf is an address without its port.
func hostOf(a net.Addr) string {
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}

// limitedConn gives its place back when it closes.
type limitedConn struct {
	net.Conn
	l    *limitListener
	ip   string
	once sync.Once
}

func (c *limitedConn) Close() error {
	c.once.Do(func() { c.l.release(c.ip) })
	return c.Conn.Close()
}
