import hashlib
import json
import random
from pathlib import Path

import pytest

from app.crypto.merkle import (
    EMPTY_ROOT,
    CompactRange,
    MemoryNodeStore,
    MissingNodesError,
    ProofError,
    RangeProof,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    range_proof,
    root_at,
    root_from_range,
    subtree_root,
    verify_consistency,
    verify_inclusion,
    verify_range,
)

# A verbatim copy of shared/vectors/rfc6962_merkle.json, committed so a clean clone runs on its own.
VECTOR_FILE = Path(__file__).with_name("rfc6962_merkle.json")
VECTORS = json.loads(VECTOR_FILE.read_text())
LEAVES = [bytes.fromhex(leaf) for leaf in VECTORS["leaves"]]
ROOTS = {int(size): bytes.fromhex(root) for size, root in VECTORS["roots"].items()}


def naive_root(leaves: list[bytes]) -> bytes:
    """MTH straight from RFC 6962 2.1, recursive."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return hashlib.sha256(b"\x01" + naive_root(leaves[:k]) + naive_root(leaves[k:])).digest()


def build(leaves: list[bytes]) -> tuple[CompactRange, MemoryNodeStore]:
    compact, store = CompactRange(), MemoryNodeStore()
    for leaf in leaves:
        store.add(compact.append(leaf_hash(leaf)))
    return compact, store


def leaves_of(size: int) -> list[bytes]:
    return [b"leaf %d" % i for i in range(size)]


def flip_bit(proof: list[bytes], position: int) -> list[bytes]:
    changed = list(proof)
    changed[position] = bytes([changed[position][0] ^ 1]) + changed[position][1:]
    return changed


VECTOR_COMPACT, VECTOR_STORE = build(LEAVES)


# --- published vectors ---


@pytest.mark.parametrize("vector", VECTORS["hasher_vectors"], ids=lambda v: v["kind"])
def test_hasher_vectors(vector):
    expected = bytes.fromhex(vector["hash"])
    if vector["kind"] == "empty_tree":
        assert expected == EMPTY_ROOT == CompactRange().root() == root_at(MemoryNodeStore(), 0)
    elif vector["kind"] == "leaf":
        data = bytes.fromhex(vector["input_hex"]) if "input_hex" in vector else vector["input_ascii"].encode()
        assert leaf_hash(data) == expected
    else:
        assert node_hash(vector["left_ascii"].encode(), vector["right_ascii"].encode()) == expected


def test_empty_root_vector():
    assert EMPTY_ROOT.hex() == VECTORS["empty_root"]


@pytest.mark.parametrize("size", sorted(ROOTS))
def test_root_vectors(size):
    compact, _ = build(LEAVES[:size])
    assert compact.root() == ROOTS[size]
    assert root_at(VECTOR_STORE, size) == ROOTS[size]
    assert naive_root(LEAVES[:size]) == ROOTS[size]


def test_node_hash_vectors_are_exactly_the_nodes_append_reports():
    expected = {
        (int(level), index): bytes.fromhex(node)
        for level, nodes in VECTORS["node_hashes"].items()
        if level != "_doc"
        for index, node in enumerate(nodes)
    }
    assert VECTOR_STORE.nodes == expected


@pytest.mark.parametrize(
    "vector", VECTORS["inclusion"], ids=lambda v: f"{v['leaf_index']}-of-{v['tree_size']}"
)
def test_inclusion_vectors(vector):
    index, size = vector["leaf_index"], vector["tree_size"]  # leaf_index is 0-based (see _meta)
    proof = [bytes.fromhex(node) for node in vector["proof"]]
    assert inclusion_proof(VECTOR_STORE, index, size) == proof
    verify_inclusion(leaf_hash(LEAVES[index]), index, size, proof, ROOTS[size])


@pytest.mark.parametrize("vector", VECTORS["consistency"], ids=lambda v: f"{v['size1']}-to-{v['size2']}")
def test_consistency_vectors(vector):
    old_size, new_size = vector["size1"], vector["size2"]
    proof = [bytes.fromhex(node) for node in vector["proof"]]
    assert consistency_proof(VECTOR_STORE, old_size, new_size) == proof
    verify_consistency(old_size, new_size, ROOTS[old_size], ROOTS[new_size], proof)


# --- rejection of bad proofs ---


def test_inclusion_rejects_tampered_proofs():
    index, size = 5, 8
    leaf, root = leaf_hash(LEAVES[index]), ROOTS[size]
    proof = inclusion_proof(VECTOR_STORE, index, size)
    with pytest.raises(ProofError, match="has 2 hashes, expected 3"):
        verify_inclusion(leaf, index, size, proof[:-1], root)
    with pytest.raises(ProofError, match="has 4 hashes, expected 3"):
        verify_inclusion(leaf, index, size, [*proof, proof[0]], root)
    for position in range(len(proof)):
        with pytest.raises(ProofError, match="does not match root"):
            verify_inclusion(leaf, index, size, flip_bit(proof, position), root)
    with pytest.raises(ProofError, match="does not match root"):
        verify_inclusion(leaf, 4, size, proof, root)
    with pytest.raises(ProofError, match="does not match root"):
        verify_inclusion(leaf_hash(LEAVES[4]), index, size, proof, root)
    with pytest.raises(ProofError, match="does not match root"):
        verify_inclusion(leaf, index, 7, proof, ROOTS[7])
    with pytest.raises(ProofError, match="outside a tree of size 5"):
        verify_inclusion(leaf, index, 5, proof, ROOTS[5])
    with pytest.raises(ProofError, match="32"):
        verify_inclusion(leaf, index, size, [proof[0][:31], *proof[1:]], root)


def test_consistency_rejects_tampered_proofs():
    old, new = 6, 8
    proof = consistency_proof(VECTOR_STORE, old, new)
    with pytest.raises(ProofError, match="has 2 hashes, expected 3"):
        verify_consistency(old, new, ROOTS[old], ROOTS[new], proof[:-1])
    with pytest.raises(ProofError, match="has 4 hashes, expected 3"):
        verify_consistency(old, new, ROOTS[old], ROOTS[new], [*proof, proof[0]])
    for position in range(len(proof)):
        with pytest.raises(ProofError, match=r"does not match the (old|new) root"):
            verify_consistency(old, new, ROOTS[old], ROOTS[new], flip_bit(proof, position))
    with pytest.raises(ProofError, match="does not match the old root"):
        verify_consistency(old, new, ROOTS[5], ROOTS[new], proof)
    with pytest.raises(ProofError, match="does not match the new root"):
        verify_consistency(old, new, ROOTS[old], ROOTS[7], proof)
    with pytest.raises(ProofError):
        verify_consistency(5, new, ROOTS[old], ROOTS[new], proof)
    with pytest.raises(ProofError, match="not within"):
        verify_consistency(new, old, ROOTS[new], ROOTS[old], proof)


def test_consistency_edge_sizes():
    verify_consistency(0, 8, EMPTY_ROOT, ROOTS[8], [])
    verify_consistency(8, 8, ROOTS[8], ROOTS[8], [])
    with pytest.raises(ProofError, match="empty tree root"):
        verify_consistency(0, 8, ROOTS[1], ROOTS[8], [])
    with pytest.raises(ProofError, match="must be empty"):
        verify_consistency(8, 8, ROOTS[8], ROOTS[8], [ROOTS[1]])
    with pytest.raises(ProofError, match="roots differ"):
        verify_consistency(8, 8, ROOTS[8], ROOTS[7], [])
    with pytest.raises(ProofError, match="has 0 hashes"):
        verify_consistency(4, 8, ROOTS[4], ROOTS[8], [])


# --- properties against the naive MTH ---


def check_tree(size: int, rng: random.Random, exhaustive: bool) -> None:
    leaves = leaves_of(size)
    compact, store = build(leaves)
    hashes = [leaf_hash(leaf) for leaf in leaves]
    assert compact.root() == naive_root(leaves) == root_at(store, size)
    assert CompactRange.from_bytes(compact.to_bytes()) == compact
    indices = range(size) if exhaustive else rng.sample(range(size), 8)
    for index in indices:
        proof = inclusion_proof(store, index, size)
        verify_inclusion(hashes[index], index, size, proof, compact.root())
    old_sizes = range(size + 1) if exhaustive else [0, 1, *rng.sample(range(size), 6), size]
    for old in old_sizes:
        proof = consistency_proof(store, old, size)
        verify_consistency(old, size, naive_root(leaves[:old]), compact.root(), proof)
        assert compact.root() == root_at(store, size)


@pytest.mark.parametrize("size", range(71))
def test_small_trees_against_naive_mth(size):
    check_tree(size, random.Random(size), exhaustive=True)


def test_random_larger_trees_against_naive_mth():
    rng = random.Random(6962)
    for size in rng.sample(range(71, 5000), 6):
        check_tree(size, rng, exhaustive=False)


def test_compact_range_resumes_from_bytes():
    compact, _ = build(leaves_of(37))
    resumed = CompactRange.from_bytes(compact.to_bytes())
    for leaf in leaves_of(50)[37:]:
        resumed.append(leaf_hash(leaf))
    assert resumed.root() == naive_root(leaves_of(50))
    with pytest.raises(ValueError, match="hash bytes"):
        CompactRange.from_bytes(compact.to_bytes()[:-1])


def test_append_reports_every_completed_node():
    compact = CompactRange()
    for index in range(7):
        compact.append(leaf_hash(b"%d" % index))
    completed = compact.append(leaf_hash(b"7"))
    assert [(level, index) for level, index, _ in completed] == [(0, 7), (1, 3), (2, 1), (3, 0)]
    assert completed[-1][2] == compact.root()


def test_append_node_needs_alignment():
    compact = CompactRange()
    compact.append(leaf_hash(b"a"))
    with pytest.raises(ValueError, match="level 1 subtree"):
        compact.append_node(1, bytes(32))


def test_subtree_root_rejects_unaligned_ranges():
    with pytest.raises(ValueError, match="not a subtree"):
        subtree_root(VECTOR_STORE, 1, 3)
    assert subtree_root(VECTOR_STORE, 4, 7) == naive_root(LEAVES[4:7])


def test_missing_nodes_are_reported():
    _, store = build(leaves_of(5))
    with pytest.raises(MissingNodesError):
        inclusion_proof(store, 0, 8)


def test_proofs_use_one_batched_lookup():
    _, store = build(leaves_of(1000))
    calls = []

    class CountingReader:
        def get_nodes(self, coords):
            calls.append(len(coords))
            return store.get_nodes(coords)

    inclusion_proof(CountingReader(), 517, 1000)
    consistency_proof(CountingReader(), 333, 1000)
    range_proof(CountingReader(), 100, 900, 1000)
    root_at(CountingReader(), 999)
    assert len(calls) == 4
    assert max(calls) <= 2 * (1000).bit_length()


# --- range proofs ---


@pytest.mark.parametrize("size", [1, 2, 7, 8, 9, 33, 100])
def test_range_proofs_for_every_range(size):
    leaves = leaves_of(size)
    compact, store = build(leaves)
    hashes = [leaf_hash(leaf) for leaf in leaves]
    for start in range(size + 1):
        for end in range(start, size + 1):
            proof = range_proof(store, start, end, size)
            verify_range(start, end, size, hashes[start:end], proof, compact.root())
            assert root_from_range(start, size, proof.left, hashes[start:end], proof.right) == compact.root()


def test_range_proof_rejects_tampering():
    size, start, end = 100, 30, 70
    leaves = leaves_of(size)
    compact, store = build(leaves)
    hashes = [leaf_hash(leaf) for leaf in leaves]
    proof = range_proof(store, start, end, size)
    root = compact.root()
    tampered = [*hashes[start:end]]
    tampered[3] = leaf_hash(b"forged")
    with pytest.raises(ProofError, match=r"range \[30, 70\) does not match root"):
        verify_range(start, end, size, tampered, proof, root)
    swapped = [*hashes[start:end]]
    swapped[0], swapped[1] = swapped[1], swapped[0]
    with pytest.raises(ProofError, match="does not match root"):
        verify_range(start, end, size, swapped, proof, root)
    with pytest.raises(ProofError, match="has 40 leaves, got 39"):
        verify_range(start, end, size, hashes[start : end - 1], proof, root)
    with pytest.raises(ProofError, match="left hashes"):
        verify_range(start, end, size, hashes[start:end], RangeProof(proof.left[1:], proof.right), root)
    with pytest.raises(ProofError, match="right hashes"):
        verify_range(start, end, size, hashes[start:end], RangeProof(proof.left, proof.right[:-1]), root)
    with pytest.raises(ProofError, match="does not match root"):
        verify_range(start, end, size, hashes[start:end], RangeProof(proof.left, proof.right[::-1]), root)
