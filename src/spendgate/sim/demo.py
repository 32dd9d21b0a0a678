"""Demo traffic: a small company's Bedrock use, sent through a spendgate gateway.

``personas()`` is the cast: one API key each, with attribution defaults (department, project,
agent, application, environment). ``plan_call`` (pure, seeded) picks what a persona does next;
``Traffic`` sends it with httpx as Bedrock Converse / ConverseStream calls and counts outcomes.
The cast includes the patterns spendgate exists to catch:

- a flagship model doing trivial work (Opus answering yes/no ticket triage);
- an agent stuck in a loop (the same prompt, in the same session, again and again);
- prompts that repeat a large system prefix behind a cache point (cache writes, then reads);
- throttling and streams that fail half-way (spend wasted on errors).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

FLAGSHIP = "us.anthropic.claude-opus-4-5-20251101-v1:0"
SONNET = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
HAIKU = "us.anthropic.claude-haiku-4-5-20251001-v1:0"
NOVA_MICRO = "amazon.nova-micro-v1:0"
NOVA_LITE = "amazon.nova-lite-v1:0"
NOVA_PRO = "amazon.nova-pro-v1:0"
LLAMA = "meta.llama3-1-70b-instruct-v1:0"
MISTRAL = "mistral.mistral-large-2407-v1:0"

_TOPICS = (
    "refund policy",
    "quarterly revenue",
    "login failures",
    "shipping delays",
    "the onboarding flow",
    "GPU capacity",
    "a flaky integration test",
    "the pricing page",
    "churn in the EU",
    "the new API version",
)
_WORDS = (
    "customer",
    "account",
    "invoice",
    "policy",
    "refund",
    "shipping",
    "region",
    "warehouse",
    "credit",
    "escalation",
    "priority",
    "contract",
    "renewal",
    "support",
    "agent",
    "workflow",
    "release",
    "incident",
    "latency",
    "budget",
)


@dataclass(frozen=True, slots=True)
class Persona:
    """One API key's worth of traffic: who it is attributed to and how it behaves."""

    name: str
    defaults: Mapping[str, str]
    behaviour: str  # chat | trivial | loop | cached | stream
    models: tuple[str, ...]
    users: tuple[str, ...]
    weight: int


@dataclass(frozen=True, slots=True)
class Call:
    persona: str
    model_id: str
    operation: str  # converse | converse-stream
    body: dict[str, Any]
    headers: dict[str, str]


@dataclass(slots=True)
class Tally:
    """What the traffic did so far (thread-safe counters)."""

    sent: int = 0
    ok: int = 0
    failed: int = 0
    by_persona: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, persona: str, ok: bool) -> None:
        with self._lock:
            self.sent += 1
            self.ok += ok
            self.failed += not ok
            self.by_persona[persona] = self.by_persona.get(persona, 0) + 1


def personas() -> tuple[Persona, ...]:
    """The demo company: five departments, seven agents, a dozen people."""
    prod = {"environment": "production"}

    def who(department: str, project: str, agent: str, app: str) -> dict[str, str]:
        return {"department": department, "project": project, "agent": agent, "application": app}

    return (
        Persona(
            "support-triage",
            who("support", "helpdesk", "ticket-triage", "zendesk-bridge") | prod,
            "trivial",
            (FLAGSHIP,),
            ("amara", "li"),
            3,
        ),
        Persona(
            "support-answers",
            who("support", "helpdesk", "answer-bot", "help-center") | prod,
            "cached",
            (SONNET, HAIKU),
            ("amara", "li", "jonas"),
            5,
        ),
        Persona(
            "code-review",
            who("engineering", "platform", "code-reviewer", "ci") | prod,
            "stream",
            (SONNET, LLAMA),
            ("dev", "priya", "tomas"),
            4,
        ),
        Persona(
            "sql-fixer",
            who("engineering", "data-pipeline", "sql-fixer", "airflow") | prod,
            "loop",
            (NOVA_PRO,),
            ("etl-service",),
            3,
        ),
        Persona(
            "copywriter",
            who("marketing", "campaigns", "copywriter", "cms") | prod,
            "chat",
            (NOVA_LITE, LLAMA, HAIKU),
            ("sofia", "mehdi"),
            3,
        ),
        Persona(
            "forecaster",
            who("finance", "forecasting", "report-writer", "sheets") | {"environment": "staging"},
            "chat",
            (MISTRAL, HAIKU),
            ("grace",),
            2,
        ),
        Persona(
            "eval-runner",
            who("research", "eval-harness", "benchmark-runner", "notebooks") | prod,
            "chat",
            (NOVA_MICRO, HAIKU, NOVA_LITE),
            ("yuki", "omar"),
            3,
        ),
    )


