"""A BigQuery SQL file as the runner sees it: names filled in, split into statements, each with its line.

``{{ name }}`` placeholders are filled from :meth:`Config.template_vars` (``{{ project }}``,
``{{ ecommerce_dataset }}`` ...); every value must be a plain name, so nothing but names reaches the SQL
this way. Values go in as named query parameters (``@start_date``), never as text. Statements are split
with sqlglot's BigQuery tokenizer (so a ``;`` inside a string or a comment does not split), and each
keeps the line it starts on, which is how errors point at the file and line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property

from sqlglot.dialects.bigquery import BigQuery
from sqlglot.errors import TokenError
from sqlglot.tokens import Token, TokenType

from gcpipe.core.errors import GcpipeError

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
# Project ids, dataset names, regions and lake paths: no quotes, spaces, comments or statement breaks.
_SAFE_NAME = re.compile(r"[A-Za-z0-9_./:-]+")  # matched whole: `$` would let a final newline in
# First words of statements that only make sense inside one script (variables, blocks, transactions).
_PROCEDURAL = {
    "DECLARE",
    "SET",
    "BEGIN",
    "END",
    "IF",
    "LOOP",
    "WHILE",
    "REPEAT",
    "FOR",
    "CALL",
    "EXECUTE",
    "RAISE",
    "RETURN",
    "BREAK",
    "LEAVE",
    "CONTINUE",
    "ITERATE",
    "COMMIT",
    "ROLLBACK",
    "ASSERT",
}
_DIALECT = BigQuery()


class SqlError(GcpipeError):
    """A SQL file that cannot run, worded as ``file:line: what went wrong`` (``file:line:column:`` when the
    backend points at a position)."""


@dataclass(frozen=True)
class Statement:
    text: str  # the statement, names filled in, without its closing ';'
    line: int  # the line of the file it starts on (1-based)
    tokens: tuple[Token, ...]  # its tokens, offsets relative to ``text``
    start: int = 0  # where it starts in the script's text

    @property
    def words(self) -> list[str]:
        """Its first few keywords, upper-cased: ``['CREATE', 'OR', 'REPLACE', 'MODEL']``."""
        return [token.text.upper() for token in self.tokens[:6]]

    @cached_property
    def parameters(self) -> set[str]:
        return used_parameters(self.tokens)

    @property
    def is_procedural(self) -> bool:
        words = self.words
        temp = words[:1] == ["CREATE"] and ("TEMP" in words[1:4] or "TEMPORARY" in words[1:4])
        return bool(words) and (words[0] in _PROCEDURAL or temp)


@dataclass(frozen=True)
class Script:
    source: str  # the file (or a label) errors name
    text: str  # the whole script, names filled in
    statements: tuple[Statement, ...]
    original: str = ""  # the script as written
    placeholders: tuple[tuple[int, int, int, int], ...] = ()  # (start, end) in text, then in original

    def offset(self, start: int, line: int, column: int) -> int | None:
        """The offset in ``text`` of (line, column), both 1-based, counted from offset ``start``."""
        for _ in range(line - 1):
            start = self.text.find("\n", start) + 1
            if start == 0:
                return None
        return start + column - 1

    def position(self, offset: int) -> tuple[int, int]:
        """The line and column (1-based) in the file as written of an offset in ``text``: a position
        inside a filled-in name is its placeholder's."""
        shift = 0
        for start, end, original_start, original_end in self.placeholders:
            if offset < start:
                break
            if offset < end:
                offset, shift = original_start, 0
                break
            shift = original_end - end
        offset += shift
        line_start = self.original.rfind("\n", 0, offset) + 1
        return self.original.count("\n", 0, offset) + 1, offset - line_start + 1

    @property
    def is_procedural(self) -> bool:
        """True if statements share script state (variables, blocks, transactions, temp tables).

        Such a script runs as one BigQuery script job; any other runs statement by statement, so each
        statement reports its own result, bytes, timing and errors.
        """
        return any(statement.is_procedural for statement in self.statements)

    @property
    def parameters(self) -> set[str]:
        return set().union(*(statement.parameters for statement in self.statements))

    def error(self, line: int, message: str, column: int | None = None) -> SqlError:
        where = f"{line}:{column}" if column else str(line)
        return SqlError(f"{self.source}:{where}: {message}")


def used_parameters(tokens: tuple[Token, ...] | list[Token]) -> set[str]:
    """The named query parameters the tokens use (``@name``; ``@@system`` variables excluded)."""
    kinds = [token.token_type for token in tokens] + [None]
    return {
        tokens[i + 1].text
        for i, kind in enumerate(kinds[:-1])
        if kind == TokenType.PARAMETER
        and kinds[i + 1] not in (TokenType.PARAMETER, None)
        and (i == 0 or kinds[i - 1] != TokenType.PARAMETER)
    }


def tokenize(text: str) -> list[Token]:
    return _DIALECT.tokenize(text)


def render(text: str, names: dict[str, str], source: str = "<sql>") -> str:
    """Fill in ``{{ name }}`` placeholders; unknown names and unsafe values fail with the line."""
    return _render(text, names, source)[0]


def _render(
    text: str, names: dict[str, str], source: str
) -> tuple[str, tuple[tuple[int, int, int, int], ...]]:
    """The filled-in text, and where each placeholder went: (start, end) in it, (start, end) in ``text``."""
    spans, shift = [], 0

    def fill(match: re.Match) -> str:
        nonlocal shift
        name = match.group(1)
        line = text.count("\n", 0, match.start()) + 1
        if name not in names:
            raise SqlError(
                f"{source}:{line}: unknown name {{{{ {name} }}}}; known: {', '.join(sorted(names))}."
            )
        value = str(names[name])
        if not _SAFE_NAME.fullmatch(value) or "--" in value or "/*" in value:
            raise SqlError(f"{source}:{line}: the value of {{{{ {name} }}}} ({value!r}) is not a plain name.")
        start = match.start() + shift
        spans.append((start, start + len(value), match.start(), match.end()))
        shift += len(value) - (match.end() - match.start())
        return value

    return _PLACEHOLDER.sub(fill, text), tuple(spans)


def parse_script(text: str, names: dict[str, str] | None = None, source: str = "<sql>") -> Script:
    """Render ``text`` and split it into statements (empty statements and comments dropped)."""
    rendered, placeholders = _render(text, names or {}, source)
    try:
        tokens = tokenize(rendered)
    except TokenError as err:
        raise SqlError(f"{source}: cannot read the SQL: {err}") from None
    statements, current = [], []
    for token in [*tokens, None]:
        if token is not None and token.token_type != TokenType.SEMICOLON:
            current.append(token)
            continue
        if current:
            start, end = current[0].start, current[-1].end + 1
            shifted = tuple(_shift(t, start) for t in current)
            statements.append(Statement(rendered[start:end], current[0].line, shifted, start))
        current = []
    if not statements:
        raise SqlError(f"{source}: there is no SQL statement in it.")
    return Script(source, rendered, tuple(statements), text, placeholders)


def _shift(token: Token, offset: int) -> Token:
    return Token(
        token.token_type, token.text, token.line, token.col, token.start - offset, token.end - offset
    )
