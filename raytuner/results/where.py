"""``--where``: a small, safe filter language, parsed here into pyarrow compute expressions.

Nothing is evaluated as Python. The grammar::

    expr    := term ("or" term)*
    term    := factor ("and" factor)*
    factor  := "not" factor | "(" expr ")" | test
    test    := COLUMN OP VALUE                    OP: == != < <= > >= =~ (regex search)
             | COLUMN "is" ["not"] "null"
             | COLUMN ["not"] "in" "(" VALUE ("," VALUE)* ")"
    VALUE   := number | "string" | 'string' | true | false | null
    COLUMN  := a name made of letters, digits and _ / . - (``config/lr``, ``last/val_loss``),
               or any name in backquotes (`odd name`)

Examples: ``status == "error"``, ``metric_best < 0.5 and config/lr > 1e-3``,
``config/optimizer/name in ("adam", "sgd")``, ``error =~ "CUDA|memory"``.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from raytuner.errors import UsageError

if TYPE_CHECKING:
    import pyarrow.compute as pc

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<number>[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?(?![\w/]))
      | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
      | (?P<op>==|!=|<=|>=|=~|<|>|=)
      | (?P<punct>[(),])
      | (?P<quoted>`[^`]+`)
      | (?P<word>[A-Za-z_][\w/.\-]*)
    )""",
    re.VERBOSE,
)
_KEYWORDS = {"and", "or", "not", "is", "in", "null", "true", "false"}
_COMPARE = {"==", "!=", "<", "<=", ">", ">=", "=", "=~"}


@dataclass(frozen=True)
class _Tok:
    kind: str  # number, string, op, punct, column, keyword, end
    text: str
    pos: int


def _tokenize(text: str) -> list[_Tok]:
    tokens: list[_Tok] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise UsageError(f"--where: cannot read {text[pos:].strip()[:20]!r} at character {pos + 1} of {text!r}")
        kind = match.lastgroup or ""
        value = match.group(kind)
        start = match.start(kind)
        if kind == "word":
            kind = "keyword" if value.lower() in _KEYWORDS else "column"
            value = value.lower() if kind == "keyword" else value
        elif kind == "quoted":
            kind, value = "column", value[1:-1]
        tokens.append(_Tok(kind, value, start))
        pos = match.end()
    tokens.append(_Tok("end", "", len(text)))
    return tokens


class _Parser:
    def __init__(self, text: str, columns: Collection[str]) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.i = 0
        self.columns = columns
        self.used: set[str] = set()

    def fail(self, message: str, tok: _Tok | None = None) -> UsageError:
        tok = tok or self.tokens[self.i]
        where = "at the end" if tok.kind == "end" else f"at {tok.text!r} (character {tok.pos + 1})"
        return UsageError(f"--where {self.text!r}: {message} {where}")

    def peek(self) -> _Tok:
        return self.tokens[self.i]

    def take(self, kind: str | None = None, text: str | None = None) -> _Tok | None:
        tok = self.tokens[self.i]
        if (kind is None or tok.kind == kind) and (text is None or tok.text == text):
            self.i += 1
            return tok
        return None

    def expect(self, kind: str, text: str | None, what: str) -> _Tok:
        tok = self.take(kind, text)
        if tok is None:
            raise self.fail(f"expected {what}")
        return tok

    def parse(self) -> pc.Expression:
        expr = self.expr()
        if self.peek().kind != "end":
            raise self.fail("expected 'and', 'or' or the end")
        return expr

    def expr(self) -> pc.Expression:
        left = self.term()
        while self.take("keyword", "or"):
            left = left | self.term()
        return left

    def term(self) -> pc.Expression:
        left = self.factor()
        while self.take("keyword", "and"):
            left = left & self.factor()
        return left

    def factor(self) -> pc.Expression:
        if self.take("keyword", "not"):
            return ~self.factor()
        if self.take("punct", "("):
            inner = self.expr()
            self.expect("punct", ")", "')'")
            return inner
        return self.test()

    def column(self) -> str:
        tok = self.peek()
        if tok.kind != "column":
            raise self.fail("expected a column name")
        self.i += 1
        if tok.text not in self.columns:
            close = [c for c in self.columns if tok.text.lower() in c.lower()][:8]
            hint = f"; similar: {', '.join(close)}" if close else f"; columns: {', '.join(list(self.columns)[:12])}..."
            raise UsageError(f"--where {self.text!r}: no column {tok.text!r}{hint}")
        self.used.add(tok.text)
        return tok.text

    def value(self) -> Any:
        tok = self.peek()
        self.i += 1
        if tok.kind == "number":
            return float(tok.text) if any(c in tok.text for c in ".eE") else int(tok.text)
        if tok.kind == "string":
            return re.sub(r"\\(.)", r"\1", tok.text[1:-1])
        if tok.kind == "keyword" and tok.text in ("true", "false", "null"):
            return {"true": True, "false": False, "null": None}[tok.text]
        self.i -= 1
        raise self.fail("expected a value (number, \"string\", true, false or null)")

    def test(self) -> pc.Expression:
        import pyarrow.compute as pc

        name = self.column()
        field = pc.field(name)
        if self.take("keyword", "is"):
            negate = bool(self.take("keyword", "not"))
            self.expect("keyword", "null", "'null'")
            return ~field.is_null() if negate else field.is_null()
        negate_in = bool(self.take("keyword", "not"))
        if negate_in or self.peek().text == "in":
            self.expect("keyword", "in", "'in'")
            self.expect("punct", "(", "'('")
            values = [self.value()]
            while self.take("punct", ","):
                values.append(self.value())
            self.expect("punct", ")", "')'")
            expr = field.isin(values)
            return ~expr if negate_in else expr
        op = self.take("op")
        if op is None or op.text not in _COMPARE:
            raise self.fail("expected a comparison (== != < <= > >= =~), 'is' or 'in'")
        value = self.value()
        if op.text == "=~":
            if not isinstance(value, str):
                raise self.fail("=~ takes a \"regular expression\"", op)
            return pc.match_substring_regex(field, value)
        if value is None:
            raise self.fail("compare with null using 'is null' / 'is not null'", op)
        return {
            "==": field == value,
            "=": field == value,
            "!=": field != value,
            "<": field < value,
            "<=": field <= value,
            ">": field > value,
            ">=": field >= value,
        }[op.text]


@dataclass(frozen=True)
class Filter:
    """A parsed ``--where``: the expression and the columns it reads."""

    text: str
    expression: pc.Expression
    columns: frozenset[str]


def parse_where(text: str, columns: Collection[str]) -> Filter:
    """Parse ``text`` against the available ``columns``.

    Raises:
        UsageError: the text does not follow the grammar, or names an unknown column.
    """
    parser = _Parser(text, columns)
    expression = parser.parse()
    return Filter(text, expression, frozenset(parser.used))
