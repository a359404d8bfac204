"""What Apptainer's Docker/OCI conversion puts into an image, computed from the image config.

Pure: the verified config bytes, the reference, digests, architecture, build time and regpeek's version
come in; out come the ``/.singularity.d`` tree and the other paths Apptainer creates (as tar-like
:class:`TreeEntry` values), the definition file, and the SIF's JSON data objects. Nothing here reads
files or the clock. :mod:`regpeek.disk.apptainer` appends the tree to a tar stream and
:mod:`regpeek.disk.sif` writes the SIF.

Follows current Apptainer (apptainer/apptainer at commit 917d665, v1.5.3+312, August 2026):

- ``internal/pkg/build/sources/conveyorPacker_oci.go``: ``insertRunScript`` (OCI_ENTRYPOINT/OCI_CMD,
  the eval and the SINGULARITY_NO_EVAL paths), ``insertEnv`` (``10-docker2singularity.sh``: a
  variable keeps a value the environment already gives it, except PATH; names that are not shell
  identifiers are skipped), ``insertOCILabels``, ``insertOCIConfig`` (``oci-config.json`` is the
  config's ``config`` member as go-containerregistry's ``v1.Config`` re-encodes it).
- ``base_environment.go`` and the ``*.sh`` files beside it: the directories (created only when absent),
  the symlinks (``/singularity`` and the ``/.run``-style ones), ``/etc/hosts`` and ``/etc/resolv.conf``
  emptied to mode 0644, the action scripts and the base ``env/`` scripts.
- ``internal/pkg/build/metadata.go``: ``/.singularity.d/Singularity`` (the definition), the build
  labels merged into ``labels.json`` (``org.opencontainers.image.base.name``/``base.digest`` record
  the source), and the ``inspect-metadata.json`` object (what ``apptainer inspect --all`` reports).
- ``internal/pkg/build/apps/apps.go``: an empty ``env/94-appsbase.sh`` (no SCIF apps).
- ``pkg/build/types/definition.go``: the definition's text (``bootstrap: docker`` / ``from: ...``).

The scripts are regpeek's own text with Apptainer's behaviour (apptainer/apptainer is BSD-3-Clause);
their observable interface (variable names, sourcing order, quoting) is Apptainer's. Where regpeek
differs on purpose: the definition's ``from:`` pins the image manifest digest (``name@sha256:...``:
Apptainer's containers/image refuses ``name:tag@digest``), times are UTC and passed in, and
``org.label-schema.usage.regpeek.version`` replaces ``org.label-schema.usage.apptainer.version``.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from regpeek.errors import UnsupportedError
from regpeek.formats.manifest import parse_json_object

__all__ = [
    "INSPECT_METADATA_JSON",
    "OCI_CONFIG_JSON",
    "Existing",
    "Policy",
    "SifMetadata",
    "TreeEntry",
    "TreeMerge",
    "apply_policies",
    "build_labels",
    "container_config",
    "definition",
    "env_script",
    "go_json",
    "held_paths",
    "inspect_metadata",
    "labels_json",
    "merge_tree",
    "oci_config_json",
    "runscript",
    "sif_metadata",
    "watched_paths",
]

OCI_CONFIG_JSON = "oci-config.json"  # pkg/image/sif.go SIFDescOCIConfigJSON
INSPECT_METADATA_JSON = "inspect-metadata.json"  # SIFDescInspectMetadataJSON
SINGULARITY_D = ".singularity.d"


# ---------------------------------------------------------------- Go's encoding/json, as Apptainer writes it

_GO_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
_GO_ESCAPE_RE = re.compile("[<>&\u2028\u2029]")


def go_json(value: Any, *, indent: str | None = None) -> bytes:
    """JSON as Go's ``json.Marshal`` (or ``MarshalIndent(v, "", indent)``) writes it.

    Dict order is kept (callers sort maps, as Go does, and give structs in field order); ``<``, ``>``,
    ``&``, U+2028 and U+2029 are escaped as Go escapes them; other text stays UTF-8.
    """
    if indent is None:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    else:
        text = json.dumps(value, ensure_ascii=False, indent=indent, separators=(",", ": "))
    return _GO_ESCAPE_RE.sub(lambda match: _GO_ESCAPES[match.group()], text).encode()


# ---------------------------------------------------------------- the config's "config" member, as Go decodes it

# go-containerregistry pkg/v1/config.go ``Config``: JSON names in field order, and their kinds.
_CONFIG_FIELDS: tuple[tuple[str, str], ...] = (
    ("AttachStderr", "bool"),
    ("AttachStdin", "bool"),
    ("AttachStdout", "bool"),
    ("Cmd", "strings"),
    ("Healthcheck", "health"),
    ("Domainname", "string"),
    ("Entrypoint", "strings"),
    ("Env", "strings"),
    ("Hostname", "string"),
    ("Image", "string"),
    ("Labels", "labels"),
    ("OnBuild", "strings"),
    ("OpenStdin", "bool"),
    ("StdinOnce", "bool"),
    ("Tty", "bool"),
    ("User", "string"),
    ("Volumes", "set"),
    ("WorkingDir", "string"),
    ("ExposedPorts", "set"),
    ("ArgsEscaped", "bool"),
    ("NetworkDisabled", "bool"),
    ("MacAddress", "string"),
    ("StopSignal", "string"),
    ("Shell", "strings"),
)
_HEALTH_FIELDS = (
    ("Test", "strings"),
    ("Interval", "int"),
    ("Timeout", "int"),
    ("StartPeriod", "int"),
    ("Retries", "int"),
)


def _decode_value(kind: str, value: Any) -> Any:
    """A JSON value as Go would hold it in a field of ``kind``, or None where Go would refuse it."""
    if kind == "bool":
        return value if isinstance(value, bool) else None
    if kind == "string":
        return value if isinstance(value, str) else None
    if kind == "int":
        return value if isinstance(value, int) and not isinstance(value, bool) else None
    if kind == "strings":
        if isinstance(value, list) and all(item is None or isinstance(item, str) for item in value):
            return [item or "" for item in value]
        return None
    if kind in ("labels", "set"):
        if not isinstance(value, dict):
            return None
        if kind == "labels":
            if not all(item is None or isinstance(item, str) for item in value.values()):
                return None
            return {key: value[key] or "" for key in sorted(value)}
        if not all(item is None or isinstance(item, dict) for item in value.values()):
            return None
        return {key: {} for key in sorted(value)}
    if kind == "health":
        return _decode_struct(_HEALTH_FIELDS, value) if isinstance(value, dict) else None
    raise AssertionError(kind)


def _decode_struct(fields: Sequence[tuple[str, str]], document: Mapping[str, Any]) -> dict[str, Any]:
    """Go's struct decoding: keys match field names exactly, else case-insensitively; the last key wins.

    Values of the wrong type are dropped (Go would fail the whole decode, and Apptainer the build);
    empty values are left out, as the ``omitempty`` tags leave them out when encoding.
    """
    by_name = {name: (name, kind) for name, kind in fields}
    by_fold = {name.casefold(): (name, kind) for name, kind in fields}
    values: dict[str, Any] = {}
    for key, value in document.items():
        target = by_name.get(key) or by_fold.get(key.casefold())
        if target is None:
            continue
        name, kind = target
        decoded = _decode_value(kind, value)
        if decoded is None:
            values.pop(name, None)
        else:
            values[name] = decoded
    return {
        name: values[name]
        for name, kind in fields
        if name in values and (values[name] or kind == "health")  # omitempty; a present pointer stays
    }


def container_config(config: bytes) -> dict[str, Any]:
    """The image config's ``config`` member as Apptainer holds it (a ``v1.Config``), empty fields left out.

    ``config`` is the image config blob as served (or synthesized for schema1).
    """
    document = parse_json_object("config", config)
    inner = document.get("config")
    for key, value in document.items():  # Go matches "Config", "CONFIG"... too; the last one wins
        if key.casefold() == "config":
            inner = value
    return _decode_struct(_CONFIG_FIELDS, inner) if isinstance(inner, dict) else {}


def oci_config_json(config: bytes) -> bytes:
    """The ``oci-config.json`` object Apptainer stores: ``json.Marshal`` of the ``v1.Config``.

    Apptainer's OCI bundle code (``pkg/ocibundle/sif``) decodes it as an OCI ``ImageConfig`` to take
    Entrypoint, Cmd, Env, WorkingDir and Volumes; the full config would not decode there.
    """
    return go_json(container_config(config))


# ---------------------------------------------------------------- shell text


def _escape(text: str) -> str:
    """``shell.Escape``: backslash, double quote, backtick and ``$`` escaped for a double-quoted string."""
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("`", "\\`").replace("$", "\\$")


def _single_quote_escape(text: str) -> str:
    """``shell.EscapeSingleQuotes``: each ``'`` becomes ``'"'"'`` (for text inside single quotes)."""
    return text.replace("'", "'\"'\"'")


