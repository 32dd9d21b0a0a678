"""Budgets and rate limits that stop spend before it happens.

    model      Budget (scope, metric, window, limit, action), parsing from JSON/TOML/CLI strings
    windows    window arithmetic: period start and reset for calendar and rolling windows
    matching   which budgets apply to a call (an index, fast with thousands of budgets)
    estimate   a call's worst case: input estimated from the body, output = maxTokens or the
               model's maximum, priced (an unpriced model at a conservative rate, never $0)
    counters   the Counter protocol and the in-memory backend; redis_counters: the Redis one
    status     where a budget stands (spent, reserved, remaining, reset, projection)

See docs/budgets.md.
"""
