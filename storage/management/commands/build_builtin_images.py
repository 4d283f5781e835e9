"""`manage.py build_builtin_images`: build the Tiny Linux template (qcow2) and ISO from Debian packages.

Idempotent: does nothing (in well under a second) when the images in the output directory were built
from the same package versions and boot files; see storage/images/builtin.py.
"""
from __future__ import annotations

import json
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from storage.images import builtin


def _size(n: int) -> str:
    return f"{n / (1 << 20):.1f} MiB"


class Command(BaseCommand):
    help = ("Build the built-in Tiny Linux template (tiny-linux.qcow2) and live ISO (tiny-linux.iso) from Debian "
            "packages, into VAR_DIR/images; nothing to do when they are up to date.")

    def add_arguments(self, parser) -> None:
        parser.add_argument("--out", metavar="DIR", help="output directory (default: VAR_DIR/images)")
        parser.add_argument("--force", action="store_true", help="rebuild even when the images are up to date")
        parser.add_argument("--json", action="store_true", help="print the manifest as JSON")

    def handle(self, *args, **options) -> None:
        out = Path(options["out"]) if options["out"] else Path(settings.VAR_DIR) / "images"
        try:
            result = builtin.build(out, force=options["force"], cache_dir=Path(settings.VAR_DIR) / "cache" / "images")
        except builtin.BuildError as exc:
            raise CommandError(exc.message) from exc
        if options["json"]:
            self.stdout.write(json.dumps(result, indent=2))
            return
        images = ", ".join(f"{image['file']} ({_size(image['physical_size'])})" for image in result["images"].values())
        if result["built"]:
            self.stdout.write(f"build_builtin_images: built {images} in {result['build_seconds']:g} s into {out}")
        else:
            self.stdout.write(f"build_builtin_images: {images} in {out} are up to date")
