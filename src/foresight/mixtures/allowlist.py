"""What a pool expression may contain: an allow-list over DuckDB's parse tree (``json_serialize_sql``).

A node is admitted only if its class is listed below; a function call only if its name is in
:data:`ALLOWED_FUNCTIONS` (deterministic scalar functions and operators, by family). Everything else — every other
function, macro, aggregate, window, subquery, parameter, ``*`` or ``COLUMNS()``, interval and date literals — is
refused, naming the function or construct. Argument types are confined at the leaves: a value can only come from
a segment column, a literal (number, string, boolean, NULL) or a CAST to one of :data:`ALLOWED_CAST_TYPES`, so no
listed function ever sees a time, interval, blob-from-file or catalog value.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

ALLOWED_FUNCTIONS: dict[str, frozenset[str]] = {k: frozenset(v.split()) for k, v in {
    "operator": "+ - * / // % ** ^ ~~ !~~ ~~* !~~* ~~~ || & | << >> xor ~",
    "string": "lower upper lcase ucase length strlen char_length character_length octet_length bit_length "
              "contains starts_with ends_with suffix prefix strpos instr position substring substr left right trim "
              "ltrim rtrim replace concat concat_ws lpad rpad reverse split_part string_split str_split "
              "string_split_regex ascii chr unicode levenshtein jaccard hamming damerau_levenshtein "
              "jaro_similarity jaro_winkler_similarity strip_accents nfc_normalize format printf translate "
              "mismatches editdist3",
    "regexp": "regexp_matches regexp_full_match regexp_extract regexp_extract_all regexp_replace "
              "regexp_split_to_array regexp_escape",
    "math": "abs ceil ceiling floor round sqrt cbrt ln log log2 log10 exp pow power sign greatest least trunc isnan "
            "isinf isfinite even gcd lcm greatest_common_divisor least_common_multiple factorial fmod bit_count",
    "list": "len array_length list_contains list_has array_contains array_has list_has_any list_has_all "
            "array_has_any array_has_all list_position list_indexof array_position array_indexof list_extract "
            "list_element array_extract list_distinct array_distinct list_unique array_unique list_sort array_sort "
            "list_reverse_sort array_reverse_sort list_filter array_filter filter list_transform array_transform "
            "list_apply array_apply apply list_slice array_slice list_sum list_min list_max list_avg list_count "
            "list_first list_last list_value list_pack array_value list_concat array_concat list_cat array_cat "
            "flatten list_select list_where list_grade_up list_zip list_resize array_resize list_reduce "
            "array_reduce reduce array_to_string",
    "hash": "hash md5 sha1 sha256 md5_number",
    "null": "nullif",
}.items()}
ALLOWED = frozenset().union(*ALLOWED_FUNCTIONS.values())

# Parse-tree node classes that are plain expressions (functions are checked by name on top).
ALLOWED_CLASSES = frozenset({"COLUMN_REF", "CONSTANT", "COMPARISON", "CONJUNCTION", "OPERATOR", "BETWEEN", "CASE",
                             "CAST", "FUNCTION", "LAMBDA"})
# OPERATOR node types: NOT, IS [NOT] NULL, [NOT] IN, COALESCE, list indexing and slicing.
ALLOWED_OPERATORS = frozenset({"OPERATOR_NOT", "OPERATOR_IS_NULL", "OPERATOR_IS_NOT_NULL", "COMPARE_IN",
                               "COMPARE_NOT_IN", "OPERATOR_COALESCE", "ARRAY_EXTRACT", "ARRAY_SLICE"})
ALLOWED_LITERALS = frozenset({"INTEGER", "NUMERIC", "STRING", "BOOLEAN", "NULL_LITERAL"})
ALLOWED_CAST_TYPES = frozenset({"VARCHAR", "TEXT", "STRING", "CHAR", "BPCHAR", "BOOLEAN", "BOOL", "TINYINT",
                                "SMALLINT", "INTEGER", "INT", "INT4", "INT8", "BIGINT", "HUGEINT", "UTINYINT",
                                "USMALLINT", "UINTEGER", "UBIGINT", "FLOAT", "REAL", "DOUBLE", "DECIMAL",
                                "NUMERIC", "LIST"})
# Keys of a node that hold metadata, not sub-expressions.
_META = frozenset({"class", "type", "alias", "query_location", "query_location_length", "function_name", "schema",
                   "catalog", "qualified_name", "order_bys", "filter", "distinct", "is_operator", "export_state",
                   "is_legacy_function_call", "column_names", "literal", "try_cast", "type_expr", "name"})


class Refused(ValueError):
    """The construct is not on the allow-list; the message names it (``name``: the function or column)."""

    def __init__(self, message: str, name: str = "") -> None:
        super().__init__(message)
        self.name = name


def check_tree(node: Any, columns: Callable[[], Iterable[str]]) -> None:
    """Raise :class:`Refused` at the first node of an expression tree that is not on the allow-list;
    ``columns`` gives the segment column names (asked for once, at the first column reference)."""
    _walk(node, _Columns(columns), frozenset())


class _Columns:
    def __init__(self, get: Callable[[], Iterable[str]]) -> None:
        self._get, self._names = get, None

    def __contains__(self, name: str) -> bool:
        if self._names is None:
            self._names = frozenset(c.lower() for c in self._get())
        return name in self._names


def _walk(node: Any, columns: _Columns, bound: frozenset[str]) -> None:
    if isinstance(node, list):
        for v in node:
            _walk(v, columns, bound)
        return
    if not isinstance(node, dict):
        return
    cls, kind = node.get("class"), node.get("type")
    if cls is None:  # a wrapper such as {"name": "", "expression": {...}} or a CASE check
        for v in node.values():
            _walk(v, columns, bound)
        return
    if cls not in ALLOWED_CLASSES:
        raise Refused(_construct(cls, kind))
    if cls == "OPERATOR" and kind not in ALLOWED_OPERATORS:
        raise Refused(f"the operator {kind} is not allowed in a pool expression")
    if cls == "COLUMN_REF":
        _column(node, columns, bound)
    elif cls == "CONSTANT":
        _literal(node)
    elif cls == "CAST":
        _cast_type(node.get("type_expr") or {})
    elif cls == "FUNCTION":
        _function(node)
    elif cls == "LAMBDA":
        params = _lambda_params(node.get("lhs"))
        _walk(node.get("expr"), columns, bound | params)
        return
    for key, value in node.items():
        if key not in _META:
            _walk(value, columns, bound)


def _construct(cls: str, kind: str | None) -> str:
    what = {"SUBQUERY": "subqueries", "WINDOW": "window functions (OVER …)", "STAR": "* and COLUMNS(…)",
            "PARAMETER": "parameters ($1, ?)", "COLLATE": "COLLATE", "POSITIONAL_REFERENCE": "positional references",
            "FUNCTION_REF": "table functions"}.get(cls, f"{cls} ({kind})")
    return f"{what} are not allowed in a pool expression"


def _column(node: dict[str, Any], columns: _Columns, bound: frozenset[str]) -> None:
    parts = node.get("column_names") or []
    name = ".".join(parts)
    if len(parts) != 1 or (parts[0].lower() not in columns and parts[0].lower() not in bound):
        # current_date, current_user & co. parse as bare names: only real segment columns may appear
        raise Refused(f"{name} is not a segment column", name)


def _literal(node: dict[str, Any]) -> None:
    kind = (node.get("literal") or {}).get("kind") if isinstance(node.get("literal"), dict) else None
    if kind is not None and kind.upper() not in ALLOWED_LITERALS:
        raise Refused(f"{kind} literals are not allowed in a pool expression (numbers, strings, booleans, NULL)")


def _cast_type(type_expr: dict[str, Any]) -> None:
    name = str(type_expr.get("type_name") or "").upper()
    if name not in ALLOWED_CAST_TYPES:
        raise Refused(f"CAST to {name or '?'} is not allowed in a pool expression (casts to text, numbers, "
                      f"booleans and lists only)")
    for child in type_expr.get("children") or []:
        if isinstance(child, dict) and child.get("class") == "TYPE":
            _cast_type(child)


def _function(node: dict[str, Any]) -> None:
    name = str(node.get("function_name"))
    catalog, schema = str(node.get("catalog") or "").lower(), str(node.get("schema") or "").lower()
    shown = ".".join(x for x in (catalog, schema, name) if x)
    if catalog not in ("", "system") or schema not in ("", "main"):
        raise Refused(f"function {shown}() is not allowed in a pool expression (other catalogs and schemas)", name)
    if name.lower() not in ALLOWED:
        raise Refused(f"function {shown}() is not allowed in a pool expression", name)
    if node.get("filter") or node.get("distinct") or (node.get("order_bys") or {}).get("orders"):
        raise Refused(f"{name}() with FILTER, DISTINCT or ORDER BY is an aggregate, not allowed in a pool expression")


def _lambda_params(lhs: Any) -> frozenset[str]:
    """Names a lambda binds (``x -> …`` or ``(x, i) -> …``)."""
    names: set[str] = set()
    stack = [lhs]
    while stack:
        n = stack.pop()
        if isinstance(n, dict):
            if n.get("class") == "COLUMN_REF" and len(n.get("column_names") or []) == 1:
                names.add(n["column_names"][0].lower())
            else:
                stack.extend(n.values())
        elif isinstance(n, list):
            stack.extend(n)
    return frozenset(names)
