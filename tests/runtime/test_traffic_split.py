"""Which pool of a canary rollout takes a call (agent_runtime/traffic_split.py): a room's bucket
is uniform and the same in every process; while a split changes in the operator's two writes, no
room is refused by both pools whatever version each pod has read (and one write that shrinks
both numbers would refuse some); the split file is read safely; and the worker's answer to
LiveKit is an accept naming its configuration or a reject that lets another worker take the call.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pytest
from kubevox_api import contract
from livekit.agents import JobRequest

from agent_runtime.traffic_split import (
    OVERFLOW_SECONDS,
    CallFilter,
    Split,
    read_split,
    room_bucket,
)

ROOT = Path(__file__).resolve().parents[2]


def _room_per_bucket() -> dict[int, str]:
    """A room name in each bucket 0..99."""
    rooms: dict[int, str] = {}
    for i in itertools.count():
        rooms.setdefault(room_bucket(f"room-{i}"), f"room-{i}")
        if len(rooms) == 100:
            return rooms
    raise AssertionError("unreachable")


ROOMS = _room_per_bucket()


def test_room_bucket_is_in_range_and_deterministic() -> None:
    """Every bucket is 0..99 and a room's bucket does not change between calls."""
    names = [uuid.uuid4().hex for _ in range(1000)]
    buckets = [room_bucket(n) for n in names]
    assert all(0 <= b <= 99 for b in buckets)
    assert buckets == [room_bucket(n) for n in names]
    assert sorted(ROOMS) == list(range(100))


