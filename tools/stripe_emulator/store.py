"""The object store: every Stripe object the emulator holds, scoped by account.

Objects are kept as compact JSON bytes (orjson), so a read always hands out a fresh copy
(snapshots for events and idempotent replays come for free). In memory each one is deflated
against a preset dictionary: the first object of its kind (per event type for events), so
the keys and boilerplate every Stripe object repeats cost a few bytes, not a kilobyte, and
100,000 PaymentIntents with their charges, balance transactions and events fit well under a
gigabyte. The SQLite file keeps the portable form: plain JSON, zlib for events.

Every operation costs O(1) or O(log n) plus the page asked for: lists keep insertion
sequences per (account, kind) and per indexed field value, so `starting_after` is a bisect,
never a scan of the store.

Events, the bulk of any store, are deflated in groups rather than one by one: the events a
request or a timer emits (a subscription's creation makes a dozen) repeat each other's ids,
request and snapshots, which only a shared stream can exploit. An event waits as JSON in
the open group until `seal()` (called after every request, timer and job slice, and every
`_GROUP_MAX` events) deflates the group; its record then points into the group. An event
saved later (its `pending_webhooks`) becomes a record of its own.

A record is one bytes object: a header (its insertion sequence, the (account, kind) it
belongs to, its dictionary) and the deflated JSON. Keeping the bookkeeping inside the blob,
and the sequences in arrays of machine integers, costs about 180 bytes per record less
than a tuple and an int object each: millions of records (events above all) make that
hundreds of megabytes.
"""

from __future__ import annotations

import sqlite3
import struct
import sys
import threading
import zlib
from array import array
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import orjson

__all__ = ["Store"]

Obj = dict[str, Any]
Predicate = Callable[[Obj], bool]
_EMPTY: array[int] = array("q")
_NO_VALUES: dict[str, int | array[int]] = {}

_COMPRESSED_KINDS = frozenset({"event"})  # zlib-compressed in the SQLite file

# In memory a blob is one byte naming its dictionary, then raw deflate against it.
# A small window and hash keep deflate's state (~40 KiB) out of malloc's mmap range, which
# makes each compression several times cheaper than zlib.compress's default 256 KiB state.
_LEVEL = 3  # with these small windows and a dictionary, both smaller and faster than 1
_WBITS = -13  # raw deflate, 8 KiB window
_MEM_LEVEL = 4
_DICT_BYTES = 1 << 13  # deflate only looks back one window into the dictionary
_MAX_DICTS = 254  # slot 0 means no dictionary; 254 and 255 mark grouped events
_SEALED = 254  # the record points into a sealed group: group number, index
_OPEN = 255  # the record points into the open group: index
_GROUPED_KINDS = frozenset({"event"})
_SHARED_FIELDS = frozenset({"customer"})  # values many kinds index: kept once
_GROUP_MAX = 64  # events per group at most
_GROUP_WBITS = -15  # 32 KiB window: a group's events reach back to each other
_GROUP_LEVEL = 6  # groups are sealed rarely: worth ~20 % fewer bytes than level 3
_GROUP_DICT_BYTES = 1 << 15
_REF = struct.Struct("<IH")
# The header: sequence (uint32), owner (index into the (account, kind) pairs, uint16),
# dictionary slot (uint8).
_HEADER = struct.Struct("<IHB")
_HEAD = _HEADER.size
_unpack_header = _HEADER.unpack_from


