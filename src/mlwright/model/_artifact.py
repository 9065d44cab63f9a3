"""The model artifact on disk: atomic save, MANIFEST of SHA-256 digests, verified load.

Layout of an artifact directory::

    predictor.pkl    the fitted predictor (pickle protocol 5)
    model.json       format version, task, target, class labels, input columns and dtypes
    schema.json      the data schema inferred at training (enforced at prediction)
    metrics.json     validation score with fold spread and the whole leaderboard
    lineage.json     dataset fingerprint, versions, settings, seed, time taken
    findings.json    the data-quality findings of the training data
    MANIFEST         "<sha256>  <relative path>" for every other file

Other stages add files (the MLflow ``MLmodel`` file, the model report) through ``extra_files``
or :func:`add_files`, which keep the MANIFEST complete. :func:`read_artifact` verifies every
digest, and refuses missing or unlisted files, BEFORE anything is unpickled: unpickling runs
code, so a file that is not exactly what was saved must never reach ``pickle``.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import json
import math
import os
import pickle
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from mlwright.errors import ModelError, write_error

FORMAT_VERSION = 1
MANIFEST_NAME = "MANIFEST"
MANIFEST_HEADER = f"# mlwright model artifact, format {FORMAT_VERSION}: sha256 and path per file"
PREDICTOR_FILE = "predictor.pkl"
JSON_FILES = ("model.json", "schema.json", "metrics.json", "lineage.json", "findings.json")
# Files other tools write into a model directory they handle; never unpickled, so they need no
# digest. MLflow writes ``registered_model_meta`` (YAML: registered name and version) into every
# model directory it loads from its registry, including the stored copy in a local artifact
# store (added by the registry stage).
IGNORED_FILES = frozenset({"registered_model_meta"})

# Reference scheme prefix -> function returning the local artifact directory. Paths are built in;
# the registry stage registers ``runs:/`` and ``models:/`` (it imports this stage, never the
# reverse), see :func:`register_reference_scheme`.
_REFERENCE_SCHEMES: dict[str, Callable[[str], Path]] = {}


def register_reference_scheme(prefix: str, resolver: Callable[[str], Path]) -> None:
    """Teach :func:`resolve_reference` a new kind of model reference.

    Parameters
    ----------
    prefix
        The reference's start, e.g. ``"models:/"``.
    resolver
        Called with the whole reference; returns the local artifact directory (downloading it
        first when needed) or raises :class:`~mlwright.errors.MlwrightError`.
    """
    _REFERENCE_SCHEMES[prefix] = resolver


def resolve_reference(reference: str | os.PathLike[str]) -> Path:
    """Turn any model reference into the local artifact directory it names.

    This is the one place where model references are resolved: every command (``predict``,
    ``evaluate``, ``serve``) and :func:`mlwright.load` go through it.

    Parameters
    ----------
    reference
        A local artifact directory, or a registry reference (``runs:/<id>/model``,
        ``models:/NAME/VERSION``, ``models:/NAME@alias``) once the registry stage is available.

    Returns
    -------
    pathlib.Path
        The artifact directory (not yet verified: :func:`read_artifact` does that).

    Raises
    ------
    ModelError
        The reference names nothing that exists.
    """
    text = os.fspath(reference)
    for prefix, resolver in _REFERENCE_SCHEMES.items():
        if text.startswith(prefix):
            return Path(resolver(text))
    if text.startswith(("runs:/", "models:/")):
        # The registry stage registers these schemes when imported; import it on demand so
        # that ``mlwright.load("models:/...")`` works without the user importing it first.
        with contextlib.suppress(ImportError):
            __import__("mlwright.registry")
        for prefix, resolver in _REFERENCE_SCHEMES.items():
            if text.startswith(prefix):
                return Path(resolver(text))
        raise ModelError(
            f"Cannot resolve the model reference '{text}': registry references (runs:/ and "
            "models:/) need mlwright's MLflow registry, which is not installed in this "
            "environment. Pass the path of a model artifact directory instead (the folder "
            "`mlwright train` printed)."
        )
    path = Path(text).expanduser()
    if not path.exists():
        raise ModelError(
            f"No model at '{text}': the path does not exist. Pass the artifact directory that "
            "`mlwright train` printed (by default under ./models/)."
        )
    if not path.is_dir():
        raise ModelError(
            f"'{text}' is a file, but a model is a directory (holding MANIFEST, "
            f"{PREDICTOR_FILE}, schema.json, ...). Pass the directory `mlwright train` printed."
        )
    return path


def sha256_file(path: Path) -> str:
    """Return the hex SHA-256 digest of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _listed_files(directory: Path) -> list[str]:
    files = []
    for path in sorted(directory.rglob("*")):
        if path.is_file() or path.is_symlink():
            relative = path.relative_to(directory).as_posix()
            if relative != MANIFEST_NAME and relative not in IGNORED_FILES:
                files.append(relative)
    return files


