import json
from argparse import ArgumentParser
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from ai import ocr


class Command(BaseCommand):
    help = "Read the text of image files with Tesseract as the ocr step does; print JSON."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("paths", nargs="+", type=Path)
        parser.add_argument("--lang", default="", help="Tesseract languages, e.g. eng+fra.")
        parser.add_argument("--boxes", action="store_true", help="Include each word's box.")

    def handle(self, *args: object, **options: object) -> None:
        languages = options["lang"] or settings.OCR_LANGUAGES
        for path in options["paths"]:
            if not path.is_file():
                raise CommandError(f"No file {path}.")
            reading = ocr.read(str(path), languages=languages)
            out = {
                "file": str(path),
                "text": reading.text,
                "language": reading.language,
                "confidence": round(reading.confidence, 3),
                "has_text": reading.has_text,
                "rotation": reading.rotation,
            }
            if options["boxes"]:
                out["boxes"] = [word.as_dict() for word in reading.words]
            self.stdout.write(json.dumps(out, ensure_ascii=False))
