// Package pseudonymize turns personal identifiers into keyed pseudonyms and decides which
// identifiers are acceptable at all (docs/pseudonymization.md, docs/domain.md#the-codice-fiscale).
//
// Invariant: nothing this package returns or prints contains an identifier or key
// material. Pseudonyms are HMAC-SHA256 under a secret key, never an unkeyed hash (the
// space of plausible codici fiscali is small enough to enumerate), and every omocode
// variant of one code yields one pseudonym.
package pseudonymize

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"hash"
	"sync"
)

// PID is a person's pseudonym: the first 16 bytes of the keyed HMAC, stored in Parquet
// with the UUID logical type.
type PID [16]byte

// String renders the pid as a UUID.
func (p PID) String() string {
	var b [36]byte
	hex.Encode(b[0:8], p[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], p[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], p[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], p[8:10])
	b[23] = '-'
	hex.Encode(b[24:], p[10:])
	return string(b[:])
}

// Domain tags keep the pseudonyms of different kinds of value apart: the same string
// used as a person id and as a document id yields unrelated pseudonyms.
const (
	domainPID      = "velo/pid/v1"
	domainDocument = "velo/doc/v1"
	domainRx       = "velo/rx/v1"
	domainBooking  = "velo/booking/v1"
	domainSeed     = "velo/seed/v1"
)

// Pseudonymizer computes keyed pseudonyms. It is safe for concurrent use.
type Pseudonymizer struct {
	keyID string
	pool  sync.Pool // of *macState
}

// macState is one goroutine's HMAC at a time: the keyed hash, reset between uses, and
// the buffers of its message and sum, so that a pseudonym allocates nothing but itself.
type macState struct {
	h   hash.Hash
	msg []byte
	sum [sha256.Size]byte
}

// New returns a Pseudonymizer for the key.
func New(k Key) *Pseudonymizer {
	secret := k.secret
	return &Pseudonymizer{
		keyID: k.ID,
		pool:  sync.Pool{New: func() any { return &macState{h: hmac.New(sha256.New, secret[:])} }},
	}
}

// KeyID is the id of the key in use (recorded in the manifest; it reveals nothing).
func (p *Pseudonymizer) KeyID() string { return p.keyID }

// mac is HMAC-SHA256(key, domain || 0 || value).
func (p *Pseudonymizer) mac(domain, value string) [32]byte {
	m := p.pool.Get().(*macState)
	m.h.Reset()
	m.msg = append(append(append(m.msg[:0], domain...), 0), value...)
	m.h.Write(m.msg)
	sum := [32]byte(m.h.Sum(m.sum[:0]))
	clear(m.msg) // the identifier does not outlive the call in the pool
	if cap(m.msg) > 4<<10 {
		m.msg = nil
	}
	p.pool.Put(m)
	return sum
}

// PID is HMAC-SHA256(key, "velo/pid/v1" || 0 || canonical identifier), cut to 16 bytes.
func (p *Pseudonymizer) PID(id Identifier) PID {
	sum := p.mac(domainPID, id.Canonical)
	var out PID
	copy(out[:], sum[:16])
	return out
}

// Rekey pseudonymizes an identifier that is needed only as a join key: a document id,
// a set id, an NRE prescription number, a booking id. The result is 32 hex characters.
func (p *Pseudonymizer) rekey(domain, value string) string {
	sum := p.mac(domain, value)
	var h [32]byte
	hex.Encode(h[:], sum[:16])
	return string(h[:])
}

// DocumentKey re-keys a document identifier (including the OID root it was issued under).
func (p *Pseudonymizer) DocumentKey(root, value string) string {
	return p.rekey(domainDocument, root+"\x00"+value)
}

// PrescriptionKey re-keys an NRE prescription number.
func (p *Pseudonymizer) PrescriptionKey(nre string) string { return p.rekey(domainRx, nre) }

// Seed is a secret 64-bit seed derived from the key for a named use (the person ranks of a
// table): the same for every run with the key, so a dataset written again from the same
// inputs is the same, and unrelated to any pseudonym.
func (p *Pseudonymizer) Seed(use string) uint64 {
	sum := p.mac(domainSeed, use)
	return binary.LittleEndian.Uint64(sum[:8])
}

// BookingKey re-keys a CUP booking id.
func (p *Pseudonymizer) BookingKey(id string) string { return p.rekey(domainBooking, id) }
