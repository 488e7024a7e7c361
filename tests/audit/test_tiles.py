import pytest

from app.crypto.merkle import CompactRange, MemoryNodeStore, MissingNodesError, leaf_hash, subtree_root
from app.crypto.tiles import (
    TILE_WIDTH,
    decode_entry_bundle,
    encode_entry_bundle,
    encode_index,
    entry_bundle_path,
    parse_entry_bundle_path,
    parse_tile_path,
    partial_tile_width,
    read_tile,
    tile_node_coords,
    tile_path,
)


@pytest.mark.parametrize(
    ("index", "encoded"),
    [
        (0, "000"),
        (7, "007"),
        (999, "999"),
        (1000, "x001/000"),
        (1234067, "x001/x234/067"),
        (10**9, "x001/x000/x000/000"),
    ],
)
def test_index_encoding(index, encoded):
    assert encode_index(index) == encoded


def test_tile_paths_from_the_spec():
    assert tile_path(0, 1234067) == "tile/0/x001/x234/067"
    assert tile_path(1, 1234067, 256) == "tile/1/x001/x234/067"
    assert tile_path(2, 5, 112) == "tile/2/005.p/112"
    assert entry_bundle_path(1234067) == "tile/entries/x001/x234/067"
    assert entry_bundle_path(3, 1) == "tile/entries/003.p/1"


@pytest.mark.parametrize(
    ("level", "index", "width"),
    [(0, 0, 256), (0, 1234067, 256), (63, 999, 255), (5, 1000, 1), (1, 10**12, 17)],
)
def test_parse_round_trip(level, index, width):
    assert parse_tile_path(tile_path(level, index, width)) == (level, index, width)
    assert parse_entry_bundle_path(entry_bundle_path(index, width)) == (index, width)


@pytest.mark.parametrize(
    "path",
    [
        "tile/00/000",  # leading zero in level
        "tile/64/000",  # level out of range
        "tile/0/00",  # short group
        "tile/0/0000",
        "tile/0/x000/067",  # non-canonical: a leading zero group
        "tile/0/001/067",  # inner group without x
        "tile/0/x001",  # last group with x
        "tile/0/000.p/256",  # full width spelled as partial
        "tile/0/000.p/0",
        "tile/0/000.p/012",
        "tile/0/000.p/",
        "/tile/0/000",
        "tile/0/000/",
        "tile/entries/000",  # an entry bundle is not a hash tile
        "tile/-1/000",
    ],
)
def test_parse_rejects_non_canonical_paths(path):
    with pytest.raises(ValueError, match="tile"):
        parse_tile_path(path)


def test_parse_entry_bundle_rejects_hash_tiles():
    with pytest.raises(ValueError, match="not an entry bundle"):
        parse_entry_bundle_path("tile/0/000")


def test_invalid_tile_arguments():
    with pytest.raises(ValueError, match="level"):
        tile_path(64, 0)
    with pytest.raises(ValueError, match="width"):
        tile_path(0, 0, 0)
    with pytest.raises(ValueError, match="negative"):
        entry_bundle_path(-1)


def test_entry_bundle_encoding():
    entries = [b"", b"a", b"x" * 65535]
    bundle = encode_entry_bundle(entries)
    assert bundle[:5] == b"\x00\x00\x00\x01a"
    assert decode_entry_bundle(bundle) == entries
    with pytest.raises(ValueError, match="65535"):
        encode_entry_bundle([b"x" * 65536])
    with pytest.raises(ValueError, match="inside an entry"):
        decode_entry_bundle(b"\x00\x05abc")


def test_tile_node_coords():
    assert tile_node_coords(0, 2, 3) == [(0, 512), (0, 513), (0, 514)]
    assert tile_node_coords(1, 0)[-1] == (8, 255)
    assert len(tile_node_coords(2, 1)) == TILE_WIDTH


def test_partial_widths_from_the_spec_example():
    # "a tree of size 70,000 will be represented by 273 full level 0 tiles, one partial level 0 tile of
    # width 112, one full level 1 tile, one partial level 1 tile of width 17, and one partial level 2 tile
    # of width 1."
    assert [partial_tile_width(level, 70_000) for level in range(3)] == [112, 17, 1]
    assert 70_000 // TILE_WIDTH == 273
    assert partial_tile_width(1, 256) == 1


def test_tiles_are_served_from_stored_nodes():
    size = TILE_WIDTH * TILE_WIDTH + 300
    compact, store = CompactRange(), MemoryNodeStore()
    for index in range(size):
        store.add(compact.append(leaf_hash(b"%d" % index)))
    level0 = read_tile(store, 0, 1)
    assert level0[:32] == leaf_hash(b"256")
    level1 = read_tile(store, 1, 0)
    assert level1[32:64] == subtree_root(store, TILE_WIDTH, 2 * TILE_WIDTH)
    partial = read_tile(store, 0, TILE_WIDTH + 1, partial_tile_width(0, size))
    assert len(partial) == 32 * (300 - TILE_WIDTH)
    assert read_tile(store, 2, 0, 1) == subtree_root(store, 0, TILE_WIDTH * TILE_WIDTH)
    # The second node of level-1 tile 1 covers leaves beyond the tree: never stored.
    with pytest.raises(MissingNodesError):
        read_tile(store, 1, 1, 2)
