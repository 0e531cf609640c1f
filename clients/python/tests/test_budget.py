"""Spending a project's whole budget, on a demo of its own (the session's is shared)."""

import pytest

import velo
from conftest import demo


@pytest.fixture(scope="module")
def spent_demo():
    with demo(500) as d:
        yield d


def test_budget_exhausted_says_how_much(spent_demo):
    conn = velo.connect(spent_demo.url, spent_demo.tokens["researcher"])
    left = conn.budget().left.epsilon
    cap = 2.0  # the demo project's max_epsilon_per_query
    i = 0
    while left >= cap:
        conn.query(f"SELECT COUNT(*) AS n FROM booking WHERE wait_days >= {-1000 - i}", epsilon=cap)
        left -= cap
        i += 1
    with pytest.raises(velo.BudgetExhausted) as e:
        conn.query("SELECT COUNT(*) AS n FROM booking WHERE wait_days >= -1", epsilon=cap)
    assert e.value.status == 409 and e.value.code == "budget_exhausted"
    assert e.value.asked.epsilon == cap
    assert e.value.left.epsilon == pytest.approx(left)
    assert e.value.total.epsilon == 15
