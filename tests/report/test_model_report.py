"""The model report: every model-card section, embedded images only, Markdown twin, and the
adult report rendered by headless Chromium."""

from __future__ import annotations

import base64
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import mlwright
from mlwright.report import model_report_markdown, write_model_report
from mlwright.report._model_report import model_report_context

pytestmark = pytest.mark.slow  # trains small models once per session

_spec = importlib.util.spec_from_file_location(
    "_eval_trained_loader_report", Path(__file__).parents[1] / "evaluate" / "_trained.py"
)
_module = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_module)
trained = _module.load_helper()

SECTIONS = [
    "details",
    "intended-use",
    "training-data",
    "validation",
    "evaluation",
    "explanations",
    "slices",
    "limitations",
]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _images(html: str) -> list[str]:
    return re.findall(r'<img[^>]*src="([^"]*)"', html)


def _assert_self_contained(html: str) -> None:
    sources = _images(html)
    assert sources
    for source in sources:
        assert source.startswith("data:image/png;base64,")
        assert base64.b64decode(source.split(",", 1)[1])[:8] == PNG_SIGNATURE
    # nothing is fetched from elsewhere
    assert not re.search(r'(src|href)="(https?:)?//', html)
    assert "<link" not in html


def test_report_with_test_data(tmp_path):
    model = mlwright.load(trained.model_path("lightgbm"))
    paths = write_model_report(
        model,
        tmp_path / "report.html",
        data=trained.CREDIT_TEST,
        sensitive=["personal_status", "foreign_worker"],
        n_resamples=200,
    )
    html = paths["html"].read_text()
    for section in SECTIONS:
        assert f'id="{section}"' in html, section
    _assert_self_contained(html)
    alts = re.findall(r'<img alt="([^"]*)"', html)
    for alt in (
        "ROC curve",
        "precision-recall curve",
        "confusion matrix",
        "calibration curve",
        "permutation importance",
        "native importance",
    ):
        assert alt in alts
    assert any(alt.startswith("partial dependence of") for alt in alts)
    assert "Fairness: personal_status" in html
    assert "roc_auc (primary)" in html
    markdown = paths["markdown"].read_text()
    for heading in (
        "## Model details",
        "## Intended use",
        "## Training data",
        "## Training and validation",
        "## Evaluation on test data",
        "## Explanations",
        "## Slices",
        "## Fairness",
        "## Limitations",
    ):
        assert heading in markdown
    assert paths["markdown"] == tmp_path / "report.md"


def test_report_without_test_data_says_what_is_missing(tmp_path):
    model = mlwright.load(trained.model_path("lightgbm"))
    context = model_report_context(model)
    assert context["evaluation"] is None
    assert "No test data was given" in context["limitations"][0]
    paths = write_model_report(model, tmp_path / "card.html")
    html = paths["html"].read_text()
    assert "No test data was given" in html
    assert 'alt="native importance"' in html
    assert "No test data was given." in model_report_markdown(context)


def test_regression_report_has_residual_plots(tmp_path):
    model = mlwright.load(trained.model_path("regression"))
    paths = write_model_report(
        model, tmp_path / "regression.html", data=trained.CREDIT_TEST, n_resamples=100
    )
    html = paths["html"].read_text()
    _assert_self_contained(html)
    assert 'alt="predicted against actual"' in html
    assert 'alt="residual distribution"' in html
    assert "rmse (primary)" in html


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    reason = "headless Chromium is not installed (apt-get install -y chromium)"
    if os.environ.get("CI"):
        pytest.fail(f"CI must render the report, but {reason}")
    pytest.skip(reason)


def _chromium_run(binary: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            binary,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={profile}",
            "--hide-scrollbars",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )


@pytest.mark.bench_suite
def test_adult_report_renders_in_headless_chromium(bench_dataset, tmp_path):
    binary = _chromium()
    adult = bench_dataset("adult")
    model_dir = tmp_path / "adult-model"
    train = subprocess.run(
        [
            sys.executable,
            "-m",
            "mlwright",
            "train",
            str(adult["train"]),
            "--target",
            adult["target"],
            "--models",
            "lightgbm",
            "--max-trials",
            "2",
            "--output",
            str(model_dir),
            "--quiet",
            "--no-track",
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert train.returncode == 0, train.stderr
    report = tmp_path / "adult-report.html"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mlwright",
            "report",
            str(model_dir),
            "--data",
            str(adult["test"]),
            "--sensitive",
            "sex",
            "race",
            "--output",
            str(report),
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr
    html = report.read_text()
    for section in SECTIONS:
        assert f'id="{section}"' in html, section
    assert "Fairness: sex" in html
    assert "Fairness: race" in html
    _assert_self_contained(html)
    # the page's own load-time check counts images the browser could not decode
    dom = _chromium_run(
        binary,
        tmp_path / "profile-dom",
        "--virtual-time-budget=10000",
        "--dump-dom",
        report.as_uri(),
    )
    assert dom.returncode == 0, dom.stderr
    body = re.search(r"<body[^>]*>", dom.stdout).group(0)
    assert 'data-broken-images="0"' in body, body
    assert f'data-images="{len(_images(html))}"' in body, body
    screenshot = tmp_path / "adult-report.png"
    shot = _chromium_run(
        binary,
        tmp_path / "profile-shot",
        "--window-size=1280,2400",
        f"--screenshot={screenshot}",
        report.as_uri(),
    )
    assert shot.returncode == 0, shot.stderr
    data = screenshot.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert len(data) > 50_000  # a rendered page, not a blank one


def test_train_writes_the_report_into_the_artifact(tmp_path):
    output = tmp_path / "model"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mlwright",
            "train",
            str(trained.CREDIT_TRAIN),
            "--target",
            "class",
            "--models",
            "lightgbm",
            "--max-trials",
            "2",
            "--output",
            str(output),
            "--quiet",
            "--no-track",
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr
    assert f"Model report: {(output / 'report.html').resolve().as_uri()}" in result.stdout
    manifest = (output / "MANIFEST").read_text()
    assert "report.html" in manifest
    assert "report.md" in manifest
    html = (output / "report.html").read_text()
    assert 'id="limitations"' in html
    _assert_self_contained(html)
    mlwright.load(output)  # the digests still verify


@pytest.mark.bench_suite
def test_multiclass_report_and_explanation(bench_dataset, tmp_path):
    from mlwright.evaluate import contributions

    vehicle = bench_dataset("vehicle")
    model = mlwright.train(
        vehicle["train"],
        target=vehicle["target"],
        models=["lightgbm"],
        max_trials=2,
        output=tmp_path / "vehicle",
    )
    paths = write_model_report(
        model, tmp_path / "vehicle.html", data=vehicle["test"], n_resamples=100
    )
    html = paths["html"].read_text()
    _assert_self_contained(html)
    assert "log_loss (primary)" in html
    assert 'alt="confusion matrix"' in html
    assert 'alt="calibration curve"' in html
    import pandas as pd

    row = pd.read_csv(vehicle["test"]).drop(columns=[vehicle["target"]]).iloc[[0]]
    explanation = contributions(model, row)
    assert explanation["method"] == "treeshap"
    assert explanation["explained"] == model.predict(row)[0]
