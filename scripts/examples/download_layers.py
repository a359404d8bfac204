"""Download every layer of an image into a directory, each verified, with ``image.layers[i].download()``.

    python scripts/examples/download_layers.py [--plain-http] [--platform OS/ARCH] REF DIR

One file per layer, named by its digest (``sha256-<hex>``), written atomically; a layer already there
(hashed to be sure) is not downloaded again. Prints one line per layer. Exit status: regpeek's exit
codes (``regpeek.exit_code_for``), e.g. 3 when the image is not there, 5 when a layer does not match.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import regpeek
from regpeek.formats.terminal import safe_text


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("reference")
    parser.add_argument("directory", type=Path)
    parser.add_argument("--platform", help="platform to choose from an index (default: the host's)")
    parser.add_argument("--plain-http", action="store_true", help="talk HTTP (a local registry)")
    options = parser.parse_args(argv)
    options.directory.mkdir(parents=True, exist_ok=True)
    try:
        with regpeek.Client(plain_http=options.plain_http) as client:
            image = client.image(options.reference, platform=options.platform)
            print(f"{image.reference}: {image.digest} ({image.platform}), {len(image.layers)} layers")
            for i in range(len(image.layers)):
                layer = image.layers[i]
                path = options.directory / f"{layer.digest.algorithm}-{layer.digest.hex}"
                saved = layer.download(path)
                state = "downloaded" if saved.downloaded else "already there"
                print(f"  {i + 1}: {saved.digest} {saved.size} bytes, {state}: {saved.path}")
    except regpeek.RegpeekError as error:
        print(f"error: {safe_text(str(error))}", file=sys.stderr)  # registry text: escape controls
        return regpeek.exit_code_for(error)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
