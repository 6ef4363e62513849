"""Pure units of the core: text post-processing, languages, the error wire format, model registry."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from app.core import languages
from app.core.errors import AudioTooLong, Internal, InvalidArgument, NotFound, UnsupportedMedia, from_wire, to_wire
from app.core.models import ModelRegistry, ModelSpec, join_parts, spec_for_folder
from app.core.text import mask_profanity, postprocess, strip_punctuation


def test_strip_punctuation_keeps_inner_apostrophes_and_hyphens() -> None:
    assert strip_punctuation("And so, my fellow Americans: ask not!") == "and so my fellow americans ask not"
    assert strip_punctuation("He wasn't ill-disposed.") == "he wasn't ill-disposed"
    assert strip_punctuation("¿Dónde está?") == "dónde está"


def test_profanity_is_masked_like_google() -> None:
    assert mask_profanity("What the fuck, Shit happens") == "What the f***, S*** happens"
    assert mask_profanity("a classic assessment") == "a classic assessment"
    assert postprocess(" Damn it! ", punctuation=False, profanity_filter=True) == "d*** it"


@pytest.mark.parametrize(
    ("given", "code"),
    [
        ("en", "en"),
        ("en-US", "en"),
        ("EN_gb", "en"),
        ("german", "de"),
        ("zh-CN", "zh"),
        ("auto", None),
        (None, None),
        ("multi", None),
    ],
)
def test_language_normalisation(given: str | None, code: str | None) -> None:
    assert languages.normalize(given) == code


def test_unknown_language_is_invalid() -> None:
    with pytest.raises(InvalidArgument) as caught:
        languages.normalize("xx-YY")
    assert caught.value.param == "language"
    assert languages.english_name("fr") == "french"


@pytest.mark.parametrize(
    "error", [InvalidArgument("bad", param="x"), UnsupportedMedia("nope"), AudioTooLong("long"), NotFound("gone")]
)
def test_errors_cross_the_process_boundary(error: InvalidArgument) -> None:
    back = from_wire(*to_wire(error))
    assert type(back) is type(error) and back.message == error.message and back.param == error.param
    assert isinstance(from_wire("no-such-kind", "m", None), Internal)


def _fake_parts(tmp_path: Path) -> tuple[list[Path], list[Path], str]:
    parts = []
    for i, content in enumerate((b"first half ", b"second half")):
        part = tmp_path / f"model.bin.part{i + 1}"
        part.write_bytes(content)
        parts.append(part)
    extras = []
    for name, text in (("config.json", "{}"), ("tokenizer.json", "{}"), ("vocabulary.txt", "a\nb\n")):
        (tmp_path / name).write_text(text)
        extras.append(tmp_path / name)
    return parts, extras, hashlib.sha256(b"first half second half").hexdigest()


def test_join_parts_checks_the_sha256_and_leaves_no_partial_file(tmp_path: Path) -> None:
    parts, extras, digest = _fake_parts(tmp_path)
    target = tmp_path / "cache" / "m"
    with pytest.raises(InvalidArgument, match="sha256"):
        join_parts(parts, extras, target, "0" * 64)
    assert not (target / "model.bin").exists() and not list(target.glob(".model.bin.*"))
    join_parts(parts, extras, target, digest)
    assert (target / "model.bin").read_bytes() == b"first half second half"
    spec = spec_for_folder("m", target)
    assert spec.multilingual is False
    (target / "model.bin").write_bytes(b"corrupted")
    join_parts(parts, extras, target, digest)  # a damaged cache is joined again
    assert (target / "model.bin").read_bytes() == b"first half second half"


def test_folder_without_tokenizer_is_refused(tmp_path: Path) -> None:
    (tmp_path / "model.bin").write_bytes(b"x")
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(InvalidArgument, match=r"tokenizer\.json"):
        spec_for_folder("mine", tmp_path)


def test_registry_aliases() -> None:
    registry = ModelRegistry(
        {
            "whisper-base": ModelSpec("whisper-base", Path("/b"), True),
            "whisper-tiny.en": ModelSpec("whisper-tiny.en", Path("/t"), False),
        },
        "whisper-base",
    )
    assert registry.resolve("whisper-1").name == "whisper-base"
    assert registry.resolve(None).name == "whisper-base"
    assert registry.resolve("tiny.en").name == "whisper-tiny.en"
    with pytest.raises(NotFound) as caught:
        registry.resolve("gpt-4o-transcribe")
    assert caught.value.param == "model"
    with pytest.raises(InvalidArgument):
        ModelRegistry({}, "whisper-base")
