"""Pool expressions are judged by an allow-list over DuckDB's parse tree (foresight.mixtures.allowlist): every
function DuckDB knows that is not on the list is refused by name, and every listed one is accepted in a valid
call. (Constructs — subqueries, windows, casts, literals — are tested in tests/reliability/test_sql_escape.py.)"""

from __future__ import annotations

import duckdb
import pytest

from foresight.mixtures import sandbox
from foresight.mixtures.allowlist import ALLOWED
from foresight.mixtures.shards import open_shards
from tests.mixtures.corpus import build_corpus

# one valid boolean call per allowed function, over the segment columns (text, source, id: VARCHAR; n_tokens:
# INTEGER; tokens: INTEGER[]; labels: VARCHAR[]; score_*: DOUBLE)
EXAMPLES: dict[str, str] = {
    "+": "n_tokens + 1 > 10", "-": "n_tokens - 1 > -n_tokens", "*": "n_tokens * 2 > 10", "/": "n_tokens / 2 > 1",
    "//": "n_tokens // 2 > 1", "%": "n_tokens % 2 = 0", "**": "n_tokens ** 2 > 4", "^": "n_tokens ^ 2 > 4",
    "~~": "text LIKE '%red%'", "!~~": "text NOT LIKE '%red%'", "~~*": "text ILIKE '%RED%'",
    "!~~*": "text NOT ILIKE '%RED%'", "~~~": "source GLOB 'c*'", "||": "source || 'x' = 'codex'",
    "&": "n_tokens & 1 = 0", "|": "n_tokens | 1 > 0", "<<": "n_tokens << 1 > 0", ">>": "n_tokens >> 1 >= 0",
    "xor": "xor(n_tokens, 1) > 0", "~": "~n_tokens < 0",
    "lower": "lower(source) = 'code'", "upper": "upper(source) = 'CODE'", "lcase": "lcase(source) = 'code'",
    "ucase": "ucase(source) = 'CODE'", "length": "length(text) > 10", "strlen": "strlen(text) > 10",
    "char_length": "char_length(text) > 1", "character_length": "character_length(text) > 1",
    "octet_length": "octet_length(text_sha256) = 32", "bit_length": "bit_length(text) > 1",
    "contains": "contains(text, 'red')", "starts_with": "starts_with(id, 'd')", "ends_with": "ends_with(id, '#0')",
    "suffix": "suffix(id, '#0')", "prefix": "prefix(id, 'd')", "strpos": "strpos(text, 'red') > 0",
    "instr": "instr(text, 'red') > 0", "position": "position('red' IN text) > 0",
    "substring": "substring(text, 1, 3) = 'the'", "substr": "substr(text, 1, 3) = 'the'",
    "left": "left(source, 2) = 'co'", "right": "right(source, 2) = 'de'", "trim": "trim(text) <> ''",
    "ltrim": "ltrim(text) <> ''", "rtrim": "rtrim(text) <> ''", "replace": "replace(source, 'c', 'k') = 'kode'",
    "concat": "concat(source, 'x') = 'codex'", "concat_ws": "concat_ws('-', source, id) <> ''",
    "lpad": "lpad(source, 8, '_') <> ''", "rpad": "rpad(source, 8, '_') <> ''",
    "reverse": "reverse(source) = 'edoc'", "split_part": "split_part(id, '#', 1) <> ''",
    "string_split": "len(string_split(text, ' ')) > 1", "str_split": "len(str_split(text, ' ')) > 1",
    "string_split_regex": "len(string_split_regex(text, '\\s+')) > 1", "ascii": "ascii(source) > 0",
    "chr": "chr(65 + n_tokens % 26) <> ''", "unicode": "unicode(source) > 0",
    "levenshtein": "levenshtein(source, 'code') < 3", "jaccard": "jaccard(source, 'code') > 0.5",
    "hamming": "hamming(source, source) = 0", "damerau_levenshtein": "damerau_levenshtein(source, 'code') < 3",
    "jaro_similarity": "jaro_similarity(source, 'code') > 0.5",
    "jaro_winkler_similarity": "jaro_winkler_similarity(source, 'code') > 0.5",
    "strip_accents": "strip_accents(source) = source", "nfc_normalize": "nfc_normalize(source) = source",
    "format": "format('{}-{}', source, n_tokens) <> ''", "printf": "printf('%s-%d', source, n_tokens) <> ''",
    "translate": "translate(source, 'c', 'k') <> ''", "mismatches": "mismatches(source, source) = 0",
    "editdist3": "editdist3(source, 'code') < 3",
    "regexp_matches": "regexp_matches(doc_id, '^d0')", "regexp_full_match": "regexp_full_match(source, 'c.*')",
    "regexp_extract": "regexp_extract(id, '#(\\d+)', 1) = '0'",
    "regexp_extract_all": "len(regexp_extract_all(text, '\\w+')) > 1",
    "regexp_replace": "regexp_replace(source, 'c', 'k') = 'kode'",
    "regexp_split_to_array": "len(regexp_split_to_array(text, ' ')) > 1",
    "regexp_escape": "regexp_escape(source) = source",
    "abs": "abs(n_tokens) > 0", "ceil": "ceil(n_tokens / 3) > 0", "ceiling": "ceiling(n_tokens / 3) > 0",
    "floor": "floor(n_tokens / 3) >= 0", "round": "round(n_tokens / 3, 1) >= 0", "sqrt": "sqrt(n_tokens) > 1",
    "cbrt": "cbrt(n_tokens) > 1", "ln": "ln(n_tokens) > 0", "log": "log(n_tokens) > 0", "log2": "log2(n_tokens) > 0",
    "log10": "log10(n_tokens) > 0", "exp": "exp(-n_tokens) < 1", "pow": "pow(n_tokens, 2) > 1",
    "power": "power(n_tokens, 2) > 1", "sign": "sign(n_tokens) = 1", "greatest": "greatest(n_tokens, 5) >= 5",
    "least": "least(n_tokens, 5) <= 5", "trunc": "trunc(n_tokens / 3) >= 0", "isnan": "NOT isnan(n_tokens / 3)",
    "isinf": "NOT isinf(n_tokens / 3)", "isfinite": "isfinite(n_tokens / 3)", "even": "even(n_tokens / 3) >= 0",
    "gcd": "gcd(n_tokens, 6) >= 1", "lcm": "lcm(n_tokens, 6) >= 6",
    "greatest_common_divisor": "greatest_common_divisor(n_tokens, 6) >= 1",
    "least_common_multiple": "least_common_multiple(n_tokens, 6) >= 6",
    "factorial": "factorial(n_tokens % 5) >= 1", "fmod": "fmod(n_tokens, 2) >= 0",
    "bit_count": "bit_count(n_tokens) >= 0",
    "len": "len(tokens) > 0", "array_length": "array_length(tokens) > 0",
    "list_contains": "list_contains(labels, 'code_reasoning')", "list_has": "list_has(labels, 'code_reasoning')",
    "array_contains": "array_contains(labels, 'code_reasoning')",
    "array_has": "array_has(labels, 'code_reasoning')", "list_has_any": "list_has_any(labels, ['code_reasoning'])",
    "list_has_all": "list_has_all(labels, ['code_reasoning'])",
    "array_has_any": "array_has_any(labels, ['code_reasoning'])",
    "array_has_all": "array_has_all(labels, ['code_reasoning'])",
    "list_position": "list_position(labels, 'code_reasoning') = 1",
    "list_indexof": "list_indexof(labels, 'code_reasoning') = 1",
    "array_position": "array_position(labels, 'code_reasoning') = 1",
    "array_indexof": "array_indexof(labels, 'code_reasoning') = 1",
    "list_extract": "list_extract(labels, 1) = 'code_reasoning'",
    "list_element": "list_element(labels, 1) = 'code_reasoning'",
    "array_extract": "array_extract(labels, 1) = 'code_reasoning'",
    "list_distinct": "len(list_distinct(tokens)) > 0", "array_distinct": "len(array_distinct(tokens)) > 0",
    "list_unique": "list_unique(tokens) > 0", "array_unique": "array_unique(tokens) > 0",
    "list_sort": "list_sort(tokens)[1] >= 0", "array_sort": "array_sort(tokens)[1] >= 0",
    "list_reverse_sort": "list_reverse_sort(tokens)[1] >= 0",
    "array_reverse_sort": "array_reverse_sort(tokens)[1] >= 0",
    "list_filter": "len(list_filter(tokens, lambda x: x > 3)) > 0",
    "array_filter": "len(array_filter(tokens, lambda x: x > 3)) > 0",
    "filter": "len(filter(tokens, lambda x: x > 3)) > 0",
    "list_transform": "list_transform(tokens, lambda x: x + 1)[1] > 0",
    "array_transform": "array_transform(tokens, lambda x: x + 1)[1] > 0",
    "list_apply": "list_apply(tokens, lambda x: x + 1)[1] > 0",
    "array_apply": "array_apply(tokens, lambda x: x + 1)[1] > 0",
    "apply": "apply(tokens, lambda x: x + 1)[1] > 0",
    "list_slice": "len(list_slice(tokens, 1, 2)) > 0", "array_slice": "len(array_slice(tokens, 1, 2)) > 0",
    "list_sum": "list_sum(tokens) > 0", "list_min": "list_min(tokens) >= 0", "list_max": "list_max(tokens) >= 0",
    "list_avg": "list_avg(tokens) > 0", "list_count": "list_count(tokens) > 0",
    "list_first": "list_first(tokens) >= 0", "list_last": "list_last(tokens) >= 0",
    "list_value": "list_value(source, id)[1] = source", "list_pack": "list_pack(source, id)[1] = source",
    "array_value": "array_value(n_tokens, 1)[1] > 0",
    "list_concat": "len(list_concat(labels, ['x'])) > 0", "array_concat": "len(array_concat(labels, ['x'])) > 0",
    "list_cat": "len(list_cat(labels, ['x'])) > 0", "array_cat": "len(array_cat(labels, ['x'])) > 0",
    "flatten": "len(flatten([labels, labels])) >= 0",
    "list_select": "len(list_select(tokens, [1])) = 1", "list_where": "len(list_where(tokens, [true])) = 1",
    "list_grade_up": "len(list_grade_up(tokens)) > 0", "list_zip": "len(list_zip(tokens, tokens)) > 0",
    "list_resize": "len(list_resize(tokens, 2)) = 2", "array_resize": "len(array_resize(tokens, 2)) = 2",
    "list_reduce": "list_reduce(tokens, lambda a, b: a + b) > 0",
    "array_reduce": "array_reduce(tokens, lambda a, b: a + b) > 0",
    "reduce": "reduce(tokens, lambda a, b: a + b) > 0",
    "array_to_string": "array_to_string(labels, ',') IS NOT NULL",
    "hash": "hash(id) % 2 = 0", "md5": "md5(id) <> ''", "sha1": "sha1(id) <> ''", "sha256": "sha256(id) <> ''",
    "md5_number": "md5_number(id) % 2 = 0",
    "nullif": "nullif(source, 'code') IS NULL",
}


