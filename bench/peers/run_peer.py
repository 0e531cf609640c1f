#!/usr/bin/env python3
"""Runs one query of Velo's side-by-side suite (bench/suite.go) in one DP peer.

bench/cmd/peerbench starts it as a child process, in the peer's virtual environment
(bench/peers/setup.sh), once per query and peer:

    run_peer.py --system opendp|snsql|qrlew|tumult --query ID --data DIR \
        --epsilon 1 --delta 0 --bounds JSON --runs 3 [--sql "Velo's SQL"]

It reads the same Parquet as Velo (DIR/<table>/*.parquet), gives the peer Velo's catalog
contribution bounds (--bounds: max groups per person and rows per person and group per
table, clamping ranges), runs one warm-up and --runs timed runs (each reads the Parquet
again and releases anew), and prints one JSON line: {"times_ms": [...], "rows": [{"key":
[...], "values": [...], "ci": [[lo, hi] or null, ...]}], "version": ..., "note": ...}, or
{"error": ..., "unsupported": true} when the peer cannot express the query.
"""

import argparse
import glob
import json
import os
import sys
import time
import traceback

MONTHS = [f"{y}-{m:02d}-01" for y in (2024, 2025) for m in range(1, 13)]
AGE_BANDS = ["0-17", "18-39", "40-64", "65+"]


class Unsupported(Exception):
    """The peer cannot express the query; the message says why."""


def parquet(data, table):
    return sorted(glob.glob(os.path.join(data, table, "*.parquet")))


def domains(data):
    with open(os.path.join(data, "catalog.json")) as f:
        cat = json.load(f)
    return {k: v["values"] for k, v in cat.get("domains", {}).items() if "values" in v}


def bounds_for(b, *tables):
    """Velo's rule: the largest bounds of the tables in the query."""
    g = max(b["max_groups"][t] for t in tables)
    c = max(b["max_rows_per_group"][t] for t in tables)
    return g, c


def rng(b, col):
    lo, hi = b["ranges"][col]
    return lo, hi


def age_band(birth_year):
    if birth_year is None:
        return None
    if birth_year >= 2006:
        return "0-17"
    if birth_year >= 1985:
        return "18-39"
    if birth_year >= 1960:
        return "40-64"
    return "65+"


def keytext(v):
    if v is None:
        return "NULL"
    if hasattr(v, "isoformat"):
        return v.isoformat()[:10]
    if isinstance(v, bool):
        return "true" if v else "false"
    s = str(v)
    if len(s) > 10 and s[4] == "-" and s[7] == "-":
        return s[:10]
    return s


def num(v):
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    if f != f or f in (float("inf"), float("-inf")):
        return None
    return f


def rows_from(records, nkeys, nvals, ci=None):
    out = []
    for i, r in enumerate(records):
        row = {"key": [keytext(x) for x in r[:nkeys]], "values": [num(x) for x in r[nkeys:nkeys + nvals]]}
        if ci is not None:
            row["ci"] = ci[i]
        out.append(row)
    return out


# ---------------------------------------------------------------------------------------
# OpenDP: the Polars API (Context.compositor over a LazyFrame, identifier = pid).

