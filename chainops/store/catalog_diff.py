"""Describe the difference between two schema snapshots, one readable line each.

Pure: works on Snapshot values, so every wording is testable without a database.
"""

from __future__ import annotations

from collections.abc import Mapping

from chainops.store.catalog import KINDS, RELATIONS, Snapshot

_MEMBERS = ("column", "constraint", "trigger")  # named <relation>.<member>


def diff(old: Snapshot, new: Snapshot) -> list[str]:
    """Describe what changed from `old` to `new`, one readable line per difference.

    What a table added or dropped contains (columns, constraints, indexes, triggers,
    owned sequences) is left unsaid: the table's own line covers it.
    """
    before_relations = _relation_names(old)
    after_relations = _relation_names(new)
    replaced = before_relations ^ after_relations
    lines: list[str] = []
    for kind in KINDS:
        before = old.objects.get(kind, {})
        after = new.objects.get(kind, {})
        for name in sorted(before.keys() | after.keys()):
            was, now = before.get(name), after.get(name)
            if was == now:
                continue
            if (now or was or {}).get("table") in replaced:
                continue
            if was is None:
                lines.append(_added(kind, name, now or {}, new))
            elif now is None:
                lines.append(_subject(kind, name, was, old) + " dropped")
            else:
                lines += _changed(kind, name, was, now)
        if kind == "column":
            lines += _reordered(before, after)
    return lines


def _relation_names(snapshot: Snapshot) -> set[str]:
    return {name for kind in RELATIONS for name in snapshot.objects.get(kind, {})}


def _subject(kind: str, name: str, attributes: Mapping[str, str], at: Snapshot) -> str:
    """`table public.t: column c` for members of a relation, else `index public.i`."""
    parent = attributes.get("table")
    if kind not in _MEMBERS or parent is None:
        return f"{kind} {name}"
    parent_kind = next((k for k in RELATIONS if parent in at.objects.get(k, {})), "")
    return f"{parent_kind or 'table'} {parent}: {kind} {name[len(parent) + 1 :]}"


def _column_sql(column: Mapping[str, str]) -> str:
    parts = [column["type"]]
    if "collation" in column:
        parts.append(f"COLLATE {column['collation']}")
    if "identity" in column:
        parts.append(f"GENERATED {column['identity']} AS IDENTITY")
    if "generated" in column:
        parts.append(f"GENERATED ALWAYS AS {column['generated']}")
    if "not_null" in column:
        parts.append("NOT NULL")
    if "default" in column:
        parts.append(f"DEFAULT {column['default']}")
    return " ".join(parts)


def _summary(kind: str, attributes: Mapping[str, str]) -> str | None:
    if kind == "extension":
        return f"version {attributes['version']}"
    if kind == "type":
        detail = attributes.get("labels") or attributes.get("attributes")
        base = attributes.get("type")
        return attributes["kind"] + (f" ({detail})" if detail else f" of {base}")
    definition = attributes.get("definition")
    if definition is None or not _is_short(definition):
        return None
    return definition + (" (INVALID)" if "invalid" in attributes else "")


def _added(kind: str, name: str, attributes: Mapping[str, str], at: Snapshot) -> str:
    subject = _subject(kind, name, attributes, at)
    if kind == "column":
        return f"{subject} {_column_sql(attributes)} added"
    summary = _summary(kind, attributes)
    return f"{subject} added" + (f": {summary}" if summary else "")


_NOT_COMPARED = ("position", "table")  # order is compared per table; names hold tables
_FLAG_PHRASES = {
    "invalid": ("now INVALID", "now valid"),
    "disabled": ("now disabled", "now enabled"),
}
_LABELS = {"generated": "generation expression"}


def _is_short(value: str) -> bool:
    return "\n" not in value and len(value) <= 200


def _changed(
    kind: str, name: str, was: Mapping[str, str], now: Mapping[str, str]
) -> list[str]:
    lines = []
    for key in sorted(was.keys() | now.keys()):
        old, new = was.get(key), now.get(key)
        if old == new or key in _NOT_COMPARED:
            continue
        label = _LABELS.get(key, key.replace("_", " "))
        if {old, new} <= {None, "true"}:  # a flag such as not_null
            label = label.upper()
            on, off = _FLAG_PHRASES.get(key, (f"{label} added", f"{label} dropped"))
            phrase = on if new else off
        elif old is None:
            phrase = f"{label} {new} added" if _is_short(str(new)) else f"{label} added"
        elif new is None:
            phrase = f"{label} dropped"
        elif _is_short(old) and _is_short(new):
            phrase = f"{label} changed from {old} to {new}"
        else:
            phrase = f"{label} changed"
        lines.append(f"{kind} {name}: {phrase}")
    return lines


def _reordered(
    before: Mapping[str, Mapping[str, str]], after: Mapping[str, Mapping[str, str]]
) -> list[str]:
    """Tables whose remaining columns now come in another order (SELECT * changes)."""
    tables: dict[str, list[tuple[int, int, str]]] = {}
    for name in before.keys() & after.keys():
        table = after[name]["table"]
        column = name[len(table) + 1 :]
        old, new = int(before[name]["position"]), int(after[name]["position"])
        tables.setdefault(table, []).append((old, new, column))
    lines = []
    for table, columns in sorted(tables.items()):
        old_order = [c for _, _, c in sorted(columns)]
        new_order = [c for _, _, c in sorted(columns, key=lambda c: c[1])]
        if old_order != new_order:
            lines.append(
                f"table {table}: column order changed from ({', '.join(old_order)}) "
                f"to ({', '.join(new_order)})"
            )
    return lines
