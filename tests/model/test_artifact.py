"""The artifact layer: atomic writes, MANIFEST verification before unpickling, references."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from mlwright.errors import ModelError
from mlwright.model import _artifact
from mlwright.model._artifact import (
    MANIFEST_NAME,
    PREDICTOR_FILE,
    add_files,
    read_artifact,
    register_reference_scheme,
    resolve_reference,
    verify_artifact,
    write_artifact,
)

DOCUMENTS = {
    "model.json": {"format_version": _artifact.FORMAT_VERSION, "task": "binary"},
    "schema.json": {"columns": []},
    "metrics.json": {"metric": "roc_auc", "validation_score": 0.75, "fold_scores": [0.7, 0.8]},
    "lineage.json": {"versions": {"mlwright": "0.1.0"}, "seed": 0},
    "findings.json": [],
}


@pytest.fixture
def artifact(tmp_path, credit_pipeline):
    return write_artifact(tmp_path / "model", predictor=credit_pipeline, documents=DOCUMENTS)


def test_round_trip_predicts_the_same(artifact, credit_pipeline, credit_frames):
    _, test = credit_frames
    predictor, documents = read_artifact(artifact)
    features = test[credit_pipeline.feature_names]
    np.testing.assert_array_equal(
        predictor.predict_proba(features), credit_pipeline.predict_proba(features)
    )
    assert documents["metrics.json"]["fold_scores"] == [0.7, 0.8]
    assert sorted(path.name for path in artifact.iterdir()) == sorted(
        [MANIFEST_NAME, PREDICTOR_FILE, *DOCUMENTS]
    )


def test_manifest_lists_the_sha256_of_every_file(artifact):
    lines = (artifact / MANIFEST_NAME).read_text().splitlines()
    entries = dict(reversed(line.split("  ")) for line in lines if not line.startswith("#"))
    assert set(entries) == {PREDICTOR_FILE, *DOCUMENTS}
    assert entries[PREDICTOR_FILE] == _artifact.sha256_file(artifact / PREDICTOR_FILE)


def test_one_changed_byte_in_the_pickle_is_refused_before_unpickling(artifact, monkeypatch):
    path = artifact / PREDICTOR_FILE
    content = bytearray(path.read_bytes())
    content[len(content) // 2] ^= 0x01
    path.write_bytes(bytes(content))

    def forbidden(*args, **kwargs):
        raise AssertionError("pickle.load ran on an unverified artifact")

    monkeypatch.setattr(pickle, "load", forbidden)
    with pytest.raises(ModelError, match=PREDICTOR_FILE) as caught:
        read_artifact(artifact)
    assert "modified" in str(caught.value)


def test_a_changed_json_document_is_refused(artifact):
    (artifact / "metrics.json").write_text('{"validation_score": 0.99}')
    with pytest.raises(ModelError, match="metrics.json"):
        verify_artifact(artifact)


def test_a_missing_file_is_refused(artifact):
    (artifact / "schema.json").unlink()
    with pytest.raises(ModelError, match=r"schema\.json.*missing"):
        verify_artifact(artifact)


def test_an_extra_file_is_refused(artifact):
    (artifact / "evil.pkl").write_bytes(b"x")
    with pytest.raises(ModelError, match="evil.pkl"):
        verify_artifact(artifact)


def test_a_missing_manifest_is_refused(artifact):
    (artifact / MANIFEST_NAME).unlink()
    with pytest.raises(ModelError, match="no MANIFEST"):
        verify_artifact(artifact)


def test_a_damaged_manifest_is_refused(artifact):
    (artifact / MANIFEST_NAME).write_text("not a digest line\n")
    with pytest.raises(ModelError, match="damaged"):
        verify_artifact(artifact)


def test_a_failed_write_leaves_nothing_behind(tmp_path):
    with pytest.raises((pickle.PicklingError, AttributeError, TypeError)):
        write_artifact(tmp_path / "model", predictor=lambda x: x, documents=DOCUMENTS)
    assert list(tmp_path.iterdir()) == []


def test_an_existing_model_is_replaced_only_when_asked(artifact, credit_pipeline):
    with pytest.raises(ModelError, match="already exists"):
        write_artifact(artifact, predictor=credit_pipeline, documents=DOCUMENTS)
    changed = {**DOCUMENTS, "lineage.json": {"seed": 7}}
    write_artifact(artifact, predictor=credit_pipeline, documents=changed, overwrite=True)
    assert read_artifact(artifact)[1]["lineage.json"] == {"seed": 7}
    assert [path.name for path in artifact.parent.iterdir()] == ["model"]


def test_a_folder_of_other_files_is_never_overwritten(tmp_path, credit_pipeline):
    folder = tmp_path / "work"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    with pytest.raises(ModelError, match="not an mlwright model"):
        write_artifact(folder, predictor=credit_pipeline, documents=DOCUMENTS, overwrite=True)
    assert (folder / "notes.txt").read_text() == "keep me"


def test_extra_files_are_listed_and_verified(tmp_path, credit_pipeline):
    path = write_artifact(
        tmp_path / "model",
        predictor=credit_pipeline,
        documents=DOCUMENTS,
        extra_files={"MLmodel": b"flavors: {}\n"},
    )
    verify_artifact(path)
    add_files(path, {"report/index.html": b"<html></html>"})
    verify_artifact(path)
    assert "report/index.html" in (path / MANIFEST_NAME).read_text()
    (path / "MLmodel").write_bytes(b"flavors: {python_function: {}}\n")
    with pytest.raises(ModelError, match="MLmodel"):
        verify_artifact(path)


def test_extra_files_cannot_escape_the_artifact(tmp_path, credit_pipeline):
    with pytest.raises(ModelError, match="relative path"):
        write_artifact(
            tmp_path / "model",
            predictor=credit_pipeline,
            documents=DOCUMENTS,
            extra_files={"../outside": b"x"},
        )
    assert not (tmp_path / "outside").exists()


def test_references_resolve_paths_and_registered_schemes(artifact, tmp_path):
    assert resolve_reference(str(artifact)) == artifact
    with pytest.raises(ModelError, match="does not exist"):
        resolve_reference(tmp_path / "nowhere")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(ModelError, match="is a file"):
        resolve_reference(tmp_path / "file.txt")
    register_reference_scheme("test-scheme:/", lambda reference: artifact)
    try:
        assert resolve_reference("test-scheme:/anything") == artifact
    finally:
        _artifact._REFERENCE_SCHEMES.pop("test-scheme:/")


def test_an_unknown_format_version_is_refused(tmp_path, credit_pipeline):
    documents = {**DOCUMENTS, "model.json": {"format_version": 99}}
    path = write_artifact(tmp_path / "model", predictor=credit_pipeline, documents=documents)
    with pytest.raises(ModelError, match="format 99"):
        read_artifact(path)


KILLED_WRITER = """
import sys, time
from mlwright.model._artifact import write_artifact

class SlowToPickle:
    def __reduce__(self):
        print("pickling", flush=True)
        time.sleep(60)
        return (SlowToPickle, ())

write_artifact(sys.argv[1], predictor=SlowToPickle(), documents={"model.json": {}})
"""


def test_a_run_killed_while_saving_leaves_no_artifact(tmp_path):
    import signal
    import subprocess
    import sys

    target = tmp_path / "models" / "killed"
    process = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, str(target)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout.readline().strip() == "pickling"
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
        process.stdout.close()
    assert not target.exists()
    # Only a hidden temporary folder may remain; nothing that looks like a model.
    assert all(path.name.startswith(".tmp-") for path in target.parent.iterdir())
