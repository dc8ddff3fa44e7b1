// Package witness is a transparency log witness (c2sp.org/tlog-witness):
// it cosigns a log's checkpoint, with a cosignature/v1
// (c2sp.org/tlog-cosignature), only after checking that it is consistent
// with the last checkpoint of that log it cosigned, and it records that
// checkpoint on disk before answering, so that it never cosigns two
// inconsistent checkpoints of one log, across restarts and crashes.
//
// It witnesses any C2SP checkpoint, extension lines included: it cosigns the
// whole body (as the cosignature spec requires) but vouches only for its
// first three lines.
package witness

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"filippo.io/torchwood"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/telenotary/telenotary/notary"
	"github.com/telenotary/telenotary/notary/filestore"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Log is a log the witness cosigns: its origin and the keys whose
// signature on a checkpoint the witness accepts (one is enough).
type Log struct {
	Origin    string
	Verifiers []note.Verifier
}

// Config configures a [Witness].
type Config struct {
	// Dir holds one state file per log; it must exist.
	Dir string
	// Signer is the witness's cosignature/v1 signer (see [NewSigner]).
	Signer *torchwood.CosignatureSigner
	// Logs are the logs witnessed, each origin once.
	Logs []Log
	// Logger receives a line per refused checkpoint that may be evidence
	// of a log's misbehaviour, and per failure; nil discards.
	Logger *slog.Logger
}

// Witness is a witness server. Its methods may be called concurrently;
// requests for one log are serialized.
type Witness struct {
	dir     string
	signer  *torchwood.CosignatureSigner
	logger  *slog.Logger
	logs    map[string]*logState
	metrics *metrics
	persist *persister
}

// logState is what the witness knows of one log.
type logState struct {
	origin    string
	verifiers note.Verifiers
	path      string
	f         *os.File // the state file, open for writing in place

	mu     sync.Mutex // serializes check, persist and cosign for the log
	size   int64
	root   tlog.Hash
	failed error // a write failed: what is on disk is unknown, so refuse all
}

// emptyRoot is the root of the empty tree (RFC 6962): what the witness
// knows of a log it never cosigned.
var emptyRoot = tlog.Hash(sha256.Sum256(nil))

// New opens the witness's state in cfg.Dir.
func New(cfg Config) (*Witness, error) {
	if cfg.Signer == nil {
		return nil, errors.New("witness: no signer")
	}
	if len(cfg.Logs) == 0 {
		return nil, errors.New("witness: no logs to witness")
	}
	if st, err := os.Stat(cfg.Dir); err != nil {
		return nil, fmt.Errorf("witness: data directory: %w", err)
	} else if !st.IsDir() {
		return nil, fmt.Errorf("witness: data directory %s is not a directory", cfg.Dir)
	}
	w := &Witness{dir: cfg.Dir, signer: cfg.Signer, logger: cfg.Logger, logs: make(map[string]*logState, len(cfg.Logs))}
	if w.logger == nil {
		w.logger = slog.New(slog.DiscardHandler)
	}
	for _, l := range cfg.Logs {
		if _, dup := w.logs[l.Origin]; dup {
			return nil, fmt.Errorf("witness: log %q configured twice", l.Origin)
		}
		if l.Origin == "" || len(l.Origin) > notary.MaxOriginSize || strings.ContainsAny(l.Origin, "\n") {
			return nil, fmt.Errorf("witness: bad log origin %q", l.Origin)
		}
		if len(l.Verifiers) == 0 {
			return nil, fmt.Errorf("witness: log %q has no verifier keys", l.Origin)
		}
		s := &logState{origin: l.Origin, verifiers: note.VerifierList(l.Verifiers...), path: statePath(cfg.Dir, l.Origin), root: emptyRoot}
		if err := s.open(); err != nil {
			for _, o := range w.logs {
				o.f.Close()
			}
			return nil, err
		}
		w.logs[l.Origin] = s
	}
	w.metrics = newMetrics(w)
	w.persist = newPersister(cfg.Dir)
	return w, nil
}

// Close stops the witness's writer and closes its files; requests after
// it fail.
func (w *Witness) Close() error {
	w.persist.close()
	var errs []error
	for _, s := range w.logs {
		errs = append(errs, s.f.Close())
	}
	return errors.Join(errs...)
}

// VerifierKey returns the witness's cosignature/v1 verifier key, for logs
// and verifiers to trust.
func (w *Witness) VerifierKey() string { return w.signer.Verifier().String() }

