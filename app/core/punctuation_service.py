"""Punctuation and casing as a service: bounded text, bounded concurrency, never on the event loop.

Each language's model (app/core/punctuation.py) loads on its first use. A language without a model
gets its text back unchanged (as the Open API's seed does); `languages` names those with one."""

from __future__ import annotations

import asyncio
from pathlib import Path

from app.core.errors import InvalidArgument, Overloaded
from app.core.itn import numbers_as_digits
from app.core.punctuation import MODELS_DIR, Punctuator, available_languages


def base_language(language: str) -> str:
    """'en-IN', 'en_bio', 'EN' -> 'en'."""
    return language.strip().lower().replace("_", "-").split("-")[0]


class PunctuationService:
    def __init__(self, *, max_chars: int, concurrency: int, max_waiting: int, models_dir: Path = MODELS_DIR) -> None:
        self.max_chars = max_chars
        self.max_waiting = max_waiting
        self.languages = tuple(available_languages(models_dir))
        self._models = {lang: Punctuator.for_language(lang, models_dir) for lang in self.languages}
        self._slots = asyncio.Semaphore(concurrency)
        self._waiting = 0

    def has_model(self, language: str) -> bool:
        return base_language(language) in self._models

    async def punctuate(self, text: str, language: str, *, itn: bool = False) -> str:
        """`text` with marks and casing restored (unchanged without a model), then numbers as
        digits if `itn`. The model runs in a thread; at most `concurrency` at once."""
        if len(text) > self.max_chars:
            raise InvalidArgument(
                f"text is {len(text)} characters; at most {self.max_chars} are accepted", param="text"
            )
        code = base_language(language)
        model = self._models.get(code)
        if model is None and not itn:
            return text
        if self._waiting >= self.max_waiting:
            raise Overloaded(f"{self._waiting} punctuation requests are waiting; retry shortly", retry_after=1)
        self._waiting += 1
        try:
            async with self._slots:
                return await asyncio.to_thread(self._run, model, text, code, itn)
        finally:
            self._waiting -= 1

    @staticmethod
    def _run(model: Punctuator | None, text: str, language: str, itn: bool) -> str:
        punctuated = model.punctuate(text) if model is not None else text
        return numbers_as_digits(punctuated, language) if itn else punctuated
