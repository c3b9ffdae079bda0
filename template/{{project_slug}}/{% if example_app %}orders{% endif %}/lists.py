"""Fast list pages, for the same serializer classes.

DRF turns a page into data row by row and field by field through generic
code: for every field of every row it walks the source with `get_attribute`,
checks for skipped fields and None, then calls `to_representation`. At 100
rows a page, that walk is most of the time a list request takes.

`FastListSerializer` changes only that walk. It looks at the child
serializer's fields once per page and plans each one: a plain model column or
a chain of forward relations is read with `operator.attrgetter`, a foreign
key by its raw id; a nested serializer is planned the same way, field by
field (over `source="*"`, over forward relations, or `many=True` over a
to-many relation that the selector prefetched), and a method field calls its
method; anything else (callables, a serializer with its own
`to_representation`) goes through DRF's own code. Each value is then
converted by the field's own `to_representation`, or by `str` and `int` for
the field classes that do exactly that. `FastSerializerMixin` gives a single
object (a detail) the same plan. The schema, the serializer classes a team
edits, and the output stay the same: the tests compare it with DRF's, field
type by field type, nested shapes included.

Going further, `ValuesListMixin` skips model instances altogether when a
list serializer allows it: when every field it shows is a model column (or a
column reached through forward relations), and it does not override
`to_representation`, the page is read with `.values_list()` using the lookups
of those same fields, and represented from the rows, column by column: a
column whose value is already its field's output (an id, a string) is not
touched. The serializer is then the one definition of the list's columns:
the selector says which rows, and which relations the instance path joins;
it names no column. Building three
model instances per row (an order, its customer, the customer's user) is the
other large cost of a list page. A field that is not a column (a method
field, a nested serializer other than `many=True` over a to-many relation of
columns) sends the list back to the instance path, so editing a serializer
never changes what the endpoint answers, only how fast. The rows' SQL is
compiled once per shape of query and kept (compiled.py).

Nothing in it knows a domain model, but only the orders app uses it, so it
lives (and is tested) here: move it to core when a second app's read-only
list wants it. Use FastListSerializer as
`Meta.list_serializer_class` on read-only list serializers,
FastSerializerMixin before ModelSerializer on read-only detail serializers,
and ValuesListMixin before the viewset class.
"""

from __future__ import annotations

import datetime as dt
import keyword
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from functools import cached_property
from operator import attrgetter
from typing import Any, cast

import orjson
from django.core.exceptions import FieldDoesNotExist, ObjectDoesNotExist
from django.db import models
from django.db.models import Prefetch, QuerySet
from rest_framework import ISO_8601, fields, mixins, relations, serializers
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings

from .compiled import CompiledRowsIterable

_ZERO = dt.timedelta(0)

# Field classes whose to_representation is exactly str(value) or int(value).
_EXACT_CONVERSIONS: dict[type[fields.Field], Callable[[Any], Any]] = {
    fields.CharField: str,
    fields.EmailField: str,
    fields.SlugField: str,
    fields.URLField: str,
    fields.IntegerField: int,
}


# Field classes read straight from a column when their source is one.
_FIELD_CLASSES = frozenset(
    {
        *_EXACT_CONVERSIONS,
        fields.BigIntegerField,
        fields.BooleanField,
        fields.ChoiceField,
        fields.DateField,
        fields.DateTimeField,
        fields.DecimalField,
        fields.FloatField,
        fields.TimeField,
        fields.UUIDField,
    }
)


def _identity(value: Any) -> Any:
    return value


