"""Finding the newest record of a registry log in a constant number of small listings.

A log is `registry/<kind>/<name>/<seq:08d>.json`. Keys are zero-padded, so the records whose numbers share
all but the last two digits form a *block* of at most 100 keys (block 123 holds 12300-12399), and one listing
of the prefix `.../000123` returns exactly that block: small, whatever the log's length, and far under
Basin's 10,000-object cap. Basin lists in no order and cannot be asked for "the last key", so a writer also
leaves immutable *hints* beside the records:

- `_index/blocks/<block:06d>` when a block gets its first record (every 100th append);
- `_index/super/<block // 100:04d>` when a super-block (10,000 records) gets its first block.

Finding the head lists the super hints (at most one per 10,000 records), then the block hints of the highest
super-block (at most 100), then the hinted block and the next one. Hints only ever point at blocks that held
a record when written, so the newest block is at or after the highest hint: the search gallops forward from
it (blocks b+1, b+2, b+4, ... then a binary search), which costs one extra listing when the hints are current
and O(log n) listings when they are missing (a store written before hints existed, or a writer that died
between a record and its hint). A writer that had to gallop writes the hints it found missing, so existing
stores need no migration: the first append brings them up to date. The records stay the only source of
truth; hints are derived, optional and never trusted beyond "records exist at or after this block".
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from modelopsx.errors import KeyExistsError, StorageError
from modelopsx.storage.base import ObjectStore

BLOCK_SIZE = 100  # records per block: keys equal but for their last two digits
SUPER_SIZE = 100  # blocks per super-block
INDEX_DIR = "_index"
SEQ_RE = re.compile(r"^(\d{8,})\.json$")
_PARALLEL = 8
_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    """Threads shared by every log of the process for independent listings (building a pool per lookup
    would cost more than the lookup on loopback)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(_PARALLEL, thread_name_prefix="registry-list")
        return _POOL


@dataclass
class Head:
    """Where a log ends: the newest sequence number (0: empty log) and what was seen on the way."""

    seq: int
    block: int  # the newest non-empty block (0 for an empty log)
    block_seqs: list[int] = field(default_factory=list)  # every stored seq of that block, ascending
    hinted_block: int = 0  # the highest block a hint named (below `block`: hints were behind)

    @property
    def missing(self) -> list[int]:
        """Numbers absent from the head's block below the head: records deleted by hand."""
        first = max(1, self.block * BLOCK_SIZE)
        present = set(self.block_seqs)
        return [s for s in range(first, self.seq) if s not in present]


def block_of(seq: int) -> int:
    return seq // BLOCK_SIZE


