package bench

import (
	"fmt"
	"strings"
)

// SuiteQuery is one query of the side-by-side suite (issue 13): the SQL a researcher
// writes for Velo, cut where a no-op condition can be added so that each timed run is a
// new query to Velo's release cache. Plain DuckDB runs the same text (the floor, and the
// true values the released ones are compared with). Each DP peer runs its own equivalent,
// written in bench/peers/run_peer.py under the same ID, or says why it cannot.
type SuiteQuery struct {
	ID    string
	Title string
	// Select, From, Where ("" for none) and GroupBy make up the query.
	Select, From, Where, GroupBy string
	// Vary is the column of the no-op condition `(Vary IS NULL OR Vary >= -1000000-i)`.
	Vary string
	// Keys is the number of leading output columns that are group keys.
	Keys int
	// Delta is the query's delta: positive where its groups come from the data and go
	// through DP partition selection, else 0 (pure epsilon-DP).
	Delta float64
	// Full: the query reads person or lab_result, which only the full extract (FHIR and
	// CSV) has; the others read booking, which the CSV-only extract has.
	Full bool
}

// SQL is the query as the researcher writes it.
func (q SuiteQuery) SQL() string { return q.build("") }

// Variant is the query with a condition no row fails whose literal changes with i.
func (q SuiteQuery) Variant(i int) string {
	return q.build(fmt.Sprintf("(%s IS NULL OR %s >= %d)", q.Vary, q.Vary, -1_000_000-i))
}

func (q SuiteQuery) build(extra string) string {
	var conds []string
	for _, c := range []string{q.Where, extra} {
		if c != "" {
			conds = append(conds, c)
		}
	}
	s := q.Select + " FROM " + q.From
	if len(conds) > 0 {
		s += " WHERE " + strings.Join(conds, " AND ")
	}
	return s + " GROUP BY " + q.GroupBy
}

// Peer names as bench/peers/run_peer.py and bench/peers/setup.sh know them.
const (
	PeerOpenDP = "opendp" // OpenDP's Polars API
	PeerSNSQL  = "snsql"  // SmartNoise SQL
	PeerQrlew  = "qrlew"  // Qrlew, through pyqrlew
	PeerTumult = "tumult" // Tumult Analytics on local Spark
)

// Peers lists the DP peers in the order the results print them.
var Peers = []string{PeerOpenDP, PeerSNSQL, PeerQrlew, PeerTumult}

const ageBand = "CASE WHEN p.birth_year >= 2006 THEN '0-17' WHEN p.birth_year >= 1985 THEN '18-39' WHEN p.birth_year >= 1960 THEN '40-64' ELSE '65+' END"

// Suite is the query suite of issue 13.
var Suite = []SuiteQuery{
	{
		ID: "share_region_priority", Title: "share within target by region × priority",
		Select: "SELECT region, priority, AVG(CAST(within_target AS INTEGER)) AS share", From: "booking",
		Where: "first_access", GroupBy: "region, priority", Vary: "wait_days", Keys: 2,
	},
	{
		ID: "wait_quantiles_service", Title: "median and P90 wait by service",
		Select: "SELECT service_code, MEDIAN(wait_days) AS median_wait, QUANTILE_CONT(wait_days, 0.9) AS p90_wait", From: "booking",
		Where: "first_access", GroupBy: "service_code", Vary: "wait_days", Keys: 1,
	},
	{
		ID: "monthly_trend", Title: "monthly trend of the share within target",
		Select: "SELECT date_trunc('month', d_contact) AS month, AVG(CAST(within_target AS INTEGER)) AS share", From: "booking",
		GroupBy: "month", Vary: "wait_days", Keys: 1,
	},
	{
		ID: "beyond_target_asl", Title: "distinct patients beyond target by ASL",
		Select: "SELECT asl, COUNT(DISTINCT pid) AS patients", From: "booking",
		Where: "first_access AND NOT within_target", GroupBy: "asl", Vary: "wait_days", Keys: 1,
	},
	{
		ID: "wait_age_sex", Title: "average wait by age band × sex (joining person)",
		Select: "SELECT " + ageBand + " AS age_band, p.sex, AVG(b.wait_days) AS avg_wait", From: "booking b JOIN person p ON b.pid = p.pid",
		Where: "b.first_access", GroupBy: "age_band, p.sex", Vary: "b.wait_days", Keys: 2, Full: true,
	},
	{
		ID: "people_per_provider", Title: "people per provider (partition selection)",
		Select: "SELECT provider_id, COUNT(DISTINCT pid) AS people", From: "booking",
		GroupBy: "provider_id", Vary: "wait_days", Keys: 1, Delta: 1e-6,
	},
	{
		ID: "lab_loinc_month", Title: "lab values by LOINC and month (joining person, partition selection)",
		Select: "SELECT l.loinc, date_trunc('month', l.effective_date) AS month, AVG(l.value) AS mean_value", From: "lab_result l JOIN person p ON l.pid = p.pid",
		Where: "p.birth_year < 1960", GroupBy: "l.loinc, month", Vary: "l.value", Keys: 2, Delta: 1e-6, Full: true,
	},
}

// Dashboard is a 12-panel waiting-list dashboard: what one refresh sends. Every panel
// reads booking only, as the "Liste di attesa" dashboard does.
var Dashboard = []SuiteQuery{
	Suite[0], Suite[1], Suite[2], Suite[3],
	{ID: "d_share_asl_priority", Select: "SELECT asl, priority, AVG(CAST(within_target AS INTEGER)) AS share", From: "booking", Where: "first_access", GroupBy: "asl, priority", Vary: "wait_days", Keys: 2},
	{ID: "d_people_region", Select: "SELECT region, COUNT(DISTINCT pid) AS people", From: "booking", GroupBy: "region", Vary: "wait_days", Keys: 1},
	{ID: "d_bookings_channel", Select: "SELECT channel, COUNT(*) AS bookings", From: "booking", GroupBy: "channel", Vary: "wait_days", Keys: 1},
	{ID: "d_status_kind", Select: "SELECT service_kind, status, COUNT(*) AS bookings", From: "booking", GroupBy: "service_kind, status", Vary: "wait_days", Keys: 2},
	{ID: "d_mean_wait_priority", Select: "SELECT priority, AVG(wait_days) AS mean_wait", From: "booking", Where: "first_access", GroupBy: "priority", Vary: "wait_days", Keys: 1},
	{ID: "d_garanzia_region", Select: "SELECT region, AVG(CAST(garanzia AS INTEGER)) AS share_first_offer", From: "booking", GroupBy: "region", Vary: "wait_days", Keys: 1},
	{ID: "d_monthly_bookings", Select: "SELECT date_trunc('month', d_contact) AS month, COUNT(*) AS bookings", From: "booking", GroupBy: "month", Vary: "wait_days", Keys: 1},
	{ID: "d_p90_priority", Select: "SELECT priority, QUANTILE_CONT(wait_days, 0.9) AS p90_wait", From: "booking", Where: "first_access", GroupBy: "priority", Vary: "wait_days", Keys: 1},
}

// SuiteByID returns the suite query (or dashboard panel) with that ID.
func SuiteByID(id string) (SuiteQuery, bool) {
	for _, list := range [][]SuiteQuery{Suite, Dashboard} {
		for _, q := range list {
			if q.ID == id {
				return q, true
			}
		}
	}
	return SuiteQuery{}, false
}