def _converter(field: fields.Field) -> Callable[[Any], Any]:
    """The field's own to_representation, or a shortcut that gives the same result.

    DateTimeField and DecimalField spend most of a list page's conversion
    time: the first converts every value to the current time zone, the
    second quantizes every value. For the values that are already in that
    form (UTC datetimes with USE_TZ and TIME_ZONE "UTC"; decimals that
    already have the field's decimal places), formatting them directly gives
    the same string; any other value takes the field's own path. Choices and
    big integers (every BigAutoField key) are answered the same way.
    """
    slow = field.to_representation
    if type(field) is fields.DateTimeField:
        output_format = getattr(field, "format", api_settings.DATETIME_FORMAT)
        zone = field.timezone if hasattr(field, "timezone") else field.default_timezone()
        if output_format is None or output_format.lower() != ISO_8601:
            return slow
        if zone is not dt.UTC and getattr(zone, "key", None) != "UTC":
            return slow

        def convert_datetime(value: Any) -> Any:
            # What the database driver gives: an aware datetime in UTC. orjson writes
            # it as isoformat() does, "+00:00" as "Z", in a third of the time.
            if value.__class__ is dt.datetime and value.tzinfo is dt.UTC:
                return orjson.dumps(value, option=orjson.OPT_UTC_Z)[1:-1].decode()
            if isinstance(value, dt.datetime) and value.utcoffset() == _ZERO:
                return value.replace(tzinfo=None).isoformat() + "Z"
            return slow(value)

        return convert_datetime
    if type(field) is fields.DecimalField:
        coerce = getattr(field, "coerce_to_string", api_settings.COERCE_DECIMAL_TO_STRING)
        places = field.decimal_places
        plain = not (field.localize or getattr(field, "normalize_output", False))
        if not coerce or places is None or not plain:
            return slow
        max_digits = field.max_digits

        def convert_decimal(value: Any) -> Any:
            # A column's value has exactly its places: its text is the answer. The
            # length check counts a sign or a leading zero as a digit, so it may
            # send a value within max_digits the slow way, never one beyond it.
            if value.__class__ is Decimal:
                text = str(value)
                point = text.find(".")
                if (
                    point != -1
                    and len(text) - point - 1 == places
                    and "E" not in text
                    and (max_digits is None or len(text) - 1 <= max_digits)
                ):
                    return text
            return slow(value)

        return convert_decimal
    if type(field) is fields.BigIntegerField:
        # BigIntegerField.to_representation is int(), unless it is told to write strings.
        as_text = getattr(field, "coerce_to_string", api_settings.COERCE_BIGINT_TO_STRING)
        return slow if as_text else int
    if type(field) is fields.ChoiceField:
        choices = field.choice_strings_to_values

        def convert_choice(value: Any) -> Any:
            # A column's plain string: the field's own lookup, without its checks for
            # empty values and enums.
            if value.__class__ is str and value:
                return choices.get(value, value)
            return slow(value)

        return convert_choice
    return slow


def _concrete_path(model: type[models.Model], attrs: list[str]) -> bool:
    """Whether `attrs` walks forward relations of `model` and ends on a concrete column."""
    for index, attr in enumerate(attrs):
        try:
            model_field = model._meta.get_field(attr)
        except FieldDoesNotExist:
            return False
        last = index == len(attrs) - 1
        if last:
            return bool(model_field.concrete) and not model_field.many_to_many
        if not (model_field.many_to_one or model_field.one_to_one) or model_field.auto_created:
            return False
        model = model_field.related_model  # type: ignore[assignment]
    return False


@dataclass(frozen=True, slots=True)
class Column:
    """A field that is a column: how to read it from an instance, and how to represent it."""

    read: Callable[[Any], Any]
    represent: Callable[[Any], Any]


def plan_field(field: fields.Field, model: type[models.Model] | None) -> Column | None:
    """How to read and represent one field of a row; None when DRF's own walk must do it."""
    attrs = list(field.source_attrs)
    if model is None or not attrs or isinstance(field, serializers.BaseSerializer):
        return None
    if (
        isinstance(field, relations.PrimaryKeyRelatedField)
        and field.use_pk_only_optimization()
        and field.pk_field is None
        and _concrete_path(model, attrs)
    ):
        # The foreign key's own column: no join, no query.
        *path, last = attrs
        read_path = attrgetter(".".join(path)) if path else None

        def read_fk(instance: Any) -> Any:
            owner = read_path(instance) if read_path else instance
            return owner.serializable_value(last)

        return Column(read=read_fk, represent=_identity)
    if type(field) in _FIELD_CLASSES and _concrete_path(model, attrs):
        exact = _EXACT_CONVERSIONS.get(type(field))
        return Column(read=attrgetter(".".join(attrs)), represent=exact or _converter(field))
    return None


