"""Which table-level lock each statement takes, read from pglast's parse tree.

Levels follow PostgreSQL's "Table-Level Locks" (explicit-locking.html): 1 is ACCESS
SHARE, 8 ACCESS EXCLUSIVE; from SHARE (5) up, the lock blocks writes.
"""

from __future__ import annotations

from dataclasses import dataclass

from pglast import ast
from pglast.enums import AlterTableType as At
from pglast.enums import ConstrType as Ct
from pglast.enums import ObjectType as Ot

NAMES = (
    "",
    "ACCESS SHARE",
    "ROW SHARE",
    "ROW EXCLUSIVE",
    "SHARE UPDATE EXCLUSIVE",
    "SHARE",
    "SHARE ROW EXCLUSIVE",
    "EXCLUSIVE",
    "ACCESS EXCLUSIVE",
)
ACCESS_EXCLUSIVE, EXCLUSIVE, SHARE_ROW_EXCLUSIVE, SHARE = 8, 7, 6, 5
SHARE_UPDATE_EXCLUSIVE, ROW_EXCLUSIVE = 4, 3
# ALTER TABLE forms that take less than ACCESS EXCLUSIVE (sql-altertable.html).
_LIGHTER = {
    At.AT_ValidateConstraint: SHARE_UPDATE_EXCLUSIVE,
    At.AT_SetStatistics: SHARE_UPDATE_EXCLUSIVE,
    At.AT_SetRelOptions: SHARE_UPDATE_EXCLUSIVE,
    At.AT_ResetRelOptions: SHARE_UPDATE_EXCLUSIVE,
    At.AT_ClusterOn: SHARE_UPDATE_EXCLUSIVE,
    At.AT_DropCluster: SHARE_UPDATE_EXCLUSIVE,
    At.AT_AttachPartition: SHARE_UPDATE_EXCLUSIVE,
    At.AT_EnableTrig: SHARE_ROW_EXCLUSIVE,
    At.AT_DisableTrig: SHARE_ROW_EXCLUSIVE,
    At.AT_EnableTrigAll: SHARE_ROW_EXCLUSIVE,
    At.AT_DisableTrigAll: SHARE_ROW_EXCLUSIVE,
    At.AT_EnableTrigUser: SHARE_ROW_EXCLUSIVE,
    At.AT_DisableTrigUser: SHARE_ROW_EXCLUSIVE,
}


@dataclass(frozen=True)
class Touch:
    """A statement's lock on one table."""

    table: str
    level: int

    @property
    def name(self) -> str:
        return NAMES[self.level]

    @property
    def blocks_writes(self) -> bool:
        return self.level >= SHARE


def lock_name(level: int | None) -> str:
    return NAMES[level or ACCESS_EXCLUSIVE]


def table_key(relation: ast.RangeVar | None, name: str | None = None) -> str:
    """A table's name as the rules compare it: `public.` dropped, otherwise kept."""
    if relation is None:
        return "?"
    schema = relation.schemaname
    base = name if name is not None else str(relation.relname)
    return base if schema in (None, "public") else f"{schema}.{base}"


def type_of(name: ast.TypeName | None) -> tuple[str, tuple[int, ...]]:
    """A type as (last name, integer modifiers): ('varchar', (20,))."""
    if name is None or not name.names:
        return ("?", ())
    last = str(getattr(name.names[-1], "sval", "?"))
    mods = tuple(
        int(m.val.ival or 0)
        for m in name.typmods or ()
        if isinstance(m, ast.A_Const) and isinstance(m.val, ast.Integer)
    )
    return (last, mods)


def option(options: tuple[object, ...] | None, name: str) -> bool:
    """A boolean option such as REINDEX (CONCURRENTLY) that is present and not off."""
    for item in options or ():
        if isinstance(item, ast.DefElem) and item.defname == name:
            arg = item.arg
            return not (isinstance(arg, ast.Integer) and arg.ival == 0)
    return False


