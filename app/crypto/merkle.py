"""RFC 6962 / RFC 9162 Merkle tree: hashing, a compact range for appending, proofs built from stored nodes,
and verification.

Coordinates: node (level, index) is the root of the complete aligned subtree over leaves
[index * 2**level, (index + 1) * 2**level). Level 0 nodes are leaf hashes. Such a node never changes once
its leaves exist, so the sequencer stores every node it completes and proofs for any tree size are read back
from that store (a `NodeReader`) in one batched lookup.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeAlias

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()
_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"
_SIZE_BYTES = 8

NodeCoord: TypeAlias = tuple[int, int]  # (level, index)
CompletedNode: TypeAlias = tuple[int, int, bytes]  # (level, index, hash)


class ProofError(ValueError):
    """A proof (inclusion, consistency or range) does not hold; the message says which check failed."""


class MissingNodesError(LookupError):
    """The node store lacks nodes that a proof needs: the tree was not fully persisted up to that size."""


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(_LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def aligned_cover(start: int, end: int) -> list[NodeCoord]:
    """The maximal complete aligned subtrees that tile [start, end), left to right."""
    if not 0 <= start <= end:
        raise ValueError(f"invalid leaf range [{start}, {end})")
    coords: list[NodeCoord] = []
    while start < end:
        level = (end - start).bit_length() - 1
        if start:
            level = min(level, (start & -start).bit_length() - 1)
        coords.append((level, start >> level))
        start += 1 << level
    return coords


def _fold_right(hashes: Sequence[bytes]) -> bytes:
    root = hashes[-1]
    for left in reversed(hashes[:-1]):
        root = hashlib.sha256(_NODE_PREFIX + left + root).digest()
    return root


class CompactRange:
    """The right frontier of a tree of size n: one subtree hash per set bit of n, largest (leftmost) first.

    It is all the state needed to append leaves and compute the root, so the sequencer persists it between
    batches; it is also the "left" part of a range proof.
    """

    __slots__ = ("_hashes", "_size")

    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()) -> None:
        if size < 0:
            raise ValueError(f"negative tree size {size}")
        if len(hashes) != size.bit_count():
            raise ValueError(
                f"a compact range of size {size} holds {size.bit_count()} hashes, got {len(hashes)}"
            )
        if any(len(h) != HASH_SIZE for h in hashes):
            raise ValueError("compact range hashes must be 32 bytes")
        self._size = size
        self._hashes = list(hashes)

    @property
    def size(self) -> int:
        return self._size

    @property
    def hashes(self) -> tuple[bytes, ...]:
        return tuple(self._hashes)

    def append(self, leaf: bytes) -> list[CompletedNode]:
        """Append one leaf hash; return every node this completed, the leaf itself first."""
        # The hot path of the sequencer and the verifier: inlined rather than calling append_node.
        index = self._size
        completed = [(0, index, leaf)]
        hashes = self._hashes
        level = 0
        node = leaf
        while index & 1:
            node = hashlib.sha256(_NODE_PREFIX + hashes.pop() + node).digest()
            level += 1
            index >>= 1
            completed.append((level, index, node))
        hashes.append(node)
        self._size += 1
        return completed

    def append_node(self, level: int, node: bytes) -> list[CompletedNode]:
        """Append a complete subtree of 2**level leaves given by its hash; the size must be aligned to it."""
        if level < 0 or self._size & ((1 << level) - 1):
            raise ValueError(f"cannot append a level {level} subtree to a compact range of size {self._size}")
        if len(node) != HASH_SIZE:
            raise ValueError("node hashes must be 32 bytes")
        self._size += 1 << level
        index = (self._size >> level) - 1
        completed = [(level, index, node)]
        hashes = self._hashes
        while index & 1:
            node = node_hash(hashes.pop(), node)
            level += 1
            index >>= 1
            completed.append((level, index, node))
        hashes.append(node)
        return completed

    def root(self) -> bytes:
        return _fold_right(self._hashes) if self._hashes else EMPTY_ROOT

    def to_bytes(self) -> bytes:
        return self._size.to_bytes(_SIZE_BYTES, "big") + b"".join(self._hashes)

    @classmethod
    def from_bytes(cls, data: bytes) -> CompactRange:
        if len(data) < _SIZE_BYTES:
            raise ValueError("serialized compact range is too short")
        size = int.from_bytes(data[:_SIZE_BYTES], "big")
        body = data[_SIZE_BYTES:]
        if len(body) != HASH_SIZE * size.bit_count():
            raise ValueError(f"serialized compact range of size {size} has {len(body)} hash bytes")
        return cls(size, [body[i : i + HASH_SIZE] for i in range(0, len(body), HASH_SIZE)])

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CompactRange) and (self._size, self._hashes) == (other._size, other._hashes)

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"CompactRange(size={self._size}, root={self.root().hex()})"


class NodeReader(Protocol):
    def get_nodes(self, coords: Sequence[NodeCoord]) -> dict[NodeCoord, bytes]:
        """Stored hashes of the given complete aligned subtrees; absent ones are left out of the result."""
        ...


class MemoryNodeStore:
    """A NodeReader kept in a dict: for tests, tools and the offline client."""

    def __init__(self) -> None:
        self.nodes: dict[NodeCoord, bytes] = {}

    def add(self, completed: Iterable[CompletedNode]) -> None:
        for level, index, node in completed:
            self.nodes[level, index] = node

    def get_nodes(self, coords: Sequence[NodeCoord]) -> dict[NodeCoord, bytes]:
        return {coord: self.nodes[coord] for coord in coords if coord in self.nodes}


def fetch_nodes(reader: NodeReader, coords: Iterable[NodeCoord]) -> dict[NodeCoord, bytes]:
    """Stored nodes in one batched lookup; MissingNodesError if any is absent."""
    wanted = list(dict.fromkeys(coords))
    found = reader.get_nodes(wanted) if wanted else {}
    missing = [coord for coord in wanted if coord not in found]
    if missing:
        raise MissingNodesError(f"node store lacks (level, index) {missing[:8]}")
    return found


def _check_subtree(start: int, end: int) -> None:
    # An RFC 6962 subtree is a range that starts at a multiple of the smallest power of two covering it;
    # only those are hashes of the tree (others would need leaf-level recomputation).
    if not (0 <= start < end and start % (1 << (end - start - 1).bit_length()) == 0):
        raise ValueError(f"[{start}, {end}) is not a subtree of an RFC 6962 tree")


def _subtree_roots(reader: NodeReader, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
    """Hashes of several subtrees with one batched lookup."""
    covers = []
    for start, end in ranges:
        _check_subtree(start, end)
        covers.append(aligned_cover(start, end))
    found = fetch_nodes(reader, (coord for cover in covers for coord in cover))
    return [_fold_right([found[coord] for coord in cover]) for cover in covers]


def subtree_root(reader: NodeReader, start: int, end: int) -> bytes:
    """MTH(D[start:end]) for a subtree of the tree (start aligned to the power of two covering the range)."""
    return _subtree_roots(reader, [(start, end)])[0]


def root_at(reader: NodeReader, size: int) -> bytes:
    if size < 0:
        raise ValueError(f"negative tree size {size}")
    return subtree_root(reader, 0, size) if size else EMPTY_ROOT


def _split(size: int) -> int:
    """The largest power of two smaller than size (size >= 2): where RFC 6962 splits a tree."""
    return 1 << ((size - 1).bit_length() - 1)


def _inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """RFC 9162 2.1.3.1 PATH(index, D[0:size]) as subtree ranges, leaf sibling first."""
    ranges = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = _split(hi - lo)
        if index < lo + k:
            ranges.append((lo + k, hi))
            hi = lo + k
        else:
            ranges.append((lo, lo + k))
            lo += k
    return ranges[::-1]


def _consistency_ranges(old_size: int, new_size: int) -> list[tuple[int, int]]:
    """RFC 9162 2.1.4.1 SUBPROOF(old_size, D[0:new_size], true) as subtree ranges, in proof order."""
    ranges = []
    lo, hi = 0, new_size
    complete_old_subtree = True
    while old_size != hi:
        k = _split(hi - lo)
        if old_size - lo <= k:
            ranges.append((lo + k, hi))
            hi = lo + k
        else:
            ranges.append((lo, lo + k))
            lo += k
            complete_old_subtree = False
    if not complete_old_subtree:
        ranges.append((lo, hi))
    return ranges[::-1]


def inclusion_proof(reader: NodeReader, index: int, size: int) -> list[bytes]:
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is outside a tree of size {size}")
    return _subtree_roots(reader, _inclusion_ranges(index, size))


def inclusion_proofs(reader: NodeReader, indices: Iterable[int], size: int) -> dict[int, list[bytes]]:
    """Inclusion proofs of several leaves in one tree, read with one batched lookup."""
    ranges_by_index = {}
    for index in dict.fromkeys(indices):
        if not 0 <= index < size:
            raise ValueError(f"leaf index {index} is outside a tree of size {size}")
        ranges_by_index[index] = _inclusion_ranges(index, size)
    roots = iter(_subtree_roots(reader, [r for ranges in ranges_by_index.values() for r in ranges]))
    return {index: [next(roots) for _ in ranges] for index, ranges in ranges_by_index.items()}


def inclusion_proof_coords(index: int, size: int) -> list[NodeCoord]:
    """The stored nodes that inclusion_proof(reader, index, size) reads: lets a caller that needs many
    proofs (a filtered export) fetch the nodes of a whole batch in one lookup."""
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is outside a tree of size {size}")
    return [coord for start, end in _inclusion_ranges(index, size) for coord in aligned_cover(start, end)]


def consistency_proof(reader: NodeReader, old_size: int, new_size: int) -> list[bytes]:
    if not 0 <= old_size <= new_size:
        raise ValueError(f"no consistency proof from size {old_size} to size {new_size}")
    if old_size in (0, new_size):
        return []
    return _subtree_roots(reader, _consistency_ranges(old_size, new_size))


def _check_hashes(proof: Sequence[bytes], what: str) -> None:
    for position, node in enumerate(proof):
        if len(node) != HASH_SIZE:
            raise ProofError(f"{what}: hash {position} is {len(node)} bytes, not {HASH_SIZE}")


def root_from_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes]) -> bytes:
    """RFC 9162 2.1.3.2: the root that the inclusion proof implies for the leaf hash."""
    if not 0 <= index < size:
        raise ProofError(f"inclusion proof: leaf index {index} is outside a tree of size {size}")
    _check_hashes(proof, "inclusion proof")
    expected = len(_inclusion_ranges(index, size))
    if len(proof) != expected:
        raise ProofError(
            f"inclusion proof for index {index} in a tree of size {size} has {len(proof)} hashes, "
            f"expected {expected}"
        )
    fn, sn, root = index, size - 1, leaf
    for sibling in proof:
        if fn & 1 or fn == sn:
            root = node_hash(sibling, root)
            while not fn & 1 and fn:
                fn >>= 1
                sn >>= 1
        else:
            root = node_hash(root, sibling)
        fn >>= 1
        sn >>= 1
    return root


def verify_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes) -> None:
    if root_from_inclusion(leaf, index, size, proof) != root:
        raise ProofError("inclusion proof does not match root")


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """RFC 9162 2.1.4.2; an empty tree is consistent with every tree."""
    if not 0 <= old_size <= new_size:
        raise ProofError(f"consistency proof: old size {old_size} is not within [0, new size {new_size}]")
    _check_hashes(proof, "consistency proof")
    if old_size in (0, new_size):
        if proof:
            raise ProofError(f"consistency proof from size {old_size} to {new_size} must be empty")
        if old_size == 0 and old_root != EMPTY_ROOT:
            raise ProofError("consistency proof: old root is not the empty tree root")
        if old_size == new_size and old_root != new_root:
            raise ProofError(f"consistency proof: roots differ at the same size {old_size}")
        return
    expected = len(_consistency_ranges(old_size, new_size))
    if len(proof) != expected:
        raise ProofError(
            f"consistency proof from size {old_size} to {new_size} has {len(proof)} hashes, "
            f"expected {expected}"
        )
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    old_computed = new_computed = path[0]
    for node in path[1:]:
        if fn & 1 or fn == sn:
            old_computed = node_hash(node, old_computed)
            new_computed = node_hash(node, new_computed)
            while not fn & 1 and fn:
                fn >>= 1
                sn >>= 1
        else:
            new_computed = node_hash(new_computed, node)
        fn >>= 1
        sn >>= 1
    if old_computed != old_root:
        raise ProofError(f"consistency proof does not match the old root (size {old_size})")
    if new_computed != new_root:
        raise ProofError(f"consistency proof does not match the new root (size {new_size})")


@dataclass(frozen=True)
class RangeProof:
    """Ties leaves [start, end) to the root of a tree of size N.

    left: the compact range of [0, start) (largest subtree first); right: the maximal aligned subtrees
    covering [end, N), left to right.
    """

    left: tuple[bytes, ...]
    right: tuple[bytes, ...]


def range_proof(reader: NodeReader, start: int, end: int, size: int) -> RangeProof:
    if not 0 <= start <= end <= size:
        raise ValueError(f"invalid range [{start}, {end}) for a tree of size {size}")
    left_coords = aligned_cover(0, start)
    right_coords = aligned_cover(end, size)
    found = fetch_nodes(reader, left_coords + right_coords)
    return RangeProof(tuple(found[c] for c in left_coords), tuple(found[c] for c in right_coords))


def left_compact_range(start: int, left: Sequence[bytes]) -> CompactRange:
    """The compact range of [0, start) from a range proof's left hashes, ready for the range's leaves."""
    _check_hashes(left, "range proof left hashes")
    if len(left) != start.bit_count():
        raise ProofError(
            f"range proof: {len(left)} left hashes, expected {start.bit_count()} for start {start}"
        )
    return CompactRange(start, left)


def complete_range(compact: CompactRange, size: int, right: Sequence[bytes]) -> bytes:
    """Append a range proof's right hashes to the compact range of [0, end) and return the root at size."""
    _check_hashes(right, "range proof right hashes")
    if compact.size > size:
        raise ProofError(f"range proof: {compact.size} leaves do not fit a tree of size {size}")
    coords = aligned_cover(compact.size, size)
    if len(right) != len(coords):
        raise ProofError(
            f"range proof: {len(right)} right hashes for [{compact.size}, {size}), expected {len(coords)}"
        )
    for (level, _), node in zip(coords, right, strict=True):
        compact.append_node(level, node)
    return compact.root()


def root_from_range(
    start: int, size: int, left: Sequence[bytes], leaves: Iterable[bytes], right: Sequence[bytes]
) -> bytes:
    """The root of the tree of size `size` implied by leaf hashes from `start` on and a range proof."""
    compact = left_compact_range(start, left)
    for leaf in leaves:
        compact.append(leaf)
    return complete_range(compact, size, right)


def verify_range(
    start: int, end: int, size: int, leaves: Iterable[bytes], proof: RangeProof, root: bytes
) -> None:
    if not 0 <= start <= end <= size:
        raise ProofError(f"invalid range [{start}, {end}) for a tree of size {size}")
    compact = left_compact_range(start, proof.left)
    for leaf in leaves:
        compact.append(leaf)
    if compact.size != end:
        raise ProofError(f"range [{start}, {end}) has {end - start} leaves, got {compact.size - start}")
    computed = complete_range(compact, size, proof.right)
    if computed != root:
        raise ProofError(f"range [{start}, {end}) does not match root")
