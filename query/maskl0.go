package query

import (
	"fmt"
	"strings"
)

// maskGroups is the most groups the per-person bitmask of maskL0 holds: one bit each of a
// positive BIGINT.
const maskGroups = 63

// maskApplies says whether per_group's L0 step for plan p runs as maskL0: every aggregate
// is COUNT(DISTINCT pid) (the step keeps only each person's set of groups) and every key is
// a text or boolean column with a public domain, their domains holding at most maskGroups
// groups in all. From the plan only (the catalog's and the query's domains), never the
// data.
func maskApplies(p *plan) bool {
	if len(p.Keys) == 0 || len(p.Aggs) == 0 {
		return false
	}
	for _, a := range p.Aggs {
		if a.Kind != aggPersons {
			return false
		}
	}
	n := 1
	for _, k := range p.Keys {
		c, ok := k.Expr.(*column)
		if !ok || k.Domain == nil || len(k.Domain.Values) == 0 || c.T != tString && c.T != tBool {
			return false
		}
		for _, v := range k.Domain.Values {
			switch v.(type) {
			case string:
				if c.T != tString {
					return false
				}
			case bool:
				if c.T != tBool {
					return false
				}
			default:
				return false
			}
		}
		n *= len(k.Domain.Values)
		if n > maskGroups {
			return false
		}
	}
	return true
}

// maskL0 is per_group's L0 step and totals for a plan maskApplies to, in DuckDB
// (docs/privacy.md#bounding-each-persons-contribution): the groups, at most maskGroups,
// are numbered by their keys' places in their public domains; each person's groups are the
// bits of one BIGINT (bit_or over their rows, a per-person aggregate of fixed size, which
// spills like any other); a person with more than maxGroups bits keeps the maxGroups whose
// keyed hash hash(pid, group number, seed) is smallest; and each group's count of persons
// is the number of kept masks with its bit set. The same bounds as the window's (each person
// in at most maxGroups groups, once in each) without sorting every (person, group) unit.
func maskL0(p *plan, rw rewritten, base string, keyCols []string, seedSQL string, maxGroups int) rewritten {
	// The group number: Σ (place of key i in its domain) · (product of the later domains'
	// sizes). Rows outside a domain are not in base (its domain filters).
	var idx []string
	lists := make([][]string, len(p.Keys))
	stride := 1
	for i := len(p.Keys) - 1; i >= 0; i-- {
		vals := p.Keys[i].Domain.Values
		lits := make([]string, len(vals))
		for j, v := range vals {
			lits[j] = (&literal{V: v}).SQL()
		}
		lists[i] = lits
		idx = append(idx, fmt.Sprintf("CAST(list_position([%s], %s) - 1 AS BIGINT) * %d", strings.Join(lits, ", "), keyCols[i], stride))
		stride *= len(vals)
	}
	groups := stride
	// Each group number's keys, for the totals' rows.
	keyLists := make([][]string, len(p.Keys))
	for n := 0; n < groups; n++ {
		rest := n
		for i := len(p.Keys) - 1; i >= 0; i-- {
			size := len(lists[i])
			keyLists[i] = append(keyLists[i], lists[i][rest%size])
			rest /= size
		}
	}
	perPerson := fmt.Sprintf("SELECT pid, bit_or(CAST(1 AS BIGINT) << (%s)) AS m FROM base GROUP BY pid", strings.Join(idx, " + "))
	rw.ctes = "base AS (" + base + "), per_person AS (" + perPerson + ")"
	rw.boundedSelect = fmt.Sprintf("SELECT pid, CASE WHEN bit_count(m) <= %d THEN m ELSE "+
		"list_reduce(list_transform(list_slice(list_sort(list_transform(list_filter(range(%d), lambda j: ((m >> j) & 1) = 1), "+
		"lambda j: {'h': hash(pid, j, %s), 'j': j})), 1, %d), lambda x: CAST(1 AS BIGINT) << x.j), lambda a, b: a | b) END AS m FROM per_person",
		maxGroups, groups, seedSQL, maxGroups)
	rw.Bounded = "WITH " + rw.ctes + " " + rw.boundedSelect
	sums := make([]string, groups)
	for n := range sums {
		sums[n] = fmt.Sprintf("CAST(sum((m >> %d) & 1) AS BIGINT)", n)
	}
	var unnest, outer []string
	for i, kc := range keyCols {
		unnest = append(unnest, fmt.Sprintf("unnest([%s]) AS %s", strings.Join(keyLists[i], ", "), kc))
		outer = append(outer, kc)
	}
	outer = append(outer, "persons")
	for j := range p.Aggs {
		outer = append(outer, fmt.Sprintf("persons AS a%d", j))
	}
	// Groups no kept person is in are left out, as the GROUP BY of the window's units does.
	rw.Groups = fmt.Sprintf("SELECT %s FROM (SELECT %s, unnest(totals) AS persons FROM (SELECT [%s] AS totals FROM bounded)) WHERE persons > 0",
		strings.Join(outer, ", "), strings.Join(unnest, ", "), strings.Join(sums, ", "))
	return rw
}
