#!/usr/bin/env python3
"""Build the English punctuation/casing corpus from openly licensed Debian packages.

Downloads the packages with ``apt-get download`` (no root needed), unpacks them
with ``dpkg-deb -x``, extracts prose paragraphs, cleans them and writes
``train.jsonl`` / ``heldout.jsonl`` split by *whole documents* into --out
(default /work/punct-data).  Only the standard library is used.

    python3 training/punctuation/fetch_data.py --out /work/punct-data
"""

from __future__ import annotations

import argparse
import collections
import gzip
import html
import html.parser
import json
import random
import re
import struct
import subprocess
import unicodedata
import zlib
from collections.abc import Iterator
from pathlib import Path

PACKAGES = {
    # package: licence (see each package's /usr/share/doc/<pkg>/copyright)
    "sword-text-web": "public domain (World English Bible)",
    "python3.11-doc": "PSF-2.0",
    "debian-handbook": "GPL-2+ or CC-BY-SA-3.0",
    "debian-reference-en": "GPL-2+",
    "developers-reference": "GPL-2+",
    "maint-guide": "GPL-2+",
    "debian-faq": "GPL-2+",
    "installation-guide-amd64": "GPL-2+",
    "git-doc": "GPL-2",
    "gnu-standards": "GFDL-1.3+ (no invariant sections)",
    "jargon-text": "public domain",
    "dict-foldoc": "GFDL-1.1+",
    "fortunes": "BSD-4-clause / public domain quotations",
    "fortunes-min": "BSD-4-clause / public domain quotations",
}

SOURCE_PACKAGE = {
    "bible": "sword-text-web",
    "python-doc": "python3.11-doc",
    "debian-reference": "debian-reference-en",
    "installation-guide": "installation-guide-amd64",
    "jargon": "jargon-text",
    "foldoc": "dict-foldoc",
}

# Held-out documents (never trained on).  Keys: source -> predicate on doc id.
HELDOUT = {
    "bible": {"Ruth", "Jas", "Jonah", "Phil", "Tob"},
    "python-doc": {
        "tutorial/controlflow",
        "tutorial/errors",
        "howto/logging",
        "faq/general",
    },
    "debian-handbook": {
        "sect.why-debian",
        "sect.role-of-distributions",
        "sect.foundation-documents",
        "sect.web-browsers",
    },
    "fortunes": {"people#0", "computers#1"},
    "foldoc": {"foldoc#7"},
    "installation-guide": {"ch06s03"},
}

END_RE = re.compile(r"[.?!][\"')\]]*$")
CODEY_RE = re.compile(r"[{}<>=_|\\#@$%^*~`]|\(\)|://|\.\w+\(|--\w|^\s*[-*•]")


def run(cmd: list[str], cwd: Path | None = None) -> None:
    subprocess.run(cmd, cwd=cwd, check=True)


def fetch(debs: Path, root: Path) -> None:
    debs.mkdir(parents=True, exist_ok=True)
    for pkg in PACKAGES:
        if not list(debs.glob(f"{pkg}_*.deb")):
            run(["apt-get", "download", pkg], cwd=debs)
        dest = root / pkg
        if not dest.exists():
            deb = sorted(debs.glob(f"{pkg}_*.deb"))[-1]
            dest.mkdir(parents=True)
            run(["dpkg-deb", "-x", str(deb), str(dest)])


def norm(text: str) -> str:
    text = unicodedata.normalize("NFKC", html.unescape(text))
    text = text.replace("\u2019", "'").replace("\u2018", "'").replace("\u201c", '"').replace("\u201d", '"')
    text = re.sub(r"\s*(\u2014|\u2013| -- | - )\s*", ", ", text)
    text = re.sub(r"\s+", " ", text).strip()
    text = re.sub(r",(\s*,)+", ",", text)
    return text


def good(par: str) -> bool:
    words = par.split()
    if len(words) < 4 or not END_RE.search(par) or CODEY_RE.search(par):
        return False
    alpha = sum(1 for w in words if re.fullmatch(r"[\"'(\[]*[A-Za-z][A-Za-z'\-]*[.,;:?!\"')\]]*", w))
    if alpha / len(words) < 0.85:
        return False
    return not (sum(1 for w in words if w.isupper() and len(w) > 1) / len(words) > 0.3)