@pytest.fixture(scope="module")
def con(tmp_path_factory: pytest.TempPathFactory) -> duckdb.DuckDBPyConnection:
    shards = build_corpus(tmp_path_factory.mktemp("corpus"))
    return sandbox.connect(open_shards(shards).files, 0.02)


def test_every_listed_function_has_an_example() -> None:
    assert set(EXAMPLES) == set(ALLOWED)


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_every_listed_function_is_accepted(con: duckdb.DuckDBPyConnection, name: str) -> None:
    sandbox.check_expression(con, EXAMPLES[name], f"pool {name!r}")
    assert con.execute(f"SELECT count(*) FROM segments WHERE {EXAMPLES[name]}").fetchone()[0] >= 0


def test_listed_functions_are_deterministic_scalars() -> None:
    rows = duckdb.connect().execute(
        "SELECT lower(function_name), list(DISTINCT function_type), list(DISTINCT stability) "
        "FROM duckdb_functions() GROUP BY 1").fetchall()
    known = {name: (set(types), set(s for s in stab if s)) for name, types, stab in rows}
    for name in ALLOWED:
        assert name in known, f"{name} is not a DuckDB function"
        types, stability = known[name]
        assert types & {"scalar", "macro"}, f"{name} is {types}"
        assert "VOLATILE" not in stability, name


