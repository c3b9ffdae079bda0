"""The SQL of the list pages' queries, compiled once per shape of query.

Turning the page's queryset into SQL was the largest piece of a list
request's work in Python (a fifth of its instructions at 25 rows a page): on
every request Django resolves each selected column, join and ordering term
again and writes the statement out, although a list asks the same question
each time with other values (another signed-in customer, another cursor
position). `CompiledRowsIterable` reads the rows of a
`values_list(named=True)` queryset as Django does, but compiles only its
WHERE clause per request (its SQL and parameters) and keeps the whole
statement, compiled once, for each shape of query: the database, the model,
the selected columns, the joins, the ordering, the slice and the WHERE
clause's SQL. A statement is kept only when all its parameters are the WHERE
clause's, so the request's values are the only thing that changes.

Only plain queries are kept: one with annotations, `extra()` columns,
tables or ordering, DISTINCT, GROUP BY, a set operation, SELECT ... FOR
UPDATE, a join through a FilteredRelation, an aggregate or window in its
filter or an ordering by expression is compiled as Django always does, and
so is `.iterator()` (`extra(where=...)` is part of the WHERE clause, and
kept with it). At most `MAX_SHAPES` statements are kept per process (an IN
list of another length is another shape), the oldest dropped first.

With `CHECK` on, a kept statement is compared with Django's own compilation
of the query each time it is used, and a difference raises AssertionError:
the project's test suite turns it on, so every test that reuses a kept
statement checks it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any, NamedTuple, cast

from django.core.exceptions import EmptyResultSet, FullResultSet
from django.db.models import QuerySet
from django.db.models.expressions import Col
from django.db.models.query import NamedValuesListIterable
from django.db.models.sql import Query
from django.db.models.sql.datastructures import BaseTable, Join
from django.db.models.utils import create_namedtuple_class

MAX_SHAPES = 512
CHECK = False


class Statement(NamedTuple):
    sql: str
    # Django's converters of the selected columns (from_db_value, the backend's),
    # by position in the row.
    converters: dict[int, Any]


_STATEMENTS: dict[tuple[Any, ...], Statement] = {}
_KEEPING = threading.Lock()


def shape(query: Query) -> tuple[Any, ...] | None:
    """What fixes a query's SQL outside its WHERE clause, or None when it is not kept."""
    if (
        not query.values_select
        or query.annotations
        or query.extra
        or query.extra_tables
        or query.extra_order_by
        or query.distinct
        or query.group_by is not None
        or query.combinator
        or query.select_for_update
        or query.select_related
        or query.subquery
        or not all(type(column) is Col for column in query.select)
        or not all(isinstance(term, str) for term in query.order_by)
        or query.where.contains_aggregate
        or query.where.contains_over_clause
    ):
        return None
    tables: list[tuple[Any, ...]] = []
    for alias, table in query.alias_map.items():
        used = query.alias_refcount[alias] > 0
        if type(table) is BaseTable:
            tables.append((alias, table.table_name, used))
        elif type(table) is Join and table.filtered_relation is None:
            join = (table.parent_alias, table.join_field, table.join_type)
            tables.append((alias, table.table_name, *join, used))
        else:
            return None
    return (
        query.model,
        query.values_select,
        tuple(query.selected.items()) if query.selected else None,
        tuple((column.alias, column.target) for column in cast("tuple[Col, ...]", query.select)),
        tuple(tables),
        query.order_by,
        query.default_ordering,
        query.standard_ordering,
        query.low_mark,
        query.high_mark,
    )


class CompiledRowsIterable(NamedValuesListIterable):
    """`values_list(named=True)`'s rows, from SQL compiled once per shape of query.

    Set it as a values_list queryset's `_iterable_class`, as `values_list`
    itself does; the querysets chained from it keep it.
    """

    def __iter__(self) -> Iterator[Any]:
        rows = None if self.chunked_fetch else compiled_rows(self.queryset)
        if rows is None:
            yield from super().__iter__()
            return
        tuple_class = create_namedtuple_class(*cast(Any, self.queryset)._fields)
        new = tuple.__new__
        for row in rows:
            yield new(tuple_class, row)


def compiled_rows(queryset: QuerySet[Any]) -> list[tuple[Any, ...]] | None:
    """The rows of `queryset` as tuples, or None when its query is not of a kept shape."""
    query = queryset.query
    fixed = shape(query)
    if fixed is None:
        return None
    compiler = query.get_compiler(queryset.db)
    try:
        where, params = compiler.compile(query.where)
    except EmptyResultSet:
        return []  # a filter no row can pass (`id__in=[]`): Django sends no query either
    except FullResultSet:
        where, params = "", []
    key = (queryset.db, where, *fixed)
    try:
        statement = _STATEMENTS.get(key)
    except TypeError:
        return None  # a part of the query that cannot be a key
    if statement is None:
        sql, all_params = compiler.as_sql()
        columns = [expression for expression, _, _ in compiler.select[: compiler.col_count]]
        statement = Statement(sql, compiler.get_converters(columns))
        if list(all_params) == list(params):
            with _KEEPING:
                _STATEMENTS[key] = statement
                if len(_STATEMENTS) > MAX_SHAPES:
                    del _STATEMENTS[next(iter(_STATEMENTS))]
        params = all_params
    elif CHECK:
        check(queryset, statement, params)
    with compiler.connection.cursor() as cursor:
        cursor.execute(statement.sql, params)
        rows: list[tuple[Any, ...]] = cursor.fetchall()
    if not statement.converters:
        return rows
    return list(map(tuple, compiler.apply_converters(rows, statement.converters)))


def check(queryset: QuerySet[Any], statement: Statement, params: list[Any]) -> None:
    """Raise AssertionError unless `statement` and `params` are Django's SQL for `queryset`."""
    sql, expected = queryset.query.get_compiler(queryset.db).as_sql()
    if (statement.sql, list(params)) != (sql, list(expected)):
        raise AssertionError(
            "a kept statement differs from Django's compilation of its query:\n"
            f"kept:   {statement.sql} {params!r}\nDjango: {sql} {list(expected)!r}"
        )
