package session_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/telenotary/telenotary/cluster/notaryapi"
	"github.com/telenotary/telenotary/notary"
	"github.com/telenotary/telenotary/session"
	"github.com/telenotary/telenotary/session/internal/sessiontest"
	"github.com/telenotary/telenotary/session/signalapi"
	"golang.org/x/mod/sumdb/note"
)

// memNotary answers notarizations at once with a receipt of realistic
// shape (a proof of 20 hashes into a signed checkpoint), so that a
// benchmark measures the signalling server and not a cluster's fsync.
type memNotary struct {
	index atomic.Uint64
	cp    []byte
	proof []notary.Hash
}

func newMemNotary(tb testing.TB) *memNotary {
	tb.Helper()
	skey, _, err := note.GenerateKey(rand.Reader, "bench-notary")
	if err != nil {
		tb.Fatal(err)
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		tb.Fatal(err)
	}
	cp, err := notary.Checkpoint{Origin: "bench.example/log", Size: 1 << 20, Timestamp: time.Now().UnixMilli()}.Sign(signer)
	if err != nil {
		tb.Fatal(err)
	}
	m := &memNotary{cp: cp.Note, proof: make([]notary.Hash, 20)}
	for i := range m.proof {
		rand.Read(m.proof[i][:])
	}
	return m
}

func (m *memNotary) NotarizeSigned(_ context.Context, e notaryapi.Entry, _ int) (*notaryapi.NotarizeResponse, error) {
	leaf := notary.Leaf{Kind: e.Kind, Commitment: e.Commitment, Link: e.Link, Timestamp: time.Now().UnixMilli()}
	rc := &notary.Receipt{Origin: "bench.example/log", Index: m.index.Add(1), Leaf: leaf, LeafHash: leaf.Hash(), InclusionProof: m.proof, Checkpoint: m.cp}
	return &notaryapi.NotarizeResponse{Receipt: rc}, nil
}

func (m *memNotary) KeysText(context.Context) ([]byte, error) { return nil, nil }

func (m *memNotary) PrescriptionStatus(context.Context, notary.Commitment, bool) (*notary.PrescriptionStatus, error) {
	return nil, errors.New("the in-memory notary keeps no prescription status")
}

func (m *memNotary) ReceiptWitnessed(context.Context, notary.Commitment, int, int) (*notary.Receipt, error) {
	return nil, errors.New("the in-memory notary has no witnesses")
}

// countingTransport takes webhook deliveries in memory and counts them.
type countingTransport struct {
	mu    sync.Mutex
	n     int
	moved chan struct{}
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	io.Copy(io.Discard, r.Body)
	r.Body.Close()
	c.mu.Lock()
	c.n++
	c.mu.Unlock()
	select {
	case c.moved <- struct{}{}:
	default:
	}
	return &http.Response{StatusCode: 204, Body: http.NoBody, Header: http.Header{}, Request: r}, nil
}