// Known returns the size and root of the latest checkpoint of origin the
// witness cosigned (0 and the empty root if none); ok is false for a log it
// does not witness.
func (w *Witness) Known(origin string) (size int64, root tlog.Hash, ok bool) {
	s := w.logs[origin]
	if s == nil {
		return 0, tlog.Hash{}, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.size, s.root, true
}

// Error is a refused add-checkpoint request, with the HTTP status the
// protocol gives it.
type Error struct {
	Status int
	// Known is the size of the latest cosigned checkpoint, for a 409.
	Known int64
	Err   error
}

// Error returns the reason for the refusal.
func (e *Error) Error() string { return e.Err.Error() }

// Unwrap returns the reason for the refusal.
func (e *Error) Unwrap() error { return e.Err }

func refuse(status int, format string, args ...any) *Error {
	return &Error{Status: status, Err: fmt.Errorf(format, args...)}
}

// AddCheckpoint handles an add-checkpoint request body and returns the
// cosignature lines of the response, after recording the checkpoint
// durably. A refusal is an [*Error] with the status to answer.
func (w *Witness) AddCheckpoint(body []byte) ([]byte, error) {
	req, err := ParseRequest(body)
	if err != nil {
		return nil, &Error{Status: http.StatusBadRequest, Err: err}
	}
	origin, _, _ := strings.Cut(string(req.Checkpoint), "\n")
	s := w.logs[origin]
	if s == nil {
		return nil, refuse(http.StatusNotFound, "unknown log %q", origin)
	}
	n, err := note.Open(req.Checkpoint, s.verifiers)
	var unverified *note.UnverifiedNoteError
	var invalid *note.InvalidSignatureError
	switch {
	case errors.As(err, &invalid):
		return nil, refuse(http.StatusForbidden, "the signature by %q does not verify", invalid.Name)
	case errors.As(err, &unverified):
		return nil, refuse(http.StatusForbidden, "no signature by a key trusted for log %q", origin)
	case err != nil:
		return nil, refuse(http.StatusBadRequest, "%w: checkpoint note: %w", ErrMalformed, err)
	}
	c, err := torchwood.ParseCheckpoint(n.Text)
	if err != nil || c.Origin != origin {
		return nil, refuse(http.StatusBadRequest, "%w: not a C2SP checkpoint", ErrMalformed)
	}
	old := int64(req.OldSize)
	if old > c.N {
		return nil, refuse(http.StatusBadRequest, "old size %d is above the checkpoint's size %d", old, c.N)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failed != nil {
		return nil, refuse(http.StatusInternalServerError, "log %q is not witnessed since a write failed: %w", origin, s.failed)
	}
	if old != s.size {
		return nil, &Error{Status: http.StatusConflict, Known: s.size, Err: fmt.Errorf("old size %d is not the size %d last cosigned", old, s.size)}
	}
	switch {
	case old == c.N:
		if len(req.Proof) != 0 {
			return nil, refuse(http.StatusUnprocessableEntity, "a consistency proof between equal sizes must be empty")
		}
		if c.Hash != s.root {
			w.evidence(origin, "a checkpoint of the size last cosigned with another root", req.Checkpoint)
			return nil, &Error{Status: http.StatusConflict, Known: s.size, Err: fmt.Errorf("size %d was cosigned with another root", old)}
		}
	case old == 0:
		if len(req.Proof) != 0 {
			return nil, refuse(http.StatusUnprocessableEntity, "the consistency proof from size 0 must be empty")
		}
	default:
		if err := tlog.CheckTree(req.Proof, c.N, c.Hash, old, s.root); err != nil {
			w.evidence(origin, "a checkpoint inconsistent with the one last cosigned", req.Checkpoint)
			return nil, refuse(http.StatusUnprocessableEntity, "the consistency proof from size %d to %d does not verify: %w", old, c.N, err)
		}
	}
	if c.N != s.size || c.Hash != s.root {
		start := time.Now()
		if err := w.persist.write(s.f, s.encode(c.N, c.Hash)); err != nil {
			if !errors.Is(err, errClosed) {
				s.failed = err
			}
			w.logger.Error("witness: cannot record a checkpoint", "origin", origin, "error", err)
			return nil, refuse(http.StatusInternalServerError, "cannot record the checkpoint: %w", err)
		}
		w.metrics.persist.Observe(time.Since(start).Seconds())
		s.size, s.root = c.N, c.Hash
		w.metrics.size.WithLabelValues(origin).Set(float64(c.N))
	}
	signed, err := note.Sign(&note.Note{Text: n.Text}, w.signer)
	if err != nil {
		return nil, refuse(http.StatusInternalServerError, "cosign: %w", err)
	}
	return signed[bytes.LastIndex(signed, []byte("\n\n"))+2:], nil
}

// evidence logs a refused checkpoint that a log signed: it may prove the
// log's misbehaviour.
func (w *Witness) evidence(origin, what string, checkpoint []byte) {
	w.logger.Warn("witness: refused "+what, "origin", origin, "checkpoint", string(checkpoint))
}

// ServeHTTP serves POST /add-checkpoint and GET /metrics.
func (w *Witness) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/add-checkpoint" && r.Method == http.MethodPost:
		w.serveAddCheckpoint(rw, r)
	case r.URL.Path == "/metrics" && r.Method == http.MethodGet:
		w.metrics.handler.ServeHTTP(rw, r)
	case r.URL.Path == "/add-checkpoint" || r.URL.Path == "/metrics":
		http.Error(rw, "method not allowed", http.StatusMethodNotAllowed)
	default:
		http.NotFound(rw, r)
	}
}

