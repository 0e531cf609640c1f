package ledger

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"time"
)

// Entry kinds.
const (
	KindProject  = "project"  // a project was created
	KindGrant    = "grant"    // budget was added to a project
	KindCharge   = "charge"   // a query was charged, before it ran
	KindRefund   = "refund"   // a charge was returned: the query failed before reading data
	KindRelease  = "release"  // a charged query's release was recorded (and cached)
	KindRecovery = "recovery" // Open cut a torn tail
)

const (
	hashDomain   = "velo/ledger/v1\x00"
	frameHeader  = 8
	maxFrameBody = 64 << 20 // a release can be large; anything above this is damage
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// record is an entry's canonical body. Field order is the order on disk and must not change;
// new fields go at the end with omitempty, and the domain tag changes if a meaning does.
type record struct {
	Seq            uint64          `json:"seq"`
	Prev           string          `json:"prev"`
	Kind           string          `json:"kind"`
	Time           time.Time       `json:"time"`
	Actor          string          `json:"actor"`
	Project        string          `json:"project,omitempty"`
	Definition     *definition     `json:"definition,omitempty"`
	Epsilon        epsUnits        `json:"epsilon,omitempty"`
	Delta          deltaUnits      `json:"delta,omitempty"`
	SQL            string          `json:"sql,omitempty"`
	SQLHash        string          `json:"sql_hash,omitempty"`
	Options        string          `json:"options,omitempty"`
	DatasetVersion string          `json:"dataset_version,omitempty"`
	Mechanisms     json.RawMessage `json:"mechanisms,omitempty"`
	Charge         uint64          `json:"charge,omitempty"`
	ResultHash     string          `json:"result_hash,omitempty"`
	Release        json.RawMessage `json:"release,omitempty"`
	Reason         string          `json:"reason,omitempty"`
	TruncatedAt    int64           `json:"truncated_at,omitempty"`
	TruncatedBytes int64           `json:"truncated_bytes,omitempty"`
	Text           string          `json:"text,omitempty"`
}

// definition is a project as created, in fixed point. The ID is the record's project and the
// creation time the record's time.
type definition struct {
	Purpose            string              `json:"purpose"`
	LegalBasis         string              `json:"legal_basis"`
	Approver           string              `json:"approver,omitempty"`
	Allow              map[string][]string `json:"allow"`
	EpsilonBudget      epsUnits            `json:"epsilon_budget"`
	DeltaBudget        deltaUnits          `json:"delta_budget"`
	DefaultEpsilon     epsUnits            `json:"default_epsilon,omitempty"`
	DefaultDelta       deltaUnits          `json:"default_delta,omitempty"`
	MaxEpsilonPerQuery epsUnits            `json:"max_epsilon_per_query,omitempty"`
	MaxDeltaPerQuery   deltaUnits          `json:"max_delta_per_query,omitempty"`
	Expires            *time.Time          `json:"expires,omitempty"`
	OutputPolicy       *OutputPolicy       `json:"output_policy,omitempty"`
}

func (r *record) amount() amount { return amount{r.Epsilon, r.Delta} }

// encodeBody writes the canonical body: encoding/json of record (deterministic: struct fields in
// declaration order, map keys sorted), without HTML escaping and without a trailing newline.
func encodeBody(r *record) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(r); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// decodeBody parses a body and insists that it is canonical: re-encoding gives the same bytes,
// so a body has exactly one spelling and unknown or duplicated fields are rejected.
func decodeBody(body []byte) (*record, error) {
	var r record
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("body is not a ledger entry: %w", err)
	}
	if dec.More() {
		return nil, errors.New("body has data after the entry")
	}
	again, err := encodeBody(&r)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(again, body) {
		return nil, errors.New("body is not in canonical form")
	}
	return &r, nil
}

// entryHash chains a body to its predecessor.
func entryHash(prev [32]byte, body []byte) [32]byte {
	h := sha256.New()
	h.Write([]byte(hashDomain))
	h.Write(prev[:])
	h.Write(body)
	var out [32]byte
	h.Sum(out[:0])
	return out
}

func frame(body []byte) []byte {
	b := make([]byte, frameHeader+len(body))
	binary.BigEndian.PutUint32(b[0:4], uint32(len(body)))
	binary.BigEndian.PutUint32(b[4:8], crc32.Checksum(body, castagnoli))
	copy(b[frameHeader:], body)
	return b
}

// SQLHash is the hex SHA-256 of a query's canonical form (printed from its checked plan),
// the key the release cache and the DPO use for "the same query".
func SQLHash(canonicalSQL string) string {
	h := sha256.Sum256([]byte(canonicalSQL))
	return hex.EncodeToString(h[:])
}

func resultHash(release []byte) string {
	h := sha256.Sum256(release)
	return hex.EncodeToString(h[:])
}

// torn describes a tail Open may cut: an append that never completed.
type torn struct {
	offset int64
	reason string
}

// readFrame reads the frame at off. It returns the body and the next offset; a torn tail (the
// file ends inside the frame, or everything from off on is zeros) is reported as *torn; any
// other anomaly is an error.
func readFrame(data []byte, off int64) (body []byte, next int64, tail *torn, err error) {
	rest := data[off:]
	if allZero(rest) {
		return nil, 0, &torn{off, fmt.Sprintf("%d zero bytes at the end", len(rest))}, nil
	}
	if len(rest) < frameHeader {
		return nil, 0, &torn{off, fmt.Sprintf("frame header cut after %d of %d bytes", len(rest), frameHeader)}, nil
	}
	n := int64(binary.BigEndian.Uint32(rest[0:4]))
	sum := binary.BigEndian.Uint32(rest[4:8])
	switch {
	case n == 0:
		return nil, 0, nil, errors.New("zero-length frame")
	case n > maxFrameBody:
		return nil, 0, nil, fmt.Errorf("frame length %d exceeds the %d-byte limit", n, maxFrameBody)
	case frameHeader+n > int64(len(rest)):
		// The file ends inside this frame. If some prefix of what follows matches the checksum,
		// the body is complete and the length field was damaged: corruption, not a torn write.
		avail := rest[frameHeader:]
		c := uint32(0)
		for i, b := range avail {
			c = crc32.Update(c, castagnoli, []byte{b})
			if c == sum {
				return nil, 0, nil, fmt.Errorf("frame length %d is damaged (a %d-byte body matches the checksum)", n, i+1)
			}
		}
		return nil, 0, &torn{off, fmt.Sprintf("frame declares %d bytes, %d present", n, len(avail))}, nil
	}
	body = rest[frameHeader : frameHeader+n]
	if crc32.Checksum(body, castagnoli) != sum {
		return nil, 0, nil, errors.New("checksum mismatch")
	}
	return body, off + frameHeader + n, nil, nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return len(b) > 0
}
