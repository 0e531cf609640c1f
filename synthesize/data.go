package synthesize

import (
	"fmt"
)

// Counts gives the exact, per-person-bounded contingency table of the source data over a set
// of attributes. It is the only access the mechanisms have to the data: every value they
// derive from it is either noised (Gaussian mechanism) or used as the quality score of an
// exponential mechanism. The engine implements it with a GROUP BY over the bounded rows; Table
// implements it in memory.
//
// Marginal returns the counts in the layout of NewFactor(domain, attrs) (attrs sorted, last
// attribute fastest). How many rows one person may contribute is the caller's bound, declared
// as Options.MaxRowsPerPerson.
type Counts interface {
	Marginal(attrs []int) (*Factor, error)
}

// Table is an in-memory categorical table: Columns[a][r] is row r's code for attribute a, in
// [0, Domain.Sizes[a]). It is the synthesizer's output and, in tests, a Counts source.
type Table struct {
	Domain  Domain
	Columns [][]int32
}

// NewTable allocates a table of n rows.
func NewTable(d Domain, n int) *Table {
	cols := make([][]int32, len(d.Sizes))
	for i := range cols {
		cols[i] = make([]int32, n)
	}
	return &Table{Domain: d, Columns: cols}
}

// Rows is the number of rows.
func (t *Table) Rows() int {
	if len(t.Columns) == 0 {
		return 0
	}
	return len(t.Columns[0])
}

// Validate checks the columns against the domain.
func (t *Table) Validate() error {
	if err := t.Domain.Validate(); err != nil {
		return err
	}
	if len(t.Columns) != len(t.Domain.Sizes) {
		return fmt.Errorf("synthesize: table has %d columns for %d attributes", len(t.Columns), len(t.Domain.Sizes))
	}
	for a, col := range t.Columns {
		if len(col) != t.Rows() {
			return fmt.Errorf("synthesize: column %q has %d rows, expected %d", t.Domain.Names[a], len(col), t.Rows())
		}
		for _, v := range col {
			if v < 0 || int(v) >= t.Domain.Sizes[a] {
				return fmt.Errorf("synthesize: column %q has code %d outside its domain of %d categories", t.Domain.Names[a], v, t.Domain.Sizes[a])
			}
		}
	}
	return nil
}

// Marginal counts the rows of t over attrs.
func (t *Table) Marginal(attrs []int) (*Factor, error) {
	f, err := NewFactor(t.Domain, attrs)
	if err != nil {
		return nil, err
	}
	strides := make([]int, len(f.Attrs))
	s := 1
	for i := len(f.Attrs) - 1; i >= 0; i-- {
		strides[i] = s
		s *= f.Shape[i]
	}
	for r := range t.Rows() {
		c := 0
		for i, a := range f.Attrs {
			c += int(t.Columns[a][r]) * strides[i]
		}
		f.Values[c]++
	}
	return f, nil
}
