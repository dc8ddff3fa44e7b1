package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// faultNet is the network between the nodes of a fault campaign: a TCP
// proxy on loopback in front of each node's raft address and API, which
// the nodes advertise to each other, so every byte between two nodes goes
// through it. A partition cuts pairs of nodes: the connections between
// them are closed, and new ones are accepted and then held without a byte
// forwarded (a black hole, as a dead route looks) until the partition
// heals. Connections from anyone else (the test's clients) always pass.
//
// A proxy learns which node dialled it from the kernel: the accepted
// connection's peer port leads to a socket inode in /proc/net/tcp, and the
// inode to the node process that holds it (Linux only).
type faultNet struct {
	t *testing.T

	mu      sync.Mutex
	cut     map[[2]string]bool    // unordered pairs of node ids, smaller first
	healed  chan struct{}         // closed and replaced when cuts are removed
	conns   map[*proxyConn]bool   // open connections between nodes
	pids    map[string]func() int // node id → its current process id (0: none)
	proxies []*proxy              // to close them
	unknown int                   // connections whose dialler was not found
	held    int                   // connections held in a black hole
	closed  int                   // connections closed by a partition
}

// proxy forwards one listen address to a node's address.
type proxy struct {
	net    *faultNet
	owner  string // the node behind it
	ln     net.Listener
	target string
	wg     sync.WaitGroup
}

// proxyConn is one proxied connection and the node that dialled it ("" for
// anyone else).
type proxyConn struct {
	from, to         string
	client, upstream net.Conn
}

func newFaultNet(t *testing.T) *faultNet {
	f := &faultNet{t: t, cut: map[[2]string]bool{}, healed: make(chan struct{}), conns: map[*proxyConn]bool{}, pids: map[string]func() int{}}
	t.Cleanup(f.close)
	return f
}

// addNode tells the network how to find a node's process.
func (f *faultNet) addNode(id string, pid func() int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pids[id] = pid
}

// listen opens a proxy on a fresh loopback port for the node owner; its
// target is set later (the node's ports are chosen when it starts).
func (f *faultNet) listen(owner string) *proxy {
	f.t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.t.Fatal(err)
	}
	p := &proxy{net: f, owner: owner, ln: ln}
	f.mu.Lock()
	f.proxies = append(f.proxies, p)
	f.mu.Unlock()
	p.wg.Add(1)
	go p.serve()
	return p
}

// addr is the proxy's address, which the node advertises.
func (p *proxy) addr() string { return p.ln.Addr().String() }

// setTarget points the proxy at the node's real address.
func (p *proxy) setTarget(addr string) {
	p.net.mu.Lock()
	defer p.net.mu.Unlock()
	p.target = addr
}

func (p *proxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.handle(c)
		}()
	}
}

// handle forwards one connection, or holds it while its dialler is cut off
// from the proxy's node.
func (p *proxy) handle(c net.Conn) {
	f := p.net
	from := f.dialler(c)
	f.mu.Lock()
	target := p.target
	if from != "" && f.isCut(from, p.owner) {
		f.held++
		healed := f.healed
		f.mu.Unlock()
		<-healed // closed by heal or close
		c.Close()
		return
	}
	f.mu.Unlock()
	up, err := net.Dial("tcp", target)
	if err != nil {
		c.Close() // the node is down: the dialler sees the connection close
		return
	}
	pc := &proxyConn{from: from, to: p.owner, client: c, upstream: up}
	f.mu.Lock()
	if from != "" && f.isCut(from, p.owner) { // cut while dialling
		f.mu.Unlock()
		pc.close()
		return
	}
	f.conns[pc] = true
	f.mu.Unlock()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); io.Copy(up, c); pc.close() }()
	go func() { defer wg.Done(); io.Copy(c, up); pc.close() }()
	wg.Wait()
	f.mu.Lock()
	delete(f.conns, pc)
	f.mu.Unlock()
}

func (pc *proxyConn) close() {
	pc.client.Close()
	pc.upstream.Close()
}