# Columns whose values the database driver gives as str, and as int.
_TEXT_COLUMNS = frozenset({"CharField", "TextField", "EmailField", "SlugField", "URLField"})
_INTEGER_COLUMNS = frozenset(
    {
        "AutoField",
        "BigAutoField",
        "SmallAutoField",
        "IntegerField",
        "BigIntegerField",
        "SmallIntegerField",
        "PositiveIntegerField",
        "PositiveBigIntegerField",
        "PositiveSmallIntegerField",
    }
)


def _output_is_value(
    field: fields.Field, model: type[models.Model], convert: Callable[[Any], Any]
) -> bool:
    """Whether `convert` returns every non-null value of the field's column unchanged.

    True for a foreign key's raw id, `str` of a text column, `int` of an
    integer one, and a ChoiceField over a text column whose choices are
    strings (its lookup maps each string to itself, and any other string
    passes unchanged). A row's value is then its output, with no call.
    """
    if convert is _identity:
        return True
    column = _forward_path(model, list(field.source_attrs)[:-1])
    try:
        internal_type = (
            column._meta.get_field(field.source_attrs[-1]).get_internal_type() if column else None
        )
    except FieldDoesNotExist:
        return False
    if convert is str:
        return internal_type in _TEXT_COLUMNS
    if convert is int:
        return internal_type in _INTEGER_COLUMNS
    if type(field) is fields.ChoiceField and internal_type in _TEXT_COLUMNS:
        choices = field.choice_strings_to_values
        return all(key.__class__ is str and key == value for key, value in choices.items())
    return False


def _forward_path(model: type[models.Model], attrs: list[str]) -> type[models.Model] | None:
    """The model that `attrs` reaches through forward relations of `model`, or None."""
    for attr in attrs:
        try:
            model_field = model._meta.get_field(attr)
        except FieldDoesNotExist:
            return None
        if not (model_field.many_to_one or model_field.one_to_one) or model_field.auto_created:
            return None
        model = model_field.related_model  # type: ignore[assignment]
    return model


def _many_path(model: type[models.Model], attrs: list[str]) -> type[models.Model] | None:
    """The model of the rows that `attrs` reaches: forward relations, then a to-many one."""
    *path, last = attrs
    owner = _forward_path(model, path)
    if owner is None:
        return None
    try:
        model_field = owner._meta.get_field(last)
    except FieldDoesNotExist:
        return None
    if not (model_field.one_to_many or model_field.many_to_many):
        return None
    return model_field.related_model


def _reader(attrs: list[str]) -> Callable[[Any], Any]:
    return attrgetter(".".join(attrs)) if attrs else _identity


def plan_nested(field: fields.Field, model: type[models.Model] | None) -> Column | None:
    """How to read and represent a nested serializer or a method field; None for DRF's walk.

    - a nested serializer over `source="*"` represents the same instance, so
      its fields are planned against the same model;
    - a nested serializer over forward relations represents the related row;
    - `many=True` over a to-many relation (prefetched by the selector)
      represents each of the related rows, read with `.all()` as DRF does;
    - a SerializerMethodField calls its method with the instance.

    A nested serializer with its own `to_representation` keeps it.
    """
    if model is None:
        return None
    if isinstance(field, serializers.SerializerMethodField) and field.source == "*":
        return Column(read=_identity, represent=getattr(field.parent, field.method_name))
    attrs = list(field.source_attrs)
    if isinstance(field, serializers.ListSerializer):
        if not attrs or type(field).to_representation not in _PLANNED_LISTS:
            return None
        related = _many_path(model, attrs)
        child = field.child
        if related is None or not isinstance(child, serializers.Serializer):
            return None
        build = row_builder(child, related)

        def represent_many(value: Any) -> list[dict[str, Any]]:
            rows = value.all() if isinstance(value, models.manager.BaseManager) else value
            return [build(item) for item in rows]

        return Column(read=_reader(attrs), represent=represent_many)
    if isinstance(field, serializers.Serializer):
        related = _forward_path(model, attrs) if attrs else model
        if related is None:
            return None
        return Column(read=_reader(attrs), represent=row_builder(field, related))
    return None