def run_opendp(a, b):
    import polars as pl
    import opendp.prelude as dp

    dp.enable_features("contrib")
    dom = domains(a.data)
    q = a.query
    if q in ("wait_age_sex", "lab_loinc_month"):
        raise Unsupported("OpenDP's Polars API has no private join: person would have to be joined "
                          "to the facts before the privacy analysis, which the API cannot bound")
    G, C = bounds_for(b, "booking")
    cols = ["pid", "region", "priority", "first_access", "within_target", "wait_days", "d_contact", "asl", "provider_id", "service_code"]

    def frame():
        lf = pl.scan_parquet(parquet(a.data, "booking")).select(cols)
        # The UUID pid reads as 16 bytes, which OpenDP's domains do not take: as hex text.
        return lf.with_columns(pl.col("pid").bin.encode("hex"))

    loss = dp.loss_of(epsilon=a.epsilon, delta=a.delta) if a.delta > 0 else dp.loss_of(epsilon=a.epsilon)

    def ctx(lf, keys):
        # max_length: a public bound on the rows of any group, which OpenDP needs for
        # means and quantiles; a loose one (a billion bookings) costs no accuracy here.
        return dp.Context.compositor(data=lf, privacy_unit=dp.unit_of(contributions=1, identifier="pid"),
                                     privacy_loss=loss, split_evenly_over=1,
                                     margins=[dp.polars.Margin(by=keys, max_length=1_000_000_000)])

    def keyframe(**kv):
        import itertools
        names = list(kv)
        return pl.DataFrame([dict(zip(names, combo)) for combo in itertools.product(*kv.values())])

    def bounded(query, keys, per_group=C):
        # keep="first": OpenDP 0.16's "sample" ranks a struct and its hash under the same
        # field name, which Polars refuses ("multiple fields with name ... found"); "first"
        # keeps each person's first G groups in key order, as private a choice.
        return query.truncate_per_group(per_group, by=keys).truncate_num_groups(G, by=keys, keep="first")

    wt = pl.col("within_target").cast(pl.Int64)

    def once():
        lf = frame()
        if q == "share_region_priority":
            lf = lf.filter(pl.col("first_access") & pl.col("within_target").is_not_null()).with_columns(wt.alias("wt"))
            keys = ["region", "priority"]
            dq = bounded(ctx(lf, keys).query(), keys).group_by(keys).agg(pl.col("wt").fill_null(0).dp.mean((0, 1))) \
                .with_keys(keyframe(region=dom["region"], priority=dom["priority"]))
        elif q == "wait_quantiles_service":
            lf = lf.filter(pl.col("first_access") & pl.col("wait_days").is_not_null())
            keys = ["service_code"]
            cands = list(range(0, 366, 5))
            w = pl.col("wait_days").fill_null(0).clip(0, 365)
            dq = bounded(ctx(lf, keys).query(), keys).group_by(keys).agg(
                w.dp.median(cands).alias("median_wait"), w.dp.quantile(0.9, cands).alias("p90_wait")) \
                .with_keys(keyframe(service_code=dom["service_code"]))
        elif q == "monthly_trend":
            lf = lf.filter(pl.col("within_target").is_not_null()).with_columns(
                wt.alias("wt"), pl.col("d_contact").dt.truncate("1mo").cast(pl.String).alias("month"))
            keys = ["month"]
            dq = bounded(ctx(lf, keys).query(), keys).group_by(keys).agg(pl.col("wt").fill_null(0).dp.mean((0, 1))) \
                .with_keys(keyframe(month=MONTHS))
        elif q == "beyond_target_asl":
            lf = lf.filter(pl.col("first_access") & (pl.col("within_target") == False))  # noqa: E712
            keys = ["asl"]
            dq = bounded(ctx(lf, keys).query(), keys, per_group=1).group_by(keys).agg(dp.len()) \
                .with_keys(keyframe(asl=dom["asl"]))
        elif q == "people_per_provider":
            keys = ["provider_id"]
            dq = bounded(ctx(lf, keys).query(), keys, per_group=1).group_by(keys).agg(dp.len())
        else:
            raise Unsupported("no OpenDP equivalent written for " + q)
        df = dq.release().collect()
        ci = None
        if q in ("beyond_target_asl", "people_per_provider"):
            # The 95% half-width OpenDP reports for a noisy count (summarize builds the
            # measurement again: it is part of what an analyst pays for the error bars).
            summ = dq.summarize(alpha=0.05)
            acc = [r for r in summ.iter_rows(named=True) if r.get("accuracy") is not None]
            if acc:
                ci = acc[0]["accuracy"]
        return df, keys, ci

    def result(out):
        df, keys, half = out
        vals = [c for c in df.columns if c not in keys]
        recs = df.select(keys + vals).rows()
        cis = None
        if half is not None:
            cis = [[[num(r[-1]) - half, num(r[-1]) + half] if num(r[-1]) is not None else None] for r in recs]
        return rows_from(recs, len(keys), len(vals), cis)

    return once, result, "opendp " + dp.__version__ if hasattr(dp, "__version__") else "opendp"


# ---------------------------------------------------------------------------------------
# SmartNoise SQL over pandas: one table per query; per-person reservoir sampling of
# max_ids rows (the SQL-rewriting bounding: a window per person).

