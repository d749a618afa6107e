"""The shard store and the replay cache as units: what resume checks and says, how the cache fails safe."""

import asyncio
import io
import os
import tarfile
import threading
import tomllib

import msgspec
import pytest

from afcot_core import recipe as recipes
from afcot_core import runner
from afcot_core.cache import ReplayCache, audio_identity
from afcot_core.errors import BadInput
from afcot_core.records import AudioRef
from afcot_core.shards import ShardCounts, ShardStore, atomic_write, check_fingerprint, iter_samples, read_marker

from .conftest import QUICKSTART

# the shard store


@pytest.fixture(scope="module")
def made(plugins, tmp_path_factory):
    """A generate folder of two shards, with the fingerprint that made it."""
    out = tmp_path_factory.mktemp("made")
    recipe = recipes.load(QUICKSTART, plugins, ["generate.source.items=8", "generate.shard_size=4"])
    runner.run(recipe, plugins, out, stages=["generate"], show_progress=False)
    return out / "generate", tomllib.loads((out / "recipe.lock.toml").read_text())["fingerprint"]


def store(plugins, root, fingerprint, warnings=None) -> ShardStore:
    reg = plugins.registry("sink").get("webdataset", where="test")
    return ShardStore(root, reg.build(msgspec.convert({}, reg.config)), fingerprint,
                      (warnings if warnings is not None else []).append)


def test_a_done_shard_is_skipped_and_a_damaged_one_is_redone_saying_why(plugins, made, tmp_path):
    gen, fingerprint = made
    copy = tmp_path / "generate"
    copy.mkdir()
    for path in gen.iterdir():
        (copy / path.name).write_bytes(path.read_bytes())
    warnings: list[str] = []
    shards = store(plugins, copy, fingerprint, warnings)
    assert shards.done(0) == read_marker(copy / "shard-000000.done.json").counts
    (copy / "shard-000000.tar.tmp").write_bytes(b"left by a kill")
    assert shards.done(0) is not None and not (copy / "shard-000000.tar.tmp").exists()
    assert warnings == []
    (copy / "rejects-000001.jsonl").unlink()
    assert shards.done(1) is None
    assert warnings == [f"{copy / 'rejects-000001.jsonl'}: missing or changed since shard 1 was marked done; "
                        "the shard is redone"]
    (copy / "shard-000001.done.json").write_text("{not json")
    assert shards.done(1) is None
    assert warnings[-1] == f"{copy / 'shard-000001.done.json'}: unreadable done marker; shard 1 is redone"
    tar = copy / "shard-000000.tar"
    tar.write_bytes(tar.read_bytes()[:-512])
    assert shards.done(0) is None
    assert warnings[-1] == f"{tar}: missing or changed since shard 0 was marked done; the shard is redone"
    assert shards.done(2) is None and len(warnings) == 3  # never made: nothing to say


def test_another_recipes_marker_is_refused_naming_it_and_both_fingerprints(plugins, made):
    gen, fingerprint = made
    other = "f" * 64
    message = (f"{gen / 'shard-000000.done.json'}: written by a different recipe (fingerprint {fingerprint[:12]} "
               f"vs {other[:12]}); use a new --out directory to avoid mixing data")
    with pytest.raises(BadInput) as err:
        check_fingerprint(gen, other)
    assert str(err.value) == message
    with pytest.raises(BadInput) as err:
        store(plugins, gen, other).done(0)
    assert str(err.value) == message
    check_fingerprint(gen, fingerprint)


def test_the_rejects_file_holds_every_record_but_the_accepted_ones(made):
    folder, _ = made
    for marker in sorted(folder.glob("shard-*.done.json")):
        done = read_marker(marker)
        lines = (folder / f"rejects-{done.shard:06d}.jsonl").read_bytes().splitlines()
        verdicts = [msgspec.json.decode(line)["verdict"] for line in lines]
        assert "accepted" not in verdicts and len(verdicts) == done.counts.rejected + done.counts.failed

def test_a_store_makes_its_folder_and_counts_add_up(plugins, tmp_path):
    store(plugins, tmp_path / "a" / "b" / "generate", "f" * 64)
    assert (tmp_path / "a" / "b" / "generate").is_dir()
    counts = ShardCounts(1, 2, 3)
    counts.add(ShardCounts(10, 20, 30))
    assert counts == ShardCounts(11, 22, 33) and counts.items == 66


def test_a_writer_that_fails_before_writing_anything_raises_its_own_error(tmp_path):
    def fail(tmp):
        raise ValueError("the sink broke")

    with pytest.raises(ValueError, match="the sink broke"):
        atomic_write(tmp_path / "shard.tar", fail)
    assert list(tmp_path.iterdir()) == []