class LogIndex:
    """Block listings and head hints of one log (`prefix` ends with '/')."""

    def __init__(self, store: ObjectStore, prefix: str) -> None:
        self.store = store
        self.prefix = prefix

    # -- listings --------------------------------------------------------------------------------------
    def _keys(self, prefix: str) -> list[str]:
        """Every key under `prefix`: one listing, or the store's sharded listing when it reached the cap."""
        listing = self.store.list(prefix)
        cap = getattr(self.store, "list_cap", None)
        if cap is not None and len(listing.objects) >= cap:
            return [info.key for info in self.store.iter_all(prefix)]
        return [info.key for info in listing.objects]

    def block_seqs(self, block: int) -> list[int]:
        """The stored sequence numbers of one block, ascending."""
        block_prefix = f"{self.prefix}{block:06d}"
        seqs = []
        for key in self._keys(block_prefix):
            match = SEQ_RE.match(key[len(self.prefix) :])
            if match and block_of(int(match.group(1))) == block:  # '0001000' also prefixes 9-digit keys
                seqs.append(int(match.group(1)))
        return sorted(seqs)

    def _hints(self, prefix: str) -> list[int]:
        numbers = []
        for key in self._keys(prefix):
            tail = key.rsplit("/", 1)[-1]
            if tail.isdigit():
                numbers.append(int(tail))
        return numbers

    def hinted_block(self) -> int:
        """The highest block a hint names; 0 when there are none."""
        supers = self._hints(f"{self.prefix}{INDEX_DIR}/super/")
        top_super = max(supers, default=0)
        blocks = self._hints(f"{self.prefix}{INDEX_DIR}/blocks/{top_super:04d}")
        return max(blocks, default=top_super * SUPER_SIZE)

    # -- the head --------------------------------------------------------------------------------------
    def find_head(self, start_block: int | None = None) -> Head:
        """The newest record. `start_block`: a block known to hold records (a previous head); None reads
        the hints."""
        hinted = self.hinted_block() if start_block is None else start_block
        # the hinted block and the next one, side by side: usually the whole search
        here, after = _pool().map(self.block_seqs, (hinted, hinted + 1))
        last, last_seqs = hinted, here
        if after:
            last, last_seqs = self._gallop(hinted + 1, after)
        if not last_seqs and last > 0:  # the hinted block was emptied by hand: fall back to the full listing
            seqs = self._scan_all()
            if not seqs:
                return Head(seq=0, block=0, hinted_block=hinted)
            last = block_of(seqs[-1])
            last_seqs = [s for s in seqs if block_of(s) == last]
        return Head(seq=max(last_seqs, default=0), block=last, block_seqs=last_seqs, hinted_block=hinted)

    def _gallop(self, known: int, known_seqs: list[int]) -> tuple[int, list[int]]:
        """The last non-empty block at or after `known` (non-empty): exponential steps, then bisection."""
        step = 1
        while True:
            probe = known + step
            seqs = self.block_seqs(probe)
            if not seqs:
                break
            known, known_seqs, step = probe, seqs, step * 2
        low, high = known, known + step  # low holds records, high does not
        while high - low > 1:
            mid = (low + high) // 2
            seqs = self.block_seqs(mid)
            if seqs:
                low, known_seqs = mid, seqs
            else:
                high = mid
        return low, known_seqs

    def write_hints(self, block: int) -> None:
        """Record that `block` holds records (best effort: a hint lost to a failure only costs a gallop)."""
        keys = [f"{self.prefix}{INDEX_DIR}/blocks/{block:06d}"]
        if block >= SUPER_SIZE:
            keys.append(f"{self.prefix}{INDEX_DIR}/super/{block // SUPER_SIZE:04d}")
        for key in keys:
            body = json.dumps({"block": block, "first_seq": block * BLOCK_SIZE}).encode()
            try:
                self.store.put_if_absent(key, body, {"content-type": "application/json"})
            except KeyExistsError:
                continue  # another writer left the same hint
            except StorageError:
                return  # the record is stored; readers find the head without this hint

    # -- whole ranges ----------------------------------------------------------------------------------
    def iter_blocks(self, first: int, last: int) -> Iterator[tuple[int, list[int]]]:
        """(block, its seqs) for blocks first..last in order, listed a few at a time in parallel."""
        for start in range(first, last + 1, _PARALLEL):
            chunk = list(range(start, min(last, start + _PARALLEL - 1) + 1))
            yield from zip(chunk, _pool().map(self.block_seqs, chunk), strict=True)

    def all_seqs(self) -> list[int]:
        """Every stored sequence number, ascending: one listing while the log fits under the store's cap,
        else block by block up to the head (never Basin's sharded descent over the zero-padded digits)."""
        listing = self.store.list(self.prefix)
        cap = getattr(self.store, "list_cap", None)
        if cap is None or len(listing.objects) < cap:
            return self._parse(info.key for info in listing.objects)
        head = self.find_head()
        return [s for _, seqs in self.iter_blocks(0, head.block) for s in seqs]

    def _scan_all(self) -> list[int]:
        return self._parse(info.key for info in self.store.iter_all(self.prefix))

    def _parse(self, keys: Iterator[str]) -> list[int]:
        seqs = []
        for key in keys:
            match = SEQ_RE.match(key[len(self.prefix) :])
            if match:
                seqs.append(int(match.group(1)))
        return sorted(seqs)
