"""One way to name a model: path, runs:/, models:/NAME/VERSION, models:/NAME@alias."""

from __future__ import annotations

import pandas as pd
import pytest

import mlwright
from mlwright.errors import RegistryError
from mlwright.model import resolve_reference
from mlwright.registry import open_store, promote, register_version, start_training_run

from .conftest import CREDIT_TEST
from .helpers import logged_run


@pytest.fixture
def store(store_home):
    return open_store()


def test_every_reference_form_loads_the_same_model(store, artifact):
    run = logged_run(artifact, store=store)
    register_version("credit", run_id=run.run_id, store=store)
    promote("credit", 1, store=store)
    rows = pd.read_csv(CREDIT_TEST).head(20)
    expected = mlwright.load(artifact).predict_proba(rows)
    for reference in (
        str(artifact),
        f"runs:/{run.run_id}/model",
        f"runs:/{run.run_id}",
        "models:/credit/1",
        "models:/credit/latest",
        "models:/credit@champion",
    ):
        model = mlwright.load(reference)
        pd.testing.assert_frame_equal(model.predict_proba(rows), expected)


def test_downloads_are_cached_and_aliases_follow_promotions(store, artifact, monkeypatch):
    run = logged_run(artifact, store=store)
    register_version("credit", run_id=run.run_id, store=store)
    register_version("credit", run_id=run.run_id, store=store)
    promote("credit", 1, store=store)
    first = resolve_reference("models:/credit@champion")
    assert first.parts[-2:] == ("credit", "1")
    assert (first / "MANIFEST").is_file()
    assert not (first / "registered_model_meta").exists()

    import mlflow.artifacts

    def no_download(*args, **kwargs):
        raise AssertionError("a cached version was downloaded again")

    with monkeypatch.context() as patch:
        patch.setattr(mlflow.artifacts, "download_artifacts", no_download)
        assert resolve_reference("models:/credit/1") == first
    promote("credit", 2, store=store)
    assert resolve_reference("models:/credit@champion").parts[-1] == "2"


@pytest.mark.parametrize(
    ("reference", "message"),
    [
        ("models:/nobody/1", "No registered model named 'nobody'"),
        ("models:/credit/7", "has no version or alias '7'"),
        ("models:/credit@champion", "no version or alias 'champion'"),
        ("runs:/0123456789abcdef0123456789abcdef/model", "No run '0123456789abcdef"),
        ("models:/", "not a model reference"),
    ],
)
def test_bad_references_name_what_is_missing(store, artifact, reference, message):
    run = logged_run(artifact, store=store)
    register_version("credit", run_id=run.run_id, store=store)
    with pytest.raises(RegistryError, match=message):
        mlwright.load(reference)


def test_an_unfinished_run_has_no_model_to_load(store):
    run = start_training_run(data="data.csv", settings={"target": "class"}, store=store)
    with pytest.raises(RegistryError, match="did not finish"):
        resolve_reference(f"runs:/{run.run_id}/model")
