"""The invite-list mirror's decision: which lists a channel must create, rename and remove so its
mirrored lists match a directory's member types. Pure: no I/O."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from libs.connectors.base.contract import InviteList, MemberType


@dataclass(frozen=True)
class MirrorPlan:
    """The steps of one pass, each safe to repeat.

    Attributes:
        create: member types no list mirrors yet (put a list with the type's name).
        rename: (list, its type) for each mirrored list whose name is not its type's name.
        remove: mirrored lists whose type is gone, and extra lists mirroring a type twice.
        unchanged: mirrored lists already right.
    """

    create: tuple[MemberType, ...] = ()
    rename: tuple[tuple[InviteList, MemberType], ...] = ()
    remove: tuple[InviteList, ...] = ()
    unchanged: tuple[InviteList, ...] = ()

    @property
    def changes(self) -> int:
        return len(self.create) + len(self.rename) + len(self.remove)


def plan_mirror(types: Sequence[MemberType], lists: Sequence[InviteList]) -> MirrorPlan:
    """What makes `lists` mirror `types`.

    A list mirrors the type whose id is its `source_id`; lists with no `source_id` are the
    channel staff's own and never appear in the plan. A type listed twice counts once (its
    first name). When two lists mirror one type (left by a channel that once created twice),
    the first whose name already matches is kept, else the first, and the others are removed.
    """
    wanted: dict[str, MemberType] = {}
    for member_type in types:
        if member_type.type_id and member_type.type_id not in wanted:
            wanted[member_type.type_id] = member_type
    kept: dict[str, InviteList] = {}
    extra: list[InviteList] = []
    for invite_list in lists:
        if not invite_list.source_id:
            continue
        current = kept.get(invite_list.source_id)
        if current is None:
            kept[invite_list.source_id] = invite_list
            continue
        wanted_type = wanted.get(invite_list.source_id)
        if wanted_type is not None and current.name != wanted_type.name and invite_list.name == wanted_type.name:
            kept[invite_list.source_id], invite_list = invite_list, current
        extra.append(invite_list)
    create = tuple(t for t in wanted.values() if t.type_id not in kept)
    rename = tuple((kept[i], t) for i, t in wanted.items() if i in kept and kept[i].name != t.name)
    unchanged = tuple(kept[i] for i, t in wanted.items() if i in kept and kept[i].name == t.name)
    gone = [invite_list for source_id, invite_list in kept.items() if source_id not in wanted]
    return MirrorPlan(create, rename, tuple(gone + extra), unchanged)
