"""Readers for the shipping files: Dockerfile, .dockerignore, env files, Markdown.

Small on purpose: they read what this repository writes, for static checks
(no Docker engine runs where the tests run).
"""

import json
import os
import re
import shlex
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[4]
APP_DIR = REPO_ROOT / "backend-py/app"
DOCKERFILE = REPO_ROOT / "backend-py/Dockerfile"
DOCKERIGNORE = REPO_ROOT / ".dockerignore"
COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
README = REPO_ROOT / "README.md"
CLAUDE_MD = REPO_ROOT / "CLAUDE.md"
EXAMPLE_ENV = REPO_ROOT / "env/backend/example.env"
LOCAL_ENV = REPO_ROOT / "env/backend/local.env"
MAKEFILE = REPO_ROOT / "Makefile"

_VARIABLE = re.compile(r"\$\{(\w+)\}|\$(\w+)")


def uv_binary() -> str:
    """The uv running these tests (``uv run`` sets ``UV``), else the Makefile's."""
    return (
        os.environ.get("UV") or shutil.which("uv") or str(REPO_ROOT / ".tools/bin/uv")
    )


# -- Dockerfile ----------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    """One Dockerfile instruction, continuation lines joined."""

    keyword: str
    value: str

    def exec_form(self) -> list[str] | None:
        """The JSON array of an exec-form CMD/HEALTHCHECK/..., else None."""
        start = self.value.find("[")
        if start == -1:
            return None
        try:
            parsed = json.loads(self.value[start:])
        except json.JSONDecodeError:
            return None
        return [str(part) for part in parsed] if isinstance(parsed, list) else None

    def flags_and_args(self) -> tuple[dict[str, str], list[str]]:
        """``--name=value`` flags, then the other words (COPY, RUN --mount...)."""
        flags: dict[str, str] = {}
        words = shlex.split(self.value)
        while words and words[0].startswith("--"):
            name, _, value = words.pop(0)[2:].partition("=")
            flags[name] = value
        return flags, words


@dataclass
class Stage:
    """A build stage: its base image (global ARGs substituted) and instructions."""

    name: str | None
    base: str
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        """The stage's instructions with this keyword."""
        return [i for i in self.instructions if i.keyword == keyword]

    def last(self, keyword: str) -> Instruction | None:
        """The stage's last instruction with this keyword."""
        found = self.all(keyword)
        return found[-1] if found else None

    def env(self) -> dict[str, str]:
        """Variables set by ENV (``KEY=value`` pairs; the stage's own only)."""
        values: dict[str, str] = {}
        for instruction in self.all("ENV"):
            for word in shlex.split(instruction.value):
                key, _, value = word.partition("=")
                values[key] = value
        return values


def read_instructions(text: str) -> list[Instruction]:
    """The instructions of a Dockerfile (comments and blank lines dropped)."""
    instructions: list[Instruction] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):  # a comment inside a continued instruction
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, value = (pending + line).partition(" ")
        instructions.append(Instruction(keyword.upper(), " ".join(value.split())))
        pending = ""
    return instructions


def substitute(text: str, values: dict[str, str]) -> str:
    """Replace ``$NAME`` and ``${NAME}`` by their values (unknown ones stay)."""
    return _VARIABLE.sub(
        lambda m: values.get(m[1] or m[2], m[0]),
        text,
    )


def read_stages(path: Path = DOCKERFILE) -> tuple[dict[str, str], list[Stage]]:
    """The global ARG defaults and the stages of a Dockerfile."""
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for instruction in read_instructions(path.read_text(encoding="utf-8")):
        if instruction.keyword == "FROM":
            words = instruction.value.split()
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            stages.append(Stage(name, substitute(words[0], global_args)))
        elif not stages and instruction.keyword == "ARG":
            key, _, value = instruction.value.partition("=")
            global_args[key] = value
        elif stages:
            stages[-1].instructions.append(instruction)
    return global_args, stages