SNSQL = {
    "share_region_priority": ("SELECT region, priority, AVG(within_target) AS share FROM velo.booking WHERE first_access = 1 AND within_target >= 0 GROUP BY region, priority", 2),
    "monthly_trend": ("SELECT month, AVG(within_target) AS share FROM velo.booking WHERE within_target >= 0 GROUP BY month", 1),
    "beyond_target_asl": ("SELECT asl, COUNT(DISTINCT pid) AS patients FROM velo.booking WHERE first_access = 1 AND within_target = 0 GROUP BY asl", 1),
    "people_per_provider": ("SELECT provider_id, COUNT(DISTINCT pid) AS people FROM velo.booking GROUP BY provider_id", 1),
}


def run_snsql(a, b):
    import pandas as pd
    import pyarrow.parquet as pq
    import snsql
    from snsql import Privacy

    q = a.query
    if q in ("wait_age_sex", "lab_loinc_month"):
        raise Unsupported("SmartNoise SQL reads one table per query: no JOIN")
    if q == "wait_quantiles_service":
        raise Unsupported("SmartNoise SQL has no quantile aggregate (COUNT, SUM, AVG, VAR, STDDEV only)")
    if q not in SNSQL:
        raise Unsupported("no SmartNoise SQL equivalent written for " + q)
    sql, nkeys = SNSQL[q]
    G, C = bounds_for(b, "booking")
    lo, hi = rng(b, "booking.wait_days")
    meta = {"": {"velo": {"booking": {
        "row_privacy": False, "max_ids": G * C, "sample_max_ids": True, "censor_dims": a.delta > 0,
        "pid": {"type": "string", "private_id": True},
        "region": {"type": "string"}, "priority": {"type": "string"}, "asl": {"type": "string"},
        "provider_id": {"type": "string"}, "service_code": {"type": "string"}, "month": {"type": "string"},
        "first_access": {"type": "int", "lower": 0, "upper": 1},
        "within_target": {"type": "int", "lower": -1, "upper": 1},
        "wait_days": {"type": "int", "lower": int(lo), "upper": int(hi)},
    }}}}

    def frame():
        t = pq.read_table(parquet(a.data, "booking"), columns=["pid", "region", "priority", "first_access", "within_target", "wait_days", "d_contact", "asl", "provider_id", "service_code"])
        df = t.to_pandas()
        df["pid"] = df["pid"].map(lambda x: x.hex() if isinstance(x, (bytes, bytearray)) else str(x))
        df["first_access"] = df["first_access"].astype("int64")
        # SmartNoise SQL has no NULL-aware AVG over a cast boolean: -1 marks "not monitored"
        # and the query filters it out, as AVG skips NULL in Velo's SQL.
        df["within_target"] = df["within_target"].map({True: 1, False: 0}).fillna(-1).astype("int64")
        df["wait_days"] = df["wait_days"].fillna(0).astype("int64")
        # date_trunc is not in SmartNoise SQL's grammar: the month is a column made before.
        df["month"] = pd.to_datetime(df["d_contact"]).dt.strftime("%Y-%m-01")
        return df.drop(columns=["d_contact"])

    def once():
        df = frame()
        # censor_dims (SmartNoise's partition selection) only where the groups come from the
        # data; with public keys, as Velo, every group is released.
        reader = snsql.from_df(df, privacy=Privacy(epsilon=a.epsilon, delta=a.delta), metadata=meta)
        res = reader.execute(sql)
        return res

    def result(res):
        recs = res[1:] if res and isinstance(res[0], (list, tuple)) and all(isinstance(x, str) for x in res[0]) else res
        return rows_from(recs, nkeys, 1)

    return once, result, "smartnoise-sql " + getattr(snsql, "__version__", "1.0.10")


# ---------------------------------------------------------------------------------------
# Qrlew: rewrites Velo's SQL into DP SQL (per-person bounding by windows and joins in the
# rewritten query), which DuckDB then runs over the same Parquet.