func (w *Witness) serveAddCheckpoint(rw http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(rw, r.Body, MaxRequestSize))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			w.answer(rw, refuse(http.StatusRequestEntityTooLarge, "%w: body is more than %d bytes", ErrMalformed, MaxRequestSize), nil)
			return
		}
		w.answer(rw, refuse(http.StatusBadRequest, "read the body: %w", err), nil)
		return
	}
	sigs, err := w.AddCheckpoint(body)
	w.answer(rw, err, sigs)
}

func (w *Witness) answer(rw http.ResponseWriter, err error, sigs []byte) {
	if err == nil {
		w.metrics.requests.WithLabelValues("200").Inc()
		rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
		rw.Write(sigs)
		return
	}
	var e *Error
	if !errors.As(err, &e) {
		e = &Error{Status: http.StatusInternalServerError, Err: err}
	}
	w.metrics.requests.WithLabelValues(strconv.Itoa(e.Status)).Inc()
	if e.Status == http.StatusConflict {
		rw.Header().Set("Content-Type", "text/x.tlog.size")
		rw.WriteHeader(http.StatusConflict)
		fmt.Fprintf(rw, "%d\n", e.Known)
		return
	}
	http.Error(rw, e.Error(), e.Status)
}

// statePath is the state file of a log: named by a hash of its origin,
// which may hold any character.
func statePath(dir, origin string) string {
	h := sha256.Sum256([]byte(origin))
	return filepath.Join(dir, hex.EncodeToString(h[:16])+".witness")
}

