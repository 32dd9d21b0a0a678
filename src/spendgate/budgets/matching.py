"""Which budgets apply to a call, fast with thousands of budgets (pure).

Budgets are grouped by the set of fields their scope names (its *shape*: ``("project",)``,
``("department", "model")``, ``()`` for a global budget). For each shape without a prefix
pattern, a dict maps the tuple of values to its budgets, so a call costs one dict lookup per shape
(per model name, for shapes that name ``model``) however many budgets exist. Budgets whose scope
holds a prefix (``anthropic.*``) are checked one by one; there are usually few.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from spendgate.budgets.model import Budget


@dataclass(frozen=True, slots=True)
class Subject:
    """What a budget scope can see of a call. ``models``: requested id, id sent, catalog key."""

    values: Mapping[str, str | None]  # canonical scope field -> the call's value
    models: tuple[str, ...]


class BudgetIndex:
    def __init__(self, budgets: Iterable[Budget]) -> None:
        self.budgets: dict[str, Budget] = {}
        self._exact: dict[tuple[str, ...], dict[tuple[str, ...], list[Budget]]] = {}
        self._prefixed: list[Budget] = []
        for budget in budgets:
            if not budget.enabled:
                continue
            self.budgets[budget.id] = budget
            if any(v.endswith("*") for v in budget.scope.values()):
                self._prefixed.append(budget)
                continue
            shape = tuple(sorted(budget.scope))
            values = tuple(budget.scope[f] for f in shape)
            self._exact.setdefault(shape, {}).setdefault(values, []).append(budget)

    def __len__(self) -> int:
        return len(self.budgets)

    def match(self, subject: Subject) -> list[Budget]:
        found: dict[str, Budget] = {}
        for shape, table in self._exact.items():
            for values in _candidates(shape, subject):
                for budget in table.get(values, ()):
                    found[budget.id] = budget
        for budget in self._prefixed:
            if matches(budget, subject):
                found[budget.id] = budget
        return list(found.values())


def _candidates(shape: Sequence[str], subject: Subject) -> Iterable[tuple[str, ...]]:
    choices: list[Sequence[str]] = []
    for name in shape:
        if name == "model":
            choices.append(subject.models)
            continue
        value = subject.values.get(name)
        if value is None:
            return ()
        choices.append((value,))
    return itertools.product(*choices)


def matches(budget: Budget, subject: Subject) -> bool:
    for name, pattern in budget.scope.items():
        options = subject.models if name == "model" else (subject.values.get(name),)
        if not any(v is not None and _fits(v, pattern) for v in options):
            return False
    return True


def _fits(value: str, pattern: str) -> bool:
    return value.startswith(pattern[:-1]) if pattern.endswith("*") else value == pattern
