package cluster

// Crash stops a node abruptly, as a killed process would: no leadership
// transfer, no draining of requests.
func Crash(n *Node) {
	n.closeOnce.Do(func() {
		if n.http != nil {
			n.http.Close()
		}
		n.closeErr = n.shutdownParts()
	})
}

// LogGeneration returns which log-<gen> directory the node uses: a restore
// from a snapshot moves it on.
func LogGeneration(n *Node) int {
	n.fsm.mu.RLock()
	defer n.fsm.mu.RUnlock()
	return n.fsm.gen
}
