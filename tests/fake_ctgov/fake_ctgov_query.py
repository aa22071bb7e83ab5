"""A small, documented subset of ClinicalTrials.gov's Essie query syntax.

Used by the fake upstream (fake_ctgov.py) for the `query.*` parameters and
`filter.advanced`. It is deliberately simple; docs/fake_ctgov.md lists what it
does and does not do. Grammar:

    expr    := orexpr
    orexpr  := andexpr ("OR" andexpr)*
    andexpr := notexpr (["AND"] notexpr)*          adjacent terms are ANDed
    notexpr := "NOT" notexpr | primary
    primary := "(" expr ")"
             | "AREA[" Name "]" primary            Name: piece or area name
             | "RANGE[" lo "," hi "]"              lo/hi: value, MIN or MAX
             | "MISSING"                           the area has no value
             | '"' phrase '"' | word

Matching (case-insensitive, no stemming, synonyms or ranking):
  * a word or phrase matches when it occurs at the start of a word in one of
    the texts of the area (so `cancer` matches "Cancers" but `ancer` does not);
  * on enum pieces (OverallStatus, Phase, ...) the value must be equal;
  * RANGE compares dates (YYYY, YYYY-MM, YYYY-MM-DD), numbers, or ages such as
    "16 years" according to the piece's type; MIN/MAX leave a side open.

Thread-safety: compiled expressions are immutable and may be shared.
"""

import re

__all__ = ["QuerySyntaxError", "compile_query", "parse_date_number",
           "parse_age_days"]


class QuerySyntaxError(ValueError):
    """The expression is not in the supported subset; the message says why."""


_TOKEN_RE = re.compile(r"""
    (?P<ws>\s+)
  | (?P<lp>\()
  | (?P<rp>\))
  | (?P<area>AREA\[(?P<area_name>[^\]]*)\])
  | (?P<range>RANGE\[(?P<range_body>[^\]]*)\])
  | (?P<op>[A-Z_]+\[[^\]]*\])
  | (?P<phrase>"(?P<phrase_body>[^"]*)")
  | (?P<word>[^\s()"]+)
""", re.VERBOSE)

_DATE_RE = re.compile(
    r"^(\d{4})(?:-(\d{2}))?(?:-(\d{2}))?(?:T(\d{2}):(\d{2})(?::\d{2})?)?$")
_NUMBER_RE = re.compile(r"^-?\d+(?:\.\d+)?$")
_AGE_RE = re.compile(r"^(\d+(?:\.\d+)?)\s*([A-Za-z]+)$")
_AGE_UNIT_DAYS = {
    "year": 365.25, "month": 30.4375, "week": 7.0, "day": 1.0,
    "hour": 1.0 / 24, "minute": 1.0 / 1440,
}
_EDGE_PUNCT = ",;:."


def parse_date_number(text):
    """'2023-06-01' -> 20230601 * 10000 (+ hhmm); partial dates fill 0s.

    Returns None when `text` is not an ISO date, partial date or date-time.
    """
    m = _DATE_RE.match(text.strip())
    if not m:
        return None
    y, mo, d, hh, mm = (int(g) if g else 0 for g in m.groups())
    return ((y * 100 + mo) * 100 + d) * 10000 + hh * 100 + mm


def parse_age_days(text):
    """'18 Years' -> 6574.5 (days); None when it is not '<n> <unit>'."""
    m = _AGE_RE.match(text.strip())
    if not m:
        return None
    unit = m.group(2).lower().rstrip("s")
    if unit not in _AGE_UNIT_DAYS:
        return None
    return float(m.group(1)) * _AGE_UNIT_DAYS[unit]


def _tokenize(text):
    tokens = []
    pos = 0
    while pos < len(text):
        m = _TOKEN_RE.match(text, pos)
        if m is None:  # pragma: no cover - the word branch matches anything
            raise QuerySyntaxError(f"cannot parse query at offset {pos}")
        pos = m.end()
        kind = m.lastgroup
        if kind == "ws":
            continue
        if kind == "area_name":
            kind = "area"
        elif kind == "range_body":
            kind = "range"
        elif kind == "phrase_body":
            kind = "phrase"
        if kind == "area":
            tokens.append(("area", m.group("area_name").strip()))
        elif kind == "range":
            tokens.append(("range", m.group("range_body")))
        elif kind == "op":
            raise QuerySyntaxError(
                f"unsupported Essie operator {m.group('op')!r} (the fake "
                "supports AREA[], RANGE[], MISSING, AND, OR, NOT)")
        elif kind == "phrase":
            tokens.append(("text", m.group("phrase_body")))
        elif kind == "word":
            word = m.group("word")
            if word in ("AND", "OR", "NOT", "MISSING"):
                tokens.append((word, word))
            else:
                tokens.append(("text", word))
        else:
            tokens.append((kind, m.group(0)))
    return tokens


class _Node:
    def matches(self, view):
        raise NotImplementedError


