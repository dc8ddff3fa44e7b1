package cluster

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/hashicorp/raft"
	"github.com/telenotary/telenotary/cluster/httpapi"
	"github.com/telenotary/telenotary/cluster/notaryapi"
	"github.com/telenotary/telenotary/notary"
	"github.com/telenotary/telenotary/notary/filestore"
	"golang.org/x/mod/sumdb/note"
)

// The meta commands: the cluster's genesis and its membership. The FSM
// trusts none of them: each is decoded strictly and checked against the
// state before it on apply, the same way on every node, and one that fails
// is refused (counted, logged, and changing nothing) rather than applied.

// clusterMeta is the replicated identity and membership of the cluster
// (members.json).
type clusterMeta struct {
	Index   uint64                          `json:"index"` // raft index it is current as of
	Genesis *genesis                        `json:"genesis,omitempty"`
	Members map[string]notaryapi.MemberInfo `json:"members"`
	// Retired are the keys members signed with before theirs was replaced
	// or they were removed, oldest first.
	Retired []notaryapi.RetiredKey `json:"retired,omitempty"`
}

// genesis is the identity a cluster is born with: the first entry of its
// raft log.
type genesis struct {
	ClusterID string `json:"cluster_id"`
	Origin    string `json:"origin"`
}

// clusterIDLength is the length of a cluster id: 16 random bytes in hex.
const clusterIDLength = 32

// memberCommand adds or updates a member: its record, and the proof that
// the node holds the key it gives (see notaryapi.MemberStatement).
type memberCommand struct {
	notaryapi.Member
	KeyProof []byte `json:"key_proof"`
}

// proveMember signs the statement that binds m's key to cluster clusterID
// with signer, which must be the key of m.VerifierKey.
func proveMember(signer note.Signer, clusterID string, m notaryapi.Member) ([]byte, error) {
	return signer.Sign(notaryapi.MemberStatement(clusterID, m))
}

// checkKeyProof verifies a member's proof of holding its key.
func checkKeyProof(clusterID string, m notaryapi.Member, proof []byte) error {
	v, err := note.NewVerifier(m.VerifierKey)
	if err != nil {
		return httpapi.Field("verifier_key", "is not a note verifier key: %v", err)
	}
	if !v.Verify(notaryapi.MemberStatement(clusterID, m), proof) {
		return httpapi.Field("key_proof", "is not a signature of the member's key over its record in cluster %s", clusterID)
	}
	return nil
}

// errRefused marks a raft command the FSM refused.
var errRefused = errors.New("raft command refused")

// applyMeta applies a genesis or membership command, or refuses it.
func (f *fsm) applyMeta(l *raft.Log) any {
	res, genesisNow := f.updateMeta(l)
	if genesisNow {
		f.signHead() // the genesis names the origin checkpoints carry
	}
	return res
}

// updateMeta applies a meta command under metaMu; genesisNow reports a new
// genesis. A refused command still moves the meta index past it, so it is
// refused once.
func (f *fsm) updateMeta(l *raft.Log) (res *applyResult, genesisNow bool) {
	f.metaMu.Lock()
	defer f.metaMu.Unlock()
	if l.Index <= f.meta.Index {
		return &applyResult{err: errReplayed}, false
	}
	next := f.meta
	next.Members = maps.Clone(f.meta.Members)
	next.Index = l.Index
	var refusal *applyResult
	if reason := f.nextMeta(&next, l.Data); reason != nil {
		refusal = f.refuse(l, reason)
		next = f.meta
		next.Index = l.Index
	}
	if err := f.writeMeta(next); err != nil {
		f.fail(err)
		return &applyResult{err: err}, false
	}
	genesisNow = f.meta.Genesis == nil && next.Genesis != nil
	f.meta = next
	if refusal != nil {
		return refusal, false
	}
	return &applyResult{}, genesisNow
}

// nextMeta checks a meta command against the state in next and applies it
// there; the error says why it is refused. It depends on nothing but the
// command and next, so every node decides alike.
func (f *fsm) nextMeta(next *clusterMeta, data []byte) error {
	switch data[0] {
	case cmdGenesis:
		var g genesis
		if err := httpapi.DecodeJSON(data[1:], &g); err != nil {
			return err
		}
		if next.Genesis != nil {
			return errors.New("the cluster has a genesis already")
		}
		if _, err := hex.DecodeString(g.ClusterID); err != nil || len(g.ClusterID) != clusterIDLength || strings.ToLower(g.ClusterID) != g.ClusterID {
			return httpapi.Field("cluster_id", "must be %d lowercase hex digits", clusterIDLength)
		}
		if err := notary.ValidateOrigin(g.Origin); err != nil {
			return httpapi.Field("origin", "%v", err)
		}
		next.Genesis = &g
	case cmdMember:
		var m memberCommand
		if err := httpapi.DecodeJSON(data[1:], &m); err != nil {
			return err
		}
		if next.Genesis == nil {
			return errors.New("a member before the genesis")
		}
		if err := m.Member.Validate(); err != nil {
			return err
		}
		if err := checkKeyProof(next.Genesis.ClusterID, m.Member, m.KeyProof); err != nil {
			return err
		}
		key, _ := note.NewVerifier(m.VerifierKey)
		for id, other := range next.Members {
			ov, _ := note.NewVerifier(other.VerifierKey)
			if id != m.ID && ov != nil && (ov.KeyHash() == key.KeyHash() || ov.Name() == key.Name()) {
				return httpapi.Field("verifier_key", "has the name or the key of member %s's", id)
			}
		}
		since := f.log.Head().Size
		if old, ok := next.Members[m.ID]; ok && old.VerifierKey == m.VerifierKey {
			since = old.KeySince // the same key: it has signed since then
		} else if ok {
			// A new key: the old one is retired at this size, and the new
			// one signs only larger checkpoints, so that no size has two
			// keys of one member.
			until := max(since, old.KeySince)
			if err := retire(next, old, until); err != nil {
				return err
			}
			since = until + 1
		}
		next.Members[m.ID] = notaryapi.MemberInfo{Member: m.Member, KeySince: since}
	case cmdForget:
		var id string
		if err := httpapi.DecodeJSON(data[1:], &id); err != nil {
			return err
		}
		old, ok := next.Members[id]
		if !ok {
			return httpapi.Field("id", "%q is not a member", id)
		}
		if err := retire(next, old, f.log.Head().Size); err != nil {
			return err
		}
		delete(next.Members, id)
	default:
		return fmt.Errorf("unknown command %d", data[0])
	}
	return nil
}