// A state file is one record of stateSize bytes, rewritten in place:
//
//	telenotary witness state v1\n<origin>\n<size>\n<base64 root>\n<crc32c, 8 hex digits>\n
//
// padded with zero bytes. It fits in one disk sector, whose writes are
// atomic (as PostgreSQL assumes of its control file), and its length never
// changes, so recording a checkpoint is one write and one flush of data,
// with no file created or renamed; the checksum catches any other damage.
const (
	stateHeader = "telenotary witness state v1"
	stateSize   = 512
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// encode returns the state record of a size and root.
func (s *logState) encode(size int64, root tlog.Hash) []byte {
	b := fmt.Appendf(make([]byte, 0, stateSize), "%s\n%s\n%d\n%s\n", stateHeader, s.origin, size, root)
	b = fmt.Appendf(b, "%08x\n", crc32.Checksum(b, crcTable))
	out := make([]byte, stateSize) // New bounds the origin: b fits
	copy(out, b)
	return out
}

// open reads the log's state file, making it (durably, with the state of
// a log never cosigned) if there is none, and keeps it open for writing.
func (s *logState) open() error {
	b, err := os.ReadFile(s.path)
	if errors.Is(err, os.ErrNotExist) {
		if err := filestore.WriteFileDurably(s.path, s.encode(0, emptyRoot)); err != nil {
			return fmt.Errorf("witness: make the state file of log %q: %w", s.origin, err)
		}
		b, err = os.ReadFile(s.path)
	}
	if err != nil {
		return fmt.Errorf("witness: state of log %q: %w", s.origin, err)
	}
	if err := s.parse(b); err != nil {
		return fmt.Errorf("witness: state file %s of log %q is damaged (%w): refusing to start rather than cosign from a wrong state", s.path, s.origin, err)
	}
	if s.f, err = os.OpenFile(s.path, os.O_RDWR, 0); err != nil {
		return fmt.Errorf("witness: state of log %q: %w", s.origin, err)
	}
	return nil
}

func (s *logState) parse(b []byte) error {
	if len(b) != stateSize {
		return fmt.Errorf("%d bytes, want %d", len(b), stateSize)
	}
	text := bytes.TrimRight(b, "\x00")
	if len(text) == 0 || text[len(text)-1] != '\n' {
		return errors.New("no checksum")
	}
	i := bytes.LastIndexByte(text[:len(text)-1], '\n')
	if i < 0 {
		return errors.New("no checksum")
	}
	if want := fmt.Sprintf("%08x\n", crc32.Checksum(text[:i+1], crcTable)); string(text[i+1:]) != want {
		return errors.New("checksum")
	}
	lines := strings.Split(string(text[:i+1]), "\n")
	if len(lines) != 5 || lines[0] != stateHeader || lines[4] != "" {
		return errors.New("not 4 lines")
	}
	if lines[1] != s.origin {
		return errors.New("another origin")
	}
	size, err := strconv.ParseInt(lines[2], 10, 64)
	if err != nil || size < 0 {
		return errors.New("size")
	}
	root, err := tlog.ParseHash(lines[3])
	if err != nil {
		return errors.New("root")
	}
	s.size, s.root = size, root
	return nil
}

// NewSigner makes the witness's cosignature/v1 signer from a signer key in
// note format ("PRIVATE+KEY+<name>+<hash>+<base64>", as telenotary keygen
// writes it). The witness signs with the key's Ed25519 seed; its verifier
// key (algorithm 0x04) differs from the note verifier key of the same seed.
func NewSigner(skey string) (*torchwood.CosignatureSigner, error) {
	skey = strings.TrimSpace(skey)
	parts := strings.SplitN(skey, "+", 5)
	if len(parts) != 5 || parts[0] != "PRIVATE" || parts[1] != "KEY" {
		return nil, errors.New("not a signer key (PRIVATE+KEY+name+hash+key)")
	}
	if _, err := note.NewSigner(skey); err != nil {
		return nil, fmt.Errorf("not a signer key: %w", err)
	}
	raw, err := base64.StdEncoding.DecodeString(parts[4])
	if err != nil || len(raw) != 1+ed25519.SeedSize || raw[0] != 1 {
		return nil, errors.New("not an Ed25519 signer key")
	}
	s, err := torchwood.NewCosignatureSigner(parts[2], ed25519.NewKeyFromSeed(raw[1:]))
	if err != nil {
		return nil, fmt.Errorf("cosignature signer: %w", err)
	}
	return s, nil
}

// ParseLogs reads the logs to witness: lines of "<origin> <verifier key>",
// one line per key (a log with several keys has several lines); blank lines
// and lines starting with # are ignored.
func ParseLogs(text []byte) ([]Log, error) {
	var logs []Log
	index := map[string]int{}
	sc := bufio.NewScanner(bytes.NewReader(text))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) != 2 {
			return nil, fmt.Errorf("line %d: want \"<origin> <verifier key>\"", n)
		}
		if strings.HasPrefix(fields[1], "PRIVATE+KEY+") {
			return nil, fmt.Errorf("line %d is a private signer key; give the log's verifier (.pub) key", n)
		}
		v, err := note.NewVerifier(fields[1])
		if err != nil {
			return nil, fmt.Errorf("line %d: not a verifier key: %w", n, err)
		}
		i, ok := index[fields[0]]
		if !ok {
			i = len(logs)
			index[fields[0]] = i
			logs = append(logs, Log{Origin: fields[0]})
		}
		logs[i].Verifiers = append(logs[i].Verifiers, v)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(logs) == 0 {
		return nil, errors.New("no logs found")
	}
	return logs, nil
}

// metrics are the witness's Prometheus metrics, on a registry of its own.
type metrics struct {
	requests *prometheus.CounterVec
	size     *prometheus.GaugeVec
	persist  prometheus.Histogram
	handler  http.Handler
}

func newMetrics(w *Witness) *metrics {
	reg := prometheus.NewRegistry()
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "telenotary_witness_requests_total",
			Help: "add-checkpoint requests answered, by HTTP status.",
		}, []string{"code"}),
		size: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "telenotary_witness_cosigned_size",
			Help: "Size of the latest checkpoint cosigned, by log origin.",
		}, []string{"origin"}),
		persist: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "telenotary_witness_persist_seconds",
			Help:    "Time to record a new checkpoint durably, in a group commit with the others waiting (write, flush, rename, flush).",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}),
	}
	reg.MustRegister(m.requests, m.size, m.persist)
	for origin, s := range w.logs {
		m.size.WithLabelValues(origin).Set(float64(s.size))
	}
	m.handler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	return m
}
