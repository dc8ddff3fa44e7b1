package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/telenotary/telenotary/cluster/auth"
	"github.com/telenotary/telenotary/cluster/notaryapi"
	"github.com/telenotary/telenotary/session"
)

const signalSynopsis = `signal --cluster URL[,URL...] --cluster-token-file FILE --api-keys FILE [flags]

Runs the WebRTC signalling server: rooms, the WebSocket /v1/signal, the
browser client at /app/ and the verification page at /verify/. Session
records and prescriptions are notarized through the cluster; nothing of a
consultation is written to disk.`

func runSignal(ctx context.Context, env *environment, args []string) int {
	fs := newFlagSet(env, "signal", signalSynopsis)
	listen := fs.String("listen", "127.0.0.1:8443", "address to serve HTTP (or HTTPS with --tls-cert) on")
	nodes := fs.String("cluster", "", "comma-separated API URLs of the notary cluster's nodes (required)")
	clusterTokenFile := fs.String("cluster-token-file", "", "file holding a submitter token of the cluster (required)")
	clusterCA := fs.String("cluster-ca", "", "CA certificates (PEM) of the cluster's API certificates")
	apiKeysFile := fs.String("api-keys", "", `API keys file: lines of "submitter KEY" (an app backend: create rooms) or "operator KEY" (list sessions) (required)`)
	tokenKeyFile := fs.String("token-key-file", "", "file holding the room-token signing key (32 bytes or more), to share with an app backend that signs its own tokens (default: a random key; tokens do not survive a restart)")
	webhook := fs.String("webhook", "", "URL of the app backend that receives every receipt bundle")
	webhookSecretFile := fs.String("webhook-secret-file", "", "file holding the key (32 bytes or more) that signs webhook deliveries (required with --webhook)")
	origins := fs.String("allowed-origins", "", "comma-separated web origins (host patterns) whose pages may open the WebSocket, besides this server's own")
	grace := fs.Duration("grace", 30*time.Second, "how long a participant whose connection dropped has to come back")
	tlsCert := fs.String("tls-cert", "", "certificate (PEM) to serve HTTPS")
	tlsKey := fs.String("tls-key", "", "private key (PEM) of --tls-cert")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	logJSON := fs.Bool("log-json", false, "log JSON lines instead of text")
	pos, err := parseFlags(fs, env, args)
	if err != nil {
		return usageError(env.stderr, "signal", err)
	}
	fail := func(err error) int {
		fmt.Fprintf(env.stderr, "telenotary signal: %v\n", err)
		return exitUsage
	}
	if len(pos) > 0 {
		return fail(fmt.Errorf("unexpected argument %q", pos[0]))
	}
	for name, v := range map[string]string{"--cluster": *nodes, "--cluster-token-file": *clusterTokenFile, "--api-keys": *apiKeysFile} {
		if v == "" {
			return fail(fmt.Errorf("%s is required (see telenotary signal --help)", name))
		}
	}
	logger, err := newLogger(env.stderr, *logLevel, *logJSON)
	if err != nil {
		return fail(err)
	}
	cfg := session.DefaultConfig()
	cfg.Logger, cfg.Grace = logger, *grace
	clusterToken, err := readSecret(*clusterTokenFile, "--cluster-token-file", 1)
	if err != nil {
		return fail(err)
	}
	_, clientTLS, err := apiTLS("", "", *clusterCA)
	if err != nil {
		return fail(err)
	}
	cc := notaryapi.ClientConfig{Nodes: strings.Split(*nodes, ","), Token: string(clusterToken)}
	if clientTLS != nil {
		cc.HTTPClient = &http.Client{Transport: &http.Transport{TLSClientConfig: clientTLS}}
	}
	cfg.Notary = notaryapi.NewClient(cc)
	keys, err := os.ReadFile(*apiKeysFile)
	if err != nil {
		return fail(fmt.Errorf("--api-keys: %w", err))
	}
	if cfg.APIKeys, err = auth.ParseTokens(keys); err != nil {
		return fail(fmt.Errorf("--api-keys %s: %w", *apiKeysFile, err))
	}
	var tokenKey []byte
	if *tokenKeyFile != "" {
		if tokenKey, err = readSecret(*tokenKeyFile, "--token-key-file", session.MinTokenKey); err != nil {
			return fail(err)
		}
	} else {
		tokenKey = make([]byte, 32)
		rand.Read(tokenKey)
	}
	if cfg.TokenKey, err = session.NewTokenKey(tokenKey); err != nil {
		return fail(err)
	}
	if *webhook != "" {
		if *webhookSecretFile == "" {
			return fail(errors.New("--webhook needs --webhook-secret-file"))
		}
		secret, err := readSecret(*webhookSecretFile, "--webhook-secret-file", session.MinTokenKey)
		if err != nil {
			return fail(err)
		}
		cfg.Webhook.URL, cfg.Webhook.Secret = *webhook, secret
	}
	if *origins != "" {
		cfg.OriginPatterns = strings.Split(*origins, ",")
	}
	srvTLS, _, err := apiTLS(*tlsCert, *tlsKey, "")
	if err != nil {
		return fail(err)
	}
	// The server outlives the signal to stop: Close below ends its
	// sessions gracefully.
	srv, err := session.NewServer(context.WithoutCancel(ctx), cfg)
	if err != nil {
		return fail(err)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		srv.Close(context.Background())
		return fail(fmt.Errorf("--listen %s: %w (is another server on that port?)", *listen, err))
	}
	hs := &http.Server{Handler: srv.Handler(), TLSConfig: srvTLS, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
	scheme := "http"
	if srvTLS != nil {
		scheme = "https"
	}
	logger.Info("signalling server started", "url", scheme+"://"+ln.Addr().String(), "app", scheme+"://"+ln.Addr().String()+"/app/", "cluster", *nodes)
	served := make(chan error, 1)
	go func() {
		if srvTLS != nil {
			served <- hs.ServeTLS(ln, "", "")
		} else {
			served <- hs.Serve(ln)
		}
	}()
	select {
	case <-ctx.Done():
	case err := <-served:
		return fail(err)
	}
	// End the sessions (notarizing their end records), then stop serving.
	stopCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = srv.Close(stopCtx)
	hs.Shutdown(stopCtx)
	if err != nil {
		return fail(fmt.Errorf("shutdown: %w", err))
	}
	return exitOK
}

// readSecret reads a key or token file (surrounding white space removed)
// of at least min bytes.
func readSecret(path, flagName string, min int) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", flagName, err)
	}
	b = []byte(strings.TrimSpace(string(b)))
	if len(b) < min {
		return nil, fmt.Errorf("%s %s: %d bytes; it needs at least %d", flagName, path, len(b), min)
	}
	return b, nil
}

// newLogger returns the logger of a long-running command.
func newLogger(w io.Writer, level string, asJSON bool) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: l}
	if asJSON {
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return slog.New(slog.NewTextHandler(w, opts)), nil
}
