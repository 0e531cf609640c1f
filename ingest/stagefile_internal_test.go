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
