package httpapi

import (
	"net"
	"testing"
)

// TestLimitListenerExempt: connections over the per-address cap are
// closed at once, except from an exempt address, which the total cap
// still bounds.
func TestLimitListenerExempt(t *testing.T) {
	for _, c := range []struct {
		name   string
		exempt []string
		held   int // of 4 connections
	}{
		{"capped per address", nil, 1},
		{"exempt address", []string{"127.0.0.1"}, 3},
	} {
		t.Run(c.name, func(t *testing.T) {
			raw, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			ln := LimitListener(raw, 3, 1, c.exempt...)
			defer ln.Close()
			accepted := make(chan net.Conn, 4)
			go func() {
				for {
					conn, err := ln.Accept()
					if err != nil {
						return
					}
					accepted <- conn
				}
			}()
			// One at a time: each connection is either accepted, or closed
			// by the listener (its client reads EOF).
			held := 0
			for range 4 {
				conn, err := net.Dial("tcp", raw.Addr().String())
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close()
				closed := make(chan struct{})
				go func() { conn.Read(make([]byte, 1)); close(closed) }()
				select {
				case a := <-accepted:
					defer a.Close()
					held++
				case <-closed:
				}
			}
			if held != c.held {
				t.Fatalf("%d of 4 connections held, want %d", held, c.held)
			}
		})
	}
}
