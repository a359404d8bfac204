"""Stream one layer of an image into ``tarfile.open(fileobj=..., mode="r|*")`` and list its entries.

    python scripts/examples/list_layer.py [--plain-http] [--platform OS/ARCH] REF [NUMBER]

NUMBER is the layer's position, base first, from 1 (default: the last layer). Nothing is written to
disk and memory stays flat whatever the layer's size: the blob is read from the registry as tarfile
asks for it, verified as it goes (a mismatch raises before the end of the layer is handed over), and
decompressed (gzip, zstd or plain) by ``layer.open(decompress=True)``. Prints ``type size name``
per entry (``d`` directory, ``-`` file, ``l`` symlink, ``h`` hard link, ``?`` other).
"""

from __future__ import annotations

import argparse
import sys
import tarfile

import regpeek
from regpeek.formats.terminal import safe_text

_KINDS = {tarfile.DIRTYPE: "d", tarfile.SYMTYPE: "l", tarfile.LNKTYPE: "h"}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("reference")
    parser.add_argument(
        "number", type=int, nargs="?", default=0, help="layer number from 1 (default: the last)"
    )
    parser.add_argument("--platform", help="platform to choose from an index (default: the host's)")
    parser.add_argument("--plain-http", action="store_true", help="talk HTTP (a local registry)")
    options = parser.parse_args(argv)
    try:
        with regpeek.Client(plain_http=options.plain_http) as client:
            image = client.image(options.reference, platform=options.platform)
            if not 0 <= options.number <= len(image.layers):
                print(f"error: the image has {len(image.layers)} layers", file=sys.stderr)
                return 2
            layer = image.layers[options.number - 1]
            with layer.open(decompress=True) as stream, tarfile.open(fileobj=stream, mode="r|*") as tar:
                for member in tar:
                    kind = "-" if member.isreg() else _KINDS.get(member.type, "?")
                    print(f"{kind} {member.size:>10} {safe_text(member.name)}")
    except regpeek.RegpeekError as error:
        print(f"error: {safe_text(str(error))}", file=sys.stderr)  # registry text: escape controls
        return regpeek.exit_code_for(error)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