def row_builder(
    serializer: serializers.Serializer[Any], model: type[models.Model] | None = None
) -> Callable[[Any], dict[str, Any]]:
    """A function that represents one instance as `serializer` does, field by planned field.

    `model` is the instance's model, for a nested serializer without a Meta of
    its own. A serializer with its own `to_representation` is left to it.
    """
    if type(serializer).to_representation not in _PLANNED_SERIALIZERS:
        return serializer.to_representation
    model = getattr(getattr(serializer, "Meta", None), "model", model)
    plans = [
        (cast(str, field.field_name), field, plan_field(field, model) or plan_nested(field, model))
        for field in serializer._readable_fields
    ]

    def build(instance: Any) -> dict[str, Any]:
        row: dict[str, Any] = {}
        for name, field, column in plans:
            if column is not None:
                try:
                    value = column.read(instance)
                except (AttributeError, ObjectDoesNotExist):
                    pass  # a null relation on the way: DRF's rules below
                else:
                    row[name] = None if value is None else column.represent(value)
                    continue
            # DRF's own walk, with its rules for skipped and None values.
            try:
                value = field.get_attribute(instance)
            except fields.SkipField:
                continue
            check = value.pk if isinstance(value, relations.PKOnlyObject) else value
            row[name] = None if check is None else field.to_representation(value)
        return row

    return build


# A serializer that represents an instance by its planned fields (a detail,
# say), with the output DRF's own to_representation gives: put it before
# ModelSerializer in the bases. A docstring here would become the schema's
# description of every serializer that uses it.
class FastSerializerMixin(serializers.Serializer[Any]):
    def to_representation(self, instance: Any) -> dict[str, Any]:
        plan = self.__dict__.get("_row_builder")
        if plan is None:
            plan = self.__dict__["_row_builder"] = row_builder(self)
        return plan(instance)


class FastListSerializer(serializers.ListSerializer[Any]):
    def to_representation(self, data: Any) -> list[dict[str, Any]]:
        rows: Iterable[Any] = data.all() if isinstance(data, models.manager.BaseManager) else data
        build = row_builder(cast(serializers.Serializer[Any], self.child))
        return [build(instance) for instance in rows]


# The to_representation methods that row_builder may replace by its plan.
_PLANNED_SERIALIZERS = (
    serializers.Serializer.to_representation,
    FastSerializerMixin.to_representation,
)
_PLANNED_LISTS = (
    serializers.ListSerializer.to_representation,
    FastListSerializer.to_representation,
)


@dataclass(frozen=True)
class ManyPlan:
    """A nested `many=True` over a to-many relation, read as rows of columns in one query."""

    name: str  # the output field
    relation: str  # the relation's name on the parent model
    link: str  # the child's column that holds the parent's key
    manager: models.Manager[Any]  # the child model's default manager
    child: ValuesPlan

    def rows_by_parent(
        self, keys: list[Any], parent: QuerySet[Any] | None
    ) -> dict[Any, list[dict[str, Any]]]:
        """The represented child rows of each parent key, in the order DRF would give them.

        DRF reads the relation's `.all()`: the rows the selector prefetched
        (its Prefetch queryset: filter and ordering) or, without a prefetch,
        the related manager's. The same queryset is read here as rows of columns.
        """
        children = self.manager.all()
        for lookup in getattr(parent, "_prefetch_related_lookups", ()):
            prefetch = lookup if isinstance(lookup, Prefetch) else None
            if prefetch and prefetch.prefetch_to == self.relation and prefetch.queryset is not None:
                children = prefetch.queryset.all()
        rows = list(self.child.values(children.filter(**{f"{self.link}__in": keys}), self.link))
        grouped: dict[Any, list[dict[str, Any]]] = {key: [] for key in keys}
        read_link = attrgetter(self.link)
        for row, represented in zip(rows, self.child.represent(rows), strict=True):
            grouped[read_link(row)].append(represented)
        return grouped


