"""Velo's Python client: differentially private SQL over FSE and CUP extracts.

    import velo
    conn = velo.connect("http://127.0.0.1:8080", token, project="wl")
    conn.price("SELECT region, COUNT(*) AS n FROM booking GROUP BY region", epsilon=0.5)
    r = conn.query("SELECT region, COUNT(*) AS n FROM booking GROUP BY region", epsilon=0.5)
    r.to_pandas()        # region, n, n_ci_lower, n_ci_upper, n_flags
    conn.budget().left   # Amount(epsilon=..., delta=...)

Refusals raise VeloError subclasses carrying the API's code and, for SQL, the position.
"""

from ._client import *  # noqa: F401,F403 (the public names, listed once in _client)
from ._client import __all__  # noqa: F401

__version__ = "0.1.0"
