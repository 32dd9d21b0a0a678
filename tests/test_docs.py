"""Docs that cannot rot: every setting, command and option is documented."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

import click
import pytest

from spendgate.cli.main import cli
from spendgate.settings import SECTIONS, env_name

ROOT = Path(__file__).resolve().parents[1]


def read(name: str) -> str:
    return (ROOT / name).read_text(encoding="utf-8")


@pytest.mark.parametrize("cls", list(SECTIONS), ids=lambda c: c.__name__)
def test_every_setting_is_documented(cls: type) -> None:
    text = read("docs/configuration.md")
    assert f"[{SECTIONS[cls]}]" in text
    for f in fields(cls):
        assert f"`{f.name}`" in text, f"docs/configuration.md lacks setting {f.name}"
        assert f"`{env_name(cls, f.name)}`" in text


def commands(group: click.Group, prefix: str = "spendgate") -> list[tuple[str, click.Command]]:
    out: list[tuple[str, click.Command]] = []
    for name, command in group.commands.items():
        out.append((f"{prefix} {name}", command))
        if isinstance(command, click.Group):
            out += commands(command, f"{prefix} {name}")
    return out


@pytest.mark.parametrize(("name", "command"), commands(cli), ids=str)
def test_every_command_and_option_is_documented(name: str, command: click.Command) -> None:
    text = read("docs/cli.md")
    assert f"## `{name}`" in text, f"docs/cli.md lacks a section for {name}"
    section = text.split(f"## `{name}`", 1)[1].split("\n## ", 1)[0]
    for param in command.params:
        for opt in getattr(param, "opts", []):
            if opt.startswith("--") and opt != "--help":
                assert opt in section, f"docs/cli.md: {name} does not mention {opt}"


def test_readme_quick_start_is_two_commands_that_exist() -> None:
    text = read("README.md")
    block = text.split("## Quick start", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    lines = [line.split("#")[0].strip() for line in block.strip().splitlines()]
    assert lines == ["./scripts/run", "./scripts/test"]
    for line in lines:
        assert (ROOT / line).is_file()
    assert re.search(r"exec \./scripts/test", read(".ci/run"))