def _args_quoted(args: Sequence[str]) -> str:
    """``shell.ArgsQuoted``: each argument double-quoted and escaped, joined by spaces."""
    return " ".join(f'"{_escape(arg)}"' for arg in args)


_NAME_RE = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


def env_script(env: Sequence[str]) -> bytes:
    """``/.singularity.d/env/10-docker2singularity.sh`` for the image's ``Env`` list.

    ``NAME=value`` becomes ``export NAME="${NAME:-"value"}"`` (a value the environment already holds is
    kept), ``PATH=value`` becomes ``export PATH="value"``, a bare ``NAME`` becomes
    ``export NAME="${NAME:-}"``; the value is escaped for double quotes. Entries whose name is not a
    shell identifier are skipped, as Apptainer skips them.
    """
    lines = ["#!/bin/sh\n"]
    for element in env:
        name, has_value, value = element.partition("=")
        if not _NAME_RE.fullmatch(name):
            continue
        if not has_value:
            lines.append(f'export {name}="${{{name}:-}}"\n')
        elif name == "PATH":
            lines.append(f'export {name}="{_escape(value)}"\n')
        else:
            lines.append(f'export {name}="${{{name}:-"{_escape(value)}"}}"\n')
    return "".join(lines).encode()


def _prepend(args: Sequence[str], indent: str) -> str:
    """Shell lines putting ``args`` in front of ``"$@"``, last first, so that they end up in order."""
    return "".join(f"{indent}set -- '{_single_quote_escape(arg)}' \"$@\"\n" for arg in reversed(args))


