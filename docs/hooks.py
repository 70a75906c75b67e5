"""MkDocs hooks of d2lconv's site: the pages show the package's own code and the command's own help.

In a page's Markdown:

- ``<!-- tabs: MODULE NAME [NAME ...] -->`` becomes content tabs, one per framework, each showing the source
  of those functions or classes as ``d2lconv/backends/<tab>/MODULE.py`` defines them: the code the tests run,
  read with ``ast`` (no framework is imported).
- ``<!-- source: PATH NAME [NAME ...] -->`` becomes one code block with those definitions of ``PATH`` (a
  framework-neutral module, the same for every tab).
- ``<!-- help -->`` becomes every ``d2lconv`` command's ``--help``, formatted by its argparse parser.
- ``<!-- include: FILE -->`` becomes the text of a file of the repository (CONTRIBUTING.md), its links to
  ``docs/PAGE.md`` made links to the page.

Notebook pages (rendered by mkdocs-jupyter from their stored outputs) get their TeX as MathML, which the
browser draws itself, in place of MathJax from a CDN: the site requests nothing from another host.

A warning fails ``mkdocs build --strict``: a name a tab lacks, a file that is missing, a public name of
``d2lconv`` without a docstring.
"""

from __future__ import annotations

import argparse
import ast
import logging
import os
import re
import textwrap
from pathlib import Path
from typing import Any

import griffe
from bs4 import BeautifulSoup, NavigableString
from latex2mathml.converter import convert

from d2lconv import backends, cli

ROOT = Path(__file__).resolve().parents[1]
TABS = ROOT / "d2lconv" / "backends"
log = logging.getLogger("mkdocs.plugins.d2lconv")

TABS_DIRECTIVE = re.compile(r"^<!-- tabs: (\w+) ([\w ]+?) -->$", re.M)
SOURCE_DIRECTIVE = re.compile(r"^<!-- source: ([\w/.]+\.py) ([\w ]+?) -->$", re.M)
HELP_DIRECTIVE = re.compile(r"^<!-- help -->$", re.M)
INCLUDE_DIRECTIVE = re.compile(r"^<!-- include: ([\w./-]+) -->$", re.M)
HELP_COLUMNS = "100"


def tab_label(backend: str) -> str:
    """The framework's name as its tab calls itself ("The PyTorch tab: ..." -> "PyTorch")."""
    docstring = ast.get_docstring(ast.parse((TABS / backend / "__init__.py").read_text())) or ""
    found = re.match(r"The (.+?) tab\b", docstring)
    if not found:
        log.warning("d2lconv/backends/%s/__init__.py: its docstring does not start 'The <framework> tab'", backend)
        return backend
    return found.group(1)


def source_of(path: Path, name: str) -> str | None:
    """The source of the top-level function or class ``name`` of ``path``, decorators included."""
    text = path.read_text()
    for node in ast.parse(text).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name == name:
            first = min([node.lineno, *(decorator.lineno for decorator in node.decorator_list)])
            return "\n".join(text.splitlines()[first - 1 : node.end_lineno])
    return None


def code_tabs(module: str, names: list[str], page: str) -> str:
    """Content tabs, one per backend of the registry, with the named definitions of that tab's module."""
    tabs = []
    for backend in backends.BACKENDS:
        path = TABS / backend / f"{module}.py"
        sources = []
        for name in names:
            source = source_of(path, name) if path.exists() else None
            if source is None:
                log.warning("%s: d2lconv/backends/%s/%s.py defines no %s", page, backend, module, name)
                continue
            sources.append(source)
        code = "\n\n\n".join(sources)
        title = f"d2lconv/backends/{backend}/{module}.py"
        block = f'```python title="{title}"\n{code}\n```'
        tabs.append(f'=== "{tab_label(backend)}"\n\n{textwrap.indent(block, "    ")}\n')
    return "\n".join(tabs)


