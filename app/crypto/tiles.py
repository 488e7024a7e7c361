"""C2SP tlog-tiles (c2sp.org/tlog-tiles) paths, entry bundles, and the tree nodes that make up a tile.

Tile (level L, index N) holds up to 256 hashes: the tree nodes at height 8*L with indices N*256 + i, which the
sequencer has already stored, so a tile is served by reading those nodes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from app.crypto.merkle import NodeCoord, NodeReader, fetch_nodes

TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT
MAX_TILE_LEVEL = 63
MAX_ENTRY_SIZE = 0xFFFF  # entries carry a big-endian uint16 length prefix
_LENGTH_PREFIX = 2

# Path elements: L without leading zeros; N as 3-digit groups, all but the last prefixed with "x";
# an optional ".p/<W>" with 1 <= W <= 255 for partial tiles.
_TILE_PATH = re.compile(
    r"tile/(?P<level>0|[1-9][0-9]?|entries)/"
    r"(?P<index>(?:x[0-9]{3}/)*[0-9]{3})"
    r"(?:\.p/(?P<width>[1-9][0-9]{0,2}))?"
)


def encode_index(index: int) -> str:
    """N as path elements: 1234067 -> x001/x234/067."""
    if index < 0:
        raise ValueError(f"negative tile index {index}")
    groups = [f"{index % 1000:03d}"]
    index //= 1000
    while index:
        groups.append(f"x{index % 1000:03d}")
        index //= 1000
    return "/".join(reversed(groups))


def _width_suffix(width: int | None) -> str:
    if width is None or width == TILE_WIDTH:
        return ""
    if not 1 <= width < TILE_WIDTH:
        raise ValueError(f"tile width {width} is outside 1..{TILE_WIDTH}")
    return f".p/{width}"


def tile_path(level: int, index: int, width: int | None = None) -> str:
    """`tile/<L>/<N>[.p/<W>]`; width None or 256 is a full tile."""
    if not 0 <= level <= MAX_TILE_LEVEL:
        raise ValueError(f"tile level {level} is outside 0..{MAX_TILE_LEVEL}")
    return f"tile/{level}/{encode_index(index)}{_width_suffix(width)}"


def entry_bundle_path(index: int, width: int | None = None) -> str:
    return f"tile/entries/{encode_index(index)}{_width_suffix(width)}"


def _parse(path: str) -> tuple[str, int, int]:
    match = _TILE_PATH.fullmatch(path)
    if match is None:
        raise ValueError(f"not a tile path: {path!r}")
    groups = match["index"].split("/")
    # A leading all-zero group would give the same N a second spelling.
    if len(groups) > 1 and groups[0] == "x000":
        raise ValueError(f"non-canonical tile index in {path!r}")
    index = int("".join(group.removeprefix("x") for group in groups))
    if match["width"] is None:
        return match["level"], index, TILE_WIDTH
    width = int(match["width"])
    if width >= TILE_WIDTH:
        raise ValueError(f"partial tile width {width} must be below {TILE_WIDTH} in {path!r}")
    return match["level"], index, width


def is_tile_path(path: str) -> bool:
    """A canonical hash tile or entry bundle path."""
    try:
        _parse(path)
    except ValueError:
        return False
    return True


def parse_tile_path(path: str) -> tuple[int, int, int]:
    """(level, index, width) of a hash tile path; width is 256 for a full tile."""
    level, index, width = _parse(path)
    if level == "entries" or int(level) > MAX_TILE_LEVEL:
        raise ValueError(f"not a hash tile path: {path!r}")
    return int(level), index, width


def parse_entry_bundle_path(path: str) -> tuple[int, int]:
    """(index, width) of an entry bundle path; width is 256 for a full bundle."""
    level, index, width = _parse(path)
    if level != "entries":
        raise ValueError(f"not an entry bundle path: {path!r}")
    return index, width


def encode_entry_bundle(entries: Iterable[bytes]) -> bytes:
    parts = []
    for entry in entries:
        if len(entry) > MAX_ENTRY_SIZE:
            raise ValueError(f"entry of {len(entry)} bytes exceeds the {MAX_ENTRY_SIZE}-byte tile limit")
        parts.append(len(entry).to_bytes(_LENGTH_PREFIX, "big"))
        parts.append(entry)
    return b"".join(parts)


def decode_entry_bundle(bundle: bytes) -> list[bytes]:
    entries = []
    offset = 0
    while offset < len(bundle):
        if offset + _LENGTH_PREFIX > len(bundle):
            raise ValueError("entry bundle ends inside a length prefix")
        length = int.from_bytes(bundle[offset : offset + _LENGTH_PREFIX], "big")
        offset += _LENGTH_PREFIX
        if offset + length > len(bundle):
            raise ValueError("entry bundle ends inside an entry")
        entries.append(bundle[offset : offset + length])
        offset += length
    return entries


def tile_node_coords(level: int, index: int, width: int = TILE_WIDTH) -> list[NodeCoord]:
    """The tree nodes (level, index) whose hashes a tile holds, in order."""
    if not 0 <= level <= MAX_TILE_LEVEL or index < 0 or not 1 <= width <= TILE_WIDTH:
        raise ValueError(f"invalid tile level {level}, index {index}, width {width}")
    first = index * TILE_WIDTH
    return [(level * TILE_HEIGHT, first + offset) for offset in range(width)]


def partial_tile_width(level: int, tree_size: int) -> int:
    """Width of the rightmost (partial) tile at a level for a tree size; 0 when there is none."""
    return (tree_size >> (TILE_HEIGHT * level)) % TILE_WIDTH


def read_tile(reader: NodeReader, level: int, index: int, width: int = TILE_WIDTH) -> bytes:
    """A tile's bytes (width concatenated 32-byte hashes) from stored nodes, in one lookup."""
    coords = tile_node_coords(level, index, width)
    found = fetch_nodes(reader, coords)
    return b"".join(found[coord] for coord in coords)