class _Text(_Node):
    def __init__(self, text, paths, enum):
        words = [w.strip(_EDGE_PUNCT) for w in text.split()]
        words = [w for w in words if w]
        self.empty = not words
        self.enum = enum
        self.value = " ".join(words).lower()
        self.paths = paths
        self.regex = re.compile(
            r"(?<![0-9a-z_])" + r"\s+".join(re.escape(w) for w in words),
            re.IGNORECASE)

    def matches(self, view):
        if self.empty:
            return True
        texts = view.strings(self.paths)
        if self.enum:
            return any(t.lower() == self.value for t in texts)
        return any(self.regex.search(t) for t in texts)


class _Missing(_Node):
    def __init__(self, paths):
        self.paths = paths

    def matches(self, view):
        return not view.strings(self.paths)


class _Range(_Node):
    def __init__(self, body, paths, kind):
        parts = body.split(",")
        if len(parts) != 2:
            raise QuerySyntaxError(f"RANGE[{body}] needs two bounds")
        self.paths = paths
        self.parse = _range_parser(kind, parts)
        self.lo = self._bound(parts[0], "MIN")
        self.hi = self._bound(parts[1], "MAX")

    def _bound(self, text, open_word):
        text = text.strip()
        if text.upper() == open_word:
            return None
        value = self.parse(text)
        if value is None:
            raise QuerySyntaxError(f"bad RANGE bound {text!r}")
        return value

    def matches(self, view):
        for text in view.strings(self.paths):
            value = self.parse(text)
            if value is None:
                continue
            if self.lo is not None and value < self.lo:
                continue
            if self.hi is not None and value > self.hi:
                continue
            return True
        return False


def _range_parser(kind, bounds):
    if kind == "date":
        return parse_date_number
    if kind == "number":
        return lambda t: float(t) if _NUMBER_RE.match(t.strip()) else None
    # Text pieces such as MinimumAge: ages when the bounds look like ages.
    if any(parse_age_days(b) is not None for b in bounds):
        return parse_age_days
    return lambda t: t.strip().lower() or None


class _Not(_Node):
    def __init__(self, child):
        self.child = child

    def matches(self, view):
        return not self.child.matches(view)


class _And(_Node):
    def __init__(self, children):
        self.children = children

    def matches(self, view):
        return all(c.matches(view) for c in self.children)


class _Or(_Node):
    def __init__(self, children):
        self.children = children

    def matches(self, view):
        return any(c.matches(view) for c in self.children)


class _Parser:
    def __init__(self, tokens, default_paths, catalog):
        self.tokens = tokens
        self.pos = 0
        self.catalog = catalog
        self.default_paths = default_paths

    def peek(self):
        return self.tokens[self.pos][0] if self.pos < len(self.tokens) else None

    def take(self):
        tok = self.tokens[self.pos]
        self.pos += 1
        return tok

    def parse(self):
        node = self.orexpr(self.default_paths)
        if self.peek() is not None:
            raise QuerySyntaxError(f"unexpected {self.tokens[self.pos][1]!r}")
        return node

    def orexpr(self, paths):
        children = [self.andexpr(paths)]
        while self.peek() == "OR":
            self.take()
            children.append(self.andexpr(paths))
        return children[0] if len(children) == 1 else _Or(children)

    def andexpr(self, paths):
        children = [self.notexpr(paths)]
        while self.peek() not in (None, "OR", "rp"):
            if self.peek() == "AND":
                self.take()
            children.append(self.notexpr(paths))
        return children[0] if len(children) == 1 else _And(children)

    def notexpr(self, paths):
        if self.peek() == "NOT":
            self.take()
            return _Not(self.notexpr(paths))
        return self.primary(paths)

    def primary(self, paths):
        kind = self.peek()
        if kind is None:
            raise QuerySyntaxError("unexpected end of query")
        _, value = self.take()
        if kind == "lp":
            node = self.orexpr(paths)
            if self.peek() != "rp":
                raise QuerySyntaxError("missing ')'")
            self.take()
            return node
        if kind == "area":
            area_paths = self.catalog.resolve_area_or_piece(value)
            if area_paths is None:
                raise QuerySyntaxError(f"unknown AREA[{value}]")
            return self.primary(area_paths)
        if kind == "range":
            return _Range(value, paths, self.catalog.range_kind(paths))
        if kind == "MISSING":
            return _Missing(paths)
        if kind == "text":
            return _Text(value, paths, self.catalog.all_enum(paths))
        raise QuerySyntaxError(f"unexpected {value!r}")


def compile_query(text, default_paths, catalog):
    """Compiles `text` searching `default_paths` (tuple of path tuples).

    `catalog` resolves AREA names (resolve_area_or_piece), tells whether paths
    are enums (all_enum) and their range kind (range_kind: date/number/text).
    Returns an object with matches(view), where view.strings(paths) lists the
    study's texts at those paths. Raises QuerySyntaxError.
    """
    tokens = _tokenize(text)
    if not tokens:
        return None
    return _Parser(tokens, default_paths, catalog).parse()
