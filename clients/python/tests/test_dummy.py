"""Dummy mode: develop a query on the dataset's dummy twin (made from the catalog alone),
exact and free, with the real run's price beside; then run the same SQL for real, charged
once."""

import pytest

import velo
from test_flightsql import connect as adbc_connect

SQL = (
    "SELECT region, COUNT(*) AS n, AVG(wait_days) AS avg_wait "
    "FROM booking WHERE first_access GROUP BY region ORDER BY region"
)


@pytest.fixture
def conn(server):
    return velo.connect(server.url, server.tokens["researcher"])


def test_dummy_is_exact_free_and_marked(conn):
    before = conn.budget()
    d = conn.query(SQL, epsilon=0.25, dummy=True)
    assert d.dummy and not d.cached
    assert (d.epsilon, d.delta) == (0.0, 0.0)
    assert d.price == velo.Amount(0.25, 0.0)
    assert d.dataset_version.startswith("dummy_")
    df = d.to_pandas()
    assert len(df) > 0 and (df["n"] >= 0).all()
    # Exact: every count is a whole number and its interval is the value itself.
    assert (df["n"] == df["n"].round()).all()
    assert (df["n_ci_lower"] == df["n"]).all() and (df["n_ci_upper"] == df["n"]).all()
    # The same dummy query twice gives the same answer (the twin is deterministic), and
    # it is never taken for a cached release.
    again = conn.query(SQL, epsilon=0.25, dummy=True)
    assert again.dummy and not again.cached
    assert again.to_pandas()["n"].tolist() == df["n"].tolist()
    after = conn.budget()
    assert after.spent == before.spent and after.queries == before.queries


def test_then_the_same_sql_for_real_is_charged_once(conn):
    sql = SQL.replace("first_access", "NOT first_access")
    conn.query(sql, epsilon=0.25, dummy=True)
    before = conn.budget()
    real = conn.query(sql, epsilon=0.25)
    assert not real.dummy and real.price is None and not real.dataset_version.startswith("dummy_")
    assert (real.epsilon, real.delta) == (0.25, 0.0)
    again = conn.query(sql, epsilon=0.25)
    assert again.cached
    after = conn.budget()
    assert after.spent.epsilon == pytest.approx(before.spent.epsilon + 0.25)
    assert after.queries == before.queries + 1


def test_dummy_refusals_are_the_real_ones(conn):
    bad = "SELECT regionx, COUNT(*) AS n FROM booking GROUP BY regionx"
    with pytest.raises(velo.SQLRejected) as on_twin:
        conn.query(bad, dummy=True)
    with pytest.raises(velo.SQLRejected) as on_data:
        conn.query(bad)
    assert on_twin.value.detail == on_data.value.detail
    assert on_twin.value.position == on_data.value.position == bad.index("regionx", 10)
    with pytest.raises(velo.InvalidOptions):
        conn.query(SQL, epsilon=50, dummy=True)  # over the project's per-query cap


def test_adbc_dummy_target(conn, server):
    before = conn.budget()
    with adbc_connect(server, x_velo_target="dummy") as c, c.cursor() as cur:
        cur.execute("SELECT COUNT(*) AS n FROM booking")
        t = cur.fetch_arrow_table()
    md = t.schema.metadata
    assert md[b"velo.dummy"] == b"true" and md[b"velo.epsilon"] == b"0"
    assert conn.budget().spent == before.spent