def knowledge_base() -> str:
    """The large system prefix the answer bot repeats on every call (about 2,500 tokens)."""
    rng = random.Random(7)
    lines = [
        f"Article {n}: " + " ".join(rng.choice(_WORDS) for _ in range(30)) + "."
        for n in range(1, 50)
    ]
    return "You are the help-center assistant. Answer only from these articles.\n" + "\n".join(
        lines
    )


def plan_call(rng: random.Random, persona: Persona, step: int, prefix: str) -> Call:
    """What ``persona`` sends next (pure: the same seed gives the same calls)."""
    user = rng.choice(persona.users)
    topic = rng.choice(_TOPICS)
    headers = {"X-User": user, "X-Sim-Latency-Ms": str(rng.randint(20, 180))}
    system: list[dict[str, Any]] = []
    max_tokens, operation = 600, "converse"
    if persona.behaviour == "trivial":
        text = f"Ticket: 'Question about {topic}'. Is this a billing ticket? Answer yes or no."
        headers["X-Sim-Output-Tokens"] = "1"
        max_tokens = 5
    elif persona.behaviour == "loop":
        text = "Fix this SQL so it runs: SELECT * FROM orders WHERE created_at > yesterday"
        headers["X-Session-Id"] = "sql-fixer-run-0042"
        headers["X-Workflow-Id"] = "nightly-etl"
    elif persona.behaviour == "cached":
        system = [{"text": prefix}, {"cachePoint": {"type": "default"}}]
        text = f"A customer asks about {topic}. What should I tell them?"
        headers["X-Session-Id"] = f"chat-{user}-{step // 5}"
    elif persona.behaviour == "stream":
        operation = "converse-stream"
        text = f"Review this change to {topic}: " + " ".join(rng.choices(_WORDS, k=120))
        headers["X-Sim-Output-Tokens"] = str(rng.randint(200, 900))
        max_tokens = 1000
        if rng.random() < 0.06:
            headers["X-Sim-Error"] = "stream:internal"
            headers["X-Sim-Error-After"] = str(rng.randint(3, 12))
    else:
        text = f"Write a short note about {topic}. " + " ".join(rng.choices(_WORDS, k=40))
    if rng.random() < 0.03 and "X-Sim-Error" not in headers:
        headers["X-Sim-Error"] = "throttling"
    body: dict[str, Any] = {
        "messages": [{"role": "user", "content": [{"text": text}]}],
        "inferenceConfig": {"maxTokens": max_tokens},
    }
    if system:
        body["system"] = system
    return Call(persona.name, rng.choice(persona.models), operation, body, headers)


def create_keys(
    client: httpx.Client, admin_token: str, cast: tuple[Persona, ...]
) -> dict[str, str]:
    """One gateway API key per persona, made through the admin API; persona name -> key."""
    keys: dict[str, str] = {}
    auth = {"Authorization": f"Bearer {admin_token}"}
    for persona in cast:
        answer = client.post(
            "/api/v1/keys",
            json={"name": f"demo-{persona.name}", "defaults": dict(persona.defaults)},
            headers=auth,
        )
        answer.raise_for_status()
        keys[persona.name] = answer.json()["key"]
    return keys


