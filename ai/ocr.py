"""Tesseract OCR: prepare a photo, read its words with boxes, turn it when Tesseract says so."""

import os
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import IO

import PIL.Image
import PIL.ImageOps
import pytesseract

from images.library import budget

# Tesseract's OpenMP threads spin on small machines (a drawn page took 2.4 CPU s with them on
# 2 cores, 0.6 s without): one thread per process, and several worker processes, instead.
os.environ.setdefault("OMP_THREAD_LIMIT", "1")

# Tesseract reads best when letters are 20-30 px high: small images (crops, screenshots, small
# scans) are enlarged; ordinary photos are not, which would cost 2-4 times the time.
SMALL_LONG_SIDE = 1200
TARGET_LONG_SIDE = 1800
MAX_UPSCALE = 3.0
# Gray levels: an image whose darkest and lightest pixels differ less than this holds no text.
MIN_CONTRAST = 24
# Orientation detection needs no fine detail: it runs on a reduced copy, several times faster.
OSD_LONG_SIDE = 1000
# Huge scans cost time without helping: they are reduced to this long side.
MAX_LONG_SIDE = 4000
# Words below this confidence are mostly noise read in textures (grass, grilles, bricks).
MIN_WORD_CONFIDENCE = 30
# An upright read below this mean confidence (clean text reads above 0.85) is retried after
# asking Tesseract which way the text runs.
ROTATE_BELOW_CONFIDENCE = 0.8
# Automatic page segmentation (mode 3): on photos, sparse-text mode 11 reads more noise, slower.
TESSERACT_CONFIG = "--psm 3"

# The commonest words of each language tell which language a text is in.
COMMON_WORDS = {
    "en": "the and of to in is you that it for on are with as this be at was by or from",
    "fr": "le la les et des du de un une est pour dans que qui sur par pas au aux ce",
}
STOPWORDS = {language: frozenset(words.split()) for language, words in COMMON_WORDS.items()}


@dataclass
class Word:
    text: str
    confidence: float
    left: int
    top: int
    width: int
    height: int
    line: tuple[int, int, int]

    def as_dict(self) -> dict:
        return {
            "text": self.text,
            "confidence": round(self.confidence, 3),
            "box": [self.left, self.top, self.width, self.height],
        }


@dataclass
class Reading:
    text: str
    language: str | None
    confidence: float
    words: list[Word] = field(default_factory=list)
    rotation: int = 0
    scale: float = 1.0

    @property
    def has_text(self) -> bool:
        return any(sum(c.isalnum() for c in w.text) >= 2 for w in self.words)


def prepare(image: PIL.Image.Image) -> tuple[PIL.Image.Image, float]:
    """Upright (EXIF), grayscale, and enlarged when small; returns the image and its scale."""
    image = PIL.ImageOps.exif_transpose(image).convert("L")
    long_side = max(image.size)
    scale = 1.0
    if long_side < SMALL_LONG_SIDE:
        scale = min(TARGET_LONG_SIDE / long_side, MAX_UPSCALE)
    elif long_side > MAX_LONG_SIDE:
        scale = MAX_LONG_SIDE / long_side
    if scale != 1.0:
        size = (round(image.width * scale), round(image.height * scale))
        image = image.resize(size, PIL.Image.Resampling.LANCZOS)
    return image, scale


def read(fp: IO[bytes] | str, *, languages: str) -> Reading:
    """OCR an image file: prepared, read upright, and read again turned if Tesseract says so."""
    with PIL.Image.open(fp) as opened:
        long_side = max(opened.size)
        picture = budget.decode(opened, mode="L", long_side=MAX_LONG_SIDE)
        image, scale = prepare(picture)
    # Boxes are mapped back to the file's own pixels, through the reduction on decode too.
    scale *= max(picture.size) / long_side
    low, high = image.getextrema()
    if high - low < MIN_CONTRAST:
        # A blank page or a flat colour: no text to find, and no need to start Tesseract.
        return Reading(text="", language=None, confidence=0.0, scale=scale)
    reading = _read_words(image, languages)
    # Text turned sideways or upside down reads as low-confidence words; a read with no word at
    # all is a picture without text, where orientation detection finds nothing either.
    if reading.words and reading.confidence < ROTATE_BELOW_CONFIDENCE:
        rotation = detect_rotation(image)
        if rotation:
            turned = _read_words(image.rotate(-rotation, expand=True), languages)
            if turned.confidence > reading.confidence:
                turned.rotation = rotation
                reading = turned
    reading.scale = scale
    # Boxes are given in the original image's pixels (before enlarging), turned as read.
    for word in reading.words:
        word.left, word.top = round(word.left / scale), round(word.top / scale)
        word.width, word.height = round(word.width / scale), round(word.height / scale)
    return reading


def detect_rotation(image: PIL.Image.Image) -> int:
    """Degrees clockwise that make the text upright, by Tesseract's orientation detection."""
    small = image.copy()
    small.thumbnail((OSD_LONG_SIDE, OSD_LONG_SIDE))
    try:
        osd = pytesseract.image_to_osd(_for_tesseract(small), output_type=pytesseract.Output.DICT)
    except pytesseract.TesseractError:
        # Too few letters to tell the orientation: keep the image as it is.
        return 0
    return int(osd.get("rotate", 0)) % 360


def _for_tesseract(image: PIL.Image.Image) -> PIL.Image.Image:
    """The image marked to be handed over as BMP.

    pytesseract writes the image to a file for Tesseract in the image's format, PNG when it has
    none (as a converted image has not): PNG compression alone takes about 0.2 s for a 720p
    photo, BMP about 2 ms.
    """
    image.format = "BMP"
    return image


def _read_words(image: PIL.Image.Image, languages: str) -> Reading:
    data = pytesseract.image_to_data(
        _for_tesseract(image),
        lang=languages,
        config=TESSERACT_CONFIG,
        output_type=pytesseract.Output.DICT,
    )
    words = [
        Word(
            text=text.strip(),
            confidence=float(conf) / 100,
            left=data["left"][i],
            top=data["top"][i],
            width=data["width"][i],
            height=data["height"][i],
            line=(data["block_num"][i], data["par_num"][i], data["line_num"][i]),
        )
        for i, (text, conf) in enumerate(zip(data["text"], data["conf"], strict=True))
        if text.strip() and float(conf) >= MIN_WORD_CONFIDENCE
    ]
    text = _lines(words)
    confidence = sum(w.confidence for w in words) / len(words) if words else 0.0
    return Reading(text=text, language=guess_language(text), confidence=confidence, words=words)


def _lines(words: list[Word]) -> str:
    lines: dict[tuple[int, int, int], list[str]] = {}
    for word in words:
        lines.setdefault(word.line, []).append(word.text)
    return "\n".join(" ".join(line) for line in lines.values())


def guess_language(text: str) -> str | None:
    """The ISO 639-1 code whose common words the text uses most, or None when it uses none."""
    tokens = Counter(re.findall(r"[^\W\d_]+", text.lower()))
    scores = {lang: sum(tokens[w] for w in words) for lang, words in STOPWORDS.items()}
    best = max(scores, key=scores.__getitem__)
    return best if scores[best] else None