def code_block(relative: str, names: list[str], page: str) -> str:
    """One code block with the named definitions of a framework-neutral module of the repository."""
    path = ROOT / relative
    sources = [source_of(path, name) if path.is_file() else None for name in names]
    for name, source in zip(names, sources, strict=True):
        if source is None:
            log.warning("%s: %s defines no %s", page, relative, name)
    code = "\n\n\n".join(source for source in sources if source)
    return f'```python title="{relative}"\n{code}\n```'


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The subcommands' parsers, in the order ``d2lconv --help`` lists them."""
    for action in parser._actions:  # argparse offers no public way to reach its subparsers
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def command_help() -> str:
    """``d2lconv --help`` and every ``d2lconv COMMAND --help``, each under its own heading."""
    previous = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = HELP_COLUMNS  # argparse wraps to the terminal's width: the same on every build
    try:
        parser = cli.build_parser()
        parts = [f"## d2lconv\n\n```text\n{parser.format_help().rstrip()}\n```\n"]
        for name, command in subcommands(parser).items():
            parts.append(f"## d2lconv {name}\n\n```text\n{command.format_help().rstrip()}\n```\n")
    finally:
        if previous is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = previous
    return "\n".join(parts)


def included(relative: str, page: str) -> str:
    """A repository file's text, its links into ``docs/`` made relative to the site."""
    path = ROOT / relative
    if not path.is_file():
        log.warning("%s: <!-- include: %s --> names no file", page, relative)
        return ""
    return re.sub(r"\]\(docs/", "](", path.read_text())


def on_page_markdown(markdown: str, page: Any, **_: Any) -> str:
    """Expand the directives of a Markdown page."""
    where = page.file.src_uri
    markdown = TABS_DIRECTIVE.sub(lambda found: code_tabs(found[1], found[2].split(), where), markdown)
    markdown = SOURCE_DIRECTIVE.sub(lambda found: code_block(found[1], found[2].split(), where), markdown)
    markdown = HELP_DIRECTIVE.sub(lambda _: command_help(), markdown)
    return INCLUDE_DIRECTIVE.sub(lambda found: included(found[1], where), markdown)


MATHJAX = re.compile(r"<!-- Load mathjax -->.*?<!-- End of mathjax configuration -->", re.S)
MATH = re.compile(r"\$\$(.+?)\$\$|\$([^$]+?)\$", re.S)


def mathml(text: str) -> str:
    """``text`` with each ``$...$`` (inline) and ``$$...$$`` (display) as MathML."""

    def one(found: re.Match[str]) -> str:
        display = found[1] is not None
        return convert((found[1] if display else found[2]).strip(), display="block" if display else "inline")

    return MATH.sub(one, text)


def on_post_page(output: str, page: Any, **_: Any) -> str:
    """A notebook page: its TeX drawn as MathML, and no MathJax (it would load from a CDN)."""
    if not page.file.src_uri.endswith(".ipynb"):
        return output
    output = MATHJAX.sub("", output)
    soup = BeautifulSoup(output, "html.parser")
    for cell in soup.select(".jp-RenderedMarkdown"):
        for string in list(cell.find_all(string=MATH)):
            if isinstance(string, NavigableString) and not string.find_parent(["code", "pre"]):
                string.replace_with(BeautifulSoup(mathml(str(string)), "html.parser"))
    return str(soup)


def on_pre_build(config: Any, **_: Any) -> None:
    """Warn (so ``--strict`` fails) for every public name of ``d2lconv`` that has no docstring."""
    package = griffe.load("d2lconv", search_paths=[str(ROOT)], resolve_aliases=True)
    for name in package.exports or []:
        member = package[name]
        undocumented = [member] if not member.docstring else []
        if member.is_class:
            undocumented += [
                method
                for method_name, method in member.members.items()
                if method.is_function and not method_name.startswith("_") and not method.docstring
            ]
        for item in undocumented:
            log.warning("%s has no docstring (the API reference is built from them)", item.path)
