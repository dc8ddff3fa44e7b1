package turnserver

import (
	"net"
	"testing"
)

// TestPublicIP: a relay may reach addresses on the internet, and none that
// lead into the operator's network or nowhere.
func TestPublicIP(t *testing.T) {
	for addr, want := range map[string]bool{
		"8.8.8.8":         true,
		"198.51.100.7":    true, // documentation prefixes stand for the internet in tests
		"2001:4860::1":    true,
		"127.0.0.1":       false,
		"10.1.2.3":        false,
		"172.16.0.1":      false,
		"192.168.1.1":     false,
		"169.254.169.254": false, // cloud metadata
		"100.64.0.1":      false,
		"100.127.255.254": false,
		"0.1.2.3":         false,
		"0.0.0.0":         false,
		"192.0.0.170":     false,
		"198.18.0.1":      false,
		"240.0.0.1":       false,
		"255.255.255.255": false,
		"224.0.0.1":       false,
		"::1":             false,
		"::":              false,
		"fc00::1":         false,
		"fe80::1":         false,
		"ff02::1":         false,
		"::ffff:10.0.0.1": false,
		"::ffff:8.8.8.8":  true,
		"64:ff9b::a00:1":  false, // NAT64 of 10.0.0.1
	} {
		if got := publicIP(net.ParseIP(addr)); got != want {
			t.Errorf("publicIP(%s) = %v, want %v", addr, got, want)
		}
	}
}
