package signalapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/telenotary/telenotary/cluster/httpapi"
	"github.com/telenotary/telenotary/notary"
)

// Config configures a Client.
type Config struct {
	// Base is the server's base URL, such as https://signal.example.org.
	Base string
	// Key is the API key: an app backend's (submitter) to create rooms, an
	// operator's to list sessions. Reading the keys needs none.
	Key string
	// HTTPClient sends the requests; nil means http.DefaultClient.
	HTTPClient *http.Client
}

// Client calls the signalling server's HTTP API. Errors the server answers
// with are *httpapi.Problem values that errors.Is matches against the
// httpapi codes and this package's (ErrShuttingDown, ...). It does not
// retry. It is safe for concurrent use.
type Client struct {
	base string
	key  string
	http *http.Client
}

// NewClient returns a client for the server at cfg.Base.
func NewClient(cfg Config) *Client {
	c := &Client{base: strings.TrimRight(cfg.Base, "/"), key: cfg.Key, http: cfg.HTTPClient}
	if c.http == nil {
		c.http = http.DefaultClient
	}
	return c
}

// Limits on what the client reads of an answer.
const (
	maxSessionsAnswer = 16 << 20
	maxKeysAnswer     = 1 << 20
	maxRoomAnswer     = 64 << 10
	maxRevokeAnswer   = notary.MaxReceiptSize + 1024
)

// CreateRoom creates a room (app key) and returns its id and the
// participants' tokens.
func (c *Client) CreateRoom(ctx context.Context, req CreateRoomRequest) (*CreateRoomResponse, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	var out CreateRoomResponse
	if err := c.do(ctx, http.MethodPost, PathRooms, body, http.StatusCreated, maxRoomAnswer, &out); err != nil {
		return nil, fmt.Errorf("create room: %w", err)
	}
	return &out, nil
}

// Rooms returns the rooms the server holds (app key).
func (c *Client) Rooms(ctx context.Context) (*RoomsResponse, error) {
	var out RoomsResponse
	if err := c.do(ctx, http.MethodGet, PathRooms, nil, http.StatusOK, maxSessionsAnswer, &out); err != nil {
		return nil, fmt.Errorf("rooms: %w", err)
	}
	return &out, nil
}

// Room returns one room (app key); a room that is not held (never
// opened, or over) is httpapi.ErrNotFound.
func (c *Client) Room(ctx context.Context, room string) (*SessionInfo, error) {
	var out SessionInfo
	if err := c.do(ctx, http.MethodGet, PathRooms+"/"+url.PathEscape(room), nil, http.StatusOK, maxRoomAnswer, &out); err != nil {
		return nil, fmt.Errorf("room %s: %w", room, err)
	}
	return &out, nil
}

// EndRoom ends a room's consultation (app key): both participants are
// told, and the session-end record is notarized as for a leave. It
// returns the room as it is then (state ending).
func (c *Client) EndRoom(ctx context.Context, room, reason string) (*SessionInfo, error) {
	body, err := json.Marshal(EndRoomRequest{Reason: reason})
	if err != nil {
		return nil, err
	}
	var out SessionInfo
	if err := c.do(ctx, http.MethodPost, PathRooms+"/"+url.PathEscape(room)+"/end", body, http.StatusAccepted, maxRoomAnswer, &out); err != nil {
		return nil, fmt.Errorf("end room %s: %w", room, err)
	}
	return &out, nil
}

// RemoveParticipant disconnects a room's participant of a role (app key)
// and voids its resume tickets: it comes back only with a new token. The
// session goes on; it ends if nobody takes the seat within the grace
// window.
func (c *Client) RemoveParticipant(ctx context.Context, room string, role Role) error {
	if err := c.do(ctx, http.MethodDelete, PathRooms+"/"+url.PathEscape(room)+"/participants/"+url.PathEscape(string(role)), nil, http.StatusNoContent, 0, nil); err != nil {
		return fmt.Errorf("remove the %s of room %s: %w", role, room, err)
	}
	return nil
}

// Sessions returns the live consultations and recent alerts (operator
// key).
func (c *Client) Sessions(ctx context.Context) (*SessionsResponse, error) {
	var out SessionsResponse
	if err := c.do(ctx, http.MethodGet, PathSessions, nil, http.StatusOK, maxSessionsAnswer, &out); err != nil {
		return nil, fmt.Errorf("sessions: %w", err)
	}
	return &out, nil
}