// isCut reports whether a and b are partitioned; f.mu is held.
func (f *faultNet) isCut(a, b string) bool {
	if a > b {
		a, b = b, a
	}
	return f.cut[[2]string{a, b}]
}

// partition cuts every node of one group off from every node of the
// other, closing the connections between them.
func (f *faultNet) partition(one, other []string) {
	// A node dials its peers as it starts, maybe before its process id
	// was known: look again for the diallers not found then.
	f.mu.Lock()
	var unknown []*proxyConn
	for pc := range f.conns {
		if pc.from == "" {
			unknown = append(unknown, pc)
		}
	}
	f.mu.Unlock()
	found := map[*proxyConn]string{}
	for _, pc := range unknown {
		if id := f.dialler(pc.client); id != "" {
			found[pc] = id
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for pc, id := range found {
		if f.conns[pc] {
			pc.from = id
		}
	}
	for _, a := range one {
		for _, b := range other {
			if a > b {
				f.cut[[2]string{b, a}] = true
			} else {
				f.cut[[2]string{a, b}] = true
			}
		}
	}
	for pc := range f.conns {
		if pc.from != "" && f.isCut(pc.from, pc.to) {
			pc.close()
			f.closed++
		}
	}
}

// heal removes every cut and releases the held connections (closed: the
// diallers reconnect).
func (f *faultNet) heal() {
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.cut)
	close(f.healed)
	f.healed = make(chan struct{})
}

// close stops the proxies and their connections.
func (f *faultNet) close() {
	f.heal()
	f.mu.Lock()
	proxies := f.proxies
	for pc := range f.conns {
		pc.close()
	}
	f.mu.Unlock()
	for _, p := range proxies {
		p.ln.Close()
		p.wg.Wait()
	}
}

// dialler returns the node whose process holds the other end of c, or ""
// when it is not a node's (or cannot be found).
func (f *faultNet) dialler(c net.Conn) string {
	remote, ok := c.RemoteAddr().(*net.TCPAddr)
	if !ok {
		return ""
	}
	local := c.LocalAddr().(*net.TCPAddr)
	inode, err := socketInode(remote, local)
	if err != nil {
		f.mu.Lock()
		f.unknown++
		f.mu.Unlock()
		return ""
	}
	f.mu.Lock()
	pids := make(map[string]int, len(f.pids))
	for id, pid := range f.pids {
		pids[id] = pid()
	}
	f.mu.Unlock()
	want := "socket:[" + inode + "]"
	for id, pid := range pids {
		if pid == 0 {
			continue
		}
		dir := filepath.Join("/proc", strconv.Itoa(pid), "fd")
		entries, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range entries {
			if link, err := os.Readlink(filepath.Join(dir, e.Name())); err == nil && link == want {
				return id
			}
		}
	}
	return ""
}

// socketInode finds, in /proc/net/tcp, the inode of the IPv4 socket whose
// local address is local and whose peer is remote.
func socketInode(local, remote *net.TCPAddr) (string, error) {
	file, err := os.Open("/proc/net/tcp")
	if err != nil {
		return "", err
	}
	defer file.Close()
	want := procAddr(local) + " " + procAddr(remote)
	sc := bufio.NewScanner(file)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 9 && fields[1]+" "+fields[2] == want {
			return fields[9], nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	return "", fmt.Errorf("no socket %s in /proc/net/tcp", want)
}

// procAddr writes an IPv4 address as /proc/net/tcp does: the address as a
// little-endian 32-bit hex number, then the port in hex.
func procAddr(a *net.TCPAddr) string {
	ip := a.IP.To4()
	if ip == nil {
		return ""
	}
	return fmt.Sprintf("%02X%02X%02X%02X:%04X", ip[3], ip[2], ip[1], ip[0], a.Port)
}

// stats returns the network's counters for the report.
func (f *faultNet) stats() (held, closed, unknown int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.held, f.closed, f.unknown
}
