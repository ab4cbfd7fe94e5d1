"""Versioned on-disk store of trained models, so any signal can be traced to its exact model.

Layout: ``root/<name>/v0001/`` holds the model's own artifacts plus ``meta.json`` (kind,
params, features, training window, fold, metrics, data hash, creation time, Sextant version).
A version directory is written under a hidden temporary name and renamed into place, so a
reader or a crashed writer never sees a half-written version, and versions are never
overwritten: retraining always creates a new one.
"""

from __future__ import annotations

import datetime as dt
import errno
import hashlib
import json
import os
import re
import shutil
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Literal

import numpy as np

from models.drift import DriftReference
from models.names import check_name
from models.pipeline import FittedFeatures
from models.stacking import load_saved_model
from models.zoo import SignalModel

META_FILE = "meta.json"
# Keys the caller must supply: without them a stored model cannot be reproduced or audited.
# "universe": the symbols the model was fitted on, the universe a live node trades by default.
REQUIRED_META = ("train_start", "train_end", "fold", "metrics", "data_hash", "universe")
# Keys the registry derives from the model itself; a caller-supplied copy could contradict it.
RESERVED_META = ("name", "version", "kind", "params", "features", "created_at", "sextant_version")
_VERSION_DIR = re.compile(r"v(\d{4,})")
_SAVE_ATTEMPTS = 20


class ModelNotFoundError(LookupError):
    """No such model name or version in the registry."""


class UniverseError(Exception):
    """The saved models name no single training universe (none recorded, or several)."""


@dataclass(frozen=True)
class ModelRecord:
    """Where a saved model version lives and what was recorded about it."""

    name: str
    version: int
    path: Path
    meta: dict[str, Any]