def test_room_bucket_is_the_same_in_another_process() -> None:
    """Another interpreter with another string-hash seed (as another pod would have) puts each
    room in the same bucket: the bucket is no salted hash()."""
    names = [f"call-{i}" for i in range(200)]
    code = (
        "import json, sys\n"
        "from agent_runtime.traffic_split import room_bucket\n"
        "print(json.dumps([room_bucket(n) for n in json.load(sys.stdin)]))\n"
    )
    env = {
        **os.environ,
        "PYTHONHASHSEED": "12345",
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "operator")]),
    }
    proc = subprocess.run(
        [sys.executable, "-c", code],
        input=json.dumps(names),
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == [room_bucket(n) for n in names]


@pytest.mark.parametrize("weight", [10, 25, 50, 90])
def test_room_bucket_is_roughly_uniform(weight: int) -> None:
    """Over 20,000 random room names the share of buckets below ``weight`` is within two points
    of ``weight`` percent (about six standard deviations at 50%)."""
    buckets = [room_bucket(uuid.uuid4().hex) for _ in range(20_000)]
    share = 100 * sum(b < weight for b in buckets) / len(buckets)
    assert abs(share - weight) <= 2, share


def _refused(canary_reads: tuple[Split, ...], stable_reads: tuple[Split, ...]) -> set[int]:
    """Buckets no pod takes when the canary pods have read the splits ``canary_reads`` (one or
    several versions, one per pod) and the stable pods ``stable_reads``."""
    return {
        bucket
        for bucket, room in ROOMS.items()
        if not any(s.takes(room, canary=True) for s in canary_reads)
        and not any(s.takes(room, canary=False) for s in stable_reads)
    }


def _mixes(old: Split, new: Split) -> list[tuple[Split, ...]]:
    """What the pods of one pool may have read during a write: all the old version, all the
    new one, or some of each."""
    return [(old,), (new,), (old, new)]


def _safe(old: Split, new: Split) -> bool:
    """The operator's rule for one write: no yield over any canary weight of either version."""
    return max(old.stable_yield, new.stable_yield) <= min(old.canary_weight, new.canary_weight)


def _assert_no_room_refused(old: Split, new: Split) -> None:
    assert _safe(old, new), (old, new)
    for canary_reads, stable_reads in itertools.product(_mixes(old, new), repeat=2):
        assert _refused(canary_reads, stable_reads) == set(), (old, new, canary_reads)


# Splits in the order the operator writes them (kubevox_operator/rollout.py): a share grows on
# the canary's side first, then the stable pool yields it; it shrinks on the stable side first
# (aborting, even mid-widening, and promoting once the stable pool runs the new configuration).
GROWING = [Split(0, 0), Split(10, 0), Split(10, 10), Split(25, 10), Split(25, 25), Split(100, 25)]
ABORTING = [Split(50, 25), Split(50, 0), Split(0, 0)]
PROMOTING = [Split(50, 50), Split(50, 0)]


@pytest.mark.parametrize("writes", [GROWING, ABORTING, PROMOTING], ids=["grow", "abort", "promote"])
def test_every_write_of_a_change_leaves_no_room_refused(writes: list[Split]) -> None:
    """Make before break: during each write of a change, whichever version each canary pod
    and each stable pod has read, every bucket 0..99 is taken by at least one pool."""
    for old, new in itertools.pairwise(writes):
        _assert_no_room_refused(old, new)


def test_any_write_within_the_rule_leaves_no_room_refused() -> None:
    """Not only the sequences above: every pair of splits (edge values included) that keeps
    each yield at most each canary weight leaves no bucket refused in any mix."""
    values = (0, 1, 10, 50, 99, 100)
    splits = [Split(w, y) for w, y in itertools.product(values, repeat=2)]
    pairs = [(a, b) for a, b in itertools.product(splits, repeat=2) if _safe(a, b)]
    assert len(pairs) > 50
    for old, new in pairs:
        _assert_no_room_refused(old, new)


def test_shrinking_both_numbers_in_one_write_refuses_rooms() -> None:
    """Why the operator writes twice: (50, 50) -> (10, 10) at once, with the canary pods on
    the new split and the stable pods still on the old one, leaves buckets 10..49 to nobody."""
    old, new = Split(50, 50), Split(10, 10)
    assert not _safe(old, new)
    assert _refused((new,), (old,)) == set(range(10, 50))
    # Either pool alone on one version is fine: the gap is the mix.
    assert _refused((old,), (old,)) == set()
    assert _refused((new,), (new,)) == set()


def test_no_split_gives_every_room_to_the_stable_pool_and_full_split_to_the_canary() -> None:
    """Split(): the stable pool takes every bucket, the canary none; (100, 100): the reverse."""
    for room in ROOMS.values():
        assert Split().takes(room, canary=False)
        assert not Split().takes(room, canary=True)
        assert Split(100, 100).takes(room, canary=True)
        assert not Split(100, 100).takes(room, canary=False)


def test_read_split_without_a_file_is_no_split(tmp_path: Path) -> None:
    """No file (no rollout): Split(), the stable pool takes every call."""
    assert read_split(tmp_path / "split.json") == Split()


def test_read_split_reads_the_operators_file(tmp_path: Path) -> None:
    """The ConfigMap's JSON gives both numbers (other keys are ignored)."""
    path = tmp_path / "split.json"
    path.write_text(json.dumps({"canaryWeight": 20, "stableYield": 10, "canaryHash": "x"}))
    assert read_split(path) == Split(20, 10)


@pytest.mark.parametrize(
    "content",
    ["not json {", "[20, 10]", '{"canaryWeight": "twenty"}', '{"canaryWeight": null}'],
    ids=["not-json", "list", "not-a-number", "null"],
)
def test_read_split_of_an_unreadable_file_is_no_split_and_logged(
    tmp_path: Path, content: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A file that cannot be read as a split: Split() (a call on the stable configuration
    rather than none), with an error in the log naming the file."""
    path = tmp_path / "split.json"
    path.write_text(content)
    with caplog.at_level(logging.ERROR, logger="kubevox.worker"):
        assert read_split(path) == Split()
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert [r.getMessage() for r in errors] == ["the rollout split cannot be read"]
    assert errors[0].__dict__["path"] == str(path)


@dataclass
class _Room:
    name: str
    creation_time: int = 0
    creation_time_ms: int = 0


@dataclass
class _Request:
    """Stands in for livekit.agents.JobRequest, which needs a live worker connection to build:
    the room's name, and the two answers on_request gives, recorded."""

    room: _Room
    accepted: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)

    async def accept(self, **kwargs: Any) -> None:
        self.accepted.append(kwargs)

    async def reject(self, **kwargs: Any) -> None:
        self.rejected.append(kwargs)


def _write_split(path: Path, weight: int, yield_: int) -> Path:
    path.write_text(json.dumps({"canaryWeight": weight, "stableYield": yield_}))
    return path


async def _answer(f: CallFilter, room: str | _Room) -> _Request:
    req = _Request(room if isinstance(room, _Room) else _Room(room))
    await f.on_request(cast(JobRequest, req))
    return req


async def test_canary_accepts_its_share_naming_its_configuration(tmp_path: Path) -> None:
    """At weight 100 the canary takes every room, and the participant's attributes name its
    configuration hash."""
    f = CallFilter("bbb", canary=True, path=_write_split(tmp_path / "split.json", 100, 100))
    for room in (ROOMS[0], ROOMS[99]):
        req = await _answer(f, room)
        assert req.accepted == [{"attributes": {contract.CONFIG_HASH_ATTRIBUTE: "bbb"}}]
        assert req.rejected == []


async def test_canary_outside_its_share_rejects_without_terminating(tmp_path: Path) -> None:
    """At weight 0 the canary refuses with terminate=False: with terminate=True LiveKit would
    end the job instead of offering the call to another worker."""
    f = CallFilter("bbb", canary=True, path=_write_split(tmp_path / "split.json", 0, 0))
    req = await _answer(f, ROOMS[0])
    assert req.rejected == [{"terminate": False}]
    assert req.accepted == []


async def test_stable_yields_its_share_and_takes_all_without_a_split(tmp_path: Path) -> None:
    """A stable worker whose pool yields 100% refuses (terminate=False); with no split file it
    takes the call, naming its own configuration."""
    path = tmp_path / "split.json"
    f = CallFilter("aaa", canary=False, path=path)
    req = await _answer(f, ROOMS[42])
    assert req.accepted == [{"attributes": {contract.CONFIG_HASH_ATTRIBUTE: "aaa"}}]
    assert req.rejected == []

    _write_split(path, 100, 100)
    req = await _answer(f, ROOMS[42])
    assert req.rejected == [{"terminate": False}]
    assert req.accepted == []


async def test_each_pool_follows_the_file_per_call(tmp_path: Path) -> None:
    """The file is read for each request: at (30, 30) a room of bucket 29 goes to the canary
    alone and one of bucket 30 to the stable pool alone."""
    path = _write_split(tmp_path / "split.json", 30, 30)
    canary, stable = CallFilter("bbb", True, path), CallFilter("aaa", False, path)
    assert (await _answer(canary, ROOMS[29])).accepted
    assert (await _answer(stable, ROOMS[29])).rejected == [{"terminate": False}]
    assert (await _answer(canary, ROOMS[30])).rejected == [{"terminate": False}]
    assert (await _answer(stable, ROOMS[30])).accepted


@pytest.mark.parametrize(("track", "canary"), [("canary", True), ("stable", False), (None, False)])
def test_from_env_reads_the_rollout_track(
    monkeypatch: pytest.MonkeyPatch, track: str | None, canary: bool
) -> None:
    """The pod's track (env set by the operator) makes a canary filter; anything else, or
    none, a stable one."""
    if track is None:
        monkeypatch.delenv(contract.ROLLOUT_TRACK_ENV, raising=False)
    else:
        monkeypatch.setenv(contract.ROLLOUT_TRACK_ENV, track)
    f = CallFilter.from_env("abc")
    assert (f.canary, f.config_hash) == (canary, "abc")
    assert f.path == Path(contract.ROLLOUT_DIR) / contract.ROLLOUT_FILE


NOW = 1_800_000_000.0


def _made(room: str, seconds_ago: float, *, ms: bool = True) -> _Room:
    created = NOW - seconds_ago
    if ms:
        return _Room(room, creation_time_ms=int(created * 1000))
    return _Room(room, creation_time=int(created))


async def test_stable_takes_a_call_of_the_canarys_share_that_waited(tmp_path: Path) -> None:
    """A room of the canary's share (bucket 10 at 25 %) made OVERFLOW_SECONDS ago has waited
    for the canary's workers: a stable worker takes it and says so; a younger one it leaves to
    the canary. LiveKit's creation time in seconds serves when it gives no milliseconds."""
    path = _write_split(tmp_path / "split.json", 25, 25)
    stable = CallFilter("aaa", False, path, clock=lambda: NOW)
    young = await _answer(stable, _made(ROOMS[10], OVERFLOW_SECONDS - 1))
    assert (young.accepted, young.rejected) == ([], [{"terminate": False}])
    for room in (_made(ROOMS[10], OVERFLOW_SECONDS), _made(ROOMS[10], 60, ms=False)):
        old = await _answer(stable, room)
        attributes = {contract.CONFIG_HASH_ATTRIBUTE: "aaa", contract.OVERFLOW_ATTRIBUTE: "true"}
        assert (old.accepted, old.rejected) == ([{"attributes": attributes}], [])


async def test_the_canary_never_takes_a_call_outside_its_share_however_long_it_waited(
    tmp_path: Path,
) -> None:
    """The canary's weight caps its exposure: a room of the stable pool's share waits for the
    stable pool, however old; and a room with no creation time has not waited."""
    path = _write_split(tmp_path / "split.json", 25, 25)
    canary = CallFilter("bbb", True, path, clock=lambda: NOW)
    old = await _answer(canary, _made(ROOMS[80], 3600))
    assert (old.accepted, old.rejected) == ([], [{"terminate": False}])
    stable = CallFilter("aaa", False, path, clock=lambda: NOW)
    unknown = await _answer(stable, _Room(ROOMS[10]))
    assert (unknown.accepted, unknown.rejected) == ([], [{"terminate": False}])