@dataclass(frozen=True)
class ValuesPlan:
    """How to read a page as rows of columns, and turn each row into the output."""

    lookups: dict[str, str]  # output field -> ORM lookup
    # (field, lookup, convert), in the output's order; None where the value is the output
    converters: tuple[tuple[str, str, Callable[[Any], Any] | None], ...]
    many: tuple[ManyPlan, ...] = ()
    key: str = "pk"  # the rows' own key, read when a to-many relation is nested
    order: tuple[str, ...] | None = None  # the output's field order, when `many` is not last

    def values(self, queryset: QuerySet[Any], *also: str) -> QuerySet[Any]:
        """The rows: named tuples of the lookups' columns, then `also` (and the key).

        Tuples rather than `.values()` dicts: a dict per row costs more to
        build, and `represent` reads the columns by position. They are named
        so that pagination can read a cursor's position from them. Columns are
        named by lookup (`customer__user__email`), and `represent` names the
        fields: an alias (`customer_email=F(...)`) would cost the query an
        annotation, resolved again on every request.
        """
        wanted = (*self.lookups.values(), *also, *((self.key,) if self.many else ()))
        rows = queryset.values_list(*dict.fromkeys(wanted), named=True)
        rows._iterable_class = CompiledRowsIterable  # its SQL compiled once per shape (compiled.py)
        return rows

    @cached_property
    def _shape(self) -> tuple[tuple[str, ...], tuple[int, ...], dict[int, Callable[[Any], Any]]]:
        # The output's names; the position in a row of each one's column (the
        # columns come first, in `values`' order); the converters by output field.
        columns = list(dict.fromkeys(self.lookups.values()))
        return (
            tuple(name for name, _, _ in self.converters),
            tuple(columns.index(lookup) for _, lookup, _ in self.converters),
            {
                index: convert
                for index, (_, _, convert) in enumerate(self.converters)
                if convert is not None
            },
        )

    def represent(
        self, rows: Iterable[Any], source: QuerySet[Any] | None = None
    ) -> list[dict[str, Any]]:
        """The output for `rows` (read by `values`); `source` is the queryset they came from."""
        names, positions, converters = self._shape
        rows = list(rows)
        if not rows:
            return []
        # Column by column: each converter runs over its column in one loop, and
        # each row's dict is built from its values in one call.
        columns = list(zip(*rows, strict=True))
        fields: list[Any] = [columns[position] for position in positions]
        for index, convert in converters.items():
            fields[index] = [None if value is None else convert(value) for value in fields[index]]
        output = [dict(zip(names, values, strict=True)) for values in zip(*fields, strict=True)]
        if not self.many:
            return output
        read_key = attrgetter(self.key)
        keys = [read_key(row) for row in rows]
        for many in self.many:
            grouped = many.rows_by_parent(keys, source)
            for key, represented in zip(keys, output, strict=True):
                represented[many.name] = grouped[key]
        if self.order is None:
            return output
        return [{name: represented[name] for name in self.order} for represented in output]


