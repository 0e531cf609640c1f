"""The client against a live `velo demo` (conftest.py): prices, queries, cache, budget,
Arrow/pandas/Polars, and refusals as exceptions with their code and position."""

import math

import pyarrow as pa
import pytest

import velo

SHARE = (
    "SELECT region, priority, COUNT(*) AS n, AVG(CAST(within_target AS INTEGER)) AS share "
    "FROM booking WHERE first_access GROUP BY region, priority"
)


@pytest.fixture
def conn(server):
    return velo.connect(server.url, server.tokens["researcher"])


def test_default_project_is_the_users_only_one(conn):
    assert conn.project == "wl"
    assert "velo_" not in repr(conn), "the token must never show in a repr"


def test_price_reads_nothing_and_charges_nothing(conn):
    before = conn.budget()
    p = conn.price(SHARE, epsilon=0.4)
    assert (p.epsilon, p.delta) == (0.4, 0.0)
    assert sum(s["epsilon"] for s in p.budget_split) == pytest.approx(0.4)
    assert {s["for"].split()[0] for s in p.budget_split} == {"n", "share"}
    assert p.bounding["max_groups_contributed"] >= 1
    after = conn.budget()
    assert after.spent == before.spent and after.queries == before.queries


def test_query_charges_once_and_the_cache_answers_again(conn):
    before = conn.budget()
    sql = SHARE + " ORDER BY region, priority"
    r = conn.query(sql, epsilon=0.3)
    assert r.release_id and not r.cached and r.project == "wl"
    assert (r.epsilon, r.delta) == (0.3, 0.0)
    after = conn.budget()
    assert after.spent.epsilon == pytest.approx(before.spent.epsilon + 0.3)
    assert after.queries == before.queries + 1
    assert r.budget_left.epsilon == pytest.approx(after.left.epsilon)

    again = conn.query(sql, epsilon=0.3)
    assert again.cached and again.release_id == r.release_id
    assert again.to_arrow().equals(r.to_arrow())
    assert conn.budget().spent == after.spent, "a cached release is free"


def test_arrow_pandas_and_polars_keep_the_intervals(conn):
    r = conn.query(SHARE, epsilon=0.5)
    t = r.to_arrow()
    assert isinstance(t, pa.Table)
    assert r.key_columns == ["region", "priority"] and r.dp_columns == ["n", "share"]
    for c in ("region", "priority", "n", "n_ci_lower", "n_ci_upper", "share", "share_ci_lower", "share_ci_upper"):
        assert c in t.column_names, c
    assert t.num_rows == len(r) > 0
    assert t.schema.field("n").type == pa.float64()
    # Every interval holds its value.
    for row in t.to_pylist():
        for c in ("n", "share"):
            lo, hi, v = row[c + "_ci_lower"], row[c + "_ci_upper"], row[c]
            if lo is not None:
                assert lo <= v <= hi
    df = r.to_pandas()
    assert list(df.columns) == t.column_names and len(df) == t.num_rows
    pl = r.to_polars()
    assert pl.columns == t.column_names and pl.height == t.num_rows
    assert pl["n"].to_list() == t.column("n").to_pylist()
    # The release's own facts travel with it.
    assert r.confidence == 0.95 and "booking" in r.sql
    assert math.isclose(sum(s["epsilon"] for s in r.budget_split), 0.5)


def test_sql_rejected_names_the_position(conn):
    before = conn.budget()
    with pytest.raises(velo.SQLRejected) as e:
        conn.query("SELECT regionx, COUNT(*) AS n FROM booking GROUP BY region", epsilon=0.1)
    assert e.value.status == 400 and e.value.code == "sql_rejected"
    assert e.value.position == 7 and "regionx" in e.value.detail
    with pytest.raises(velo.SQLRejected):
        conn.price("SELECT pid FROM booking")
    assert conn.budget().spent == before.spent, "a refused query is never charged"


def test_options_beyond_the_projects_caps_are_refused(conn):
    with pytest.raises(velo.InvalidOptions) as e:
        conn.query(SHARE, epsilon=50)
    assert e.value.code == "invalid_options" and "epsilon" in e.value.detail


