"""The store: paging semantics, indexes, and the optional SQLite file."""

from __future__ import annotations

from pathlib import Path

import pytest

from stripe_emulator.config import Config
from stripe_emulator.store import Store
from stripe_emulator.testing import running_emulator


def _obj(i: int, kind: str = "thing", **extra: str) -> dict[str, object]:
    return {"id": f"th_{i:04d}", "object": kind, "n": i, **extra}


def test_pages_are_newest_first_with_cursors() -> None:
    store = Store()
    for i in range(25):
        store.insert("acct_a", _obj(i))
    items, more = store.page("acct_a", "thing", limit=10)
    assert [o["n"] for o in items] == list(range(24, 14, -1)) and more
    items, more = store.page("acct_a", "thing", limit=10, starting_after="th_0015")
    assert [o["n"] for o in items] == list(range(14, 4, -1)) and more
    items, more = store.page("acct_a", "thing", limit=10, starting_after="th_0005")
    assert [o["n"] for o in items] == [4, 3, 2, 1, 0] and not more
    items, more = store.page("acct_a", "thing", limit=3, ending_before="th_0020")
    assert [o["n"] for o in items] == [23, 22, 21] and more
    items, more = store.page("acct_a", "thing", limit=3, ending_before="th_0022")
    assert [o["n"] for o in items] == [24, 23] and not more
    with pytest.raises(KeyError):
        store.page("acct_a", "thing", starting_after="th_9999")


def test_accounts_and_kinds_are_separate() -> None:
    store = Store()
    store.insert("acct_a", _obj(1))
    store.insert("acct_b", _obj(2))
    store.insert("acct_a", _obj(3, kind="other"))
    assert [o["n"] for o in store.page("acct_a", "thing")[0]] == [1]
    assert store.get("th_0002", "acct_a") is None
    assert store.get("th_0002", "acct_b") == _obj(2)


def test_index_filters_and_tolerates_changed_fields() -> None:
    store = Store()
    for i in range(6):
        store.insert("acct_a", _obj(i, customer="cus_x" if i % 2 else "cus_y"), ("customer",))
    items, _ = store.page("acct_a", "thing", where=("customer", "cus_x"))
    assert [o["n"] for o in items] == [5, 3, 1]
    moved = store.get("th_0003")
    assert moved is not None
    moved["customer"] = "cus_z"
    store.save(moved)
    items, _ = store.page("acct_a", "thing", where=("customer", "cus_x"))
    assert [o["n"] for o in items] == [5, 1]
    store.add_index("acct_a", "thing", "payout", "po_1", "th_0004")
    assert [o["n"] for o in store.page("acct_a", "thing", where=("payout", "po_1"))[0]] == [4]


def test_reads_are_copies() -> None:
    store = Store()
    store.insert("acct_a", _obj(1))
    first = store.get("th_0001")
    assert first is not None
    first["n"] = 99
    assert store.get("th_0001") == _obj(1)


def test_sqlite_file_survives_a_restart(tmp_path: Path) -> None:
    db = str(tmp_path / "emulator.sqlite")
    config = Config(global_rate=None, endpoint_rate=None)
    with running_emulator(config, store_path=db) as emu:
        client = emu.stripe_client()
        cus = client.v1.customers.create(params={"email": "keep@example.com"})
        client.v1.customers.update(cus.id, params={"name": "Kept"})
        gone = client.v1.customers.create()
        client.v1.customers.delete(gone.id)
        now = emu.control.advance(days=2)
    with running_emulator(Config(global_rate=None, endpoint_rate=None), store_path=db) as emu:
        client = emu.stripe_client()
        again = client.v1.customers.retrieve(cus.id)
        assert again.name == "Kept" and again.email == "keep@example.com"
        assert [c.id for c in client.v1.customers.list().data] == [cus.id]
        assert emu.control.now() >= now, "the emulator clock must not run backwards"


def _event(i: int) -> dict[str, object]:
    return {"id": f"evt_{i:04d}", "object": "event", "type": "thing.made", "n": i,
            "data": {"object": {"id": f"th_{i:04d}", "pad": "x" * 300}}}  # fmt: skip


def test_events_are_deflated_in_groups_and_stay_readable() -> None:
    store = Store()
    for i in range(10):
        store.insert("acct_a", _event(i), ("type",))
    assert store.get("evt_0003") == _event(3)  # still in the open group
    store.seal()
    for i in range(130):  # past one group's limit: sealed on the way
        if i >= 10:
            store.insert("acct_a", _event(i), ("type",))
    store.seal()
    assert [store.get(f"evt_{i:04d}") for i in (0, 64, 129, 5)] == [
        _event(0), _event(64), _event(129), _event(5),
    ]  # fmt: skip
    items, more = store.page("acct_a", "event", limit=5, where=("type", "thing.made"))
    assert [o["n"] for o in items] == [129, 128, 127, 126, 125] and more
    changed = {**_event(7), "pending_webhooks": 0}
    store.save(changed)  # an event saved later becomes a record of its own
    store.seal()
    assert store.get("evt_0007") == changed and store.get("evt_0008") == _event(8)
    assert store.kind_of("evt_0007") == "event" and store.owner("evt_0007") == "acct_a"
    # a group of similar events costs far less than deflating each alone
    grouped = sum(len(g) for g in store._groups)
    alone = Store()
    for i in range(130):
        alone.insert("acct_a", {**_event(i), "object": "thing"})
    assert grouped < 0.6 * sum(len(b) for b in alone._recs.values())