def runscript(entrypoint: Sequence[str] | None, cmd: Sequence[str] | None) -> bytes:
    """``/.singularity.d/runscript`` for an image's Entrypoint and Cmd, behaving as Apptainer's.

    By default (Apptainer's "eval" behaviour) ENTRYPOINT and either the arguments or CMD are joined into
    one string, each word double-quoted, and evaluated with ``eval "set ..."``: arguments replace CMD,
    and shell syntax in them (``$VAR``, backticks) is expanded once more. With ``SINGULARITY_NO_EVAL``
    set (``apptainer run --no-eval``) the words are passed untouched: ENTRYPOINT, then the arguments or
    else CMD.
    """
    entrypoint = list(entrypoint or [])
    cmd = list(cmd or [])
    out = ["#!/bin/sh\n"]
    out.append(f"OCI_ENTRYPOINT='{_single_quote_escape(_args_quoted(entrypoint))}'\n")
    out.append(f"OCI_CMD='{_single_quote_escape(_args_quoted(cmd))}'\n")
    out.append(
        "\n"
        "# SINGULARITY_NO_EVAL set: run ENTRYPOINT, then the arguments or else CMD, each word as it is.\n"
        'if [ -n "$SINGULARITY_NO_EVAL" ]; then\n'
        '    if [ -z "$OCI_CMD" ] && [ -n "$OCI_ENTRYPOINT" ]; then\n'
    )
    out.append(_prepend(entrypoint, "        "))
    out.append('        exec "$@"\n    fi\n')
    out.append('    if [ -n "$OCI_CMD" ] && [ -z "$OCI_ENTRYPOINT" ]; then\n')
    if cmd:
        out.append("        if [ $# -eq 0 ]; then\n")
        out.append(_prepend(cmd, "            "))
        out.append("        fi\n")
    out.append('        exec "$@"\n    fi\n')
    if entrypoint:
        out.append("    if [ $# -gt 0 ]; then\n")
        out.append(_prepend(entrypoint, "        "))
        out.append("    else\n")
        out.append(_prepend(cmd, "        "))
        out.append(_prepend(entrypoint, "        "))
        out.append("    fi\n")
    elif cmd:
        out.append("    if [ $# -eq 0 ]; then\n")
        out.append(_prepend(cmd, "        "))
        out.append("    fi\n")
    out.append(
        '    exec "$@"\n'
        "fi\n"
        "\n"
        "# Default: ENTRYPOINT and the arguments (or else CMD), each word double-quoted, evaluated by the\n"
        "# shell, which sets the words to run.\n"
        'CMDLINE_ARGS=""\n'
        'for arg in "$@"; do\n'
        '    CMDLINE_ARGS="${CMDLINE_ARGS} \\"$arg\\""\n'
        "done\n"
        "if [ $# -gt 0 ]; then\n"
        '    SINGULARITY_OCI_RUN="${OCI_ENTRYPOINT} ${CMDLINE_ARGS}"\n'
        "else\n"
        '    SINGULARITY_OCI_RUN="${OCI_ENTRYPOINT} ${OCI_CMD}"\n'
        "fi\n"
        'eval "set ${SINGULARITY_OCI_RUN}"\n'
        'exec "$@"\n'
    )
    return "".join(out).encode()


_SOURCE_ENV = 'for script in /.singularity.d/env/*.sh; do\n    if [ -f "$script" ]; then\n        . "$script"\n    fi\ndone\n'