def write_manifest(directory: Path) -> None:
    """Write ``MANIFEST`` listing the SHA-256 of every file in ``directory``."""
    lines = [MANIFEST_HEADER]
    for relative in _listed_files(directory):
        lines.append(f"{sha256_file(directory / relative)}  {relative}")
    temporary = directory / f".{MANIFEST_NAME}.{uuid.uuid4().hex}"
    temporary.write_text("\n".join(lines) + "\n", encoding="utf-8")
    os.replace(temporary, directory / MANIFEST_NAME)


def _read_manifest(directory: Path) -> dict[str, str]:
    manifest = directory / MANIFEST_NAME
    if not manifest.is_file():
        raise ModelError(
            f"'{directory}' is not a complete mlwright model: it has no {MANIFEST_NAME} file "
            "(the list of SHA-256 digests that proves the files are the ones training saved). "
            "Point to the directory `mlwright train` wrote, or train the model again."
        )
    entries: dict[str, str] = {}
    for number, line in enumerate(manifest.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        digest, separator, relative = line.partition("  ")
        if not separator or len(digest) != 64 or not relative:
            raise ModelError(
                f"The {MANIFEST_NAME} of the model at '{directory}' is damaged (line {number} "
                f"is not '<sha256>  <file>'). The artifact cannot be trusted: train it again "
                "or restore it from its source."
            )
        entries[relative] = digest
    return entries


def verify_artifact(directory: Path) -> None:
    """Check every file of an artifact against its MANIFEST.

    Raises
    ------
    ModelError
        A file is missing, changed, or not listed (named in the message).
    """
    expected = _read_manifest(directory)
    for relative, digest in expected.items():
        path = directory / relative
        if ".." in Path(relative).parts or not path.is_file():
            raise ModelError(
                f"The model at '{directory}' is incomplete: '{relative}' is listed in its "
                f"{MANIFEST_NAME} but missing. Restore the whole directory or train again."
            )
        if sha256_file(path) != digest:
            raise ModelError(
                f"The model at '{directory}' was modified after it was saved: the SHA-256 of "
                f"'{relative}' does not match its {MANIFEST_NAME}. Refusing to load it (a "
                "changed pickle can run arbitrary code). Restore the artifact from its source "
                "or train the model again."
            )
    unexpected = [name for name in _listed_files(directory) if name not in expected]
    if unexpected:
        raise ModelError(
            f"The model at '{directory}' holds files its {MANIFEST_NAME} does not list: "
            f"{', '.join(repr(name) for name in unexpected[:5])}. Refusing to load it; remove "
            "those files if you added them, or restore the artifact from its source."
        )


def _write_json(path: Path, content: Any) -> None:
    path.write_text(
        json.dumps(content, indent=2, sort_keys=False, default=_json_default, allow_nan=False)
        + "\n",
        encoding="utf-8",
    )


def _json_default(value: Any) -> Any:
    # numpy scalars and arrays, paths and timestamps reach the JSON files through metrics and
    # leaderboards; convert them to plain JSON values.
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, (Path, os.PathLike)):
        return os.fspath(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)


