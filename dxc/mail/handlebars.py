"""Handlebars templates: the built-in defaults and compiling them with pybars.

The eleven template files of Dexie Cloud (``dexie-cloud templates pull``)
live under ``dxc/mail/templates/`` with their relative paths. ``{{x}}``
HTML-escapes, ``{{{x}}}`` does not; a missing variable renders as nothing.

pybars ends a comment at the first ``}}``, while Handlebars ends ``{{!-- … --}}``
at ``--}}`` (the defaults' comments mention ``{{{variables}}}``), so long
comments are removed before compiling, with the line end that follows them.
Compiling is slow (about a millisecond per mustache), so compiled templates
are cached by their text and a template's size and mustache count are capped.

pybars turns a template into Python source and pastes some parts of tags
(``[segment]`` paths, partial names) into it unescaped: a template could run
code on the server. So before compiling, every tag must be one of a safe
subset of Handlebars: ``{{path args}}``, ``{{{path args}}}``, ``{{&path}}``,
``{{#block args}}``, ``{{^block}}``, ``{{else}}``, ``{{/block}}`` and comments,
where a path is made of letters, digits, ``_ @ -`` joined by ``.`` or ``/``
(``this``, ``../x``, ``@index`` included) and an argument is a path, a number,
``true``/``false``/``null``, a quoted string without quotes or backslashes
inside, or ``name=value``. Partials, ``[segment]`` paths, sub-expressions,
raw blocks and ``__`` anywhere in a tag are refused.

pybars also looks a name up as a Python attribute when it is not a key, and
calls what it finds (``{{x.format}}`` on a string would run ``str.format``).
Variables are therefore handed over as :class:`_Map` and :class:`_Text`,
which answer every unknown name with nothing.
"""

from __future__ import annotations

import functools
import json
import re
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

DEFAULTS_DIR = Path(__file__).parent / "templates"
EMAIL_DIR = "email-templates"
WEB_DIR = "web-templates"
#: Mails to an installation's operators (``flask dxc delete-db``): built in, never
#: customised by a database's templates, never listed by ``templates pull``.
OPERATOR_DIR = "operator-templates"
#: The kinds of e-mail, each with a subject, a text body, an HTML body and test data.
EMAIL_KINDS = ("otp", "invite")
EMAIL_PARTS = ("subject", "body-txt", "body-html")
WEB_TEMPLATES = ("root-template", "message", "error")
#: The largest template accepted, in characters and in tags (compiling time grows with both).
MAX_TEMPLATE_CHARS = 64 * 1024
MAX_TEMPLATE_TAGS = 1000
MAX_VARIABLE_DEPTH = 32

_LONG_COMMENT = re.compile(r"\{\{!--.*?--\}\}[ \t]*(?:\r?\n)?", re.DOTALL)
_SEGMENT = r"(?:[\w@-]+|\.\.)"
_PATH = rf"(?:{_SEGMENT}(?:[./]{_SEGMENT})*|\.)"
_VALUE = rf"""(?:{_PATH}|-?\d+|"[^"\\\n]*"|'[^'\\\n]*')"""
_ARGS = rf"(?:\s+(?:[A-Za-z_]\w*=)?{_VALUE})*"
_SAFE_TAG = re.compile(
    rf"""\{{\{{~?(?:
        ![^}}]*(?:\}}(?!\}})[^}}]*)*          # a short comment, up to the first }}}}
      | \{{\s*{_PATH}{_ARGS}\s*~?\}}         # {{{{{{path args}}}}}}
      | [&#^]?\s*{_PATH}{_ARGS}\s*            # {{{{path args}}}}, {{{{&path}}}}, blocks
      | \^\s*                                  # {{{{^}}}} (else)
      | /\s*{_PATH}\s*                         # {{{{/block}}}}
    )~?\}}\}}""",
    re.VERBOSE,
)


class TemplateError(ValueError):
    """A template that cannot be compiled or rendered."""


def email_path(kind: str, part: str) -> str:
    return f"{EMAIL_DIR}/{kind}-{part}.handlebars"


def testdata_path(kind: str) -> str:
    return f"{EMAIL_DIR}/{kind}-testdata.json"


#: Every template path, relative to the ``dexie-cloud/`` folder of the CLI.
TEMPLATE_PATHS: tuple[str, ...] = (
    *(email_path(kind, part) for kind in EMAIL_KINDS for part in EMAIL_PARTS),
    *(testdata_path(kind) for kind in EMAIL_KINDS),
    *(f"{WEB_DIR}/{name}.handlebars" for name in WEB_TEMPLATES),
)