# The files Apptainer's base_environment.go writes, with the same behaviour.
_ACTION_EXEC = f'#!/bin/sh\n{_SOURCE_ENV}\nexec "$@"\n'
_ACTION_RUN = f"""#!/bin/sh
{_SOURCE_ENV}
if test -n "${{SINGULARITY_APPNAME:-}}"; then
    if test -x "/scif/apps/${{SINGULARITY_APPNAME:-}}/scif/runscript"; then
        exec "/scif/apps/${{SINGULARITY_APPNAME:-}}/scif/runscript" "$@"
    elif test -x "/scif/apps/singularity/scif/runscript"; then
        exec "/scif/apps/singularity/scif/runscript" "$@"
    fi
    echo "No Apptainer runscript for contained app: ${{SINGULARITY_APPNAME:-}}"
    exit 1
elif test -x "/.singularity.d/runscript"; then
    exec "/.singularity.d/runscript" "$@"
fi
echo "No Apptainer runscript found, executing /bin/sh"
exec /bin/sh "$@"
"""
_ACTION_SHELL = f"""#!/bin/sh
{_SOURCE_ENV}
if test -n "$SINGULARITY_SHELL" -a -x "$SINGULARITY_SHELL"; then
    exec $SINGULARITY_SHELL "$@"
    echo "ERROR: Failed running shell as defined by '\\$SINGULARITY_SHELL'" 1>&2
    exit 1
elif test -x /bin/bash; then
    SHELL=/bin/bash
    PS1="Apptainer $APPTAINER_NAME:\\\\w> "
    export SHELL PS1
    exec /bin/bash --norc "$@"
elif test -x /bin/sh; then
    SHELL=/bin/sh
    export SHELL
    exec /bin/sh "$@"
fi
echo "ERROR: /bin/sh does not exist in container" 1>&2
exit 1
"""
_ACTION_START = f"""#!/bin/sh
# tell PID 1 (the instance's init) to carry on
kill -CONT 1

{_SOURCE_ENV}
if test -x "/.singularity.d/startscript"; then
    exec "/.singularity.d/startscript"
fi
"""
_ACTION_TEST = f"""#!/bin/sh
{_SOURCE_ENV}
if test -n "${{SINGULARITY_APPNAME:-}}"; then
    if test -x "/scif/apps/${{SINGULARITY_APPNAME:-}}/scif/test"; then
        exec "/scif/apps/${{SINGULARITY_APPNAME:-}}/scif/test" "$@"
    elif test -x "/scif/apps/singularity/scif/test"; then
        exec "/scif/apps/singularity/scif/test" "$@"
    fi
    echo "No tests for contained app: ${{SINGULARITY_APPNAME:-}}"
    exit 1
elif test -x "/.singularity.d/test"; then
    exec "/.singularity.d/test" "$@"
fi
echo "No test found in container, executing /bin/sh -c true"
exec /bin/sh -c true
"""
_ENV_BASE = "#!/bin/sh\n"
_ENV_ENVIRONMENT = "#!/bin/sh\n# Custom environment shell code should follow\n"
_ENV_APPS = """#!/bin/sh
# The environment of the SCIF app chosen with --app (an image converted from Docker/OCI has none).
if test -n "${SINGULARITY_APPNAME:-}"; then
    export SINGULARITY_APPNAME
    if test -d "/scif/apps/${SINGULARITY_APPNAME:-}/"; then
        SCIF_APPS="/scif/apps"
        SCIF_APPROOT="/scif/apps/${SINGULARITY_APPNAME:-}"
        export SCIF_APPROOT SCIF_APPS
        PATH="/scif/apps/${SINGULARITY_APPNAME:-}:/scif/apps/singularity:$PATH"
        if test -d "/scif/apps/${SINGULARITY_APPNAME:-}/bin"; then
            PATH="/scif/apps/${SINGULARITY_APPNAME:-}/bin:$PATH"
        elif test -d "/scif/apps/singularity/bin"; then
            PATH="/scif/apps/singularity/bin:$PATH"
        fi
        if test -d "/scif/apps/${SINGULARITY_APPNAME:-}/lib"; then
            LD_LIBRARY_PATH="/scif/apps/${SINGULARITY_APPNAME:-}/lib:$LD_LIBRARY_PATH"
            export LD_LIBRARY_PATH
        elif test -d "/scif/apps/singularity/lib"; then
            LD_LIBRARY_PATH="/scif/apps/singularity/lib:$LD_LIBRARY_PATH"
            export LD_LIBRARY_PATH
        fi
        if [ -f "/scif/apps/${SINGULARITY_APPNAME:-}/scif/env/01-base.sh" ]; then
            . "/scif/apps/${SINGULARITY_APPNAME:-}/scif/env/01-base.sh"
        elif [ -f "/scif/apps/singularity/scif/env/01-base.sh" ]; then
            . "/scif/apps/singularity/scif/env/01-base.sh" "$@"
        fi
        if [ -f "/scif/apps/${SINGULARITY_APPNAME:-}/scif/env/90-environment.sh" ]; then
            . "/scif/apps/${SINGULARITY_APPNAME:-}/scif/env/90-environment.sh"
        elif [ -f "/scif/apps/singularity/scif/env/90-environment.sh" ]; then
            . "/scif/apps/singularity/scif/env/90-environment.sh" "$@"
        fi
        export PATH
    else
        echo "Could not locate the container application: ${SINGULARITY_APPNAME}"
        exit 1
    fi
fi
"""
_ENV_99_BASE = """#!/bin/sh
if [ -z "${LD_LIBRARY_PATH:-}" ]; then
    LD_LIBRARY_PATH="/.singularity.d/libs"
else
    LD_LIBRARY_PATH="$LD_LIBRARY_PATH:/.singularity.d/libs"
fi
if [ -z "${PS1:-}" ]; then
    PS1="Apptainer> "
fi
export LD_LIBRARY_PATH PS1
"""
_ENV_RUNTIMEVARS = """#!/bin/sh
# PATH as asked with apptainer's --env PREPEND_PATH / APPEND_PATH / PATH
if [ -n "${SING_USER_DEFINED_PREPEND_PATH:-}" ]; then
    PATH="${SING_USER_DEFINED_PREPEND_PATH}:${PATH}"
fi
if [ -n "${SING_USER_DEFINED_APPEND_PATH:-}" ]; then
    PATH="${PATH}:${SING_USER_DEFINED_APPEND_PATH}"
fi
if [ -n "${SING_USER_DEFINED_PATH:-}" ]; then
    PATH="${SING_USER_DEFINED_PATH}"
fi
unset SING_USER_DEFINED_PREPEND_PATH SING_USER_DEFINED_APPEND_PATH SING_USER_DEFINED_PATH
export PATH
"""
_STARTSCRIPT = "#!/bin/sh\n"


