package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
)

// errNotPrivate refuses a key or token file that its owner's group or
// others may read or write: make it private with chmod 600.
var errNotPrivate = errors.New("open to its group or others")

// readPrivate reads the key or token file at path, given with flagName. It
// refuses, in one line naming the file and the fix, a file whose group or
// others have any permission, except on Windows, where file modes do not
// say who may read a file. Public files (verifier keys, certificates, CAs)
// are read with os.ReadFile instead.
func readPrivate(path, flagName string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", flagName, err)
	}
	defer f.Close()
	// The mode of the file opened, not of the path: it cannot change in
	// between.
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", flagName, err)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 && runtime.GOOS != "windows" {
		return nil, fmt.Errorf("%s %s: %w (mode %04o); make it private with chmod 600 %s", flagName, path, errNotPrivate, perm, path)
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", flagName, path, err)
	}
	return b, nil
}

// readSecret reads a key or token file with readPrivate and returns its
// content without surrounding white space; it must be at least min bytes.
func readSecret(path, flagName string, min int) ([]byte, error) {
	b, err := readPrivate(path, flagName)
	if err != nil {
		return nil, err
	}
	b = []byte(strings.TrimSpace(string(b)))
	if len(b) < min {
		return nil, fmt.Errorf("%s %s: %d bytes; it needs at least %d", flagName, path, len(b), min)
	}
	return b, nil
}

// optionalSecret reads the one-line secret file at path, given with
// flagName, with readSecret; without a path it returns otherwise (such as
// the value of an environment variable, or "").
func optionalSecret(path, flagName, otherwise string) (string, error) {
	if path == "" {
		return otherwise, nil
	}
	b, err := readSecret(path, flagName, 1)
	return string(b), err
}

// loadKeyPair loads a certificate and its private key; the key file must
// be private (readPrivate).
func loadKeyPair(certFile, keyFile, certFlag, keyFlag string) (tls.Certificate, error) {
	keyPEM, err := readPrivate(keyFile, keyFlag)
	if err != nil {
		return tls.Certificate{}, err
	}
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("%s: %w", certFlag, err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("%s/%s: %w", certFlag, keyFlag, err)
	}
	return cert, nil
}
