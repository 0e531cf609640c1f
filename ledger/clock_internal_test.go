package ledger

import (
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestReplayRefusesTimeGoingBack: a chain whose times go back is corrupt, named at the entry.
// Open never writes one (entryTime), so only an edited file has one.
func TestReplayRefusesTimeGoingBack(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	st := newState()
	var data []byte
	for i, at := range []time.Time{t0, t0.Add(time.Second), t0} {
		r := &record{Kind: KindRecovery, Actor: "velo", TruncatedBytes: 1, Seq: uint64(i + 1), Time: at}
		r.Prev = hex.EncodeToString(st.head[:])
		body, err := encodeBody(r)
		if err != nil {
			t.Fatal(err)
		}
		data = append(data, frame(body)...)
		st.apply(r, entryHash(st.head, body), int64(len(data)))
	}
	_, _, err := replay("ledger", data)
	var ce *CorruptError
	if !errors.As(err, &ce) || ce.Seq != 3 || !strings.Contains(ce.Reason, "before the previous entry's") {
		t.Fatalf("replay: %v, want a CorruptError at entry 3 about time", err)
	}
}
