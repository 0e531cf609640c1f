"""Velo's HTTP API from Python: connect, price, query, budget, catalog.

Every number a query returns is differentially private and is paid from the project's
privacy budget (the same query again is answered from the ledger's release cache, free).
Results come as Arrow (the API's ``application/vnd.apache.arrow.stream`` answer) and keep
their 95% confidence intervals as columns (``<col>_ci_lower``, ``<col>_ci_upper``) and the
release's metadata as attributes.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Tuple

import pyarrow as pa
import pyarrow.ipc
import pyarrow.parquet

ARROW_STREAM = "application/vnd.apache.arrow.stream"
PARQUET = "application/vnd.apache.parquet"

__all__ = [
    "connect",
    "Connection",
    "Result",
    "Synthetic",
    "Marginals",
    "Price",
    "Budget",
    "Amount",
    "VeloError",
    "SQLRejected",
    "BudgetExhausted",
    "Forbidden",
    "ProjectInactive",
    "Unauthorized",
    "InvalidOptions",
]


class VeloError(Exception):
    """A refusal or failure from the API, from its ``application/problem+json`` answer.

    ``code`` is the API's stable problem code (``sql_rejected``, ``budget_exhausted``,
    ``invalid_options``, ``forbidden``...; docs/api.md lists them), ``position`` the byte
    offset in the SQL the problem is about, when there is one. Nothing was charged for a
    refused query.
    """

    def __init__(
        self,
        status: int,
        code: str,
        title: str,
        detail: str,
        position: Optional[int] = None,
        field: Optional[str] = None,
        request_id: Optional[str] = None,
        problem: Optional[Mapping[str, Any]] = None,
    ) -> None:
        where = f" (at position {position})" if position is not None else ""
        super().__init__(f"{status} {code}: {detail}{where}")
        self.status = status
        self.code = code
        self.title = title
        self.detail = detail
        self.position = position
        self.field = field
        self.request_id = request_id
        self.problem: Mapping[str, Any] = problem or {}


class SQLRejected(VeloError):
    """The SQL is not a query Velo answers (``sql_rejected``); ``position`` points into it."""


class InvalidOptions(VeloError):
    """An option (epsilon, delta, bounds...) is outside what the project allows."""


class Unauthorized(VeloError):
    """The token is missing, unknown or expired (401)."""


class Forbidden(VeloError):
    """The token's user may not do this (403): another project, a table not approved..."""


class ProjectInactive(Forbidden):
    """The project cannot query now (403), before any charge: it expired
    (``project_expired``), a DPO suspended it (``project_suspended``; ``detail`` gives the
    reason), or its data permit is not valid yet (``project_not_yet_valid``)."""


class BudgetExhausted(VeloError):
    """The project's remaining budget does not cover the query (``budget_exhausted``).

    ``asked``, ``total``, ``spent`` and ``left`` give the figures.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        b = self.problem.get("budget") or {}
        self.asked = _amount(b.get("asked"))
        self.total = _amount(b.get("total"))
        self.spent = _amount(b.get("spent"))
        self.left = _amount(b.get("left"))


_ERRORS = {
    "sql_rejected": SQLRejected,
    "invalid_options": InvalidOptions,
    "budget_exhausted": BudgetExhausted,
    "forbidden": Forbidden,
    "project_expired": ProjectInactive,
    "project_suspended": ProjectInactive,
    "project_not_yet_valid": ProjectInactive,
    "unauthorized": Unauthorized,
}


@dataclass(frozen=True)
class Amount:
    """A privacy amount: epsilon and delta."""

    epsilon: float
    delta: float


def _amount(v: Any) -> Optional[Amount]:
    if not isinstance(v, Mapping):
        return None
    return Amount(float(v.get("epsilon", 0)), float(v.get("delta", 0)))


@dataclass(frozen=True)
class Budget:
    """A project's privacy budget: its total, what queries spent, what is left."""

    project: str
    total: Amount
    spent: Amount
    left: Amount
    queries: int


@dataclass(frozen=True)
class Price:
    """What a query would cost, from a dry run (checked against the catalog; no data read,
    nothing charged): the epsilon and delta, how they are split among its aggregates, the
    contribution bounds, and the budget left."""

    sql: str
    epsilon: float
    delta: float
    budget_split: List[Mapping[str, Any]]
    bounding: Mapping[str, Any]
    budget_left: Amount
    columns: List[Mapping[str, Any]]
    selection: Optional[Mapping[str, Any]] = None


