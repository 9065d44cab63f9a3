"""The prediction log: background writer, bounded queue, dropped counts, flush on close."""

from __future__ import annotations

import asyncio
import threading

import pytest

from mlwright.errors import ConfigError
from mlwright.serve import LogStore, PredictionLog, open_log_store, read_predictions
from mlwright.serve._log import LAST_APPENDED


def _append(log: PredictionLog, index: int, rows: int = 1) -> bool:
    return log.append(
        f"req-{index}",
        "credit",
        "3",
        [{"age": 30 + row, "purpose": "radio/tv"} for row in range(rows)],
        ["good"] * rows,
        [{"bad": 0.25, "good": 0.75}] * rows,
        1.5,
    )


def test_sqlite_round_trip(tmp_path):
    uri = f"sqlite:///{tmp_path / 'log.db'}"
    log = PredictionLog(open_log_store(uri))
    for index in range(10):
        assert _append(log, index, rows=2)
    assert log.flush(10)
    log.close()
    frame = read_predictions(uri)
    assert len(frame) == 20
    assert list(frame["row"][:2]) == [0, 1]
    assert frame["features"][1] == {"age": 31, "purpose": "radio/tv"}
    assert frame["probabilities"][0] == {"bad": 0.25, "good": 0.75}
    assert read_predictions(uri, model="other").empty
    assert len(read_predictions(uri, limit=3)) == 3
    assert log.written == 20
    assert log.dropped == 0


def test_columnar_features_and_nan(tmp_path):
    uri = f"jsonl:///{tmp_path / 'log.jsonl'}"
    log = PredictionLog(open_log_store(uri))
    log.append("r", "m", "1", {"x": [1.0, float("nan")], "c": ["a", None]}, [0.5, 0.7], None, 2.0)
    log.close()
    frame = read_predictions(uri)
    assert frame["features"].tolist() == [{"x": 1.0, "c": "a"}, {"x": None, "c": None}]
    assert frame["prediction"].tolist() == [0.5, 0.7]


class _SlowStore(LogStore):
    """A store that blocks until released, to fill the queue."""

    uri = "slow://"

    def __init__(self) -> None:
        self.release = threading.Event()
        self.rows: list = []

    def write(self, rows):
        self.release.wait(30)
        self.rows.extend(rows)

    def close(self) -> None:
        pass


def test_full_queue_drops_and_counts_never_blocks():
    store = _SlowStore()
    dropped: list[int] = []
    log = PredictionLog(store, max_queue=5, on_drop=dropped.append)
    results = [_append(log, index, rows=2) for index in range(50)]
    assert not all(results)
    assert log.dropped == 2 * results.count(False)
    assert sum(dropped) == log.dropped
    store.release.set()
    log.close()
    # Everything accepted was written: nothing lost silently.
    assert len(store.rows) == 2 * results.count(True)


def test_close_flushes_everything(tmp_path):
    uri = f"sqlite:///{tmp_path / 'log.db'}"
    log = PredictionLog(open_log_store(uri), batch_size=7)
    for index in range(500):
        _append(log, index)
    log.close()
    assert len(read_predictions(uri)) == 500
    assert not _append(log, 501)  # after close: counted as dropped
    assert log.dropped == 1


def test_failing_store_counts_rows_as_dropped():
    class Broken(_SlowStore):
        def write(self, rows):
            raise OSError("disk full")

    log = PredictionLog(Broken())
    _append(log, 1, rows=3)
    log.close()
    assert log.dropped == 3
    assert log.written == 0


def test_unknown_scheme_is_a_clear_error():
    with pytest.raises(ConfigError, match="postgresql"):
        open_log_store("postgresql://localhost/x")
    with pytest.raises(ConfigError, match="No prediction log"):
        read_predictions("sqlite:////nonexistent/dir/log.db")


# -- the durable log: an answer waits for its record's commit ----------------------------------


def _wait(log: PredictionLog, sequence: int, timeout: float = 10.0) -> bool:
    return asyncio.run(log.wait_logged(sequence, timeout))


def test_durable_log_confirms_a_record_only_once_it_is_written(tmp_path):
    uri = f"sqlite:///{tmp_path / 'log.db'}"
    log = PredictionLog(open_log_store(uri), durable=True)
    sequences = []
    for index in range(20):
        assert _append(log, index)
        sequences.append(LAST_APPENDED.get())
    assert sequences == list(range(1, 21))  # numbered in queue order
    assert _wait(log, sequences[-1])
    # Confirmed means committed: another connection already reads every row.
    assert len(read_predictions(uri)) == 20
    log.close()


def test_durable_log_refuses_to_confirm_what_it_could_not_write():
    class Broken(_SlowStore):
        def write(self, rows):
            raise OSError("No space left on device")

    log = PredictionLog(Broken(), durable=True)
    assert _append(log, 1)
    assert not _wait(log, LAST_APPENDED.get())
    assert "No space left on device" in log.last_error
    log.close()


def test_durable_log_gives_up_waiting_after_the_timeout():
    store = _SlowStore()
    log = PredictionLog(store, durable=True)
    assert _append(log, 1)
    assert not _wait(log, LAST_APPENDED.get(), timeout=0.2)
    store.release.set()
    log.close()
    assert len(store.rows) == 1
