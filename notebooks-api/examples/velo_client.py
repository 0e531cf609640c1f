"""A small client for Velo's HTTP API: Python's standard library only; pandas for Release.df.

    from velo_client import Client
    velo = Client.from_env()          # VELO_URL and VELO_TOKEN
    r = velo.query("SELECT region, COUNT(DISTINCT pid) AS people FROM booking GROUP BY region", project="wl", epsilon=0.5)
    print(r.table())                   # plain text: keys, noisy values with their 95% intervals
    r.df                               # with pandas, a DataFrame: keys, people, people_ci_lower, people_ci_upper
    r.budget_left                      # {'epsilon': ..., 'delta': ...}

Every number Velo returns is differentially private and was paid for from the project's
budget; the same query again is answered from the ledger's release cache at no cost.
Errors raise VeloError with the API's stable code (sql_rejected, budget_exhausted, ...).
"""

import json
import os
import urllib.error
import urllib.request


class VeloError(Exception):
    """A refusal or failure from the API (an application/problem+json answer)."""

    def __init__(self, status, code, detail, position=None, field=None, budget=None):
        super().__init__(f"{status} {code}: {detail}" + (f" (at position {position})" if position is not None else ""))
        self.status, self.code, self.detail, self.position, self.field = status, code, detail, position, field
        # budget_exhausted: {"project", "asked", "total", "spent", "left"}, each {"epsilon", "delta"}.
        self.budget = budget