@dataclass
class Result:
    """One release. ``to_arrow()`` gives the table: the keys, each differentially private
    value with ``<col>_ci_lower`` and ``<col>_ci_upper`` (its 95% interval; null where the
    value has no sound interval) and ``<col>_flags``; the release's facts are attributes."""

    table: pa.Table
    release_id: str
    project: str
    dataset_version: str
    cached: bool
    epsilon: float
    delta: float
    confidence: float
    budget_left: Amount
    sql: str
    columns: List[Mapping[str, Any]]
    budget_split: List[Mapping[str, Any]] = field(default_factory=list)
    bounding: Mapping[str, Any] = field(default_factory=dict)
    selection: Optional[Mapping[str, Any]] = None
    notes: List[str] = field(default_factory=list)
    clamp_to_range: bool = False
    dummy: bool = False
    """True when the release was computed on the dataset's dummy twin (``query(...,
    dummy=True)``): exact answers about made-up people generated from the public catalog,
    never the data's; nothing was charged (``epsilon`` and ``delta`` are 0) and each interval
    is the value itself (a quantile's: the tree leaves around it)."""
    price: Optional[Amount] = None
    """In a dummy release: what the same query costs when it runs on the data."""

    @property
    def dp_columns(self) -> List[str]:
        """The names of the differentially private columns."""
        return [c["name"] for c in self.columns if c.get("kind") == "dp"]

    @property
    def key_columns(self) -> List[str]:
        """The names of the key (GROUP BY) columns."""
        return [c["name"] for c in self.columns if c.get("kind") == "key"]

    def to_arrow(self) -> pa.Table:
        """The release as a pyarrow Table (its schema keeps the API's metadata)."""
        return self.table

    def to_pandas(self) -> Any:
        """The release as a pandas DataFrame (needs pandas)."""
        try:
            import pandas  # noqa: F401
        except ImportError:
            raise ImportError("Result.to_pandas needs pandas: pip install 'velo-client[pandas]'") from None
        return self.table.to_pandas()

    def to_polars(self) -> Any:
        """The release as a Polars DataFrame (needs polars)."""
        try:
            import polars as pl
        except ImportError:
            raise ImportError("Result.to_polars needs polars: pip install 'velo-client[polars]'") from None
        return pl.from_arrow(self.table)

    def __len__(self) -> int:
        return self.table.num_rows


@dataclass
class _TableRelease:
    """An Arrow ``table`` released with its ``release`` record (the API's JSON)."""

    table: pa.Table
    release: Mapping[str, Any]

    @property
    def release_id(self) -> str:
        return str(self.release.get("release_id", ""))

    @property
    def epsilon(self) -> float:
        return float(self.release.get("epsilon", 0))

    @property
    def delta(self) -> float:
        return float(self.release.get("delta", 0))

    @property
    def cached(self) -> bool:
        """The release made for the same request before, answered again at no cost."""
        return bool(self.release.get("cached", False))

    def to_arrow(self) -> pa.Table:
        return self.table

    def to_pandas(self) -> Any:
        return self.table.to_pandas()

    def __len__(self) -> int:
        return self.table.num_rows


class Synthetic(_TableRelease):
    """A differentially private synthetic table (``POST /v1/synthetic``): ``table`` is the
    rows (Arrow; no person identifier; NULL where the model put a missing value), ``release``
    the release record (method, epsilon, delta, bounding, attributes and their levels, the
    synthesizer's steps) and ``utility`` its report: for every noisy marginal it measured,
    the total-variation distance of the rows from it (computed from the noisy measurements,
    free). Anything computed from the rows is post-processing: it costs nothing more. The
    same request again returns the same release, rows and all, at no cost (``cached``)."""

    @property
    def utility(self) -> Mapping[str, Any]:
        return self.release.get("utility") or {}


class Marginals(_TableRelease):
    """Differentially private contingency tables (``POST /v1/marginals``): ``table`` is one
    row per cell of every marginal (``marginal``, ``attribute_1``/``level_1`` to
    ``attribute_3``/``level_3``, ``count``, ``ci_lower``, ``ci_upper``: the noisy count and
    its 95% interval), ``release`` the release record (epsilon, delta, bounding, attributes
    and their levels, and per marginal its ``sigma`` and ``ci_half_width``). A dry run has
    no cells: its ``release`` says what the tables would cost and how precise they would
    be."""

    @property
    def dry_run(self) -> bool:
        return bool(self.release.get("dry_run", False))

    @property
    def tables(self) -> List[Mapping[str, Any]]:
        """Per marginal: its ``attributes``, ``sigma``, ``rho`` and ``ci_half_width``."""
        return list(self.release.get("tables") or [])


