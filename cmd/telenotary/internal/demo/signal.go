package demo

import (
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/telenotary/telenotary/cluster/auth"
	"github.com/telenotary/telenotary/cluster/notaryapi"
	"github.com/telenotary/telenotary/session"
	"github.com/telenotary/telenotary/session/signalapi"
)

// startSignal starts the signalling server on cfg.Listen, notarizing
// through the demo cluster, with an app key for the simulations and the
// operator token as the console's key.
func (d *run) startSignal() error {
	d.appKey = randomHex("app")
	keys, err := auth.ParseTokens([]byte("submitter " + d.appKey + "\noperator " + d.operator + "\n"))
	if err != nil {
		return err
	}
	tk := make([]byte, 32)
	rand.Read(tk)
	tokenKey, err := session.NewTokenKey(tk)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", d.cfg.Listen)
	if err != nil {
		return fmt.Errorf("--listen %s: %w (another demo or server may be running; try --listen 127.0.0.1:0)", d.cfg.Listen, err)
	}
	cfg := session.DefaultConfig()
	cfg.Notary = notaryapi.NewClient(notaryapi.ClientConfig{Nodes: d.urls, Token: d.operator})
	cfg.TokenKey, cfg.APIKeys, cfg.Logger = tokenKey, keys, d.logger("signal")
	d.signal, err = session.NewServer(context.Background(), cfg) // stopSignal closes it
	if err != nil {
		ln.Close()
		return err
	}
	d.http = &http.Server{Handler: d.signal.Handler(), ReadHeaderTimeout: 10 * time.Second}
	d.base = "http://" + ln.Addr().String()
	d.rooms = signalapi.NewClient(signalapi.Config{Base: d.base, Key: d.appKey})
	d.served = make(chan struct{})
	go func() {
		defer close(d.served)
		d.http.Serve(ln)
	}()
	return nil
}

// stopSignal ends the live sessions (notarizing their end records), then
// stops serving. It does nothing if the server did not start.
func (d *run) stopSignal() {
	if d.signal == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d.signal.Close(ctx)
	d.http.Shutdown(ctx)
	<-d.served
}

// createRoom asks the signalling server for a room for two pseudonymous
// subjects, with the app's key.
func (d *run) createRoom(ctx context.Context, patient, physician string) (*signalapi.CreateRoomResponse, error) {
	return d.rooms.CreateRoom(ctx, signalapi.CreateRoomRequest{Patient: patient, Physician: physician})
}