def run_qrlew(a, b):
    import duckdb
    import sqlalchemy as sa
    import pyqrlew
    from pyqrlew import Dataset

    q = a.query
    dom = domains(a.data)
    tables = {
        "booking": "pid TEXT, region TEXT, priority TEXT, first_access BOOLEAN, within_target BOOLEAN, wait_days INTEGER, d_contact DATE, provider_id TEXT, asl TEXT, service_code TEXT",
        "person": "pid TEXT, birth_year INTEGER, sex TEXT",
        "lab_result": "pid TEXT, loinc TEXT, value DOUBLE, effective_date DATE",
    }
    eng = sa.create_engine("sqlite://")
    with eng.begin() as c:
        for t, spec in tables.items():
            c.execute(sa.text(f"CREATE TABLE {t} ({spec})"))
            c.execute(sa.text(f"INSERT INTO {t} VALUES ({', '.join(['NULL'] * (spec.count(',') + 1))})"))
    ds = Dataset.from_database("velo", eng, "main", ranges=False)
    # The schema is read from tables of one empty row, so Qrlew would take every table to
    # hold one row and bound every COUNT and SUM by it: declare a public bound of a
    # billion rows instead.
    parts = {}
    for line in str(ds).splitlines():
        name, _, body = line.partition(": ")
        parts[name] = body
    size = parts["Size"].replace('"size": "1"', '"size": "1000000000"')
    ds = Dataset.from_str(parts["Dataset"], parts["Schema"], size)
    ds = ds.with_range("main", "booking", "wait_days", *rng(b, "booking.wait_days"))
    ds = ds.with_range("main", "person", "birth_year", *rng(b, "person.birth_year"))
    ds = ds.with_range("main", "lab_result", "value", *rng(b, "lab_result.value"))
    for col in ("region", "priority", "asl", "service_code"):
        ds = ds.with_possible_values("main", "booking", col, [str(v) for v in dom[col]])
    ds = ds.with_possible_values("main", "person", "sex", [str(v) for v in dom["sex"]])
    ds = ds.with_constraint("main", "person", "pid", Dataset.CONSTRAINT_UNIQUE)
    # Qrlew's SQL: Velo's, with the tables schema-qualified and the boolean cast written
    # as a CASE (Qrlew's parser has no CAST of a boolean).
    sqls = {
        "share_region_priority": ("SELECT region, priority, AVG(CASE WHEN within_target THEN 1 ELSE 0 END) AS share FROM main.booking WHERE first_access AND within_target IS NOT NULL GROUP BY region, priority", 2),
        "wait_quantiles_service": ("SELECT service_code, MEDIAN(wait_days) AS median_wait FROM main.booking WHERE first_access GROUP BY service_code", 1),
        "monthly_trend": ("SELECT date_trunc('month', d_contact) AS month, AVG(CASE WHEN within_target THEN 1 ELSE 0 END) AS share FROM main.booking WHERE within_target IS NOT NULL GROUP BY date_trunc('month', d_contact)", 1),
        "beyond_target_asl": ("SELECT asl, COUNT(DISTINCT pid) AS patients FROM main.booking WHERE first_access AND NOT within_target GROUP BY asl", 1),
        "wait_age_sex": ("SELECT CASE WHEN p.birth_year >= 2006 THEN '0-17' WHEN p.birth_year >= 1985 THEN '18-39' WHEN p.birth_year >= 1960 THEN '40-64' ELSE '65+' END AS age_band, p.sex AS sex, AVG(b.wait_days) AS avg_wait FROM main.booking AS b JOIN main.person AS p ON b.pid = p.pid WHERE b.first_access GROUP BY CASE WHEN p.birth_year >= 2006 THEN '0-17' WHEN p.birth_year >= 1985 THEN '18-39' WHEN p.birth_year >= 1960 THEN '40-64' ELSE '65+' END, p.sex", 2),
        "people_per_provider": ("SELECT provider_id, COUNT(DISTINCT pid) AS people FROM main.booking GROUP BY provider_id", 1),
        "lab_loinc_month": ("SELECT l.loinc AS loinc, date_trunc('month', l.effective_date) AS month, AVG(l.value) AS mean_value FROM main.lab_result AS l JOIN main.person AS p ON l.pid = p.pid WHERE p.birth_year < 1960 GROUP BY l.loinc, date_trunc('month', l.effective_date)", 2),
    }
    if q not in sqls:
        raise Unsupported("no Qrlew equivalent written for " + q)
    sql, nkeys = sqls[q]
    tabs = ["booking"] if q not in ("wait_age_sex", "lab_loinc_month") else (["booking", "person"] if q == "wait_age_sex" else ["lab_result", "person"])
    G, C = bounds_for(b, *tabs)
    pu = [(t, [], "pid") for t in ("booking", "person", "lab_result")]
    # Qrlew's rewriting is Gaussian only: it needs delta > 0 even for public-key queries.
    delta = a.delta if a.delta > 0 else 1e-6
    rel = ds.relation(sql)
    dpr = rel.rewrite_with_differential_privacy(ds, pu, {"epsilon": a.epsilon, "delta": delta},
                                                max_multiplicity=float(G * C), max_privacy_unit_groups=G)
    dpsql = dpr.relation().to_query()

    def once():
        con = duckdb.connect()
        con.execute(f"SET threads = {os.cpu_count()}")
        con.execute("SET memory_limit = '2GB'")
        for t in tables:
            files = parquet(a.data, t)
            if files:
                # Qrlew hashes the privacy unit as text (MD5(CAST(pid AS TEXT))).
                con.execute(f"CREATE VIEW {t} AS SELECT * REPLACE (CAST(pid AS VARCHAR) AS pid) FROM read_parquet({files!r})")
        recs = con.execute(dpsql).fetchall()
        con.close()
        return recs

    def result(recs):
        return rows_from(recs, nkeys, 1 if q != "wait_quantiles_service" else 1)

    note = "Gaussian noise (delta 1e-6): Qrlew has no pure epsilon-DP mechanism" if a.delta == 0 else ""
    return once, result, "pyqrlew " + getattr(pyqrlew, "__version__", "0.9.27"), note