def touches(node: ast.Node) -> list[Touch]:
    """The tables a statement locks, each with the strongest lock it takes there."""
    if isinstance(node, ast.IndexStmt):
        level = SHARE_UPDATE_EXCLUSIVE if node.concurrent else SHARE
        return [Touch(table_key(node.relation), level)]
    if isinstance(node, ast.AlterTableStmt) and node.objtype == Ot.OBJECT_TABLE:
        return _alter_table(node)
    if isinstance(node, ast.DropStmt) and node.removeType == Ot.OBJECT_TABLE:
        return [Touch(dotted_name(o), ACCESS_EXCLUSIVE) for o in node.objects or ()]
    if isinstance(node, ast.TruncateStmt):
        return [Touch(table_key(r), ACCESS_EXCLUSIVE) for r in node.relations or ()]
    if isinstance(node, ast.RenameStmt) and node.relation is not None:
        return [Touch(table_key(node.relation), ACCESS_EXCLUSIVE)]
    if isinstance(node, ast.LockStmt):
        level = node.mode or ACCESS_EXCLUSIVE
        return [Touch(table_key(r), level) for r in node.relations or ()]
    if isinstance(node, ast.ReindexStmt) and node.relation is not None:
        if node.kind is None or node.kind.name != "REINDEX_OBJECT_TABLE":
            return []
        concurrent = option(node.params, "concurrently")
        level = SHARE_UPDATE_EXCLUSIVE if concurrent else SHARE
        return [Touch(table_key(node.relation), level)]
    if isinstance(node, ast.VacuumStmt) and option(node.options, "full"):
        return [Touch(table_key(r.relation), ACCESS_EXCLUSIVE) for r in _rels(node)]
    if isinstance(node, ast.ClusterStmt) and node.relation is not None:
        return [Touch(table_key(node.relation), ACCESS_EXCLUSIVE)]
    if isinstance(node, ast.CreateTrigStmt):
        return [Touch(table_key(node.relation), SHARE_ROW_EXCLUSIVE)]
    if isinstance(node, ast.RefreshMatViewStmt):
        level = EXCLUSIVE if node.concurrent else ACCESS_EXCLUSIVE
        return [Touch(table_key(node.relation), level)]
    if isinstance(node, (ast.UpdateStmt, ast.DeleteStmt, ast.InsertStmt)):
        return [Touch(table_key(node.relation), ROW_EXCLUSIVE)]
    return []


def _alter_table(node: ast.AlterTableStmt) -> list[Touch]:
    table = table_key(node.relation)
    level, others = 0, []
    for cmd in node.cmds or ():
        if not isinstance(cmd, ast.AlterTableCmd):
            continue
        con = cmd.def_ if isinstance(cmd.def_, ast.Constraint) else None
        if con is not None and con.contype == Ct.CONSTR_FOREIGN:
            # A foreign key locks both tables with SHARE ROW EXCLUSIVE.
            level = max(level, SHARE_ROW_EXCLUSIVE)
            if con.pktable is not None:
                others.append(Touch(table_key(con.pktable), SHARE_ROW_EXCLUSIVE))
        elif cmd.subtype == At.AT_DetachPartition and _concurrent_detach(cmd):
            level = max(level, SHARE_UPDATE_EXCLUSIVE)
        elif cmd.subtype is not None:
            level = max(level, _LIGHTER.get(cmd.subtype, ACCESS_EXCLUSIVE))
    return [Touch(table, level or ACCESS_EXCLUSIVE), *others]


def _concurrent_detach(cmd: ast.AlterTableCmd) -> bool:
    return isinstance(cmd.def_, ast.PartitionCmd) and bool(cmd.def_.concurrent)


def _rels(node: ast.VacuumStmt) -> list[ast.VacuumRelation]:
    return [r for r in node.rels or () if isinstance(r, ast.VacuumRelation)]


def dotted_name(names: object) -> str:
    """`schema.table` from a DROP's name list, `public.` dropped like table_key."""
    if not isinstance(names, tuple):
        return "?"
    parts = [str(p.sval) for p in names if isinstance(p, ast.String)]
    if len(parts) > 1 and parts[-2] == "public":
        parts = parts[-1:]
    return ".".join(parts[-2:]) or "?"