class Release:
    """One release, in the shape of docs/design.md#the-release, with a pandas view."""

    def __init__(self, data):
        self.data = data
        self.columns = data["columns"]
        self.rows = data["rows"]
        self.ci = data["ci"]
        self.release_id = data["release_id"]
        self.cached = data["cached"]
        self.epsilon = data["epsilon"]
        self.delta = data["delta"]
        self.confidence = data["confidence"]
        self.budget_left = data["budget_left"]
        # A dummy release (query(..., dummy=True)): exact answers about made-up people from
        # the catalog, never the data's, free; price is what the real run costs.
        self.dummy = data.get("dummy", False)
        self.price = data.get("price")

    @property
    def df(self):
        """The release as a DataFrame: keys, each noisy value and its interval bounds (needs pandas)."""
        try:
            import pandas as pd
        except ImportError:
            raise ImportError(
                "Release.df needs pandas (pip install pandas, or apt install python3-pandas); without it, "
                "print(release.table()) shows the release and release.rows holds it. Asking the same query "
                "again costs nothing: the release cache answers it."
            ) from None

        records = []
        for row, ci in zip(self.rows, self.ci):
            rec = {}
            for col, value, interval in zip(self.columns, row, ci):
                rec[col["name"]] = value
                if col["kind"] == "dp":
                    lo, hi = interval if interval else (None, None)
                    rec[col["name"] + "_ci_lower"] = lo
                    rec[col["name"] + "_ci_upper"] = hi
            records.append(rec)
        names = []
        for col in self.columns:
            names.append(col["name"])
            if col["kind"] == "dp":
                names += [col["name"] + "_ci_lower", col["name"] + "_ci_upper"]
        return pd.DataFrame.from_records(records, columns=names)

    def table(self):
        """The release as plain text: one line per row, each noisy value with its 95% interval
        when it has one ("0.81 [0.77, 0.85]"). Needs nothing beyond the standard library."""
        header = [c["name"] + (" (95% CI)" if c["kind"] == "dp" and any(ci[i] for ci in self.ci) else "")
                  for i, c in enumerate(self.columns)]
        lines = []
        for row, ci in zip(self.rows, self.ci):
            cells = []
            for col, value, interval in zip(self.columns, row, ci):
                if col["kind"] == "dp" and interval:
                    cells.append(f"{_number(value)} [{_number(interval[0])}, {_number(interval[1])}]")
                elif col["kind"] == "dp":
                    cells.append(_number(value))
                else:
                    cells.append("" if value is None else str(value))
            lines.append(cells)
        widths = [max([len(h)] + [len(l[i]) for l in lines]) for i, h in enumerate(header)]
        out = ["  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip()]
        out += ["  ".join(c.ljust(w) for c, w in zip(l, widths)).rstrip() for l in lines]
        return "\n".join(out)

    def __repr__(self):
        state = "cached, not charged again" if self.cached else f"charged epsilon={self.epsilon} delta={self.delta}"
        if self.dummy:
            state = f"DUMMY DATA (made-up people, not the real answers), not charged; the real run costs {self.price}"
        return f"<Release {self.release_id}: {len(self.rows)} rows, {state}; budget left {self.budget_left}>"


def _number(x):
    """A noisy number, to the precision it deserves in a table."""
    if x is None:
        return ""
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return str(x)
    if x == int(x) and abs(x) < 1e15:  # counts, and bounds of their intervals
        return f"{int(x):,}"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


class Client:
    def __init__(self, url, token, timeout=120):
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout

    @classmethod
    def from_env(cls):
        """A client for $VELO_URL (default http://127.0.0.1:8080) with $VELO_TOKEN."""
        token = os.environ.get("VELO_TOKEN")
        if not token:
            raise RuntimeError("set VELO_TOKEN to your API token (velo demo prints one)")
        return cls(os.environ.get("VELO_URL", "http://127.0.0.1:8080"), token)

    def _call(self, method, path, body=None, accept="application/json"):
        headers = {"Authorization": "Bearer " + self.token, "Accept": accept}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return resp.read()
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                p = json.loads(raw)
            except ValueError:
                raise VeloError(e.code, "http_error", raw[:200].decode(errors="replace")) from None
            raise VeloError(p.get("status", e.code), p.get("code"), p.get("detail"), p.get("position"), p.get("field"), p.get("budget")) from None

    def query(self, sql, project, epsilon=None, delta=None, bounds=None, dry_run=False, max_groups_contributed=None, dummy=False):
        """Run one DP query and return its Release. dummy=True runs it on the dataset's dummy
        twin instead: exact answers about made-up people from the catalog, free (docs/clients.md)."""
        body = {"sql": sql, "project": project}
        if epsilon is not None:
            body["epsilon"] = epsilon
        if delta is not None:
            body["delta"] = delta
        if bounds:
            body["bounds"] = {k: list(v) for k, v in bounds.items()}
        if dry_run:
            body["dry_run"] = True
        if dummy:
            body["target"] = "dummy"
        if max_groups_contributed:
            body["max_groups_contributed"] = max_groups_contributed
        return Release(json.loads(self._call("POST", "/v1/queries", body)))

    def query_csv(self, sql, project, **options):
        """The same release as CSV text (leading '# key: value' lines carry its fields)."""
        body = {"sql": sql, "project": project, **options}
        return self._call("POST", "/v1/queries", body, accept="text/csv").decode()

    def query_arrow(self, sql, project, **options):
        """The same release as an Arrow IPC stream (bytes): pyarrow.ipc.open_stream(...) or polars.read_ipc_stream(...)."""
        body = {"sql": sql, "project": project, **options}
        return self._call("POST", "/v1/queries", body, accept="application/vnd.apache.arrow.stream")

    def catalog(self, project=None):
        """The tables and columns your projects may read, their public domains and bounds."""
        return json.loads(self._call("GET", "/v1/catalog" + (f"?project={project}" if project else "")))

    def projects(self):
        return json.loads(self._call("GET", "/v1/projects"))["projects"]

    def project(self, project_id):
        """A project with its budget: total, spent, left, expiry."""
        return json.loads(self._call("GET", f"/v1/projects/{project_id}"))

    def me(self):
        return json.loads(self._call("GET", "/v1/me"))


if __name__ == "__main__":
    # A quick look without Jupyter, with Python's standard library only: who am I, and one
    # question (the README's and velo demo's first one: the same query again costs nothing).
    velo = Client.from_env()
    me = velo.me()
    print(f"{me['user']} ({me['role']}), projects: {', '.join(me['projects'])}")
    project = os.environ.get("VELO_PROJECT", me["projects"][0] if me["projects"] else "wl")
    r = velo.query(
        "SELECT region, AVG(CAST(within_target AS INTEGER)) AS share_within_target, COUNT(DISTINCT pid) AS people "
        "FROM booking WHERE first_access GROUP BY region ORDER BY region",
        project=project,
        epsilon=1,
    )
    print(r)
    print(r.table())
    left = velo.project(project)["left"]
    print(f"budget left for {project}: epsilon {left['epsilon']}, delta {left['delta']}")