def connect(url: str, token: str, project: Optional[str] = None, timeout: float = 300.0) -> "Connection":
    """Connect to a Velo server at ``url`` with a bearer ``token``; ``project`` is the
    default project of the queries (a user with one project needs none)."""
    return Connection(url, token, project=project, timeout=timeout)


class Connection:
    """A connection to one Velo server as one user. Thread-safe: it holds no state
    beyond its settings."""

    def __init__(self, url: str, token: str, project: Optional[str] = None, timeout: float = 300.0) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"url must start with http:// or https://, got {url!r}")
        if not token:
            raise ValueError("token is empty: pass the token Velo gave you (never print or log it)")
        self.url = url.rstrip("/")
        self._token = token
        self.timeout = timeout
        self._project = project

    def __repr__(self) -> str:  # never the token
        return f"velo.Connection({self.url!r}, project={self._project!r})"

    # -- the API -----------------------------------------------------------------------

    def me(self) -> Mapping[str, Any]:
        """Who the token is: ``{"user", "role", "projects"}``."""
        return self._json("GET", "/v1/me")

    @property
    def project(self) -> str:
        """The default project: the one given to connect, else the user's only project."""
        if self._project is None:
            projects = list(self.me().get("projects") or [])
            if len(projects) != 1:
                raise ValueError(f"this user has {len(projects)} projects ({', '.join(projects)}): pass project=")
            self._project = projects[0]
        return self._project

    def query(
        self,
        sql: str,
        epsilon: Optional[float] = None,
        delta: Optional[float] = None,
        *,
        project: Optional[str] = None,
        bounds: Optional[Mapping[str, Tuple[float, float]]] = None,
        max_groups_contributed: Optional[int] = None,
        clamp_to_range: bool = False,
        dummy: bool = False,
    ) -> Result:
        """Run ``sql`` and return its release. Charged once to the project's budget (a
        query asked before is answered from the cache, free); ``epsilon`` and ``delta``
        default to the project's default (or to the SQL's ``OPTIONS(...)``).

        With ``dummy=True`` the query runs on the dataset's dummy twin instead: the same
        checks and price, exact answers about made-up people generated from the catalog
        alone (``Result.dummy``, with ``Result.price`` the real run's cost), nothing
        charged. The same SQL then runs for real unchanged."""
        body = self._body(sql, epsilon, delta, project, bounds, max_groups_contributed, clamp_to_range, dry_run=False)
        if dummy:
            body["target"] = "dummy"
        raw = self._request("POST", "/v1/queries", body, accept=ARROW_STREAM)
        return _result(pa.ipc.open_stream(raw).read_all())

    def price(
        self,
        sql: str,
        epsilon: Optional[float] = None,
        delta: Optional[float] = None,
        *,
        project: Optional[str] = None,
        bounds: Optional[Mapping[str, Tuple[float, float]]] = None,
        max_groups_contributed: Optional[int] = None,
    ) -> Price:
        """What ``sql`` would cost (a dry run: checked and priced against the catalog, no
        data read, nothing charged). Refusals raise as ``query`` would."""
        body = self._body(sql, epsilon, delta, project, bounds, max_groups_contributed, False, dry_run=True)
        r = self._json("POST", "/v1/queries", body)
        return Price(
            sql=r["sql"],
            epsilon=float(r["epsilon"]),
            delta=float(r["delta"]),
            budget_split=list(r.get("budget_split") or []),
            bounding=dict(r.get("bounding") or {}),
            budget_left=_amount(r.get("budget_left")) or Amount(0, 0),
            columns=list(r.get("columns") or []),
            selection=r.get("selection"),
        )

    def synthesize(
        self,
        table: str,
        columns: Optional[List[str]] = None,
        *,
        method: str = "aim",
        rows: Optional[int] = None,
        epsilon: Optional[float] = None,
        delta: Optional[float] = None,
        bins: Optional[int] = None,
        max_rows_per_person: Optional[int] = None,
        join: Optional[List[str]] = None,
        project: Optional[str] = None,
    ) -> Synthetic:
        """Synthetic microdata of ``table`` (MST or AIM over noisy marginals), charged once
        to the project's budget at (``epsilon``, ``delta``; delta must be > 0). ``columns``
        default to every approved column with a public domain; ``rows`` to the model's
        noisy estimate of the table's size; each person contributes at most
        ``max_rows_per_person`` rows (default 1). ``join=["person"]`` reads each row with
        its person's row: the person's columns are then named ``person.birth_year`` and
        so on, in ``columns`` and in the synthetic table."""
        body = _given(
            {"table": table, "project": project or self.project, "method": method},
            join=list(join) if join else None, columns=None if columns is None else list(columns),
            rows=_num(rows, int), epsilon=_num(epsilon, float), delta=_num(delta, float), bins=_num(bins, int),
            max_rows_per_person=_num(max_rows_per_person, int),
        )
        return _synthetic(self._request("POST", "/v1/synthetic", body, accept=PARQUET))

    def marginals(
        self,
        table: str,
        sets: List[List[str]],
        *,
        epsilon: Optional[float] = None,
        delta: Optional[float] = None,
        bins: Optional[int] = None,
        max_groups_contributed: Optional[int] = None,
        max_rows_per_group: Optional[int] = None,
        join: Optional[List[str]] = None,
        project: Optional[str] = None,
        dry_run: bool = False,
    ) -> Marginals:
        """Noisy contingency tables of ``table``, one per attribute set in ``sets`` (1 to 3
        columns with a public domain each, e.g. ``[["region"], ["priority", "wait_days"]]``),
        every cell released with its 95% interval; charged once at (``epsilon``, ``delta``;
        delta must be > 0). The same request again is answered from the ledger, free
        (``Marginals.cached``). ``dry_run=True`` prices it and gives each table's noise
        and interval half-width, reading no data and charging nothing."""
        body = _given(
            {"table": table, "project": project or self.project, "marginals": [list(s) for s in sets]},
            join=list(join) if join else None, epsilon=_num(epsilon, float), delta=_num(delta, float),
            bins=_num(bins, int), max_groups_contributed=_num(max_groups_contributed, int),
            max_rows_per_group=_num(max_rows_per_group, int), dry_run=True if dry_run else None,
        )
        raw = self._request("POST", "/v1/marginals", body, accept=ARROW_STREAM)
        tab = pa.ipc.open_stream(raw).read_all()
        md = tab.schema.metadata or {}
        release = json.loads(md.get(b"velo.marginals", b"{}"))
        return Marginals(table=tab.replace_schema_metadata(None), release=release)

    def budget(self, project: Optional[str] = None) -> Budget:
        """The project's budget: total, spent, left, and how many queries were charged."""
        r = self._json("GET", self._project_path(project))
        return Budget(
            project=r["id"],
            total=_amount(r["total"]) or Amount(0, 0),
            spent=_amount(r["spent"]) or Amount(0, 0),
            left=_amount(r["left"]) or Amount(0, 0),
            queries=int(r.get("queries", 0)),
        )

    def history(self, project: Optional[str] = None) -> List[Mapping[str, Any]]:
        """What the project's budget paid for, oldest first: every charge (query, marginals,
        synthetic) with its ``sql``, ``text``, ``actor``, ``time``, ``epsilon``, ``delta``
        and ``outcome`` (``released`` with its ``release_id``, ``refunded``, ``no_release``),
        and the free dummy runs (``kind`` dummy). Free: it reads the ledger, not the data."""
        out: List[Mapping[str, Any]] = []
        since = 0
        while True:
            page = self._json("GET", self._project_path(project) + f"/history?limit=1000&since_seq={since}")
            out.extend(page.get("charges") or [])
            if not page.get("more"):
                return out
            since = int(page["next_since_seq"])

    def release(self, release_id: str, project: Optional[str] = None) -> Mapping[str, Any]:
        """A release of the project as it was answered (its JSON: ``rows``, ``ci``,
        ``columns``, ...; a marginals release's ``tables``), read from the ledger, free."""
        return self._json("GET", self._project_path(project) + "/releases/" + urllib.parse.quote(release_id, safe=""))

    def synthetic_release(self, release_id: str, project: Optional[str] = None) -> Synthetic:
        """A synthetic release again by its id, rows and all, as its request was answered
        (the rows the server keeps for it), free. A ``VeloError`` with ``status`` 404 when the
        server no longer keeps them: ``release()`` still gives its record."""
        path = self._project_path(project) + "/releases/" + urllib.parse.quote(release_id, safe="")
        return _synthetic(self._request("GET", path, None, accept=PARQUET))

    def catalog(self, project: Optional[str] = None) -> Mapping[str, Any]:
        """The catalog cut to what the project is approved for: tables, columns, public
        domains and bounds (free: it reads no data)."""
        pid = project or self.project
        return self._json("GET", "/v1/catalog?project=" + urllib.parse.quote(pid, safe=""))

    # -- HTTP --------------------------------------------------------------------------

    def _project_path(self, project: Optional[str]) -> str:
        """/v1/projects/ID of the project (default: the connection's)."""
        return "/v1/projects/" + urllib.parse.quote(project or self.project, safe="")

    def _body(
        self,
        sql: str,
        epsilon: Optional[float],
        delta: Optional[float],
        project: Optional[str],
        bounds: Optional[Mapping[str, Tuple[float, float]]],
        max_groups_contributed: Optional[int],
        clamp_to_range: bool,
        dry_run: bool,
    ) -> Dict[str, Any]:
        if not isinstance(sql, str) or not sql.strip():
            raise ValueError("sql must be a non-empty string")
        body: Dict[str, Any] = {"sql": sql, "project": project or self.project}
        if epsilon is not None:
            body["epsilon"] = float(epsilon)
        if delta is not None:
            body["delta"] = float(delta)
        if bounds:
            body["bounds"] = {k: [float(lo), float(hi)] for k, (lo, hi) in bounds.items()}
        if max_groups_contributed is not None:
            body["max_groups_contributed"] = int(max_groups_contributed)
        if clamp_to_range:
            body["clamp_to_range"] = True
        if dry_run:
            body["dry_run"] = True
        return body

    def _json(self, method: str, path: str, body: Optional[Mapping[str, Any]] = None) -> Any:
        return json.loads(self._request(method, path, body, accept="application/json"))

    def _request(self, method: str, path: str, body: Optional[Mapping[str, Any]], accept: str) -> bytes:
        data = None
        headers = {"Authorization": "Bearer " + self._token, "Accept": accept}
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return resp.read()
        except urllib.error.HTTPError as e:
            raise _error(e.code, e.read(), e.headers.get("Content-Type", "")) from None
        except urllib.error.URLError as e:
            raise ConnectionError(f"cannot reach Velo at {self.url}: {e.reason}") from None