def test_every_other_function_is_refused_by_name(con: duckdb.DuckDBPyConnection) -> None:
    names = sorted({r[0] for r in con.execute("SELECT DISTINCT function_name FROM duckdb_functions()").fetchall()}
                   - {n for n in ALLOWED})
    assert len(names) > 500
    for name in names:
        if name.lower() in ALLOWED:
            continue
        quoted = '"' + name.replace('"', '""') + '"'
        with pytest.raises(sandbox.ExpressionError) as err:
            sandbox.check_expression(con, f"{quoted}(1) IS NULL", "pool 'x'")
        assert f"{name}()" in str(err.value) or f"{name.lower()}()" in str(err.value), (name, str(err.value))


@pytest.mark.parametrize("expr,match", [
    ("ago(INTERVAL 1 day) IS NULL", r"ago\(\) .*different value on each run"),
    ("pg_postmaster_start_time() IS NULL", r"pg_postmaster_start_time\(\) .*different value"),
    ("get_block_size('x') > 0", r"function get_block_size\(\) is not allowed"),
    ("n_tokens > INTERVAL 1 day", r"to_days\(\) is not allowed"),
    ("text::DATE IS NULL", "CAST to DATE is not allowed"),
    ("x'00' = text_sha256", "HEX literals are not allowed"),
    ("n_tokens > $1", r"parameters \(\$1, \?\) are not allowed"),
    ("text COLLATE nocase = 'x'", "COLLATE are not allowed"),
    ("count(*) FILTER (WHERE true) > 0", "is not allowed"),
])
def test_unstable_and_unlisted_constructs_are_refused(con: duckdb.DuckDBPyConnection, expr: str,
                                                      match: str) -> None:
    with pytest.raises(sandbox.ExpressionError, match=match):
        sandbox.check_expression(con, expr, "pool 'x'")
