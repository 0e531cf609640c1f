"""Arrow Flight SQL with ADBC (adbc-driver-flightsql): the same tokens, the same DP path,
the same charges and refusals as the HTTP API."""

import adbc_driver_flightsql
import adbc_driver_flightsql.dbapi as adbc
import pytest

import velo


def connect(server, user="researcher", **headers):
    kw = {adbc_driver_flightsql.DatabaseOptions.AUTHORIZATION_HEADER.value: "Bearer " + server.tokens[user]}
    for k, v in headers.items():
        kw[adbc_driver_flightsql.DatabaseOptions.RPC_CALL_HEADER_PREFIX.value + k.replace("_", "-")] = v
    return adbc.connect(server.flight, db_kwargs=kw, autocommit=True)


def test_adbc_query_is_charged_once(server):
    http = velo.connect(server.url, server.tokens["researcher"])
    before = http.budget()
    sql = "SELECT WITH DIFFERENTIAL_PRIVACY OPTIONS(epsilon = 0.2) region, COUNT(*) AS n FROM booking GROUP BY region"
    with connect(server) as conn, conn.cursor() as cur:
        cur.execute(sql)
        t = cur.fetch_arrow_table()
    assert t.column_names == ["region", "n", "n_ci_lower", "n_ci_upper", "n_flags"]
    assert t.num_rows > 0
    md = t.schema.metadata
    assert md[b"velo.epsilon"] == b"0.2" and md[b"velo.cached"] == b"false"
    after = http.budget()
    assert after.spent.epsilon == pytest.approx(before.spent.epsilon + 0.2)
    assert after.queries == before.queries + 1
    # The same statement again: the release cache, free.
    with connect(server) as conn, conn.cursor() as cur:
        cur.execute(sql)
        again = cur.fetch_arrow_table()
    assert again.schema.metadata[b"velo.cached"] == b"true"
    assert again.schema.metadata[b"velo.release_id"] == md[b"velo.release_id"]
    assert http.budget().spent == after.spent


def test_adbc_epsilon_header_and_refusals(server):
    with connect(server, x_velo_epsilon="0.1") as conn, conn.cursor() as cur:
        cur.execute("SELECT sex, COUNT(*) AS n FROM person GROUP BY sex")
        assert cur.fetch_arrow_table().schema.metadata[b"velo.epsilon"] == b"0.1"
    before = velo.connect(server.url, server.tokens["researcher"]).budget()
    with connect(server) as conn, conn.cursor() as cur:
        with pytest.raises(Exception) as e:
            cur.execute("SELECT regionx, COUNT(*) AS n FROM booking GROUP BY region")
        assert "[sql_rejected] unknown column regionx (at position 7)" in str(e.value)
    with connect(server, user="dpo") as conn, conn.cursor() as cur:
        with pytest.raises(Exception) as e:
            cur.execute("SELECT COUNT(*) AS n FROM booking")
        assert "[forbidden]" in str(e.value)
    assert velo.connect(server.url, server.tokens["researcher"]).budget().spent == before.spent


def test_adbc_catalog(server):
    with connect(server) as conn:
        objs = conn.adbc_get_objects(depth="tables").read_all().to_pylist()
    assert [c["catalog_name"] for c in objs] == ["velo"]
    schemas = {s["db_schema_name"]: [t["table_name"] for t in s["db_schema_tables"]] for s in objs[0]["catalog_db_schemas"]}
    assert set(schemas) == {"wl"}
    assert "booking" in schemas["wl"] and "person" in schemas["wl"]


def test_adbc_session_options(server):
    """Epsilon as a session option (the client's cookie) prices the session's statements."""
    http = velo.connect(server.url, server.tokens["researcher"])
    before = http.budget()
    kw = {
        adbc_driver_flightsql.DatabaseOptions.AUTHORIZATION_HEADER.value: "Bearer " + server.tokens["researcher"],
        adbc_driver_flightsql.DatabaseOptions.WITH_COOKIE_MIDDLEWARE.value: "true",
    }
    with adbc.connect(server.flight, db_kwargs=kw, autocommit=True) as conn:
        conn.adbc_connection.set_options(**{adbc_driver_flightsql.ConnectionOptions.OPTION_SESSION_OPTION_PREFIX.value + "epsilon": "0.15"})
        with conn.cursor() as cur:
            cur.execute("SELECT sex, COUNT(*) AS n FROM person WHERE birth_year > 1900 GROUP BY sex")
            t = cur.fetch_arrow_table()
    assert t.schema.metadata[b"velo.epsilon"] == b"0.15"
    assert http.budget().spent.epsilon == pytest.approx(before.spent.epsilon + 0.15)