class ModelRegistry:
    """Save and load versioned models under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def save(
        self, model: SignalModel, meta: dict[str, Any], features: FittedFeatures | None = None,
        drift: DriftReference | None = None,
    ) -> ModelRecord:
        """Store ``model`` as the next version of ``model.name`` with ``meta``, the
        ``features`` its rows were computed with (what the live actor loads to compute them)
        and the ``drift`` reference of its training rows (what live inputs are compared with).

        ``meta`` must contain ``REQUIRED_META`` and no ``RESERVED_META`` keys; values must be
        JSON-serialisable (numpy scalars/arrays and datetimes are converted). If another
        writer takes the same version number concurrently, the next free number is used.
        """
        check_name(model.name, "model name")
        missing = [k for k in REQUIRED_META if k not in meta]
        if missing:
            raise ValueError(f"meta is missing required keys {missing}")
        reserved = [k for k in RESERVED_META if k in meta]
        if reserved:
            raise ValueError(f"meta keys {reserved} are set by the registry; remove them")
        model_dir = self.root / model.name
        model_dir.mkdir(parents=True, exist_ok=True)
        tmp = model_dir / f".tmp-{uuid.uuid4().hex}"
        tmp.mkdir()
        try:
            model.save(tmp)
            (features or FittedFeatures()).save(tmp)
            if drift is not None:
                drift.save(tmp)
            for _ in range(_SAVE_ATTEMPTS):
                number = max(self._versions_in(model_dir), default=0) + 1
                full = {
                    "name": model.name,
                    "version": number,
                    "kind": model.kind,
                    "params": model.params,
                    "features": list(model.feature_names),
                    "created_at": dt.datetime.now(dt.UTC).isoformat(),
                    "sextant_version": _sextant_version(),
                    **meta,
                }
                (tmp / META_FILE).write_text(json.dumps(full, indent=2, default=_to_json))
                final = model_dir / f"v{number:04d}"
                try:
                    os.rename(tmp, final)
                except OSError as exc:
                    if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                        raise
                    continue  # a concurrent writer took this number; try the next one
                return ModelRecord(model.name, number, final, full)
            raise RuntimeError(f"could not claim a version for {model.name!r} after retries")
        finally:
            if tmp.exists():
                shutil.rmtree(tmp)

    def load(
        self, name: str, version: int | Literal["latest"] = "latest"
    ) -> tuple[SignalModel, dict]:
        """The model and its meta for ``name`` at ``version`` (an int or ``"latest"``)."""
        path = self._version_dir(name, version)
        meta = json.loads((path / META_FILE).read_text())
        return load_saved_model(path), meta

    def path(self, name: str, version: int | Literal["latest"] = "latest") -> Path:
        """Directory of a saved version (what ``load_saved_model`` and the SignalActor read)."""
        return self._version_dir(name, version)

    def meta(self, name: str, version: int | Literal["latest"] = "latest") -> dict[str, Any]:
        """What was recorded about a saved version, without loading the model."""
        return json.loads((self._version_dir(name, version) / META_FILE).read_text())

    def trained_universe(self, names: list[str], versions: Mapping[str, int] | None = None) -> list[str]:
        """The symbols ``names`` were all trained on, at ``versions`` (default: the newest).
        Models fitted on different universes have no universe in common to default to: refused."""
        if not names:
            raise UniverseError("no models named")
        universes: dict[str, tuple[str, ...]] = {}
        for name in names:
            meta = self.meta(name, versions[name] if versions else "latest")
            if not meta.get("universe"):
                raise UniverseError(f"model {name!r} v{meta['version']:04d} under {self.root} records no training "
                                    "universe (saved by an older Sextant)")
            universes[name] = tuple(meta["universe"])
        if len(set(universes.values())) > 1:
            listed = "; ".join(f"{n}: {', '.join(u)}" for n, u in universes.items())
            raise UniverseError(f"the models under {self.root} were trained on different universes ({listed})")
        return list(next(iter(universes.values())))

    def names(self) -> list[str]:
        """Model names with at least one saved version, sorted."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and self._versions_in(p))

    def versions(self, name: str) -> list[int]:
        """Saved version numbers of ``name``, ascending (empty if the name is unknown)."""
        check_name(name, "model name")
        return sorted(self._versions_in(self.root / name))

    def latest(self, name: str) -> int:
        """The highest saved version of ``name``."""
        found = self.versions(name)
        if not found:
            raise ModelNotFoundError(f"no versions of model {name!r} under {self.root}")
        return found[-1]

    def _version_dir(self, name: str, version: int | Literal["latest"]) -> Path:
        check_name(name, "model name")
        if version == "latest":
            version = self.latest(name)
        elif not isinstance(version, int) or isinstance(version, bool):
            raise ValueError(f"version must be an int or 'latest', got {version!r}")
        path = self.root / name / f"v{version:04d}"
        if not (path / META_FILE).is_file():
            raise ModelNotFoundError(
                f"model {name!r} has no version {version}; available: {self.versions(name)}"
            )
        return path

    @staticmethod
    def _versions_in(model_dir: Path) -> list[int]:
        if not model_dir.is_dir():
            return []
        return [
            int(m.group(1))
            for p in model_dir.iterdir()
            if (m := _VERSION_DIR.fullmatch(p.name)) and (p / META_FILE).is_file()
        ]


def data_hash(*arrays: np.ndarray) -> str:
    """sha256 over each array's dtype, shape and bytes: a fingerprint of the training data.

    Dtype and shape are hashed too, so the same bytes viewed as a different dtype or shape
    hash differently. Object arrays are refused because their bytes are pointers.
    """
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        if a.dtype.hasobject:
            raise ValueError("data_hash cannot hash object arrays (their bytes are pointers)")
        h.update(f"{a.dtype.str}|{a.shape}|".encode())
        h.update(a.data)
    return h.hexdigest()


def _sextant_version() -> str:
    try:
        return version("sextant")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "unknown"


def _to_json(value: Any) -> Any:
    """JSON fallback for the non-JSON types that metrics and windows usually carry."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    raise TypeError(f"meta value of type {type(value).__name__} is not JSON-serialisable")