func (c *countingTransport) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// BenchmarkPrescription measures the prescription path of the server:
// a physician's prescription message read from the WebSocket, checked,
// canonicalized, committed, notarized (by an in-memory notary), its
// receipt checked, its bundle encoded, the receipt sent to the physician,
// the prescription to the patient, and the webhook event delivered (to an
// in-memory transport). One op is one prescription, sent after the
// previous one's messages arrived; rooms are changed (outside the timer)
// before they reach their prescription limit.
func BenchmarkPrescription(b *testing.B) {
	resource := medicationRequest(b)
	hooks := &countingTransport{moved: make(chan struct{}, 1)}
	key := make([]byte, 32)
	rand.Read(key)
	tk, err := session.NewTokenKey(key)
	if err != nil {
		b.Fatal(err)
	}
	cfg := benchConfig(b, newMemNotary(b), tk, hooks)
	srv, hs := startBenchServer(b, context.Background(), cfg)
	ws := "ws" + strings.TrimPrefix(hs.URL, "http") + "/v1/signal"

	const perRoom = 150
	var patient, physician *benchClient
	webhooks := 0
	msg := fmt.Appendf(nil, `{"type":"prescription","ref":"rx","resource":%s}`, resource)
	b.ReportAllocs()
	b.SetBytes(int64(len(resource)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i%perRoom == 0 {
			b.StopTimer()
			if physician != nil {
				physician.write(b, []byte(`{"type":"leave"}`))
				patient.waitFor(b, `"session-end"`)
				physician.waitFor(b, `"session-end"`)
				webhooks++ // the session-end event
			}
			room := fmt.Sprintf("bench-%d", i)
			patient, physician = benchRoom(b, ws, tk, room)
			webhooks++ // the session-start event
			b.StartTimer()
		}
		physician.write(b, msg)
		physician.waitFor(b, `"receipt"`)
		patient.waitFor(b, `"prescription"`)
		webhooks++
	}
	for hooks.count() < webhooks {
		select {
		case <-hooks.moved:
		case <-time.After(10 * time.Second):
			b.Fatalf("%d webhook deliveries of %d", hooks.count(), webhooks)
		}
	}
	b.StopTimer()
	_ = srv
}

// benchClient is a raw WebSocket client that reads messages on its own.
type benchClient struct {
	ws *websocket.Conn
	in chan []byte // closed when the connection is
}

func benchDial(tb testing.TB, url string) *benchClient {
	tb.Helper()
	ws, _, err := websocket.Dial(context.Background(), url, nil)
	if err != nil {
		tb.Fatal(err)
	}
	ws.SetReadLimit(8 << 20)
	c := &benchClient{ws: ws, in: make(chan []byte, 64)}
	go func() {
		defer close(c.in)
		for {
			_, data, err := ws.Read(context.Background())
			if err != nil {
				return
			}
			c.in <- data
		}
	}()
	tb.Cleanup(func() { ws.CloseNow() })
	return c
}

func (c *benchClient) write(tb testing.TB, data []byte) {
	if err := c.ws.Write(context.Background(), websocket.MessageText, data); err != nil {
		tb.Fatal(err)
	}
}

// waitFor waits for a message whose type is typ (a quoted JSON string).
func (c *benchClient) waitFor(tb testing.TB, typ string) []byte {
	prefix := `{"type":` + typ
	for {
		select {
		case data, ok := <-c.in:
			if !ok {
				tb.Fatalf("connection closed waiting for %s", typ)
			}
			if strings.HasPrefix(string(data), prefix) {
				return data
			}
			if strings.HasPrefix(string(data), `{"type":"error"`) {
				tb.Fatalf("waiting for %s: %s", typ, data)
			}
		case <-time.After(20 * time.Second):
			tb.Fatalf("no %s message", typ)
		}
	}
}

// benchRoom seats a patient and a physician and starts their session.
func benchRoom(tb testing.TB, url string, tk *session.TokenKey, room string) (patient, physician *benchClient) {
	tb.Helper()
	exp := time.Now().Add(time.Hour)
	patientTok, _ := tk.Issue(room, signalapi.RolePatient, "p-"+room, exp)
	physicianTok, _ := tk.Issue(room, signalapi.RolePhysician, "d-"+room, exp)
	patient, physician = benchDial(tb, url), benchDial(tb, url)
	patient.write(tb, fmt.Appendf(nil, `{"type":"join","token":%q}`, patientTok))
	patient.waitFor(tb, `"joined"`)
	physician.write(tb, fmt.Appendf(nil, `{"type":"join","token":%q}`, physicianTok))
	physician.waitFor(tb, `"joined"`)
	offer, _ := sdpOffer(tb)
	answer, _ := sdpOffer(tb)
	physician.write(tb, fmt.Appendf(nil, `{"type":"offer","sdp":%q}`, offer))
	patient.waitFor(tb, `"offer"`)
	patient.write(tb, fmt.Appendf(nil, `{"type":"answer","sdp":%q}`, answer))
	patient.waitFor(tb, `"receipt"`)
	physician.waitFor(tb, `"receipt"`)
	return patient, physician
}

func benchConfig(tb testing.TB, n session.Notary, tk *session.TokenKey, hooks http.RoundTripper) session.Config {
	cfg := session.DefaultConfig()
	cfg.Notary, cfg.TokenKey, cfg.Logger = n, tk, sessiontest.Logger(tb)
	cfg.MessagesPerSecond, cfg.MessageBurst = 1e6, 1e6
	cfg.Webhook.URL, cfg.Webhook.Secret = "https://hook.invalid/", make([]byte, 32)
	cfg.Webhook.HTTPClient = &http.Client{Transport: hooks}
	return cfg
}

// startBenchServer starts a server with its lifetime bound to ctx; it is
// closed when the test ends.
func startBenchServer(tb testing.TB, ctx context.Context, cfg session.Config) (*session.Server, *httptest.Server) {
	tb.Helper()
	srv, err := session.NewServer(ctx, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Close(ctx)
		hs.Close()
	})
	return srv, hs
}

// BenchmarkRelay measures the relay path of the server: one ICE candidate
// read from the physician's WebSocket, checked and sent to the patient.
// One op is one candidate, sent after the previous one arrived; rooms are
// changed (outside the timer) before they reach their candidate limit.
func BenchmarkRelay(b *testing.B) {
	key := make([]byte, 32)
	rand.Read(key)
	tk, err := session.NewTokenKey(key)
	if err != nil {
		b.Fatal(err)
	}
	cfg := benchConfig(b, newMemNotary(b), tk, &countingTransport{moved: make(chan struct{}, 1)})
	_, hs := startBenchServer(b, context.Background(), cfg)
	ws := "ws" + strings.TrimPrefix(hs.URL, "http") + "/v1/signal"
	msg := []byte(`{"type":"candidate","candidate":{"candidate":"candidate:1 1 udp 2130706431 192.0.2.10 50000 typ host","sdpMid":"0","sdpMLineIndex":0}}`)
	const perRoom = 60
	var patient, physician *benchClient
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i%perRoom == 0 {
			b.StopTimer()
			patient, physician = benchRoom(b, ws, tk, fmt.Sprintf("relay-%d", i))
			b.StartTimer()
		}
		physician.write(b, msg)
		patient.waitFor(b, `"candidate"`)
	}
}