// retire keeps a member's key as retired after the checkpoint of size
// until.
func retire(next *clusterMeta, m notaryapi.MemberInfo, until uint64) error {
	if len(next.Retired) >= notaryapi.MaxRetiredKeys {
		return fmt.Errorf("the cluster keeps %d retired keys already, its limit", notaryapi.MaxRetiredKeys)
	}
	until = max(until, m.KeySince) // a key replaced before the log grew
	next.Retired = append(slices.Clone(next.Retired), notaryapi.RetiredKey{ID: m.ID, VerifierKey: m.VerifierKey, Since: m.KeySince, Until: until})
	return nil
}

// membersFile is members.json: the meta and the SHA-256 of its compact
// JSON, so a file damaged or edited by hand is refused on open rather
// than believed (the membership and keys it holds decide whose signatures
// count).
type membersFile struct {
	clusterMeta
	SHA256 string `json:"sha256"`
}

// metaDigest is the checksum members.json carries of m.
func metaDigest(m clusterMeta) (string, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// writeMeta replaces members.json durably.
func (f *fsm) writeMeta(m clusterMeta) error {
	sum, err := metaDigest(m)
	if err != nil {
		return err
	}
	b, err := json.MarshalIndent(membersFile{clusterMeta: m, SHA256: sum}, "", "  ")
	if err != nil {
		return err
	}
	return filestore.WriteFileDurably(filepath.Join(f.dir, membersName), append(b, '\n'))
}

// readMeta reads members.json from dir; a missing file is an empty meta.
// A file that does not parse or fails its checksum is ErrCorruptState. A
// file without a checksum (written before files carried one) is taken,
// with a warning, until the next membership change rewrites it.
func readMeta(dir string, logger *slog.Logger) (clusterMeta, error) {
	path := filepath.Join(dir, membersName)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return clusterMeta{}, nil
	} else if err != nil {
		return clusterMeta{}, err
	}
	var file membersFile
	if err := json.Unmarshal(b, &file); err != nil {
		return clusterMeta{}, fmt.Errorf("%w: %s: %v", ErrCorruptState, path, err)
	}
	if file.SHA256 == "" {
		logger.Warn("members.json carries no checksum (written by an earlier version, or the checksum was removed): taking it as it is", "file", path)
		return file.clusterMeta, nil
	}
	sum, err := metaDigest(file.clusterMeta)
	if err != nil {
		return clusterMeta{}, err
	}
	if sum != file.SHA256 {
		return clusterMeta{}, fmt.Errorf("%w: %s fails its checksum: it was edited or damaged; restore the data directory from a sound copy, or remove the node and let it join again", ErrCorruptState, path)
	}
	return file.clusterMeta, nil
}

// retiredKeys returns the keys members no longer sign with, oldest first.
func (f *fsm) retiredKeys() []notaryapi.RetiredKey {
	f.metaMu.RLock()
	defer f.metaMu.RUnlock()
	return slices.Clone(f.meta.Retired)
}

// memberHTTPAddr returns the API base URL of member id, or "" when it is
// not a member (every request asks it of the leader: no copy).
func (f *fsm) memberHTTPAddr(id string) string {
	f.metaMu.RLock()
	defer f.metaMu.RUnlock()
	return f.meta.Members[id].HTTPAddr
}

// memberCount returns how many members the cluster has (asked per
// request: no copy).
func (f *fsm) memberCount() int {
	f.metaMu.RLock()
	defer f.metaMu.RUnlock()
	return len(f.meta.Members)
}

// clusterInfo returns a copy of the replicated identity and members,
// sorted by ID.
func (f *fsm) clusterInfo() (g *genesis, members []notaryapi.MemberInfo) {
	f.metaMu.RLock()
	defer f.metaMu.RUnlock()
	for _, m := range f.meta.Members {
		members = append(members, m)
	}
	slices.SortFunc(members, func(a, b notaryapi.MemberInfo) int { return strings.Compare(a.ID, b.ID) })
	return f.meta.Genesis, members
}
