"""The web client's files, checked without a browser: every one is package data (the web
port serves the installed copy), every module an HTML page or a module imports exists,
nothing is fetched from elsewhere (no CDN: the client works offline), and no code turns
strings into markup or code (innerHTML and friends, eval)."""

from __future__ import annotations

import fnmatch
import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WEBCLIENT = ROOT / "fastchat" / "webclient"
FILES = sorted(p for p in WEBCLIENT.rglob("*") if p.is_file())
SCRIPTS = [p for p in FILES if p.suffix == ".js"]

IMPORT_RE = re.compile(
    r"""^\s*(?:import|export)\s[^'"]*?from\s+["']([^"']+)["']|^\s*import\s+["']([^"']+)["']""", re.M
)
HTML_REF_RE = re.compile(r"""(?:src|href)=["']([^"']+)["']""")
UNSAFE_RE = re.compile(
    r"\b(innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\s*\(|new Function)"
)


def test_there_is_a_web_client() -> None:
    assert (WEBCLIENT / "index.html") in FILES
    assert len(SCRIPTS) >= 8


def test_every_file_is_package_data() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["fastchat"]
    for path in FILES:
        relative = path.relative_to(ROOT / "fastchat").as_posix()
        # setuptools' globs: "*" does not cross a "/"
        assert any(
            fnmatch.fnmatch(relative, p) and relative.count("/") == p.count("/") for p in patterns
        ), f"{relative} is not in [tool.setuptools.package-data]"


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.relative_to(WEBCLIENT).as_posix())
def test_imports_resolve_and_nothing_unsafe(script: Path) -> None:
    text = script.read_text()
    # comments may name what the code must never do
    code = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    code = re.sub(r"^\s*//.*$", "", code, flags=re.M)
    for m in IMPORT_RE.finditer(code):
        target = m[1] or m[2]
        assert target.startswith("./") or target.startswith("../"), f"non-relative import {target}"
        assert (script.parent / target).resolve().is_file(), f"{target} does not exist"
    unsafe = UNSAFE_RE.search(code)
    assert not unsafe, f"{script.name}: {unsafe[0]}"
    assert not re.search(r"https?://", code), "nothing is fetched from another site"


def test_the_page_loads_only_its_own_files() -> None:
    html = (WEBCLIENT / "index.html").read_text()
    refs = HTML_REF_RE.findall(html)
    assert "app.js" in refs and "style.css" in refs
    for ref in refs:
        if ref.startswith("data:"):
            continue
        assert "://" not in ref and not ref.startswith("//"), f"{ref}: from elsewhere"
        assert (WEBCLIENT / ref).is_file(), f"{ref} does not exist"


#: The web client's pure core, as STYLE.md wants the server's: no DOM, no network, no clock,
#: no storage (state.js is fed lines and the time; the parser and the commands are functions).
PURE_SCRIPTS = ["irc/parser.js", "state.js", "commands.js"]
IMPURE_RE = re.compile(
    r"\b(document|window|localStorage|sessionStorage|WebSocket|fetch|XMLHttpRequest"
    r"|setTimeout|setInterval|requestAnimationFrame|Date\.now|performance\.now)\b|new Date\(\)"
)


@pytest.mark.parametrize("name", PURE_SCRIPTS)
def test_pure_scripts_touch_no_dom_network_clock_or_storage(name: str) -> None:
    code = re.sub(r"/\*.*?\*/", "", (WEBCLIENT / name).read_text(), flags=re.S)
    code = re.sub(r"//.*$", "", code, flags=re.M)
    found = IMPURE_RE.search(code)
    assert not found, f"{name} uses {found[0]}"