# ---------------------------------------------------------------------------------------
# Tumult Analytics on local Spark: AddRowsWithID("pid"), MaxGroupsPerID and
# MaxRowsPerGroupPerID set to Velo's bounds.

def run_tumult(a, b):
    from pyspark.sql import SparkSession, functions as F
    import tmlt.analytics as ta
    from tmlt.analytics import (AddRowsWithID, ApproxDPBudget, KeySet, MaxGroupsPerID, MaxRowsPerGroupPerID,
                                MaxRowsPerID, PureDPBudget, QueryBuilder, Session)

    q = a.query
    dom = domains(a.data)
    # Spark's Python workers must be this environment's interpreter (they import tmlt).
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    spark = (SparkSession.builder.master(f"local[{os.cpu_count()}]").appName("velo-peerbench")
             .config("spark.driver.memory", "4g").config("spark.ui.enabled", "false")
             .config("spark.sql.shuffle.partitions", "8")
             # Tumult saves intermediate tables: in a temporary directory, not the cwd.
             .config("spark.sql.warehouse.dir", __import__("tempfile").mkdtemp(prefix="velo-peerbench-spark-"))
             .getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")

    def load(t, cols):
        # Spark 3.5 cannot read a Parquet UUID column ("Illegal Parquet type:
        # FIXED_LEN_BYTE_ARRAY (UUID)"), so Tumult reads a copy of the columns it needs with
        # the pid as hex text, made once beside the dataset (DATA-spark/, not timed).
        path = os.path.join(a.data.rstrip("/") + "-spark", t + ".parquet")
        if not os.path.exists(path):
            import pyarrow as pa
            import pyarrow.parquet as pq
            tab = pq.read_table(parquet(a.data, t))
            pid = [x.hex() if isinstance(x, (bytes, bytearray)) else (x.hex if x is not None else None) for x in tab.column("pid").to_pylist()]
            tab = tab.set_column(tab.schema.get_field_index("pid"), "pid", pa.array(pid, pa.string()))
            os.makedirs(os.path.dirname(path), exist_ok=True)
            pq.write_table(tab, path + ".tmp")
            os.replace(path + ".tmp", path)
        return spark.read.parquet(path).select(*cols)

    approx = a.delta > 0
    total = ApproxDPBudget(a.epsilon, a.delta) if approx else PureDPBudget(a.epsilon)

    def half(n):
        return ApproxDPBudget(a.epsilon / n, a.delta / n) if approx else PureDPBudget(a.epsilon / n)

    def once():
        bk = None
        if q in ("share_region_priority", "wait_quantiles_service", "monthly_trend", "beyond_target_asl", "people_per_provider", "wait_age_sex"):
            bk = load("booking", ["pid", "region", "priority", "first_access", "within_target", "wait_days", "d_contact", "asl", "provider_id", "service_code"])
            bk = bk.withColumn("wt", F.col("within_target").cast("int")).withColumn("month", F.date_format(F.date_trunc("month", F.col("d_contact")), "yyyy-MM-dd")) \
                .withColumn("first_access", F.col("first_access").cast("int")).withColumn("wait_days", F.col("wait_days").cast("int")) \
                .withColumn("gk", F.concat_ws("|", F.col("region"), F.col("priority"))).drop("d_contact", "within_target")
        builder = Session.Builder().with_privacy_budget(total).with_id_space("pid")
        if bk is not None:
            builder = builder.with_private_dataframe("booking", bk, protected_change=AddRowsWithID("pid", "pid"))
        G, C = bounds_for(b, "booking")
        lo, hi = rng(b, "booking.wait_days")
        if q in ("wait_age_sex", "lab_loinc_month"):
            # Tumult takes no SMALLINT column: birth_year as INTEGER.
            per = load("person", ["pid", "birth_year", "sex"]).withColumn("birth_year", F.col("birth_year").cast("int"))
            per = per.withColumn("age_band", F.when(F.col("birth_year") >= 2006, "0-17").when(F.col("birth_year") >= 1985, "18-39")
                                 .when(F.col("birth_year") >= 1960, "40-64").otherwise("65+"))
            builder = builder.with_private_dataframe("person", per, protected_change=AddRowsWithID("pid", "pid"))
        if q == "lab_loinc_month":
            lab = load("lab_result", ["pid", "loinc", "value", "effective_date"]).withColumn(
                "month", F.date_format(F.date_trunc("month", F.col("effective_date")), "yyyy-MM-dd")).drop("effective_date") \
                .withColumn("gk", F.concat_ws("|", F.col("loinc"), F.col("month")))
            builder = builder.with_private_dataframe("lab_result", lab, protected_change=AddRowsWithID("pid", "pid"))
        sess = builder.build()

        def grouped(qb, key, g, c):
            return qb.enforce(MaxGroupsPerID(key, g)).enforce(MaxRowsPerGroupPerID(key, c))

        out = []
        if q == "share_region_priority":
            ks = KeySet.from_dict({"gk": [f"{r}|{p}" for r in dom["region"] for p in dom["priority"]]})
            qb = grouped(QueryBuilder("booking").filter("first_access = 1 AND wt IS NOT NULL"), "gk", G, C)
            df = sess.evaluate(qb.groupby(ks).average("wt", 0, 1, name="share"), total).toPandas()
            out = [tuple(k.split("|")) + (v,) for k, v in zip(df["gk"], df["share"])]
            return out, 2, 1
        if q == "wait_quantiles_service":
            ks = KeySet.from_dict({"service_code": dom["service_code"]})
            base = grouped(QueryBuilder("booking").filter("first_access = 1 AND wait_days IS NOT NULL"), "service_code", G, C)
            m = sess.evaluate(base.groupby(ks).median("wait_days", lo, hi, name="median_wait"), half(2)).toPandas()
            base = grouped(QueryBuilder("booking").filter("first_access = 1 AND wait_days IS NOT NULL"), "service_code", G, C)
            p = sess.evaluate(base.groupby(ks).quantile("wait_days", 0.9, lo, hi, name="p90_wait"), half(2)).toPandas()
            mm = m.merge(p, on="service_code")
            return list(zip(mm["service_code"], mm["median_wait"], mm["p90_wait"])), 1, 2
        if q == "monthly_trend":
            ks = KeySet.from_dict({"month": MONTHS})
            qb = grouped(QueryBuilder("booking").filter("wt IS NOT NULL"), "month", G, C)
            df = sess.evaluate(qb.groupby(ks).average("wt", 0, 1, name="share"), total).toPandas()
            return list(zip(df["month"], df["share"])), 1, 1
        if q == "beyond_target_asl":
            ks = KeySet.from_dict({"asl": dom["asl"]})
            qb = grouped(QueryBuilder("booking").filter("first_access = 1 AND wt = 0"), "asl", G, 1)
            df = sess.evaluate(qb.groupby(ks).count_distinct(["pid"], name="patients"), total).toPandas()
            return list(zip(df["asl"], df["patients"])), 1, 1
        if q == "people_per_provider":
            # The groups come from the data: Tumult's get_groups spends half the budget.
            qb = grouped(QueryBuilder("booking"), "provider_id", G, 1)
            # get_groups bounds a person's rows overall (MaxRowsPerID): G groups of C rows.
            groups = sess.evaluate(QueryBuilder("booking").enforce(MaxRowsPerID(G * C)).get_groups(["provider_id"]), half(2))
            ks = KeySet.from_dataframe(groups)
            df = sess.evaluate(qb.groupby(ks).count_distinct(["pid"], name="people"), half(2)).toPandas()
            return list(zip(df["provider_id"], df["people"])), 1, 1
        if q == "wait_age_sex":
            Gj, Cj = bounds_for(b, "booking", "person")
            qb = QueryBuilder("booking").filter("first_access = 1 AND wait_days IS NOT NULL").join_private("person") \
                .map(lambda r: {"gk2": f"{r['age_band']}|{r['sex']}"}, new_column_types={"gk2": ta.ColumnDescriptor(ta.ColumnType.VARCHAR)}, augment=True)
            qb = grouped(qb, "gk2", Gj, Cj)
            ks = KeySet.from_dict({"gk2": [f"{x}|{s}" for x in AGE_BANDS for s in dom["sex"]]})
            df = sess.evaluate(qb.groupby(ks).average("wait_days", lo, hi, name="avg_wait"), total).toPandas()
            return [tuple(k.split("|")) + (v,) for k, v in zip(df["gk2"], df["avg_wait"])], 2, 1
        if q == "lab_loinc_month":
            Gj, Cj = bounds_for(b, "lab_result", "person")
            vlo, vhi = rng(b, "lab_result.value")
            qb = QueryBuilder("lab_result").join_private("person").filter("birth_year < 1960 AND value IS NOT NULL")
            qb = grouped(qb, "gk", Gj, Cj)
            groups = sess.evaluate(QueryBuilder("lab_result").join_private("person").filter("birth_year < 1960")
                                   .enforce(MaxRowsPerID(Gj * Cj)).get_groups(["gk"]), half(2))
            ks = KeySet.from_dataframe(groups)
            df = sess.evaluate(qb.groupby(ks).average("value", vlo, vhi, name="mean_value"), half(2)).toPandas()
            return [tuple(k.split("|")) + (v,) for k, v in zip(df["gk"], df["mean_value"])], 2, 1
        raise Unsupported("no Tumult equivalent written for " + q)

    def result(out):
        recs, nk, nv = out
        return rows_from(recs, nk, nv)

    import importlib.metadata as md
    return once, result, "tmlt.analytics %s on pyspark %s" % (md.version("tmlt.analytics"), md.version("pyspark"))


RUNNERS = {"opendp": run_opendp, "snsql": run_snsql, "qrlew": run_qrlew, "tumult": run_tumult}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--system", required=True, choices=sorted(RUNNERS))
    p.add_argument("--query", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--epsilon", type=float, default=1.0)
    p.add_argument("--delta", type=float, default=0.0)
    p.add_argument("--bounds", required=True, help="JSON: max_groups, max_rows_per_group per table; ranges per table.column")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--sql", default="", help="Velo's SQL, for the record")
    p.add_argument("--no-warmup", action="store_true", help="no untimed run first")
    a = p.parse_args()
    b = json.loads(a.bounds)
    out = {"times_ms": [], "rows": []}
    try:
        setup = RUNNERS[a.system](a, b)
        once, result, version = setup[0], setup[1], setup[2]
        out["version"] = version
        if len(setup) > 3 and setup[3]:
            out["note"] = setup[3]
        if not a.no_warmup:
            once()  # warm-up
        last = None
        for _ in range(a.runs):
            t0 = time.perf_counter()
            last = once()
            out["times_ms"].append((time.perf_counter() - t0) * 1000)
        out["rows"] = result(last)
    except Unsupported as e:
        out = {"error": "not supported: " + str(e), "unsupported": True}
    except BaseException as e:  # pyo3 panics are BaseException
        traceback.print_exc(file=sys.stderr)
        msg = (type(e).__name__ + ": " + str(e)).strip().replace("\n", " ")
        out = {"error": msg[:600]}
    sys.stdout.flush()
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