def _synthetic(parquet: bytes) -> Synthetic:
    """A synthetic release from its Parquet file: the rows, and the release record in its
    metadata."""
    tab = pyarrow.parquet.read_table(pa.BufferReader(parquet))
    md = tab.schema.metadata or {}
    release = json.loads(md.get(b"velo.synthetic", b"{}"))
    return Synthetic(table=tab.replace_schema_metadata(None), release=release)


def _given(body: Dict[str, Any], **options: Any) -> Dict[str, Any]:
    """body with every option that is given (not None)."""
    body.update({k: v for k, v in options.items() if v is not None})
    return body


def _num(v: Any, kind: Any) -> Any:
    """v as int or float (a numpy scalar is not JSON), or None."""
    return None if v is None else kind(v)


def _error(status: int, raw: bytes, content_type: str) -> VeloError:
    if content_type.startswith("application/problem+json"):
        try:
            p = json.loads(raw)
        except ValueError:
            p = None
        if isinstance(p, dict):
            code = str(p.get("code") or "")
            cls = _ERRORS.get(code, VeloError)
            if status == 401:
                cls = Unauthorized
            return cls(
                status,
                code,
                str(p.get("title") or ""),
                str(p.get("detail") or ""),
                position=p.get("position"),
                field=p.get("field"),
                request_id=p.get("request_id"),
                problem=p,
            )
    text = raw[:200].decode("utf-8", "replace")
    return VeloError(status, "http_error", "", f"unexpected answer: {text}")


