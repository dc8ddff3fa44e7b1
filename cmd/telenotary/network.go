package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/telenotary/telenotary/cluster"
)

// isLoopbackHost reports whether host (a name or an IP address, without a
// port) is this machine: localhost or a loopback address.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// warnClearText calls warn with one line for each of urls that would
// carry secret (such as "join token") in clear: plain http to a host that
// is not loopback, where anyone on the way can read it. URLs that do not
// parse are left to the checks that report them.
func warnClearText(warn func(line string), flagName, secret string, urls []string) {
	for _, raw := range urls {
		u, err := url.Parse(strings.TrimSpace(raw))
		if err != nil || u.Host == "" {
			continue
		}
		if scheme := strings.ToLower(u.Scheme); (scheme == "http" || scheme == "ws") && !isLoopbackHost(u.Hostname()) {
			warn(fmt.Sprintf("%s %s: the %s travels in clear (plain http to an address that is not loopback); use https", flagName, raw, secret))
		}
	}
}

// checkDebugAddr refuses a --debug-addr that is not on loopback: the
// profiler shows the process's memory and goroutines to whoever reaches
// it, and takes no token.
func checkDebugAddr(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--debug-addr %s: %w", addr, err)
	}
	if !isLoopbackHost(host) {
		return fmt.Errorf("--debug-addr %s: the profiler listens on loopback only, such as 127.0.0.1:6060 (reach it with an SSH tunnel)", addr)
	}
	return nil
}

// serveDebug serves the profiler on addr, a loopback address
// (checkDebugAddr), until stop is called; stop waits for it to end.
func serveDebug(addr string) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	// A name such as localhost could resolve elsewhere: check what it is.
	if a, ok := ln.Addr().(*net.TCPAddr); !ok || !a.IP.IsLoopback() {
		ln.Close()
		return nil, fmt.Errorf("%s is not a loopback address", ln.Addr())
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan struct{})
	go func() {
		defer close(served)
		srv.Serve(ln)
	}()
	return func() {
		srv.Close()
		<-served
	}, nil
}

// apiTLS loads the API's server TLS and the client TLS for reaching other
// nodes' APIs.
func apiTLS(certFile, keyFile, caFile string) (server, client *tls.Config, err error) {
	if (certFile == "") != (keyFile == "") {
		return nil, nil, errors.New("--tls-cert and --tls-key go together")
	}
	if client, err = clientTLS(caFile, "--tls-ca"); err != nil {
		return nil, nil, err
	}
	if certFile != "" {
		cert, err := loadKeyPair(certFile, keyFile, "--tls-cert", "--tls-key")
		if err != nil {
			return nil, nil, err
		}
		server = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	return server, client, nil
}

// clientTLS loads the CA certificates a client checks servers against,
// given with flagName; nil without caFile (the system's roots).
func clientTLS(caFile, flagName string) (*tls.Config, error) {
	if caFile == "" {
		return nil, nil
	}
	pool, err := loadCA(caFile, flagName)
	if err != nil {
		return nil, err
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}

// raftTLS loads mutual TLS for raft: every node presents a certificate
// signed by the CA, and accepts only such peers.
func raftTLS(certFile, keyFile, caFile string) (*tls.Config, error) {
	if certFile == "" && keyFile == "" && caFile == "" {
		return nil, nil
	}
	if certFile == "" || keyFile == "" || caFile == "" {
		return nil, errors.New("--raft-tls-cert, --raft-tls-key and --raft-tls-ca go together")
	}
	cert, err := loadKeyPair(certFile, keyFile, "--raft-tls-cert", "--raft-tls-key")
	if err != nil {
		return nil, err
	}
	pool, err := loadCA(caFile, "--raft-tls-ca")
	if err != nil {
		return nil, err
	}
	return cluster.MutualTLS(cert, pool), nil
}

// loadCA reads the CA certificates (PEM) given with flagName.
func loadCA(path, flagName string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", flagName, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s %s: no PEM certificate in it", flagName, path)
	}
	return pool, nil
}