# -- .dockerignore ---------------------------------------------------------------


_GLOB_TOKEN = re.compile(r"\*\*/|\*\*|\*|\?|\[[^\]]*\]|[^*?\[]+")
_GLOB_REGEX = {"**/": "(?:.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """A Go ``filepath.Match`` pattern with Docker's ``**``, as a regex."""
    parts = []
    for token in _GLOB_TOKEN.findall(pattern):
        if token in _GLOB_REGEX:
            parts.append(_GLOB_REGEX[token])
        elif token.startswith("["):
            parts.append(token)  # a character class reads the same
        else:
            parts.append(re.escape(token))
    return re.compile("".join(parts))


@dataclass(frozen=True)
class DockerIgnore:
    """The rules of a .dockerignore: the last matching pattern decides."""

    rules: tuple[tuple[bool, re.Pattern[str]], ...]

    @classmethod
    def read(cls, path: Path = DOCKERIGNORE) -> "DockerIgnore":
        """Parse the file (``!`` re-includes; a rule also covers subpaths)."""
        rules = []
        for raw in path.read_text(encoding="utf-8").splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            include = line.startswith("!")
            pattern = line.lstrip("!").strip().strip("/")
            rules.append((include, _pattern_regex(pattern)))
        return cls(tuple(rules))

    def sends(self, relative_path: str) -> bool:
        """Whether a file at this path (from the context root) is in the context."""
        parts = relative_path.strip("/").split("/")
        prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
        sent = True
        for include, regex in self.rules:
            if any(regex.fullmatch(prefix) for prefix in prefixes):
                sent = include
        return sent


# -- env files ---------------------------------------------------------------------


def read_env_file(path: Path) -> dict[str, str]:
    """``NAME=value`` lines of an env file (comments and blanks skipped)."""
    values: dict[str, str] = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, separator, value = line.partition("=")
        assert separator, f"{path.name}: not NAME=value: {line!r}"
        values[name.strip()] = value.strip()
    return values


def commented_env_names(path: Path) -> set[str]:
    """Names in commented-out ``# NAME=value`` lines."""
    pattern = re.compile(r"^#\s*([A-Z][A-Z0-9_]*)=")
    lines = path.read_text(encoding="utf-8").splitlines()
    return {m[1] for m in map(pattern.match, lines) if m}


# -- Markdown ----------------------------------------------------------------------


@dataclass(frozen=True)
class CodeBlock:
    """A fenced code block: its info string's words and its text."""

    info: tuple[str, ...]
    text: str

    @property
    def language(self) -> str:
        """The first word of the info string ("" when there is none)."""
        return self.info[0] if self.info else ""


def code_blocks(markdown: str) -> list[CodeBlock]:
    """Every fenced (```) block of a Markdown text, in order."""
    blocks: list[CodeBlock] = []
    fence = re.compile(r"^```(.*)$")
    lines = iter(markdown.splitlines())
    for line in lines:
        opening = fence.match(line)
        if opening is None:
            continue
        body = []
        for inner in lines:
            if inner.startswith("```"):
                break
            body.append(inner)
        blocks.append(CodeBlock(tuple(opening[1].split()), "\n".join(body)))
    return blocks


def shell_commands(block: CodeBlock) -> Iterator[str]:
    """The commands of a shell block: comments dropped, continuations joined."""
    pending = ""
    for raw in block.text.splitlines():
        line = raw.split(" #", 1)[0].rstrip() if not raw.startswith("#") else ""
        if not line and not pending:
            continue
        if line.endswith("\\"):
            pending += line[:-1].strip() + " "
            continue
        command = " ".join((pending + line).split())
        pending = ""
        if command:
            yield command


def table_rows(markdown: str, header: str) -> list[list[str]]:
    """The body rows of the Markdown table whose header row starts with ``header``."""
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows


def unquote(cell: str) -> str:
    """A table cell without its surrounding backticks."""
    return cell.strip().removeprefix("`").removesuffix("`")
