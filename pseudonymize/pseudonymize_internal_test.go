package pseudonymize

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"sync"
	"testing"
)

// Every pseudonym is HMAC-SHA256 under the key of domain || 0 || value, computed here
// with a fresh crypto/hmac for each, however the Pseudonymizer reuses its hash state and
// buffers: from many goroutines at once, after a long value, and for every kind.
func TestPseudonymsAreHMACSHA256(t *testing.T) {
	k, err := GenerateKey(bytes.NewReader(bytes.Repeat([]byte{9}, 32)))
	if err != nil {
		t.Fatal(err)
	}
	p := New(k)
	want := func(domain, value string) []byte {
		h := hmac.New(sha256.New, k.secret[:])
		h.Write([]byte(domain + "\x00" + value))
		return h.Sum(nil)
	}
	cf, err := ParseIdentifier("RSSMRA85T10A562S")
	if err != nil {
		t.Fatal(err)
	}
	values := []string{"", "B207710048643", "041A27583791577", strings.Repeat("x", 10000), "è€\x00z"}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				v := values[(i+g)%len(values)]
				if got, w := p.BookingKey(v), hex.EncodeToString(want(domainBooking, v)[:16]); got != w {
					t.Errorf("BookingKey(%.20q) = %s, want %s", v, got, w)
				}
				if got, w := p.PrescriptionKey(v), hex.EncodeToString(want(domainRx, v)[:16]); got != w {
					t.Errorf("PrescriptionKey(%.20q) = %s, want %s", v, got, w)
				}
				if got, w := p.DocumentKey("2.16.840", v), hex.EncodeToString(want(domainDocument, "2.16.840\x00"+v)[:16]); got != w {
					t.Errorf("DocumentKey(%.20q) = %s, want %s", v, got, w)
				}
				if got, w := p.PID(cf), want(domainPID, cf.Canonical)[:16]; !bytes.Equal(got[:], w) {
					t.Errorf("PID = %x, want %x", got, w)
				}
			}
		})
	}
	wg.Wait()
	if got, w := p.Seed("person-rank/booking"), want(domainSeed, "person-rank/booking"); got != uint64(w[0])|uint64(w[1])<<8|uint64(w[2])<<16|uint64(w[3])<<24|uint64(w[4])<<32|uint64(w[5])<<40|uint64(w[6])<<48|uint64(w[7])<<56 {
		t.Errorf("Seed = %x, want the first 8 bytes of %x, little-endian", got, w)
	}
}
