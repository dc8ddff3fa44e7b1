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
	d.http = &http.Server{Handler: d.routes(d.signal.Handler()), ReadHeaderTimeout: 10 * time.Second}
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

// tryPath leads to the join links of the demo's room: tryPath+"patient"
// and tryPath+"physician" are short enough to read, type and copy from the
// console, where the links themselves (a token each) take several rows.
const tryPath = "/try/"

// routes serves the signalling server's handler, and the short links to
// the demo room's join links under tryPath.
func (d *run) routes(signal http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/", signal)
	mux.HandleFunc("GET "+tryPath+"{role}", d.tryLink)
	return mux
}

// tryLink redirects to the join link of a role, once the room is made.
func (d *run) tryLink(w http.ResponseWriter, r *http.Request) {
	var to string
	if joins := d.joins.Load(); joins != nil {
		to = (*joins)[r.PathValue("role")]
	}
	if to == "" {
		http.Error(w, "no such join link: try patient or physician", http.StatusNotFound)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, to, http.StatusFound)
}
