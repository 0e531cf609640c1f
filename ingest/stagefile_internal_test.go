package ingest

import (
	"slices"
	"testing"
)

// The staged booking row has the booking table's columns, in its order, then the staging
// ones: stageBooking converts mapBooking's values by position.
func TestStagedBookingHasTheTableColumns(t *testing.T) {
	var want []string
	for _, c := range bookingTable().Columns {
		want = append(want, c.Name)
	}
	want = append(want, stagingSeq, stagingDocSeq)
	var got []string
	for _, f := range stagedBookingSchema.Fields() {
		got = append(got, f.Name())
	}
	if !slices.Equal(got, want) {
		t.Errorf("staged booking columns\n%v\nwant\n%v", got, want)
	}
}

// mapBooking finds each column through bookingColumnIndex.
func TestBookingColumnIndex(t *testing.T) {
	if len(bookingColumns) != len(bookingMapper{}.pos) {
		t.Fatalf("%d booking columns, %d positions", len(bookingColumns), len(bookingMapper{}.pos))
	}
	for i, c := range bookingColumns {
		if got := bookingColumnIndex(c); got != i {
			t.Errorf("bookingColumnIndex(%q) = %d, want %d", c, got, i)
		}
	}
	if got := bookingColumnIndex("patient"); got != -1 {
		t.Errorf("bookingColumnIndex(patient) = %d", got)
	}
}