@functools.cache
def default_templates() -> Mapping[str, str]:
    """The built-in content of every template path."""
    return {path: (DEFAULTS_DIR / path).read_text(encoding="utf-8") for path in TEMPLATE_PATHS}


@functools.cache
def operator_templates(kind: str) -> tuple[str, ...]:
    """The subject, text body and HTML body of the operator mail ``kind``."""
    return tuple(
        (DEFAULTS_DIR / OPERATOR_DIR / f"{kind}-{part}.handlebars").read_text(encoding="utf-8")
        for part in EMAIL_PARTS
    )


def load_compiler() -> Callable[[], Any]:
    """pybars' compiler class, imported on first use.

    Importing pybars builds its parsers from their grammars: about a second of CPU.
    Commands and jobs that send no mail skip it; a server worker calls this as it
    boots (``gunicorn.conf.py``), so that no request's event loop waits for it."""
    import pybars

    return pybars.Compiler


@functools.lru_cache(maxsize=256)
def compile_template(source: str) -> Callable[..., str]:
    """The compiled ``source``; :class:`TemplateError` if it is not valid Handlebars."""
    if len(source) > MAX_TEMPLATE_CHARS:
        raise TemplateError(f"is longer than {MAX_TEMPLATE_CHARS} characters")
    source = _LONG_COMMENT.sub("", source)
    _check_tags(source)
    try:
        # A compiler is not thread-safe; making one costs microseconds.
        template = load_compiler()().compile(source)
    except Exception as error:  # pybars raises PybarsError, and others for odd input
        raise TemplateError(f"is not a valid Handlebars template: {error}") from None
    # pybars registers each template as a module; the function keeps what it needs.
    sys.modules.pop(template.__module__, None)
    return template


class _Map(dict):
    """A JSON object as template data: its keys, never its attributes."""

    def __missing__(self, key: object) -> None:
        return None


class _Text(str):
    """A string as template data: characters by index, never attributes."""

    def __getitem__(self, key: Any) -> Any:
        return str.__getitem__(self, key) if isinstance(key, int | slice) else None


def _template_data(value: Any, depth: int = 0) -> Any:
    """``value`` (JSON data) with objects and strings that pybars cannot reach through."""
    if depth > MAX_VARIABLE_DEPTH:
        raise TemplateError(f"has variables nested more than {MAX_VARIABLE_DEPTH} levels deep")
    if isinstance(value, Mapping):
        return _Map({str(key): _template_data(item, depth + 1) for key, item in value.items()})
    if isinstance(value, list | tuple):
        return [_template_data(item, depth + 1) for item in value]
    if isinstance(value, str):
        return _Text(value)
    return value


def _check_tags(source: str) -> None:
    """Refuse any tag outside the safe subset (see the module's docstring)."""
    position, tags = 0, 0
    while (start := source.find("{{", position)) >= 0:
        tag = _SAFE_TAG.match(source, start)
        if tag is None or ("__" in tag.group() and not tag.group().lstrip("{~").startswith("!")):
            line = source.count("\n", 0, start) + 1
            near = source[start:start + 40].split("\n", 1)[0]
            raise TemplateError(f"has an invalid or unsupported tag on line {line}: {near!r}")
        tags += 1
        if tags > MAX_TEMPLATE_TAGS:
            raise TemplateError(f"has more than {MAX_TEMPLATE_TAGS} tags")
        position = tag.end()


def render_template(source: str, variables: Mapping[str, Any]) -> str:
    """``source`` rendered with ``variables``; :class:`TemplateError` if that fails."""
    template, data = compile_template(source), _template_data(variables)
    try:
        return str(template(data))
    except Exception as error:  # an unknown partial, a helper used wrongly, …
        raise TemplateError(f"cannot be rendered: {error}") from None


def check_template(path: str, content: str) -> None:
    """Refuse ``content`` for ``path`` unless it compiles and renders (with test data).

    Test data must be a JSON object. Templates are tried with their kind's
    default test data, so that a broken helper call is caught now, not when
    the next mail goes out.
    """
    if path.endswith(".json"):
        try:
            data = json.loads(content)
        except ValueError as error:
            raise TemplateError(f"is not valid JSON: {error}") from None
        if not isinstance(data, dict):
            raise TemplateError("must hold a JSON object")
        return
    kind = next((k for k in EMAIL_KINDS if path.startswith(f"{EMAIL_DIR}/{k}-")), None)
    render_template(content, json.loads(default_templates()[testdata_path(kind)]) if kind else {})