def to_json_safe(value: Any) -> Any:
    """Return ``value`` as plain JSON values (NaN and infinities become None)."""
    if isinstance(value, dict):
        return {str(key): to_json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_json_safe(item) for item in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if hasattr(value, "item") and not hasattr(value, "__len__"):
        return to_json_safe(value.item())
    if hasattr(value, "tolist"):
        return to_json_safe(value.tolist())
    return to_json_safe(_json_default(value))


def write_artifact(
    directory: str | os.PathLike[str],
    *,
    predictor: Any,
    documents: dict[str, Any],
    extra_files: dict[str, bytes] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write an artifact directory atomically.

    Everything is written into a hidden temporary directory beside the target, the MANIFEST
    last, and the directory is then renamed into place: a run killed at any moment leaves either
    no artifact or a complete one (plus, at worst, a hidden ``.tmp-`` folder).

    Parameters
    ----------
    directory
        Where the artifact goes. An existing artifact there is replaced only with
        ``overwrite=True``; an existing empty directory is replaced.
    predictor
        The fitted predictor (pickled).
    documents
        JSON documents by file name (``schema.json``, ``metrics.json``, ...).
    extra_files
        Further files by relative path, e.g. ``{"MLmodel": b"..."}``.
    overwrite
        Replace an existing artifact at ``directory``.

    Returns
    -------
    pathlib.Path
        The artifact directory.
    """
    target = Path(directory).expanduser()
    check_destination(target, overwrite=overwrite)
    for relative in extra_files or {}:
        _check_relative(relative)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with _staged(target) as staging:
            with (staging / PREDICTOR_FILE).open("wb") as handle:
                pickle.dump(predictor, handle, protocol=5)
            for name, content in documents.items():
                _write_json(staging / name, to_json_safe(content))
            _write_files(staging, extra_files or {})
    except OSError as err:  # a full disk, a read-only folder: the user's to fix
        error = write_error(err, "the model", target, kept=target.exists())
        if error is None:
            raise
        raise error from err
    return target


def check_destination(directory: str | os.PathLike[str], *, overwrite: bool = False) -> None:
    """Fail at once when a model could not be saved at ``directory`` (before a training
    that would end by failing to save it).

    Raises
    ------
    ModelError
        Something is there already (a file, other files, a model without ``overwrite``).
    DataError
        A file stands where a folder is needed on the way, or the folder to write in is
        read-only or not writable.
    """
    target = Path(directory).expanduser()
    _check_target(target, overwrite)
    # The nearest folder on the way that exists is where the new folders will be made.
    existing = next(
        (path for path in (target, *target.parents) if path.exists() or path.is_symlink()),
        Path("."),
    )
    problem: OSError | None = None
    if not existing.is_dir():
        problem = NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(existing))
    elif not os.access(existing, os.W_OK | os.X_OK):
        read_only = bool(os.statvfs(existing).f_flag & os.ST_RDONLY)
        code = errno.EROFS if read_only else errno.EACCES
        problem = OSError(code, os.strerror(code), str(existing))
    if problem is not None:
        raise write_error(problem, "the model", target) or problem


def _check_relative(relative: str) -> None:
    parts = Path(relative).parts
    if Path(relative).is_absolute() or ".." in parts or relative == MANIFEST_NAME:
        raise ModelError(
            f"Cannot add '{relative}' to a model artifact: extra files need a relative path "
            f"inside the artifact, other than {MANIFEST_NAME}."
        )


def _check_target(target: Path, overwrite: bool) -> None:
    if not target.exists():
        return
    if not target.is_dir():
        raise ModelError(
            f"Cannot save the model to '{target}': a file of that name exists. Choose another "
            "output directory."
        )
    if not any(target.iterdir()):
        return
    if not (target / MANIFEST_NAME).is_file():
        raise ModelError(
            f"Cannot save the model to '{target}': the directory exists and holds other files "
            "(it is not an mlwright model). Choose a new or empty output directory."
        )
    if not overwrite:
        raise ModelError(
            f"A model already exists at '{target}'. Choose another output directory, or pass "
            "overwrite=True to replace it."
        )


def _move_into_place(temporary: Path, target: Path) -> None:
    if target.exists():
        if _exchange(temporary, target):
            # One atomic step: the target now names the new artifact, ``temporary`` the old.
            shutil.rmtree(temporary, ignore_errors=True)
            return
        # No atomic exchange here (not Linux, or a file system without it): rename the old
        # artifact aside, then the new one in. A process killed between the two renames
        # leaves no artifact at the target, the old one beside it as ``.old-<name>-...``
        # (:func:`resolve_reference` points at it).
        retired = target.parent / f"{RETIRED_PREFIX}{target.name}-{uuid.uuid4().hex[:12]}"
        os.replace(target, retired)
        os.replace(temporary, target)
        shutil.rmtree(retired, ignore_errors=True)
    else:
        os.replace(temporary, target)


RETIRED_PREFIX = ".old-"
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def _exchange(first: Path, second: Path) -> bool:
    """Swap two directories atomically (Linux ``renameat2``); False where it cannot."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):  # not glibc/Linux
        return False
    result = renameat2(
        _AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second), _RENAME_EXCHANGE
    )
    return result == 0


def _fsync_tree(directory: Path) -> None:
    # Flush file contents before the rename makes the artifact visible, so a power cut cannot
    # leave a renamed directory with empty files.
    for path in directory.rglob("*"):
        if path.is_file():
            with path.open("rb") as handle:
                os.fsync(handle.fileno())


def add_files(directory: str | os.PathLike[str], files: dict[str, bytes]) -> None:
    """Add files to a verified artifact and update its MANIFEST.

    The artifact is verified first, so files are only ever added to an intact artifact. The
    new files and MANIFEST are written into a copy beside it (hard links to the existing
    files, which are never changed in place) that then replaces it like a new save: a process
    killed meanwhile leaves the artifact as it was, never with files its MANIFEST does not
    list.

    Parameters
    ----------
    directory
        An existing artifact directory.
    files
        Content by relative path (e.g. ``{"MLmodel": b"..."}``); existing files are replaced.
    """
    root = Path(directory)
    verify_artifact(root)
    for relative in files:
        _check_relative(relative)
    try:
        with _staged(root, copy_of=root) as staging:
            _write_files(staging, files)
    except OSError as err:  # a full disk: the artifact is as it was
        error = write_error(err, "files into the model", root, kept=True)
        if error is None:
            raise
        raise error from err


@contextlib.contextmanager
def _staged(target: Path, copy_of: Path | None = None) -> Iterator[Path]:
    """A hidden folder beside ``target`` to build an artifact in (empty, or hard-linked from
    ``copy_of``). When the block ends without error the folder gets its MANIFEST, is synced to
    disk and replaces ``target`` in one step; on any error it is removed and ``target`` is as
    it was."""
    staging = target.parent / f".tmp-{target.name}-{uuid.uuid4().hex[:12]}"
    try:
        if copy_of is None:
            staging.mkdir()
        else:
            shutil.copytree(copy_of, staging, copy_function=_link_or_copy, symlinks=True)
        yield staging
        write_manifest(staging)
        _fsync_tree(staging)
        _move_into_place(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _write_files(root: Path, files: dict[str, bytes]) -> None:
    for relative, content in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            path.unlink()  # may be a hard link to the live artifact's file: never write through it
        path.write_bytes(content)


def _link_or_copy(source: str, destination: str) -> None:
    try:
        os.link(source, destination)
    except OSError:  # a file system without hard links
        shutil.copy2(source, destination)


def read_artifact(directory: Path) -> tuple[Any, dict[str, Any]]:
    """Verify an artifact, then load its predictor and JSON documents.

    Returns
    -------
    tuple
        ``(predictor, documents)`` with documents by file name.
    """
    verify_artifact(directory)
    documents: dict[str, Any] = {}
    for name in JSON_FILES:
        path = directory / name
        if not path.is_file():
            raise ModelError(
                f"The model at '{directory}' has no {name}; it was not written by this version "
                "of mlwright or is incomplete. Train the model again."
            )
        try:
            documents[name] = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as err:
            raise ModelError(
                f"{name} of the model at '{directory}' is not valid JSON ({err}). Train the "
                "model again."
            ) from err
    version = documents["model.json"].get("format_version")
    if version != FORMAT_VERSION:
        raise ModelError(
            f"The model at '{directory}' uses artifact format {version!r}, but this mlwright "
            f"reads format {FORMAT_VERSION}. Use the mlwright version recorded in its "
            "lineage.json, or train the model again."
        )
    if not (directory / PREDICTOR_FILE).is_file():
        raise ModelError(
            f"The model at '{directory}' has no {PREDICTOR_FILE}. Train the model again."
        )
    try:
        with (directory / PREDICTOR_FILE).open("rb") as handle:
            predictor = pickle.load(handle)
    except Exception as err:
        versions = documents["lineage.json"].get("versions", {})
        raise ModelError(
            f"Cannot load the predictor of the model at '{directory}' ({type(err).__name__}: "
            f"{err}). It was saved with {_describe_versions(versions)}; install those versions "
            "or train the model again."
        ) from err
    return predictor, documents


def _describe_versions(versions: dict[str, str]) -> str:
    keys = ("mlwright", "python", "scikit-learn", "lightgbm", "xgboost", "catboost")
    shown = [f"{key} {versions[key]}" for key in keys if key in versions]
    return ", ".join(shown) if shown else "unknown library versions"