def budgets() -> tuple[dict[str, Any], ...]:
    """The demo's budgets (admin API form): one alert, one cost cap, and a rate limit that
    stops the looping agent once it has made 200 calls in an hour."""
    return (
        {
            "name": "support monthly",
            "scope": {"department": "support"},
            "metric": "cost_usd",
            "window": "calendar_month",
            "limit": "25",
            "action": "alert",
        },
        {
            "name": "engineering daily",
            "scope": {"department": "engineering"},
            "metric": "cost_usd",
            "window": "calendar_day",
            "limit": "20",
        },
        {
            "name": "sql-fixer loop guard",
            "scope": {"agent": "sql-fixer"},
            "metric": "requests",
            "window": "hour",
            "limit": "200",
        },
    )


def create_budgets(client: httpx.Client, admin_token: str) -> int:
    """Create the demo budgets through the admin API; those that exist already (a demo folder
    used before) are kept. Returns how many were created."""
    made = 0
    for doc in budgets():
        answer = client.post(
            "/api/v1/budgets", json=doc, headers={"Authorization": f"Bearer {admin_token}"}
        )
        if answer.status_code != 409:
            answer.raise_for_status()
            made += 1
    return made


class Traffic:
    """Sends planned calls to the gateway from ``workers`` threads until stopped or done."""

    def __init__(
        self,
        gateway_url: str,
        keys: Mapping[str, str],
        *,
        cast: tuple[Persona, ...] | None = None,
        seed: int = 1,
        workers: int = 4,
        pause_s: float = 0.0,
    ) -> None:
        self.url = gateway_url
        self.keys = dict(keys)
        self.cast = cast or personas()
        self.seed = seed
        self.workers = workers
        self.pause_s = pause_s
        self.tally = Tally()
        self._prefix = knowledge_base()

    def run(self, stop: threading.Event, limit: int | None = None) -> Tally:
        """Block until ``stop`` is set or ``limit`` calls were sent (shared by all workers)."""
        budget = _Budget(limit)
        threads = [
            threading.Thread(target=self._work, args=(n, stop, budget), daemon=True)
            for n in range(self.workers)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return self.tally

    def _work(self, number: int, stop: threading.Event, budget: _Budget) -> None:
        rng = random.Random(self.seed * 1000 + number)
        weights = [p.weight for p in self.cast]
        with httpx.Client(base_url=self.url, timeout=60) as client:
            step = 0
            while not stop.is_set() and budget.take():
                persona = rng.choices(self.cast, weights)[0]
                call = plan_call(rng, persona, step, self._prefix)
                self.tally.add(persona.name, self._send(client, call))
                step += 1
                if self.pause_s:
                    stop.wait(self.pause_s * rng.uniform(0.5, 1.5))

    def _send(self, client: httpx.Client, call: Call) -> bool:
        headers = {"Authorization": f"Bearer {self.keys[call.persona]}", **call.headers}
        path = f"/model/{call.model_id}/{call.operation}"
        try:
            with client.stream("POST", path, json=call.body, headers=headers) as answer:
                for _ in answer.iter_bytes():
                    pass
                return answer.status_code == 200
        except httpx.HTTPError:
            return False


class _Budget:
    """How many calls are left to send (None = no limit), shared by the workers."""

    def __init__(self, limit: int | None) -> None:
        self._left = limit
        self._lock = threading.Lock()

    def take(self) -> bool:
        if self._left is None:
            return True
        with self._lock:
            if self._left <= 0:
                return False
            self._left -= 1
            return True


def wait_until(check: Callable[[], bool], timeout_s: float, step_s: float = 0.05) -> bool:
    """Poll ``check`` until it is true or ``timeout_s`` passes."""
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(step_s)
    return True