def _meta(md: Mapping[bytes, bytes], key: str, default: Any = None, parse: bool = False) -> Any:
    v = md.get(("velo." + key).encode())
    if v is None:
        return default
    s = v.decode()
    return json.loads(s) if parse else s


def _result(table: pa.Table) -> Result:
    md = table.schema.metadata or {}
    return Result(
        table=table,
        release_id=_meta(md, "release_id", ""),
        project=_meta(md, "project", ""),
        dataset_version=_meta(md, "dataset_version", ""),
        cached=_meta(md, "cached", "false") == "true",
        epsilon=float(_meta(md, "epsilon", "0")),
        delta=float(_meta(md, "delta", "0")),
        confidence=float(_meta(md, "confidence", "0.95")),
        budget_left=Amount(float(_meta(md, "budget_left_epsilon", "0")), float(_meta(md, "budget_left_delta", "0"))),
        sql=_meta(md, "sql", ""),
        columns=list(_meta(md, "columns", [], parse=True) or []),
        budget_split=list(_meta(md, "budget_split", [], parse=True) or []),
        bounding=dict(_meta(md, "bounding", {}, parse=True) or {}),
        selection=_meta(md, "selection", None, parse=True),
        notes=list(_meta(md, "notes", [], parse=True) or []),
        clamp_to_range=_meta(md, "clamp_to_range", "false") == "true",
        dummy=_meta(md, "dummy", "false") == "true",
        price=_amount(_meta(md, "price", None, parse=True)),
    )
