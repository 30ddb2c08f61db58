"""Runtime.registered_at: the reference check's lookup of users, remembered for the moderation
agent's account-age signal (a user's registration time never changes)."""

from types import SimpleNamespace

from agents.runtime import Runtime
from pipeline.model import User


def _user(uid: int) -> User:
    return User(user_id=uid, handle=f"u{uid}", display_name="U", bio="", protected=False, region=None,
                created_at=1_700_000_000_000 + uid)


class FakeHot:
    def __init__(self, registered: set[int]) -> None:
        self.registered = registered
        self.asked: list[set[int]] = []

    async def users(self, ids, load):
        ids = set(ids)
        self.asked.append(ids)
        return {u: _user(u) for u in ids & self.registered}


def _runtime(hot: FakeHot) -> Runtime:
    rt = Runtime(settings=None, topology=None, contracts=None, deadletter=None, retry_topic=None)  # type: ignore[arg-type]
    rt._cassandra = SimpleNamespace(get_users=None)  # type: ignore[assignment]
    rt._timelines, rt._hot = object(), hot  # type: ignore[assignment]
    return rt


async def test_registration_times_are_read_once_and_unknown_users_asked_again():
    hot = FakeHot(registered={1, 2, 3})
    rt = _runtime(hot)
    assert await rt.existing_users({1, 2, 9}) == {1, 2}
    # The moderation agent's question right after: answered from memory, no second read.
    assert await rt.registered_at({1, 2}) == {1: _user(1).created_at, 2: _user(2).created_at}
    assert hot.asked == [{1, 2, 9}]
    # A user not registered then is asked about again (it may have registered since).
    hot.registered.add(9)
    assert await rt.registered_at({1, 3, 9}) == {u: _user(u).created_at for u in (1, 3, 9)}
    assert hot.asked == [{1, 2, 9}, {3, 9}]