def _many_values_plan(field: fields.Field, model: type[models.Model]) -> ManyPlan | None:
    """A ManyPlan for `many=True` over one of `model`'s to-many relations, or None."""
    if not isinstance(field, serializers.ListSerializer) or len(field.source_attrs) != 1:
        return None
    if type(field).to_representation not in _PLANNED_LISTS:
        return None
    try:
        relation = model._meta.get_field(field.source_attrs[0])
    except FieldDoesNotExist:
        return None
    if not relation.one_to_many:
        return None  # a many-to-many goes through a table of its own: instances
    child = values_plan(type(cast(serializers.BaseSerializer[Any], field.child)))
    if child is None or child.many:
        return None
    return ManyPlan(
        name=cast(str, field.field_name),
        relation=field.source_attrs[0],
        link=relation.field.attname,  # type: ignore[union-attr]
        manager=relation.related_model._default_manager,  # type: ignore[union-attr]
        child=child,
    )


def values_plan(serializer_class: type[serializers.BaseSerializer[Any]]) -> ValuesPlan | None:
    """A ValuesPlan for `serializer_class`, or None when it needs model instances.

    Only a ModelSerializer whose fields are its declared ones qualifies: a
    class with its own `get_fields` may show other fields per request, and one
    with its own `to_representation` may compute anything from an instance.
    Its fields must be columns, or `many=True` over a to-many relation of
    columns (one more query for the page's related rows, however many).
    """
    if serializer_class.to_representation not in _PLANNED_SERIALIZERS:
        return None
    if getattr(serializer_class, "get_fields", None) is not serializers.ModelSerializer.get_fields:
        return None
    model = getattr(getattr(serializer_class, "Meta", None), "model", None)
    if model is None:
        return None
    serializer = cast(serializers.Serializer[Any], serializer_class())
    model_fields = {field.name for field in model._meta.get_fields()}
    lookups: dict[str, str] = {}
    converters = []
    many = []
    names = []
    for field in serializer._readable_fields:
        name = cast(str, field.field_name)
        names.append(name)
        nested = _many_values_plan(field, model)
        if nested is not None:
            many.append(nested)
            continue
        column = plan_field(field, model)
        lookup = "__".join(field.source_attrs)
        if column is None or (name != lookup and name in model_fields):
            return None  # not a column, or an alias the ORM would refuse
        lookups[name] = lookup
        convert = None if _output_is_value(field, model, column.represent) else column.represent
        converters.append((name, lookup, convert))
    key = model._meta.pk.attname
    if not all(map(_row_name, (*lookups.values(), *((key,) if many else ())))):
        return None  # a column a named tuple cannot hold (`_private`)
    # The nested lists are added after the columns: say the order when they are not last.
    in_order = names == [*lookups, *(nested.name for nested in many)]
    return ValuesPlan(
        lookups=lookups,
        converters=tuple(converters),
        many=tuple(many),
        key=key,
        order=None if in_order else tuple(names),
    )


def _row_name(lookup: str) -> bool:
    """Whether a row of `values_list(named=True)` can name its column `lookup`."""
    return lookup.isidentifier() and not keyword.iskeyword(lookup) and not lookup.startswith("_")


_PLANS: dict[type[serializers.BaseSerializer[Any]], ValuesPlan | None] = {}


def cached_values_plan(
    serializer_class: type[serializers.BaseSerializer[Any]],
) -> ValuesPlan | None:
    """values_plan, made once per serializer class: its fields do not vary per request."""
    if serializer_class not in _PLANS:
        _PLANS[serializer_class] = values_plan(serializer_class)
    return _PLANS[serializer_class]


class ValuesListMixin(mixins.ListModelMixin, GenericAPIView[Any]):
    """A list action that reads rows of columns when the serializer allows it."""

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        plan = cached_values_plan(self.get_serializer_class())
        if plan is None:
            return super().list(request, *args, **kwargs)
        queryset = self.filter_queryset(self.get_queryset())
        # Cursor pagination reads its position from the rows: keep its fields.
        get_ordering = getattr(self.paginator, "get_ordering", None)
        ordering = get_ordering(request, queryset, self) if get_ordering else ()
        rows = plan.values(queryset, *(field.lstrip("-") for field in ordering))
        page = self.paginate_queryset(rows)
        if page is None:
            return Response(plan.represent(rows, queryset))
        return self.get_paginated_response(plan.represent(page, queryset))
