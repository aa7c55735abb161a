"""Pure: which blocks a revert block undid, which file blocks still stand, and what
a revert would undo, newest first, each with its down script.

A revert block (mode `revert`, numbered -height) holds a down script's path and
hash; it undoes the newest standing block of the migration beside that script.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from chainops.errors import ConfigError, Refused
from chainops.model import Block, MigrationFile, Mode

DOWN_SUFFIX = ".down.sql"
_NOT_FILE = (Mode.DRIFT, Mode.REPEATABLE, Mode.REVERT)  # a tuple: compared with ==


def migration_path(down_path: str) -> str:
    """001-schema/004-x.sql for 001-schema/004-x.down.sql."""
    return down_path.removesuffix(DOWN_SUFFIX) + ".sql"


def is_down(file: MigrationFile) -> bool:
    """A down script carried as a file to apply: its block is a revert block."""
    return not file.is_repeatable and file.path.endswith(DOWN_SUFFIX)


def is_file_block(block: Block) -> bool:
    """A block that applied (or adopted) a numbered migration file."""
    return block.mode not in _NOT_FILE  # the properties' test, without three calls


def reverted(blocks: Iterable[Block]) -> dict[int, Block]:
    """Each reverted block's height → the revert block that undid it."""
    blocks = list(blocks)
    # Verify and plan ask this of every block several times a run: a chain with no
    # revert block, the common case, is answered without building the paths map.
    if not any(b.mode == Mode.REVERT for b in blocks):
        return {}
    standing: dict[str, Block] = {}  # by path: the newest block not reverted
    undone: dict[int, Block] = {}
    for block in blocks:
        if block.is_revert:
            target = standing.pop(migration_path(block.path), None)
            if target is not None:
                undone[target.height] = block
        elif is_file_block(block):
            standing[block.path] = block
    return undone


def standing(blocks: Sequence[Block]) -> list[Block]:
    """Blocks in force: every block but revert blocks and the blocks they undid."""
    undone = reverted(blocks)
    if not undone:
        return [b for b in blocks if b.mode != Mode.REVERT]
    return [b for b in blocks if not b.is_revert and b.height not in undone]


def plan_revert(
    blocks: Sequence[Block],
    files: Sequence[MigrationFile],
    *,
    last: int | None = None,
    to: int | None = None,
) -> tuple[tuple[Block, MigrationFile], ...]:
    """The newest standing file blocks to revert, newest first, each with its file
    (which carries the down script). `last`: how many; `to`: every one numbered
    above it. Only the newest can be reverted: a block that later standing blocks
    build on is refused until they are reverted first."""
    if last is not None and to is not None:
        raise ConfigError("pass --last or --to, not both")
    if last is not None and last < 1:
        raise ConfigError(f"--last {last}: pass a count of 1 or more")
    stack = [b for b in standing(blocks) if is_file_block(b)]
    if to is None:
        chosen = stack[-(last or 1) :][::-1]
    else:
        chosen = []
        for block in reversed(stack):
            if block.number <= to:
                break
            chosen.append(block)
        below = [b for b in stack[: len(stack) - len(chosen)] if b.number > to]
        if below:
            later = stack[len(stack) - len(chosen) - 1]
            raise Refused(
                f"{below[-1].path} (#{below[-1].number}, block {below[-1].height}) "
                f"comes before {later.path} (block {later.height}), which --to {to} "
                "keeps and may depend on it; revert with --last to include it; "
                "nothing was reverted"
            )
    if not chosen:
        raise Refused(
            "no applied migration to revert"
            + (f" above #{to}" if to is not None else "")
            + "; nothing was reverted"
        )
    by_path = {f.path: f for f in files}
    found = []
    for block in chosen:
        file = by_path.get(block.path)
        if file is None or file.down_script is None:
            down = block.path.removesuffix(".sql") + DOWN_SUFFIX
            raise Refused(
                f"{block.path} (block {block.height}) has no down script {down}; "
                "write it to undo the migration, then revert; nothing was reverted"
            )
        found.append((block, file))
    return tuple(found)


def down_file(file: MigrationFile) -> MigrationFile:
    """The down script as a file to apply: its block is the revert block."""
    script = file.down_script
    assert script is not None  # plan_revert chose only files that have one
    return MigrationFile(
        file.category_index,
        file.category,
        file.index,
        script.path,
        script.data,
        script.sha256,
    )
