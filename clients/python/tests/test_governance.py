"""Data permits as a researcher meets them: a project the DPO suspended refuses queries
with velo.ProjectInactive, naming the project and the DPO's reason, and charges nothing."""

import json
import urllib.request

import pytest

import velo


def _dpo(server, path: str, body: dict) -> dict:
    req = urllib.request.Request(
        server.url + path, data=json.dumps(body).encode(), method="POST",
        headers={"Authorization": "Bearer " + server.tokens["dpo"], "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=60) as resp:
        return json.load(resp)


def test_a_suspended_project_refuses_queries(server):
    conn = velo.connect(server.url, server.tokens["researcher"], project="wl")
    before = conn.budget()
    assert _dpo(server, "/v1/projects/wl/suspend", {"reason": "audit del permesso"})["suspended"] is True
    try:
        with pytest.raises(velo.ProjectInactive) as e:
            conn.query("SELECT region, COUNT(*) AS n FROM booking GROUP BY region", epsilon=0.1)
        assert isinstance(e.value, velo.Forbidden) and e.value.status == 403
        assert e.value.code == "project_suspended"
        assert "project wl is suspended" in e.value.detail and "audit del permesso" in e.value.detail
    finally:
        _dpo(server, "/v1/projects/wl/resume", {})
    after = conn.budget()
    assert after.spent == before.spent, "a refused query was charged"