// Undelivered returns the webhook events the app's backend did not take
// (app key); acknowledge each one kept with AckUndelivered.
func (c *Client) Undelivered(ctx context.Context) (*UndeliveredResponse, error) {
	var out UndeliveredResponse
	if err := c.do(ctx, http.MethodGet, PathUndelivered, nil, http.StatusOK, maxSessionsAnswer, &out); err != nil {
		return nil, fmt.Errorf("undelivered: %w", err)
	}
	return &out, nil
}

// AckUndelivered tells the server that the event id is kept: it forgets it.
func (c *Client) AckUndelivered(ctx context.Context, id string) error {
	if err := c.do(ctx, http.MethodDelete, PathUndelivered+"/"+url.PathEscape(id), nil, http.StatusNoContent, 0, nil); err != nil {
		return fmt.Errorf("acknowledge %s: %w", id, err)
	}
	return nil
}

// Keys returns the notary cluster's verifier keys as the server serves
// them: the keys file that `telenotary verify --keys` reads, one key per
// line (notary.ParseVerifierKeys reads it).
func (c *Client) Keys(ctx context.Context) ([]byte, error) {
	var out bytes.Buffer
	if err := c.do(ctx, http.MethodGet, PathKeys, nil, http.StatusOK, maxKeysAnswer, &out); err != nil {
		return nil, fmt.Errorf("verifier keys: %w", err)
	}
	return out.Bytes(), nil
}

// Revoke revokes, on behalf of the physician, the prescription of a
// bundle (app key): the server checks that the bundle's document and salt
// give its receipt's commitment and that the receipt is a prescription's,
// and has the notary cluster log the revocation. A prescription revoked
// before answers the same receipt, with Existing. The cluster's refusals
// match ErrUnknownPrescription and ErrBadProof.
func (c *Client) Revoke(ctx context.Context, bundle []byte) (*RevokeResponse, error) {
	body, err := json.Marshal(RevokeRequest{Bundle: bundle})
	if err != nil {
		return nil, fmt.Errorf("revoke: %w", err)
	}
	var out RevokeResponse
	if err := c.do(ctx, http.MethodPost, PathRevoke, body, http.StatusOK, maxRevokeAnswer, &out); err != nil {
		return nil, fmt.Errorf("revoke: %w", err)
	}
	if out.Receipt == nil {
		return nil, errors.New("revoke: the answer has no receipt")
	}
	return &out, nil
}

// PrescriptionStatus returns a prescription's status as the notary
// cluster answers it through the server (public): active, dispensed or
// revoked, with the receipts that decide it. Verify it with
// notary.Verifier.VerifyStatus: the server only relays it. A commitment
// the cluster holds no prescription for is httpapi.ErrNotFound.
func (c *Client) PrescriptionStatus(ctx context.Context, commitment notary.Commitment) (*notary.PrescriptionStatus, error) {
	var out bytes.Buffer
	if err := c.do(ctx, http.MethodGet, StatusPath(commitment), nil, http.StatusOK, notary.MaxStatusSize, &out); err != nil {
		return nil, fmt.Errorf("status of %s: %w", commitment, err)
	}
	st, err := notary.ParsePrescriptionStatus(out.Bytes())
	if err != nil {
		return nil, fmt.Errorf("status of %s: %w", commitment, err)
	}
	return st, nil
}

// do sends one request and decodes the answer of status want into out: raw
// bytes into a *bytes.Buffer, JSON into anything else, nothing when out is
// nil. Any other status is an *httpapi.Problem.
func (c *Client) do(ctx context.Context, method, path string, body []byte, want int, limit int64, out any) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.key != "" {
		req.Header.Set("Authorization", "Bearer "+c.key)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != want {
		return httpapi.ReadProblem(resp)
	}
	if out == nil { // an answer without a body, such as 204
		return nil
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return err
	}
	if int64(len(data)) > limit {
		return fmt.Errorf("the answer is larger than %d bytes", limit)
	}
	if buf, ok := out.(*bytes.Buffer); ok {
		buf.Write(data)
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return errors.Join(errors.New("the answer is not the expected JSON"), err)
	}
	return nil
}
