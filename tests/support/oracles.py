"""``skopeo`` as an independent oracle: what does a mature client read from our registry?

All calls run ``skopeo inspect`` with an empty private auth file (no stray host credentials), no
tag listing unless asked, and a bounded timeout; skopeo's scratch files go to a temporary directory
under ``tmp_dir`` (default: the system temp dir).  For a TLS registry pass its CA file: it is copied
into a private ``--cert-dir`` and verification stays on.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

SKOPEO = "skopeo"
TIMEOUT = 60.0


class SkopeoError(RuntimeError):
    """skopeo exited non-zero; the message carries its stderr."""


def skopeo_available() -> bool:
    return shutil.which(SKOPEO) is not None


def _run(
    host: str,
    reference: str,
    *,
    raw: bool,
    config: bool,
    creds: tuple[str, str] | None,
    ca_file: Path | None,
    tags: bool,
    override_os: str | None,
    override_arch: str | None,
    override_variant: str | None,
    tmp_dir: Path | None,
) -> bytes:
    with tempfile.TemporaryDirectory(prefix="regpeek-skopeo-", dir=tmp_dir) as tmp:
        authfile = Path(tmp) / "auth.json"
        authfile.write_text("{}")
        global_args = []
        if override_os:
            global_args += ["--override-os", override_os]
        if override_arch:
            global_args += ["--override-arch", override_arch]
        if override_variant:
            global_args += ["--override-variant", override_variant]
        args = [SKOPEO, *global_args, "inspect", "--authfile", str(authfile), "--retry-times", "0"]
        if raw:
            args.append("--raw")
        if config:
            args.append("--config")
        if not tags and not raw and not config:
            args.append("--no-tags")
        if ca_file is not None:
            cert_dir = Path(tmp) / "certs"
            cert_dir.mkdir()
            shutil.copyfile(ca_file, cert_dir / "ca.crt")
            args += ["--cert-dir", str(cert_dir), "--tls-verify=true"]
        else:
            args.append("--tls-verify=false")
        if creds is not None:
            args += ["--creds", f"{creds[0]}:{creds[1]}"]
        args.append(f"docker://{host}/{reference}")
        env = {**os.environ, "TMPDIR": tmp, "XDG_RUNTIME_DIR": tmp, "REGISTRY_AUTH_FILE": str(authfile)}
        result = subprocess.run(args, capture_output=True, timeout=TIMEOUT, check=False, cwd=tmp, env=env)
    if result.returncode != 0:
        raise SkopeoError(
            f"{' '.join(args)} failed ({result.returncode}): {result.stderr.decode(errors='replace')}"
        )
    return result.stdout


def skopeo_inspect(
    host: str,
    reference: str,
    *,
    creds: tuple[str, str] | None = None,
    ca_file: Path | None = None,
    tags: bool = False,
    override_os: str | None = None,
    override_arch: str | None = None,
    override_variant: str | None = None,
    tmp_dir: Path | None = None,
) -> dict[str, Any]:
    """``skopeo inspect docker://HOST/REFERENCE``: parsed JSON (Digest, Architecture, Env, Labels...).

    ``reference`` is ``repo:tag`` or ``repo@digest``.  For an index skopeo resolves the platform
    (``override_*`` choose it) but reports the index digest as ``Digest``.
    """
    out = _run(
        host,
        reference,
        raw=False,
        config=False,
        creds=creds,
        ca_file=ca_file,
        tags=tags,
        override_os=override_os,
        override_arch=override_arch,
        override_variant=override_variant,
        tmp_dir=tmp_dir,
    )
    result: dict[str, Any] = json.loads(out)
    return result


def skopeo_raw_manifest(
    host: str,
    reference: str,
    *,
    creds: tuple[str, str] | None = None,
    ca_file: Path | None = None,
    tmp_dir: Path | None = None,
) -> bytes:
    """``skopeo inspect --raw``: the manifest bytes exactly as the registry served them."""
    return _run(
        host,
        reference,
        raw=True,
        config=False,
        creds=creds,
        ca_file=ca_file,
        tags=False,
        override_os=None,
        override_arch=None,
        override_variant=None,
        tmp_dir=tmp_dir,
    )


def skopeo_config(
    host: str,
    reference: str,
    *,
    raw: bool = True,
    creds: tuple[str, str] | None = None,
    ca_file: Path | None = None,
    override_os: str | None = None,
    override_arch: str | None = None,
    override_variant: str | None = None,
    tmp_dir: Path | None = None,
) -> bytes:
    """``skopeo inspect --config [--raw]``: the config blob bytes (raw) or skopeo's OCI rendering."""
    return _run(
        host,
        reference,
        raw=raw,
        config=True,
        creds=creds,
        ca_file=ca_file,
        tags=False,
        override_os=override_os,
        override_arch=override_arch,
        override_variant=override_variant,
        tmp_dir=tmp_dir,
    )


def skopeo_config_json(host: str, reference: str, **options: Any) -> dict[str, Any]:
    """:func:`skopeo_config` parsed as JSON."""
    result: dict[str, Any] = json.loads(skopeo_config(host, reference, **options))
    return result