class Store:
    def __init__(self, path: str | None = None) -> None:
        self._path = path
        self._db: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self.clear()
        if path:
            self._open(path)

    # -- life cycle -------------------------------------------------------------------------
    def clear(self) -> None:
        self._recs: dict[str, bytes] = {}  # id -> header + deflated JSON
        self._zdicts: list[bytes] = [b""]  # by slot; slot 0 deflates without a dictionary
        self._slot_of: dict[str, int] = {}  # kind (or "event:" + type) -> slot
        self._owners: list[tuple[str, str]] = []  # (account, kind) by owner number
        self._owner_of: dict[tuple[str, str], int] = {}
        self._gone: dict[str, int] = {}  # deleted id -> sequence (still a valid list cursor)
        self._id_at: list[str] = []
        self._lists: dict[tuple[str, str], array[int]] = {}
        # (account, kind, field) -> value -> sequences: one int while there is one (most
        # values are unique: a charge's PaymentIntent), an array once there are more.
        self._index: dict[tuple[str, str, str], dict[str, int | array[int]]] = {}
        self._meta: dict[str, str] = {}
        self._pending: dict[str, tuple[Any, ...] | None] = {}
        self._open_group: list[tuple[str, bytes, str]] = []  # unsealed (id, JSON, type)
        # Sealed groups: dictionary number, count, offsets, then the deflated JSON. A group's
        # dictionary holds the first event of every type seen so far (rebuilt when a type
        # appears): a new group then deflates against the shapes it repeats.
        self._groups: list[bytes] = []
        self._group_dicts: list[bytes] = [b""]
        self._type_samples: dict[str, bytes] = {}
        self._group_cache: tuple[int, bytes, tuple[int, ...]] | None = None
        if getattr(self, "_db", None) is not None:
            assert self._db is not None
            self._db.execute("DELETE FROM objects")
            self._db.execute("DELETE FROM meta")

    def _open(self, path: str) -> None:
        db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute(
            "CREATE TABLE IF NOT EXISTS objects (id TEXT PRIMARY KEY, seq INTEGER, account TEXT,"
            " kind TEXT, blob BLOB, idx TEXT)"
        )
        db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
        self._meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
        rows = db.execute(
            "SELECT id, account, kind, blob, idx FROM objects ORDER BY seq"
        ).fetchall()
        self._db = None  # do not write back while loading
        for obj_id, account, kind, blob, idx in rows:
            raw = zlib.decompress(blob) if kind in _COMPRESSED_KINDS else blob
            seq = len(self._id_at)
            owner = self._owner(account, kind)
            packed = self._pack(seq, owner, self._slot(kind, orjson.loads(raw), raw), raw)
            self._insert_raw(obj_id, seq, account, kind, packed, orjson.loads(idx), blob)
        self._db = db
        self._pending = {}

    @property
    def persistent(self) -> bool:
        return self._db is not None

    def get_meta(self, key: str) -> str | None:
        return self._meta.get(key)

    def set_meta(self, key: str, value: str) -> None:
        self._meta[key] = value
        if self._db is not None:
            self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def flush(self) -> None:
        """Write buffered changes to the SQLite file (called by the server every ~50 ms)."""
        if self._db is None or not self._pending:
            return
        pending, self._pending = self._pending, {}
        upserts = [row for row in pending.values() if row is not None]
        deletes = [(k,) for k, row in pending.items() if row is None]
        with self._lock:
            self._db.execute("BEGIN")
            self._db.executemany("INSERT OR REPLACE INTO objects VALUES (?,?,?,?,?,?)", upserts)
            self._db.executemany("DELETE FROM objects WHERE id = ?", deletes)
            self._db.execute("COMMIT")

    def close(self) -> None:
        if self._db is not None:
            self.flush()
            self._db.close()
            self._db = None

    def __len__(self) -> int:
        return len(self._recs)

    # -- encoding ---------------------------------------------------------------------------
    def _slot(self, kind: str, obj: Obj, raw: bytes) -> int:
        """The dictionary for this kind: the first object of it that the store sees."""
        key = kind if kind != "event" else f"event:{obj.get('type')}"
        slot = self._slot_of.get(key)
        if slot is None:
            slot = len(self._zdicts) if len(self._zdicts) < _MAX_DICTS else 0
            if slot:
                self._zdicts.append(bytes(memoryview(raw)[-_DICT_BYTES:]))
            self._slot_of[key] = slot
        return slot

    def _owner(self, account: str, kind: str) -> int:
        number = self._owner_of.get((account, kind))
        if number is None:
            number = self._owner_of[(account, kind)] = len(self._owners)
            self._owners.append((account, kind))
        return number

    def _pack(self, seq: int, owner: int, slot: int, raw: bytes) -> bytes:
        zdict = self._zdicts[slot]
        if zdict:
            c = zlib.compressobj(
                _LEVEL, zlib.DEFLATED, _WBITS, _MEM_LEVEL, zlib.Z_DEFAULT_STRATEGY, zdict
            )
        else:
            c = zlib.compressobj(_LEVEL, zlib.DEFLATED, _WBITS, _MEM_LEVEL)
        return _HEADER.pack(seq, owner, slot) + c.compress(raw) + c.flush()

    def _encode(self, seq: int, owner: int, kind: str, obj: Obj) -> tuple[bytes, bytes | None]:
        """(the in-memory blob, the SQLite blob or None without a file)."""
        raw = orjson.dumps(obj)
        packed = self._pack(seq, owner, self._slot(kind, obj, raw), raw)
        if self._db is None:
            return packed, None
        if kind in _COMPRESSED_KINDS:
            return packed, zlib.compress(raw, 1)
        return packed, bytes(memoryview(raw))  # orjson's buffer is larger than its JSON

    def _decode(self, blob: bytes) -> Obj:
        slot = blob[_HEAD - 1]
        if slot >= _SEALED:
            return self._decode_grouped(blob, slot)
        zdict = self._zdicts[slot]
        d = zlib.decompressobj(_WBITS, zdict) if zdict else zlib.decompressobj(_WBITS)
        result: Obj = orjson.loads(d.decompress(memoryview(blob)[_HEAD:]))
        return result

    # -- event groups -----------------------------------------------------------------------
    def _decode_grouped(self, blob: bytes, slot: int) -> Obj:
        if slot == _OPEN:
            (index,) = struct.unpack_from("<I", blob, _HEAD)
            grouped: Obj = orjson.loads(self._open_group[index][1])
            return grouped
        group, index = _REF.unpack_from(blob, _HEAD)
        cached = self._group_cache
        if cached is None or cached[0] != group:
            packed = self._groups[group]
            zdict_no, count = struct.unpack_from("<HH", packed)
            ends = struct.unpack_from(f"<{count}I", packed, 4)
            zdict = self._group_dicts[zdict_no]
            d = (
                zlib.decompressobj(_GROUP_WBITS, zdict)
                if zdict
                else zlib.decompressobj(_GROUP_WBITS)
            )
            cached = self._group_cache = (group, d.decompress(packed[4 + 4 * count :]), ends)
        _, raw, ends = cached
        start = ends[index - 1] if index else 0
        result: Obj = orjson.loads(memoryview(raw)[start : ends[index]])
        return result

    def _group_dict(self, members: list[tuple[str, bytes, str]]) -> int:
        """The dictionary for a group: rebuilt when it brings an event type not seen yet."""
        new = False
        for _, js, type_ in members:
            if type_ not in self._type_samples and len(self._type_samples) < _MAX_DICTS:
                self._type_samples[type_] = js[-_DICT_BYTES:]
                new = True
        if new and len(self._group_dicts) < 1 << 16:
            joined = b"".join(self._type_samples.values())
            self._group_dicts.append(joined[-_GROUP_DICT_BYTES:])
        return len(self._group_dicts) - 1

    def seal(self) -> None:
        """Deflate the open group of events (see the module's docstring)."""
        members = self._open_group
        if not members:
            return
        self._open_group = []
        zdict_no = self._group_dict(members)
        zdict = self._group_dicts[zdict_no]
        c = zlib.compressobj(_GROUP_LEVEL, zlib.DEFLATED, _GROUP_WBITS, 8, 0, zdict)
        ends: list[int] = []
        total = 0
        for _, js, _type in members:
            total += len(js)
            ends.append(total)
        head = struct.pack(f"<HH{len(ends)}I", zdict_no, len(ends), *ends)
        body = c.compress(b"".join(js for _, js, _type in members)) + c.flush()
        group = len(self._groups)
        self._groups.append(head + body)
        for index, (obj_id, _js, _type) in enumerate(members):
            blob = self._recs.get(obj_id)
            if blob is None or blob[_HEAD - 1] != _OPEN:
                continue  # deleted, or saved on its own since
            seq, owner, _ = _unpack_header(blob)
            self._recs[obj_id] = _HEADER.pack(seq, owner, _SEALED) + _REF.pack(group, index)

    # -- writes -----------------------------------------------------------------------------
    def insert(self, account: str, obj: Obj, index: Iterable[str] = ()) -> Obj:
        """Add a new object; `index` names top-level fields that lists filter on."""
        kind = obj["object"]
        obj_id = obj["id"]
        if obj_id in self._recs:
            raise KeyError(f"duplicate id {obj_id}")
        idx = {f: obj[f] for f in index if isinstance(obj.get(f), str)}
        seq = len(self._id_at)
        owner = self._owner(account, kind)
        if kind in _GROUPED_KINDS:
            raw = orjson.dumps(obj)
            packed = _HEADER.pack(seq, owner, _OPEN) + struct.pack("<I", len(self._open_group))
            self._open_group.append((obj_id, raw, str(obj.get("type"))))
            stored = zlib.compress(raw, 1) if self._db is not None else None
            self._insert_raw(obj_id, seq, account, kind, packed, idx, stored)
            if len(self._open_group) >= _GROUP_MAX:
                self.seal()
            return obj
        packed, stored = self._encode(seq, owner, kind, obj)
        self._insert_raw(obj_id, seq, account, kind, packed, idx, stored)
        return obj

    def _insert_raw(
        self,
        obj_id: str,
        seq: int,
        account: str,
        kind: str,
        blob: bytes,
        idx: dict[str, str],
        stored: bytes | None = None,
    ) -> None:
        self._id_at.append(obj_id)
        self._recs[obj_id] = blob
        seqs = self._lists.get((account, kind))
        if seqs is None:
            seqs = self._lists[(account, kind)] = array("q")
        seqs.append(seq)
        for field, value in idx.items():
            if field in _SHARED_FIELDS:
                value = sys.intern(value)  # one string for every kind indexing this customer
            values = self._index.get((account, kind, field))
            if values is None:
                values = self._index[(account, kind, field)] = {}
            found = values.get(value)
            if found is None:
                values[value] = seq
            elif isinstance(found, int):
                values[value] = array("q", (found, seq))
            else:
                found.append(seq)
        if self._db is not None:
            row = (obj_id, seq, account, kind, stored, orjson.dumps(idx).decode())
            self._pending[obj_id] = row

    def _seq(self, obj_id: str) -> int | None:
        blob = self._recs.get(obj_id)
        if blob is None:
            return self._gone.get(obj_id)
        seq: int = _unpack_header(blob)[0]
        return seq

    def add_index(self, account: str, kind: str, field: str, value: str, obj_id: str) -> None:
        """Index a field set after creation (e.g. a balance transaction's payout)."""
        seq = self._seq(obj_id)
        if seq is None:
            raise KeyError(obj_id)
        values = self._index.get((account, kind, field))
        if values is None:
            values = self._index[(account, kind, field)] = {}
        found = values.get(value)
        if found is None:
            values[value] = seq
        else:
            seqs = array("q", (found,)) if isinstance(found, int) else found
            pos = bisect_left(seqs, seq)
            if pos == len(seqs) or seqs[pos] != seq:
                seqs.insert(pos, seq)
            values[value] = seqs
        if self._db is not None:
            self._index_dirty(obj_id, field, value)

    def _index_dirty(self, obj_id: str, field: str, value: str) -> None:
        row = self._pending.get(obj_id)
        if row is None:
            assert self._db is not None
            found = self._db.execute("SELECT * FROM objects WHERE id = ?", (obj_id,)).fetchone()
            if found is None:
                return
            row = tuple(found)
        idx = orjson.loads(row[5])
        idx[field] = value
        self._pending[obj_id] = (*row[:5], orjson.dumps(idx).decode())

    def save(self, obj: Obj) -> Obj:
        """Replace an existing object with its new state."""
        obj_id = obj["id"]
        seq, owner, _slot = _unpack_header(self._recs[obj_id])
        account, kind = self._owners[owner]
        blob, stored = self._encode(seq, owner, kind, obj)
        self._recs[obj_id] = blob
        if self._db is not None:
            prev = self._pending.get(obj_id)
            idx = prev[5] if prev else None
            if idx is None:
                found = self._db.execute(
                    "SELECT idx FROM objects WHERE id = ?", (obj_id,)
                ).fetchone()
                idx = found[0] if found else "{}"
            self._pending[obj_id] = (obj_id, seq, account, kind, stored, idx)
        return obj

    def delete(self, obj_id: str) -> None:
        blob = self._recs.pop(obj_id, None)
        if blob is not None:
            self._gone[obj_id] = _unpack_header(blob)[0]
        if self._db is not None:
            self._pending[obj_id] = None

    # -- reads ------------------------------------------------------------------------------
    def get(self, obj_id: str, account: str | None = None, kind: str | None = None) -> Obj | None:
        blob = self._recs.get(obj_id)
        if blob is None:
            return None
        if account is not None or kind is not None:
            owner_account, owner_kind = self._owners[_unpack_header(blob)[1]]
            if account is not None and owner_account != account:
                return None
            if kind is not None and owner_kind != kind:
                return None
        return self._decode(blob)

    def owner(self, obj_id: str) -> str | None:
        blob = self._recs.get(obj_id)
        return self._owners[_unpack_header(blob)[1]][0] if blob is not None else None

    def kind_of(self, obj_id: str) -> str | None:
        blob = self._recs.get(obj_id)
        return self._owners[_unpack_header(blob)[1]][1] if blob is not None else None

    def seq(self, obj_id: str) -> int:
        """Insertion order of an object (orders objects of different kinds, e.g. an
        account's bank accounts and cards)."""
        blob = self._recs.get(obj_id)
        if blob is None:
            return self._gone[obj_id]
        seq: int = _unpack_header(blob)[0]
        return seq

    def count(self, account: str, kind: str) -> int:
        return len(self._lists.get((account, kind), ()))

    def iter_ids(self, account: str, kind: str, newest_first: bool = True) -> Iterator[str]:
        seqs = self._lists.get((account, kind), _EMPTY)
        ordered = reversed(seqs) if newest_first else iter(seqs)
        for seq in ordered:
            obj_id = self._id_at[seq]
            if obj_id in self._recs:
                yield obj_id

    def accounts_with(self, kind: str) -> list[str]:
        return [acct for (acct, k) in self._lists if k == kind]

    def page(
        self,
        account: str,
        kind: str,
        *,
        limit: int = 10,
        starting_after: str | None = None,
        ending_before: str | None = None,
        where: tuple[str, str] | None = None,
        predicate: Predicate | None = None,
    ) -> tuple[list[Obj], bool]:
        """One page, newest first, as Stripe lists do. Returns (items, has_more).

        `where` uses an index (field, value); `predicate` filters what the index yields.
        Cursors that name an unknown object raise KeyError (the caller answers 404).
        """
        seqs: Sequence[int]
        if where is not None:
            seqs = self._indexed(account, kind, where[0], where[1])
        else:
            seqs = self._lists.get((account, kind), _EMPTY)
        out: list[Obj] = []
        if ending_before is not None:
            pos = self._cursor(seqs, ending_before)
            i = pos + 1
            while i < len(seqs) and len(out) <= limit:
                obj = self._visible(seqs[i], kind, where, predicate)
                if obj is not None:
                    out.append(obj)
                i += 1
            has_more = len(out) > limit
            out = out[:limit]
            out.reverse()
            return out, has_more
        i = self._cursor(seqs, starting_after) - 1 if starting_after else len(seqs) - 1
        while i >= 0 and len(out) <= limit:
            obj = self._visible(seqs[i], kind, where, predicate)
            if obj is not None:
                out.append(obj)
            i -= 1
        return out[:limit], len(out) > limit

    def first(self, account: str, kind: str, field: str, value: str) -> Obj | None:
        """The newest object whose indexed `field` is `value` (O(1) when there is none)."""
        seqs = self._indexed(account, kind, field, value)
        if not seqs:
            return None
        for seq in reversed(seqs):
            obj = self._visible(seq, kind, (field, value), None)
            if obj is not None and obj.get(field) == value:
                return obj
        return None

    def _indexed(self, account: str, kind: str, field: str, value: str) -> Sequence[int]:
        found = self._index.get((account, kind, field), _NO_VALUES).get(value)
        if found is None:
            return _EMPTY
        return (found,) if isinstance(found, int) else found

    def _cursor(self, seqs: Sequence[int], obj_id: str) -> int:
        seq = self._seq(obj_id)
        if seq is None:
            raise KeyError(obj_id)
        pos = bisect_left(seqs, seq)
        if pos == len(seqs) or seqs[pos] != seq:
            raise KeyError(obj_id)
        return pos

    def _visible(
        self, seq: int, kind: str, where: tuple[str, str] | None, predicate: Predicate | None
    ) -> Obj | None:
        blob = self._recs.get(self._id_at[seq])
        if blob is None:
            return None
        obj = self._decode(blob)
        if where is not None:
            # Index entries are never removed; a field that has since changed hides the object.
            # Synthetic keys (a balance transaction's payout) are not fields and always match.
            current = obj.get(where[0], where[1])
            if isinstance(current, str) and current != where[1]:
                return None
        if predicate is not None and not predicate(obj):
            return None
        return obj