def test_bad_tokens_and_other_projects(server):
    url, tokens = server.url, server.tokens
    with pytest.raises(velo.Unauthorized) as e:
        velo.connect(url, "velo_not-a-token").me()
    assert e.value.status == 401
    with pytest.raises(velo.Forbidden):
        velo.connect(url, tokens["researcher"]).budget("someone-elses")
    with pytest.raises(ConnectionError):
        velo.connect("http://127.0.0.1:9", tokens["researcher"], project="wl").budget()
    with pytest.raises(ValueError):
        velo.connect(url, "")


def test_synthesize_joins_the_person(conn):
    before = conn.budget()
    syn = conn.synthesize("booking", ["priority", "person.sex", "person.birth_year"], join=["person"],
                          method="mst", rows=500, epsilon=0.5, delta=1e-7)
    assert syn.table.column_names == ["priority", "person.sex", "person.birth_year"]
    assert syn.table.num_rows == 500
    assert syn.release["join"] == ["person"] and "pid" not in syn.table.column_names
    assert conn.budget().spent.epsilon == pytest.approx(before.spent.epsilon + 0.5)
    assert not syn.cached

    again = conn.synthesize("booking", ["priority", "person.sex", "person.birth_year"], join=["person"],
                            method="mst", rows=500, epsilon=0.5, delta=1e-7)
    assert again.cached and again.release_id == syn.release_id
    assert again.table.equals(syn.table)
    by_id = conn.synthetic_release(syn.release_id)
    assert by_id.release_id == syn.release_id and by_id.table.equals(syn.table)
    assert conn.release(syn.release_id)["rows_sha256"] == syn.release["rows_sha256"]
    assert conn.budget().spent.epsilon == pytest.approx(before.spent.epsilon + 0.5)


def test_marginals_dry_run_then_charged_once(conn):
    sets = [["region"], ["priority", "within_target"]]
    before = conn.budget()
    dry = conn.marginals("booking", sets, epsilon=0.25, delta=1e-7, dry_run=True)
    assert dry.dry_run and len(dry) == 0 and dry.release_id == ""
    assert [t["attributes"] for t in dry.tables] == sets
    assert all(t["ci_half_width"] == pytest.approx(1.959963984540054 * t["sigma"]) for t in dry.tables)
    assert conn.budget().spent == before.spent

    m = conn.marginals("booking", sets, epsilon=0.25, delta=1e-7)
    assert not m.cached and not m.dry_run and m.release_id
    assert len(m) == 21 + 4 * 2
    df = m.to_pandas()
    assert set(df["marginal"]) == {1, 2}
    assert (df["ci_lower"] <= df["count"]).all() and (df["count"] <= df["ci_upper"]).all()
    assert all(a["sigma"] >= b["sigma"] for a, b in zip(m.tables, dry.tables))
    assert conn.budget().spent.epsilon == pytest.approx(before.spent.epsilon + 0.25)

    again = conn.marginals("booking", sets, epsilon=0.25, delta=1e-7)
    assert again.cached and again.release_id == m.release_id
    assert again.table.equals(m.table)
    assert conn.budget().spent.epsilon == pytest.approx(before.spent.epsilon + 0.25)


def test_history_lists_the_charges_and_fetches_a_release_again(conn):
    sql = "SELECT priority, COUNT(*) AS n FROM booking GROUP BY priority"
    before = conn.budget()
    r = conn.query(sql, epsilon=0.25)
    charges = conn.history()
    mine = [c for c in charges if c.get("release_id") == r.release_id]
    assert len(mine) == 1
    assert mine[0]["text"] == sql and mine[0]["kind"] == "query" and mine[0]["outcome"] == "released"
    assert mine[0]["epsilon"] == pytest.approx(0.25)
    assert [c["seq"] for c in charges] == sorted(c["seq"] for c in charges)
    again = conn.release(r.release_id)
    assert again["release_id"] == r.release_id
    assert [row[0] for row in again["rows"]] == r.to_pandas()["priority"].tolist()
    assert conn.budget().spent.epsilon == pytest.approx(before.spent.epsilon + 0.25)
    with pytest.raises(velo.VeloError) as e:
        conn.release("r_999999_0123456789ab")
    assert e.value.status == 404