def test_samples_are_grouped_by_the_name_before_the_first_dot(tmp_path):
    path = tmp_path / "x.tar"
    with tarfile.open(path, "w") as tar:
        folder = tarfile.TarInfo("folder")
        folder.type = tarfile.DIRTYPE
        tar.addfile(folder)
        for name, data in (("k1.audio.flac", b"A"), ("k1.json", b"{}"), ("k2.json", b"[]")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    assert list(iter_samples(path)) == [("k1", {"audio.flac": b"A", "json": b"{}"}), ("k2", {"json": b"[]"})]


# the replay cache


def test_audio_is_identified_by_its_hash_else_its_path_size_and_mtime(tmp_path):
    clip = tmp_path / "a.wav"
    clip.write_bytes(b"x" * 10)
    stat = os.stat(clip)
    assert audio_identity(None) == ""
    assert audio_identity(AudioRef(path=str(clip), sha256="abc")) == "abc"
    assert audio_identity(AudioRef(path=str(clip))) == f"{clip}:10:{stat.st_mtime_ns}"
    assert audio_identity(AudioRef(path=str(tmp_path / "gone.wav"))) == f"{tmp_path / 'gone.wav'}:missing"


def test_the_cache_works_on_one_thread_of_its_own_and_checkpoints_on_close(tmp_path):
    path = tmp_path / "deep" / "replay.sqlite"
    cache = ReplayCache(path)
    worker = cache._thread.submit(threading.current_thread).result()
    assert worker is not threading.current_thread() and worker.name.startswith("afcot-cache")

    async def use():
        await cache.put_many([("k", "v")])
        await cache.flush()
        return await cache.get("k")

    assert asyncio.run(use()) == "v"
    assert (tmp_path / "deep" / "replay.sqlite-wal").exists()
    cache.close()
    assert not (tmp_path / "deep" / "replay.sqlite-wal").exists()
    again = ReplayCache(path)
    assert asyncio.run(again.get("k")) == "v"
    again.close()


def test_a_corrupt_cache_is_moved_aside_with_a_warning(tmp_path):
    path = tmp_path / "replay.sqlite"
    path.write_bytes(b"not a database" * 100)
    warnings: list[str] = []
    ReplayCache(path, warnings.append).close()
    (message,) = warnings
    assert message.startswith(f"{path}: the replay cache is unreadable (")
    assert message.endswith("); moved to replay.sqlite.corrupt, starting a new one")
    assert (tmp_path / "replay.sqlite.corrupt").read_bytes() == b"not a database" * 100


def test_a_cache_whose_commit_fails_says_so_once_and_turns_itself_off(tmp_path):
    """A disk that refuses the commit (full, gone): one warning naming the file, then no more reads or writes."""
    import sqlite3

    class RefusingCommits:  # the real connection, whose commit meets a failing disk
        def __init__(self, db):
            self.db = db

        def __getattr__(self, name):
            return getattr(self.db, name)

        def commit(self):
            raise sqlite3.OperationalError("database or disk is full")

    path = tmp_path / "replay.sqlite"
    warnings: list[str] = []
    cache = ReplayCache(path, warnings.append)
    asyncio.run(cache.put_many([("k", "v")]))
    real = cache._db
    cache._db = RefusingCommits(real)
    asyncio.run(cache.flush())
    assert warnings == [f"{path}: commit failed (database or disk is full); the replay cache is off for the rest of "
                        "this run"]
    assert asyncio.run(cache.get("k")) is None
    asyncio.run(cache.put_many([("k2", "v2")]))
    asyncio.run(cache.flush())
    assert len(warnings) == 1
    cache._thread.submit(real.close).result()
    cache.close()

def test_a_cache_that_fails_later_is_a_miss_then_turns_itself_off(tmp_path):
    path = tmp_path / "replay.sqlite"
    warnings: list[str] = []
    cache = ReplayCache(path, warnings.append)
    asyncio.run(cache.put_many([("k", "v")]))
    cache._thread.submit(lambda: cache._db.execute("DROP TABLE replies")).result()
    assert asyncio.run(cache.get("k")) is None
    assert warnings == [f"{path}: read failed (no such table: replies); asking the teacher instead"]
    asyncio.run(cache.put_many([("k2", "v2")]))
    assert warnings[-1] == (f"{path}: write failed (no such table: replies); the replay cache is off for the rest "
                            "of this run")
    assert asyncio.run(cache.get("k2")) is None
    asyncio.run(cache.put_many([("k3", "v3")]))
    asyncio.run(cache.flush())
    assert len(warnings) == 2
    cache.close()
