"""Who may see whose tweets: one rule for every read path (home, user timeline, lookup, replies).

A protected account's tweets are visible only to itself and its followers; blocks hide content
in both directions. Anything not visible is answered exactly like something that does not exist
(404, or simply absent from a list), so a protected tweet's text never leaks.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Viewer:
    user_id: int
    following: frozenset[int]
    hidden: frozenset[int]  # blocked by the viewer, blocking the viewer, or muted by the viewer
    blocked_either_way: frozenset[int]


def can_see_author(viewer: Viewer, author: int, protected: bool) -> bool:
    """Whether the viewer may see this author's tweets at all (lookups, profiles' tweets)."""
    if author == viewer.user_id:
        return True
    if author in viewer.blocked_either_way:
        return False
    return not protected or author in viewer.following


def shows_in_lists(viewer: Viewer, author: int, protected: bool) -> bool:
    """Whether the author's tweets appear in the viewer's lists (home, replies): mutes hide too."""
    return can_see_author(viewer, author, protected) and (author == viewer.user_id or author not in viewer.hidden)