class ParaParser(html.parser.HTMLParser):
    """Collect the text of <p>/<dd>/<li> leaf paragraphs, skipping <pre> and navigation."""

    SKIP = frozenset({"pre", "script", "style", "head", "table", "nav"})
    PARA = frozenset({"p", "dd", "blockquote"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.skip = 0
        self.cur: list[str] | None = None
        self.paras: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.SKIP:
            self.skip += 1
        elif tag in self.PARA or (tag == "div" and ("class", "para") in attrs):
            self._flush()
            self.cur = []

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP:
            self.skip = max(0, self.skip - 1)
        elif tag in self.PARA or tag == "div":
            self._flush()

    def handle_data(self, data: str) -> None:
        if self.cur is not None and not self.skip:
            self.cur.append(data)

    def _flush(self) -> None:
        if self.cur:
            self.paras.append("".join(self.cur))
        self.cur = None


def html_paras(path: Path) -> list[str]:
    p = ParaParser()
    p.feed(path.read_text(encoding="utf-8", errors="replace"))
    p.close()
    return p.paras


def html_docs(source: str, base: Path, pattern: str, strip: str = ".html") -> Iterator[tuple[str, str, list[str]]]:
    for f in sorted(base.glob(pattern)):
        rel = str(f.relative_to(base)).removesuffix(strip)
        yield source, rel, html_paras(f)


def bible(root: Path) -> Iterator[tuple[str, str, list[str]]]:
    base = root / "sword-text-web/usr/share/sword/modules/texts/ztext/engWEB2015eb"
    for testament in ("ot", "nt"):
        bzs = (base / f"{testament}.bzs").read_bytes()
        bzz = (base / f"{testament}.bzz").read_bytes()
        for i in range(len(bzs) // 12):
            off, size, _ = struct.unpack("<III", bzs[i * 12 : i * 12 + 12])
            text = zlib.decompress(bzz[off : off + size]).decode("utf-8", "replace")
            text = re.sub(r"<note\b.*?</note>", " ", text, flags=re.S)
            book = re.search(r'osisID="([^".]+)"[^>]*type="book"', text)
            name = book.group(1) if book else f"{testament}{i}"
            text = re.sub(r"<title\b.*?</title>", " ", text, flags=re.S)
            text = re.sub(r"<(p|lg|l)\b[^>]*/?>|</(p|lg|l)>|<div[^>]*type=\"paragraph\"[^>]*/>", "\n", text)
            text = re.sub(r"</?(w|transChange|seg|foreign|q)\b[^>]*>", "", text)
            text = re.sub(r"<[^>]+>", " ", text)
            text = re.sub(r" +([,.;:?!)\u2019\u201d])", r"\1", text)
            paras = [p for p in text.split("\n") if p.strip()]
            # Paragraphs in WEB are long; cut into chunks of ~3 sentences.
            out: list[str] = []
            for p in paras:
                sents = re.split(r"(?<=[.?!]) (?=[\"'(]?[A-Z])|(?<=[.?!][\"')]) (?=[\"'(]?[A-Z])", norm(p))
                out += [" ".join(sents[j : j + 3]) for j in range(0, len(sents), 3)]
            yield "bible", name if name else f"{testament}{i}", out


def foldoc(root: Path) -> Iterator[tuple[str, str, list[str]]]:
    raw = gzip.decompress((root / "dict-foldoc/usr/share/dictd/foldoc.dict.dz").read_bytes()).decode("utf-8", "replace")
    paras: list[str] = []
    for block in re.split(r"\n\s*\n", raw):
        lines = [ln.strip() for ln in block.splitlines() if ln.startswith("   ")]
        if not lines:
            continue
        p = " ".join(lines)
        p = re.sub(r"^<[^>]+>\s*", "", p)
        p = re.sub(r"[{}]", "", p)
        p = re.sub(r"\(https?:[^)]*\)|\(ftp:[^)]*\)", "", p)
        paras.append(p)
    for i in range(0, len(paras), 2000):
        yield "foldoc", f"foldoc#{i // 2000}", paras[i : i + 2000]


def fortunes(root: Path) -> Iterator[tuple[str, str, list[str]]]:
    seen: set[str] = set()
    for pkg in ("fortunes", "fortunes-min"):
        for f in sorted((root / pkg / "usr/share/games/fortunes").glob("*")):
            if f.suffix in (".dat", ".u8") or f.is_dir() or f.name in seen:
                continue
            seen.add(f.name)
            items = []
            for fort in f.read_text(encoding="utf-8", errors="replace").split("\n%\n"):
                body = re.split(r"\n\s*(--|\u2014)\s", fort)[0]
                if re.search(r"^\s{4,}\S", body, re.M) and "\t" not in body:
                    pass
                items.append(" ".join(body.split()))
            for i in range(0, len(items), 300):
                yield "fortunes", f"{f.name}#{i // 300}", items[i : i + 300]


def jargon(root: Path) -> Iterator[tuple[str, str, list[str]]]:
    raw = gzip.decompress((root / "jargon-text/usr/share/doc/jargon-text/jargon.txt.gz").read_bytes()).decode("latin-1")
    paras = [" ".join(b.split()) for b in re.split(r"\n\s*\n", raw)]
    for i in range(0, len(paras), 1000):
        yield "jargon", f"jargon#{i // 1000}", paras[i : i + 1000]


def gnu(root: Path) -> Iterator[tuple[str, str, list[str]]]:
    for name in ("standards", "maintain"):
        raw = gzip.decompress(
            (root / f"gnu-standards/usr/share/doc/gnu-standards/{name}.text.gz").read_bytes()
        ).decode()
        yield "gnu-standards", name, [" ".join(b.split()) for b in re.split(r"\n\s*\n", raw)]


def documents(root: Path) -> Iterator[tuple[str, str, list[str]]]:
    yield from bible(root)
    yield from html_docs("python-doc", root / "python3.11-doc/usr/share/doc/python3.11/html", "**/*.html")
    yield from html_docs("debian-handbook", root / "debian-handbook/usr/share/doc/debian-handbook/html/en-US", "*.html")
    yield from html_docs("debian-reference", root / "debian-reference-en/usr/share/debian-reference", "*.en.html")
    yield from html_docs("developers-reference", root / "developers-reference/usr/share/developers-reference", "*.html")
    yield from html_docs("maint-guide", root / "maint-guide/usr/share/doc/maint-guide/html", "*.en.html")
    yield from html_docs("debian-faq", root / "debian-faq/usr/share/doc/debian/FAQ", "*.en.html")
    yield from html_docs(
        "installation-guide", root / "installation-guide-amd64/usr/share/doc/installation-guide-amd64/en", "*.html"
    )
    yield from html_docs("git-doc", root / "git-doc/usr/share/doc/git-doc", "*.html")
    yield from gnu(root)
    yield from jargon(root)
    yield from foldoc(root)
    yield from fortunes(root)


# The bench/test file (tests/data/punctuation/en_heldout.txt): held-out documents whose licences
# allow redistribution, (source, doc, max words).  Fortunes are left out (mixed copyright).
TEST_FILE = [
    ("bible", "Jonah", 1300),
    ("bible", "Phil", 1000),
    ("python-doc", "tutorial/controlflow", 1500),
    ("python-doc", "tutorial/errors", 1100),
    ("debian-handbook", "sect.foundation-documents", 1400),
    ("debian-handbook", "sect.why-debian", 500),
    ("debian-handbook", "sect.web-browsers", 650),
    ("installation-guide", "ch06s03", 1000),
    ("foldoc", "foldoc#7", 1000),
]


def write_heldout_texts(out: Path) -> None:
    docs = {}
    with (out / "heldout.jsonl").open() as f, (out / "heldout_all.txt").open("w") as all_txt:
        for line in f:
            rec = json.loads(line)
            docs[(rec["src"], rec["doc"])] = rec["paras"]
            all_txt.write("\n".join(rec["paras"]) + "\n")
    test_docs = {(src, doc) for src, doc, _ in TEST_FILE}
    with (out / "dev.txt").open("w") as dev_txt:  # held-out documents outside the test file: for tune.py
        for key, paras in docs.items():
            if key not in test_docs:
                dev_txt.write("\n".join(paras) + "\n")
    with (out / "en_heldout.txt").open("w") as test_txt:
        for src, doc, limit in TEST_FILE:
            n = 0
            for p in docs[(src, doc)]:
                if n >= limit:
                    break
                test_txt.write(p + "\n")
                n += len(p.split())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=Path("/work/punct-data"))
    args = ap.parse_args()
    out: Path = args.out
    fetch(out / "debs", out / "x")
    random.seed(0)
    counts: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0, 0])
    with (out / "train.jsonl").open("w") as tr, (out / "heldout.jsonl").open("w") as ho:
        for source, doc, paras in documents(out / "x"):
            kept = []
            seen: set[str] = set()
            for p in paras:
                p = norm(p)
                if good(p) and p not in seen:
                    seen.add(p)
                    kept.append(p)
            if not kept:
                continue
            held = doc in HELDOUT.get(source, set())
            nwords = sum(len(p.split()) for p in kept)
            counts[source][1 if held else 0] += nwords
            counts[source][2] += 1
            rec = json.dumps({"src": source, "doc": doc, "paras": kept}, ensure_ascii=False)
            (ho if held else tr).write(rec + "\n")
    total = [0, 0]
    print(f"{'source':22} {'train words':>12} {'heldout words':>14} {'docs':>6}")
    for s, (a, b, n) in counts.items():
        total[0] += a
        total[1] += b
        pkg = SOURCE_PACKAGE.get(s, s)
        print(f"{s:22} {a:12d} {b:14d} {n:6d}  {pkg}: {PACKAGES.get(pkg, '')}")
    print(f"{'TOTAL':22} {total[0]:12d} {total[1]:14d}")
    (out / "counts.json").write_text(json.dumps(counts, indent=1))
    write_heldout_texts(out)


if __name__ == "__main__":
    main()