# ---------------------------------------------------------------- dates, without the clock


def _civil(days: int) -> tuple[int, int, int]:
    """Days since 1970-01-01 -> (year, month, day) in the proleptic Gregorian calendar."""
    days += 719468
    era = days // 146097
    day_of_era = days - era * 146097
    year_of_era = (day_of_era - day_of_era // 1460 + day_of_era // 36524 - day_of_era // 146096) // 365
    day_of_year = day_of_era - (365 * year_of_era + year_of_era // 4 - year_of_era // 100)
    month_index = (5 * day_of_year + 2) // 153
    day = day_of_year - (153 * month_index + 2) // 5 + 1
    month = month_index + 3 if month_index < 10 else month_index - 9
    return year_of_era + era * 400 + (month <= 2), month, day


_WEEKDAYS = ("Thursday", "Friday", "Saturday", "Sunday", "Monday", "Tuesday", "Wednesday")  # from 1970-01-01
_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


def rfc3339(seconds: int) -> str:
    """Unix seconds as Go's ``time.RFC3339`` in UTC: ``2024-05-01T12:00:00Z``."""
    days, rest = divmod(seconds, 86400)
    year, month, day = _civil(days)
    return f"{year:04d}-{month:02d}-{day:02d}T{rest // 3600:02d}:{rest % 3600 // 60:02d}:{rest % 60:02d}Z"


def build_date(seconds: int) -> str:
    """Apptainer's ``org.label-schema.build-date`` for a UTC time: ``Wednesday_1_May_2024_12:0:0_UTC``."""
    days, rest = divmod(seconds, 86400)
    year, month, day = _civil(days)
    clock = f"{rest // 3600}:{rest % 3600 // 60}:{rest % 60}"
    return f"{_WEEKDAYS[days % 7]}_{day}_{_MONTHS[month - 1]}_{year}_{clock}_UTC"


# ---------------------------------------------------------------- definition, labels, inspect metadata


def definition(source: str, digest: str | None, *, bootstrap: str = "docker") -> bytes:
    """The definition file text, as Apptainer writes one for ``apptainer build out.sif docker://SOURCE``.

    For ``bootstrap: docker``, ``from:`` is ``SOURCE`` without its tag, pinned by ``digest``
    (``name@sha256:...``), so that ``apptainer build new.sif`` of this definition rebuilds the same
    image (containers/image, which Apptainer uses, refuses a reference with both a tag and a digest).
    Other bootstraps (``oci`` for a layout: ``from: PATH:NAME``) take ``SOURCE`` as it is.
    """
    target = source
    if digest and bootstrap == "docker":
        name = source.split("@", 1)[0]
        slash = name.rfind("/")
        colon = name.rfind(":")
        if colon > slash:  # a tag (a port's colon comes before the last slash)
            name = name[:colon]
        target = f"{name}@{digest}"
    if "\n" in target or "\n" in bootstrap:
        raise ValueError("definition header values are single lines")
    return f"bootstrap: {bootstrap}\nfrom: {target}\n\n".encode()


def build_labels(
    image_labels: Mapping[str, str],
    *,
    bootstrap: str,
    source: str,
    base_name: str | None,
    base_digest: str | None,
    architecture: str,
    variant: str,
    created: int,
    tool_version: str,
) -> dict[str, str]:
    """``labels.json``: the image's labels, then the build labels Apptainer adds (``addBuildLabels``)."""
    labels = dict(image_labels)
    labels["org.label-schema.schema-version"] = "1.0"
    labels["org.opencontainers.image.created"] = rfc3339(created)
    labels["org.label-schema.build-date"] = build_date(created)
    labels["org.label-schema.usage.regpeek.version"] = tool_version
    labels["org.label-schema.usage.singularity.deffile.bootstrap"] = bootstrap
    labels["org.label-schema.usage.singularity.deffile.from"] = source
    if base_name and base_digest:
        labels["org.opencontainers.image.base.name"] = base_name
        labels["org.opencontainers.image.base.digest"] = base_digest
    labels["org.opencontainers.image.architecture"] = architecture
    if variant:
        labels["org.opencontainers.image.variant"] = variant
    labels["org.label-schema.build-arch"] = architecture
    return {key: labels[key] for key in sorted(labels)}


def labels_json(labels: Mapping[str, str]) -> bytes:
    """``json.MarshalIndent(labels, "", "\\t")``, keys sorted, as Apptainer writes ``labels.json``."""
    return go_json({key: labels[key] for key in sorted(labels)}, indent="\t")


def inspect_metadata(
    *,
    environment: Mapping[str, bytes],
    labels: Mapping[str, str],
    runscript: bytes,
    deffile: bytes,
    startscript: bytes,
) -> bytes:
    """``inspect-metadata.json``: what ``apptainer inspect --all`` reads from the tree, as Apptainer stores it.

    Each file's text loses its trailing newlines (the inspect script's ``cat_file`` and ``TrimRight``);
    empty attributes are left out (``omitempty``).
    """

    def text(raw: bytes) -> str:
        return raw.decode("utf-8", "replace").rstrip("\n")

    attributes: dict[str, Any] = {}
    env = {path: text(environment[path]) for path in sorted(environment)}
    if env:
        attributes["environment"] = env
    if labels:
        attributes["labels"] = {key: labels[key] for key in sorted(labels)}
    for key, raw in (("runscript", runscript), ("deffile", deffile), ("startscript", startscript)):
        if text(raw):
            attributes[key] = text(raw)
    return go_json({"data": {"attributes": attributes}, "type": "container"})


# ---------------------------------------------------------------- the tree


class Policy(enum.Enum):
    """How an entry meets what the image already has at its path (``base_environment.go``)."""

    IF_ABSENT = "if-absent"  # directories: created only when nothing is there (even a symlink)
    SYMLINK = "symlink"  # created, or replacing a symlink; a file or directory there is left alone
    REPLACE = "replace"  # files: written, mode set; an existing regular file keeps its owner
    REPLACE_KEEP_MODE = "replace-keep-mode"  # written (os.WriteFile): an existing file keeps owner and mode


@dataclass(frozen=True)
class TreeEntry:
    """One path Apptainer's conversion creates: a tar-like entry (relative path, no leading ``/``)."""

    path: str
    kind: str  # "dir", "file" or "symlink"
    mode: int  # permission bits
    policy: Policy
    content: bytes = b""
    target: str = ""
    uid: int = 0
    gid: int = 0
    mtime: int = 0


@dataclass(frozen=True)
class Existing:
    """What the image has at a path: ``kind`` is "dir", "file" (hard links included), "symlink" or "other"."""

    kind: str
    mode: int = 0o644
    uid: int = 0
    gid: int = 0


def _tree(
    *,
    env10: bytes,
    run: bytes,
    labels: bytes,
    deffile: bytes,
    mtime: int,
) -> list[TreeEntry]:
    def directory(path: str) -> TreeEntry:
        return TreeEntry(path, "dir", 0o755, Policy.IF_ABSENT, mtime=mtime)

    def symlink(path: str, target: str) -> TreeEntry:
        return TreeEntry(path, "symlink", 0o777, Policy.SYMLINK, target=target, mtime=mtime)

    def file(
        path: str, content: bytes | str, mode: int = 0o755, policy: Policy = Policy.REPLACE
    ) -> TreeEntry:
        data = content.encode() if isinstance(content, str) else content
        return TreeEntry(path, "file", mode, policy, content=data, mtime=mtime)

    sd = SINGULARITY_D
    return [
        # makeDirs (MkdirAll makes the parents: .singularity.d and var)
        directory(sd),
        directory(f"{sd}/libs"),
        directory(f"{sd}/actions"),
        directory(f"{sd}/env"),
        directory("dev"),
        directory("proc"),
        directory("root"),
        directory("var"),
        directory("var/tmp"),
        directory("tmp"),
        directory("etc"),
        directory("sys"),
        directory("home"),
        # makeSymlinks
        symlink("singularity", f"{sd}/runscript"),
        symlink(".run", f"{sd}/actions/run"),
        symlink(".exec", f"{sd}/actions/exec"),
        symlink(".test", f"{sd}/actions/test"),
        symlink(".shell", f"{sd}/actions/shell"),
        symlink("environment", f"{sd}/env/90-environment.sh"),
        # makeFiles
        file("etc/hosts", b"", 0o644),
        file("etc/resolv.conf", b"", 0o644),
        file(f"{sd}/actions/exec", _ACTION_EXEC),
        file(f"{sd}/actions/run", _ACTION_RUN),
        file(f"{sd}/actions/shell", _ACTION_SHELL),
        file(f"{sd}/actions/start", _ACTION_START),
        file(f"{sd}/actions/test", _ACTION_TEST),
        file(f"{sd}/env/01-base.sh", _ENV_BASE),
        file(f"{sd}/env/90-environment.sh", _ENV_ENVIRONMENT),
        file(f"{sd}/env/95-apps.sh", _ENV_APPS),
        file(f"{sd}/env/99-base.sh", _ENV_99_BASE),
        file(f"{sd}/env/99-runtimevars.sh", _ENV_RUNTIMEVARS),
        file(f"{sd}/startscript", _STARTSCRIPT),
        # conveyorPacker_oci.go: the OCI runscript replaces the default one; the Docker environment
        file(f"{sd}/runscript", run),
        file(f"{sd}/env/10-docker2singularity.sh", env10),
        # apps.go (no apps: empty), metadata.go (labels with the build labels, the definition)
        file(f"{sd}/env/94-appsbase.sh", b"", policy=Policy.REPLACE_KEEP_MODE),
        file(f"{sd}/labels.json", labels, 0o644, Policy.REPLACE_KEEP_MODE),
        file(f"{sd}/Singularity", deffile, 0o644, Policy.REPLACE_KEEP_MODE),
    ]


def _normal(path: str) -> str:
    return "/".join(part for part in path.split("/") if part not in ("", "."))


def apply_policies(entries: Iterable[TreeEntry], existing: Mapping[str, Existing]) -> list[TreeEntry]:
    """The entries to write over an image that already has ``existing`` paths (relative, no leading ``/``).

    Directories already there (of any kind) are left alone; a symlink replaces a symlink but not a file
    or directory; a file replaces a file or symlink and keeps an existing regular file's owner (and its
    mode, for ``REPLACE_KEEP_MODE``). An entry below something that is not a directory in the image
    (a symlinked ``/var``, say) is skipped: regpeek writes entries into a tar stream and does not
    follow links, where Apptainer would follow them inside the root. A directory where Apptainer
    writes a file, or a non-directory at ``/.singularity.d``, raises :class:`UnsupportedError`, as
    Apptainer's build fails there.
    """
    known = {_normal(path): value for path, value in existing.items()}
    out: list[TreeEntry] = []
    for entry in entries:
        path = _normal(entry.path)
        parts = path.split("/")
        blocked = next(
            (
                "/".join(parts[:i])
                for i in range(1, len(parts))
                if "/".join(parts[:i]) in known and known["/".join(parts[:i])].kind != "dir"
            ),
            None,
        )
        if blocked is not None:
            if blocked == SINGULARITY_D:
                raise UnsupportedError(
                    f"the image has a {known[blocked].kind} at /{blocked}, not a directory"
                )
            continue
        there = known.get(path)
        if there is None:
            out.append(entry)
        elif entry.kind == "dir":
            if path == SINGULARITY_D and there.kind != "dir":
                raise UnsupportedError(f"the image has a {there.kind} at /{path}, not a directory")
        elif entry.kind == "symlink":
            if there.kind == "symlink":
                out.append(entry)
        elif there.kind == "dir":
            raise UnsupportedError(f"the image has a directory at /{path}, where Apptainer writes a file")
        elif there.kind == "file":
            mode = there.mode & 0o7777 if entry.policy is Policy.REPLACE_KEEP_MODE else entry.mode
            out.append(replace(entry, uid=there.uid, gid=there.gid, mode=mode))
        else:
            out.append(entry)
    return out


def watched_paths(entries: Iterable[TreeEntry]) -> frozenset[str]:
    """The image paths :func:`apply_policies` needs to know about: every entry's path and its ancestors."""
    watched: set[str] = set()
    for entry in entries:
        parts = _normal(entry.path).split("/")
        watched.update("/".join(parts[:i]) for i in range(1, len(parts) + 1))
    return frozenset(watched)


def held_paths(entries: Iterable[TreeEntry]) -> frozenset[str]:
    """Image paths whose entry must be held back until :func:`merge_tree` has decided.

    A tree entry that is not a directory may replace the image's entry at its path, and squashfs
    builders (``tar2sqfs``, ``mksquashfs -tar``) refuse a path given twice: a flattened stream keeps
    the image's entries at these paths aside and writes back only those :func:`merge_tree` keeps.
    """
    return frozenset(_normal(entry.path) for entry in entries if entry.kind != "dir")


@dataclass(frozen=True)
class TreeMerge:
    """The result of :func:`merge_tree`: tree entries to write, and held image paths whose entry stays."""

    write: tuple[TreeEntry, ...]
    keep_image: frozenset[str]


def merge_tree(entries: Iterable[TreeEntry], existing: Mapping[str, Existing]) -> TreeMerge:
    """:func:`apply_policies`, plus which of the image's :func:`held_paths` entries to write back.

    ``existing`` needs only the :func:`watched_paths` the image has. Held image entries whose path no
    tree entry replaces (``/singularity`` as a regular file, say) stay as they are.
    """
    entries = list(entries)
    write = apply_policies(entries, existing)
    known = {_normal(path) for path in existing}
    written = {_normal(entry.path) for entry in write}
    return TreeMerge(tuple(write), frozenset((held_paths(entries) & known) - written))


# ---------------------------------------------------------------- everything at once


@dataclass(frozen=True)
class SifMetadata:
    """What regpeek adds to an image to make Apptainer's SIF of it.

    ``entries`` go into the root filesystem (before :func:`apply_policies` against the image's own
    paths); ``definition`` and ``json_objects`` (name, bytes; sorted by name as Apptainer's assembler
    sorts them) are the SIF data objects before the system partition.
    """

    definition: bytes
    json_objects: tuple[tuple[str, bytes], ...]
    entries: tuple[TreeEntry, ...]
    labels: Mapping[str, str] = field(default_factory=dict)


def sif_metadata(
    config: bytes,
    *,
    source: str,
    digest: str,
    resolved_digest: str | None = None,
    architecture: str,
    variant: str = "",
    created: int,
    tool_version: str,
    bootstrap: str = "docker",
) -> SifMetadata:
    """Everything Apptainer's Docker/OCI conversion adds for an image, in one call.

    ``config``: the image config bytes as served and verified (synthesized for schema1).
    ``source``: the normalised reference the user asked for, e.g. ``docker.io/library/alpine:3.20``
    (it becomes ``org.opencontainers.image.base.name``). ``digest``: the image manifest's digest,
    pinned in the definition's ``from:``. ``resolved_digest``: what the reference resolved to (the
    index digest for a multi-platform image; default ``digest``), recorded as
    ``org.opencontainers.image.base.digest`` as Apptainer records it. ``architecture``/``variant``: the
    image's platform (``arm64``, ``arm``/``v7``). ``created``: the build time, Unix seconds (labels and
    the mtime of every entry).
    """
    inner = container_config(config)
    deffile = definition(source, digest, bootstrap=bootstrap)
    from_value = deffile.decode().split("\n")[1].removeprefix("from: ")
    labels = build_labels(
        inner.get("Labels", {}),
        bootstrap=bootstrap,
        source=from_value,
        base_name=source,
        base_digest=resolved_digest or digest,
        architecture=architecture,
        variant=variant,
        created=created,
        tool_version=tool_version,
    )
    env10 = env_script(inner.get("Env", []))
    run = runscript(inner.get("Entrypoint"), inner.get("Cmd"))
    labels_raw = labels_json(labels)
    entries = _tree(env10=env10, run=run, labels=labels_raw, deffile=deffile, mtime=created)
    metadata = inspect_metadata(
        environment={
            f"/{SINGULARITY_D}/env/10-docker2singularity.sh": env10,
            f"/{SINGULARITY_D}/env/90-environment.sh": _ENV_ENVIRONMENT.encode(),
        },
        labels=labels,
        runscript=run,
        deffile=deffile,
        startscript=_STARTSCRIPT.encode(),
    )
    objects = sorted([(INSPECT_METADATA_JSON, metadata), (OCI_CONFIG_JSON, oci_config_json(config))])
    return SifMetadata(definition=deffile, json_objects=tuple(objects), entries=tuple(entries), labels=labels)
