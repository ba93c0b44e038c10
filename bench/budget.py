"""The time budget (src/shared/budget.py) as rows: computed from the constants the code uses, and
each function's Timeout read from template.yaml, so the figures cannot drift from either."""

from __future__ import annotations

from bench.report import Row
from devtools.template import load_template
from shared.budget import DEFAULT_BUDGET, Deadline, TimeBudget


def rows(budget: TimeBudget = DEFAULT_BUDGET) -> list[Row]:
    resources = load_template()["Resources"]
    functions = ("OAuthFunction", "EventsFunction", "SweepFunction")
    timeouts = {name: resources[name]["Properties"]["Timeout"] for name in functions}
    token, graphql = budget.token, budget.graphql
    out = [
        Row("token attempt (connect + read timeout)", f"{token.attempt_seconds:.2f} s"),
        Row(
            "worst-case token request",
            f"{token.worst_case_seconds:.1f} s",
            f"{token.attempts} x {token.attempt_seconds:.2f} + {token.attempts - 1} x {token.backoff_cap:.1f} backoff",
        ),
        Row("worst-case refresh (request + store reserve)", f"{budget.worst_case_refresh_seconds:.1f} s"),
        Row("worst-case GraphQL query", f"{graphql.worst_case_seconds:.1f} s"),
        Row(
            "refresh starts ahead of expiry",
            f"{budget.refresh_ahead_seconds}-"
            f"{budget.refresh_ahead_seconds + budget.refresh_jitter_seconds} s (per-container jitter)",
        ),
    ]
    for name, timeout in timeouts.items():
        deadline = Deadline.after(timeout - budget.lambda_margin_seconds)
        lease = budget.lease_seconds(deadline)
        spend = min(deadline.remaining(), budget.worst_case_refresh_seconds)
        fits = int((timeout - budget.lambda_margin_seconds - budget.store_reserve_seconds) // token.attempt_seconds)
        out += [
            Row(f"{name} Timeout (template.yaml)", f"{timeout} s"),
            Row(
                f"{name}: lease taken at invocation start",
                f"{lease} s",
                f"> {spend + budget.clock_skew_seconds:.1f} s",
                lease > spend + budget.clock_skew_seconds,
            ),
            Row(f"{name}: whole token attempts that fit", str(min(fits, token.attempts)), ">= 1", fits >= 1),
        ]
    sweep_start = token.attempt_seconds + budget.store_reserve_seconds
    sweep_window = timeouts["SweepFunction"] - budget.lambda_margin_seconds - budget.store_reserve_seconds - sweep_start
    out.append(
        Row(
            "SweepFunction: starts refreshes for the first",
            f"{sweep_window:.0f} s",
            f"then defers (a start needs {sweep_start:.2f} s; the gauge keeps {budget.store_reserve_seconds:.0f} s)",
        )
    )
    longest = budget.longest_lease_seconds + budget.min_validity_seconds
    out.append(
        Row(
            "refresh ahead > longest lease + min validity",
            f"{budget.refresh_ahead_seconds} s",
            f"> {longest:.1f} s",
            budget.refresh_ahead_seconds > longest,
        )
    )
    return out
