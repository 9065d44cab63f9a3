"""Registering, listing, promoting, rolling back and deleting model versions."""

from __future__ import annotations

import pytest

from mlwright.errors import RegistryError
from mlwright.registry import delete as delete_model
from mlwright.registry import (
    get_model,
    get_version,
    list_models,
    open_store,
    promote,
    register_version,
    rollback,
)

from .helpers import logged_run, registered


@pytest.fixture
def store(store_home):
    return open_store()


@pytest.fixture
def three_versions(store, artifact):
    """Model 'credit' with versions 1, 2, 3 (all from finished runs)."""
    run = logged_run(artifact, store=store)
    for _ in range(3):
        register_version("credit", run_id=run.run_id, store=store)
    return run


def test_register_creates_numbered_versions_with_lineage_tags(store, artifact):
    first = registered(artifact, "credit", store=store)
    second = registered(artifact, "credit", store=store)
    assert (first.version, second.version) == (1, 2)
    assert first.reference == "models:/credit/1"
    assert first.tags["mlwright.data.fingerprint"].startswith("sha256:")
    assert first.source.endswith("/model")
    models = list_models(store=store)
    assert [model.name for model in models] == ["credit"]
    assert [version.version for version in models[0].versions] == [2, 1]
    shown = get_model("credit", store=store)
    assert shown.latest.version == 2
    assert shown.latest.metrics["validation_roc_auc"] == pytest.approx(0.75)


def test_promote_rollback_and_history(store, three_versions):
    promote("credit", 1, store=store)
    promote("credit", 2, store=store)
    promoted = promote("credit", 3, store=store)
    assert promoted.aliases == ["champion"]
    assert promoted.tags["mlwright.previous.champion"] == "2,1"
    assert get_version("credit", "champion", store=store).version == 3

    restored, previous = rollback("credit", store=store)
    assert (restored.version, previous) == (2, 3)
    restored, previous = rollback("credit", store=store)
    assert (restored.version, previous) == (1, 2)
    with pytest.raises(RegistryError, match="no earlier 'champion'"):
        rollback("credit", store=store)


def test_rollback_skips_deleted_versions(store, three_versions):
    for version in (1, 2, 3):
        promote("credit", version, store=store)
    delete_model("credit", 2, store=store)
    restored, previous = rollback("credit", store=store)
    assert (restored.version, previous) == (1, 3)


def test_promoting_the_challenger_to_champion_clears_challenger(store, three_versions):
    promote("credit", 1, store=store)
    promote("credit", 2, alias="challenger", store=store)
    assert get_model("credit", store=store).aliases == {"champion": 1, "challenger": 2}
    promote("credit", "challenger", store=store)
    assert get_model("credit", store=store).aliases == {"champion": 2}


def test_delete_protects_the_champion(store, three_versions):
    promote("credit", 2, store=store)
    with pytest.raises(RegistryError, match="is the champion"):
        delete_model("credit", 2, store=store)
    with pytest.raises(RegistryError, match="--force"):
        delete_model("credit", store=store)
    assert delete_model("credit", 3, store=store) == [3]
    assert delete_model("credit", 2, force=True, store=store) == [2]
    assert delete_model("credit", store=store) == [1]
    assert list_models(store=store) == []


def test_unknown_names_say_what_exists(store, three_versions):
    with pytest.raises(RegistryError) as caught:
        get_model("credit-risk", store=store)
    assert "No registered model named 'credit-risk'" in str(caught.value)
    assert "credit" in str(caught.value)
    with pytest.raises(RegistryError) as caught:
        get_version("credit", 9, store=store)
    assert "versions 1, 2, 3" in str(caught.value)
    with pytest.raises(RegistryError, match="no version or alias 'champion'"):
        get_version("credit", "champion", store=store)


@pytest.mark.parametrize("name", ["", "a/b", "a@b", "models:x"])
def test_bad_model_names_are_refused(store, artifact, name):
    run = logged_run(artifact, store=store)
    with pytest.raises(RegistryError, match="cannot be a registered model name"):
        register_version(name, run_id=run.run_id, store=store)


@pytest.mark.parametrize("alias", ["3", "latest", "bad alias"])
def test_bad_aliases_are_refused(store, three_versions, alias):
    with pytest.raises(RegistryError):
        promote("credit", 1, alias=alias, store=store)
