"""Apptainer's runtime metadata (``regpeek.formats.apptainer``) and its tar form (``regpeek.disk.apptainer``).

The shell scripts are run, not just read: ``10-docker2singularity.sh`` is sourced by ``sh`` (dash on
Debian) and by bash in an empty environment and must give back the image's environment exactly; the
runscript is run with a fake entrypoint that prints its argv, and must pass the words Apptainer's
runscript passes (``conveyorPacker_oci.go``: the eval path by default, the untouched path with
``SINGULARITY_NO_EVAL``); the action scripts are run against the tree written through a tar.
"""

from __future__ import annotations

import datetime
import io
import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from regpeek.disk.apptainer import append_entries
from regpeek.errors import MalformedError, UnsupportedError
from regpeek.formats import apptainer
from regpeek.formats.apptainer import (
    Existing,
    Policy,
    TreeEntry,
    apply_policies,
    container_config,
    definition,
    env_script,
    go_json,
    inspect_metadata,
    labels_json,
    oci_config_json,
    runscript,
    sif_metadata,
)

SHELLS = ["/bin/sh", "bash"]
ENV = shutil.which("env") or "/usr/bin/env"
DIGEST = "sha256:" + "ab" * 32
INDEX_DIGEST = "sha256:" + "cd" * 32

TRICKY_ENV = {
    "SPACES": "a b  c ",
    "QUOTES": "it's \"double\" and 'single'",
    "DOLLARS": "$HOME ${PATH} $(id) `id` $",
    "BACKSLASHES": "\\ \\\\ end\\",
    "NEWLINES": "line 1\nline 2\n\n",
    "BRACES": '}{} a}b"}"',
    "EMPTY": "",
    "GLOB": "* ? [a]",
    "TILDE": "~/x ~root",
    "BANG": "!! !$",
    "UNICODE": "é ünï ✓",
    "EQUALS": "a=b=c",
    "TABS": "\tx\t",
    "SEMICOLON": "a; exit 3",
}


def config_bytes(inner: dict[str, object], **top: object) -> bytes:
    return json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": inner,
            "rootfs": {"type": "layers", "diff_ids": []},
            **top,
        }
    ).encode()


def source_env(
    script: bytes, shell: str, tmp_path: Path, environment: dict[str, str] | None = None
) -> dict[str, str]:
    """Source the script in ``shell`` with an empty (or given) environment; the exported variables."""
    path = tmp_path / "env.sh"
    path.write_bytes(script)
    out = subprocess.run(
        [ENV, "-i", *(f"{k}={v}" for k, v in (environment or {}).items()), shutil.which(shell) or shell, "-c", f'. "{path}" && {ENV} -0'],
        capture_output=True, check=True, timeout=30,
    ).stdout  # fmt: skip
    variables = dict(item.split("=", 1) for item in out.decode().split("\0") if item)
    for noise in ("PWD", "SHLVL", "_", "OLDPWD"):
        variables.pop(noise, None)
    return variables


# -- the Docker environment ---------------------------------------------------------------------
@pytest.mark.parametrize("shell", SHELLS)
def test_env_script_gives_back_the_image_environment_exactly(shell: str, tmp_path: Path) -> None:
    env = [f"{k}={v}" for k, v in TRICKY_ENV.items()] + ["PATH=/opt/x y/bin:/usr/bin:$PATH"]
    assert source_env(env_script(env), shell, tmp_path) == {
        **TRICKY_ENV,
        "PATH": "/opt/x y/bin:/usr/bin:$PATH",
    }


@pytest.mark.parametrize("shell", SHELLS)
def test_env_script_keeps_what_the_environment_already_sets_except_path(shell: str, tmp_path: Path) -> None:
    script = env_script(["KEPT=image", "EMPTIED=image", "PATH=/image/bin", "BARE", "NEW=image"])
    got = source_env(
        script, shell, tmp_path, {"KEPT": "host", "EMPTIED": "", "PATH": "/host/bin", "BARE": "host"}
    )
    # ${NAME:-"value"}: a set, non-empty value wins; an empty one is replaced; PATH is always the image's
    assert got == {"KEPT": "host", "EMPTIED": "image", "PATH": "/image/bin", "BARE": "host", "NEW": "image"}
    assert source_env(env_script(["BARE"]), shell, tmp_path) == {"BARE": ""}


@pytest.mark.parametrize("shell", SHELLS)
@settings(max_examples=25, deadline=None)
@given(value=st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), max_size=40))
def test_env_script_round_trips_any_value(
    shell: str, value: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    tmp = tmp_path_factory.mktemp("env")
    assert source_env(env_script([f"V={value}"]), shell, tmp) == {"V": value}


def test_env_script_text_and_skipped_names() -> None:
    script = env_script(["PATH=/a:$b", 'A=x"y', "B", "1BAD=x", "A-B=x", "=x", "_ok9=1", ""])
    assert script.decode() == (
        "#!/bin/sh\n"
        'export PATH="/a:\\$b"\n'
        'export A="${A:-"x\\"y"}"\n'
        'export B="${B:-}"\n'
        'export _ok9="${_ok9:-"1"}"\n'
    )


# -- the runscript ------------------------------------------------------------------------------
@pytest.fixture
def fake_entrypoint(tmp_path: Path) -> Path:
    script = tmp_path / "show argv"  # a space in the path, as a program path may have
    script.write_text('#!/bin/sh\nfor word in "$@"; do printf "%s\\0" "$word"; done\n')
    script.chmod(0o755)
    return script


def run(
    script: bytes, args: list[str], tmp_path: Path, *, no_eval: bool = False, shell: str = "/bin/sh"
) -> list[str]:
    path = tmp_path / "runscript"
    path.write_bytes(script)
    environment = {"PATH": "/usr/bin:/bin", "HOME": "/home/someone"}
    if no_eval:
        environment["SINGULARITY_NO_EVAL"] = "1"
    result = subprocess.run(
        [shell, str(path), *args], env=environment, capture_output=True, check=True, timeout=30
    )
    return result.stdout.decode().split("\0")[:-1]


# (entrypoint, cmd, arguments, words the entrypoint program gets) -- EP stands for the fake entrypoint
RUN_CASES = [
    pytest.param(["EP", "fixed arg"], ["c1", "c 2"], [], ["fixed arg", "c1", "c 2"], id="entrypoint+cmd"),
    pytest.param(
        ["EP", "fixed arg"], ["c1", "c 2"], ["x y", "z"], ["fixed arg", "x y", "z"], id="entrypoint+cmd+args"
    ),
    pytest.param(["EP"], None, [], [], id="entrypoint"),
    pytest.param(["EP", "-v"], [], ["a  b", ""], ["-v", "a  b", ""], id="entrypoint+args"),
    pytest.param(None, ["EP", "c 2"], [], ["c 2"], id="cmd"),
    pytest.param(None, ["/bin/false"], ["EP", "a b"], ["a b"], id="cmd-replaced-by-args"),
    pytest.param([], [], ["EP", "q", "r s"], ["q", "r s"], id="neither+args"),
    pytest.param(
        ["EP", 'it\'s "q" $X `y` \\z'], ["c'1"], [], ['it\'s "q" $X `y` \\z', "c'1"], id="quoting-in-config"
    ),
]


@pytest.mark.parametrize("no_eval", [False, True], ids=["eval", "no-eval"])
@pytest.mark.parametrize(("entrypoint", "cmd", "args", "expected"), RUN_CASES)
def test_runscript_passes_words_as_apptainer_does(
    entrypoint: list[str] | None, cmd: list[str] | None, args: list[str], expected: list[str],
    no_eval: bool, fake_entrypoint: Path, tmp_path: Path,
) -> None:  # fmt: skip
    def resolve(words: list[str] | None) -> list[str] | None:
        return None if words is None else [str(fake_entrypoint) if w == "EP" else w for w in words]

    script = runscript(resolve(entrypoint), resolve(cmd))
    assert run(script, resolve(args) or [], tmp_path, no_eval=no_eval) == expected
    assert run(script, resolve(args) or [], tmp_path, no_eval=no_eval, shell="bash") == expected


def test_eval_mode_expands_arguments_and_no_eval_does_not(fake_entrypoint: Path, tmp_path: Path) -> None:
    """Apptainer's default evaluates the joined command line once more; --no-eval passes words untouched."""
    script = runscript([str(fake_entrypoint)], None)
    args = ["$HOME", "a\nb", "*"]
    assert run(script, args, tmp_path) == ["/home/someone", "a\nb", "*"]
    assert run(script, args, tmp_path, no_eval=True) == args


def test_runscript_header_lines() -> None:
    lines = runscript(["/bin/echo", "it's"], ["a b"]).decode().splitlines()
    assert lines[:3] == ["#!/bin/sh", 'OCI_ENTRYPOINT=\'"/bin/echo" "it\'"\'"\'s"\'', "OCI_CMD='\"a b\"'"]
    assert runscript(None, None).decode().splitlines()[1:3] == ["OCI_ENTRYPOINT=''", "OCI_CMD=''"]


# -- oci-config.json, labels, inspect metadata, definition ---------------------------------------
def test_container_config_decodes_as_go_does() -> None:
    document = config_bytes({
        "WorkingDir": "/w", "env": ["A=1"], "Env": ["B=2", None], "Cmd": "not a list", "Entrypoint": ["e"],
        "Labels": {"z": "1", "a": None}, "Volumes": {"/v": {}, "/a": None}, "ExposedPorts": {"80/tcp": {}},
        "ArgsEscaped": False, "Tty": True, "User": "", "Healthcheck": {"Test": ["CMD", "true"], "Interval": 10},
        "Unknown": 1, "OnBuild": [],
    })  # fmt: skip
    assert list(container_config(document).items()) == [
        ("Healthcheck", {"Test": ["CMD", "true"], "Interval": 10}),
        ("Entrypoint", ["e"]),
        ("Env", ["B=2", ""]),
        ("Labels", {"a": "", "z": "1"}),
        ("Tty", True),
        ("Volumes", {"/a": {}, "/v": {}}),
        ("WorkingDir", "/w"),
        ("ExposedPorts", {"80/tcp": {}}),
    ]


def test_oci_config_json_is_go_json_of_the_config_member() -> None:
    document = config_bytes({"Env": ["PATH=/bin", "X=<&>"], "Cmd": ["sh"], "Labels": {"b": "2", "a": "1"}})
    assert (
        oci_config_json(document)
        == b'{"Cmd":["sh"],"Env":["PATH=/bin","X=\\u003c\\u0026\\u003e"],"Labels":{"a":"1","b":"2"}}'
    )
    assert oci_config_json(json.dumps({"architecture": "amd64"}).encode()) == b"{}"
    with pytest.raises(MalformedError):
        oci_config_json(b"[1]")


def test_go_json_escapes() -> None:
    assert go_json({"k": "<a&b>\u2028é\n"}) == '{"k":"\\u003ca\\u0026b\\u003e\\u2028é\\n"}'.encode()
    assert labels_json({"b": "2", "a": "<"}) == b'{\n\t"a": "\\u003c",\n\t"b": "2"\n}'
    assert labels_json({}) == b"{}"


def test_inspect_metadata_shape() -> None:
    raw = inspect_metadata(
        environment={"/.singularity.d/env/90-environment.sh": b"#!/bin/sh\n# x\n\n", "/.singularity.d/env/10-docker2singularity.sh": b"#!/bin/sh\n"},
        labels={"b": "1", "a": "2"}, runscript=b"#!/bin/sh\nexec x\n", deffile=b"bootstrap: docker\nfrom: a@b\n\n", startscript=b"",
    )  # fmt: skip
    assert raw == (
        b'{"data":{"attributes":{"environment":{"/.singularity.d/env/10-docker2singularity.sh":"#!/bin/sh",'
        b'"/.singularity.d/env/90-environment.sh":"#!/bin/sh\\n# x"},"labels":{"a":"2","b":"1"},'
        b'"runscript":"#!/bin/sh\\nexec x","deffile":"bootstrap: docker\\nfrom: a@b"}},"type":"container"}'
    )


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("docker.io/library/alpine:3.20", "docker.io/library/alpine@" + DIGEST),
        ("localhost:5000/app:1.0", "localhost:5000/app@" + DIGEST),
        ("localhost:5000/app", "localhost:5000/app@" + DIGEST),
        ("ghcr.io/o/app:1@sha256:" + "00" * 32, "ghcr.io/o/app@" + DIGEST),
    ],
)
def test_definition_pins_the_digest_without_the_tag(source: str, expected: str) -> None:
    assert definition(source, DIGEST) == f"bootstrap: docker\nfrom: {expected}\n\n".encode()


def test_definition_without_digest_and_for_other_bootstraps() -> None:
    assert definition("layout:tag", None, bootstrap="oci") == b"bootstrap: oci\nfrom: layout:tag\n\n"
    assert (
        definition("/data/layout:tag", DIGEST, bootstrap="oci")
        == b"bootstrap: oci\nfrom: /data/layout:tag\n\n"
    )
    with pytest.raises(ValueError, match="single lines"):
        definition("a\nb", None)


@settings(max_examples=300, deadline=None)
@given(st.integers(-62135596800, 253402300799))
def test_dates_match_the_calendar(seconds: int) -> None:
    moment = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc) + datetime.timedelta(seconds=seconds)
    assert apptainer.rfc3339(seconds) == f"{moment.year:04d}-" + moment.strftime("%m-%dT%H:%M:%SZ")
    expected = f"{moment:%A}_{moment.day}_{moment:%B}_{moment.year}_{moment.hour}:{moment.minute}:{moment.second}_UTC"
    assert apptainer.build_date(seconds) == expected


# -- everything at once -------------------------------------------------------------------------
def metadata(**overrides: object) -> apptainer.SifMetadata:
    config = config_bytes({"Env": ["PATH=/usr/bin:/bin", "GREETING=hello world"], "Entrypoint": ["/bin/echo"],
                           "Cmd": ["from cmd"], "Labels": {"org.opencontainers.image.created": "old", "maintainer": "me"}})  # fmt: skip
    arguments: dict[str, object] = {
        "source": "registry.example:5000/team/app:1.0", "digest": DIGEST, "resolved_digest": INDEX_DIGEST,
        "architecture": "arm", "variant": "v7", "created": 1714564800, "tool_version": "9.9",
    }  # fmt: skip
    arguments.update(overrides)
    return sif_metadata(config, **arguments)  # type: ignore[arg-type]


APPTAINER_PATHS = {
    # makeDirs, makeSymlinks, makeFiles (base_environment.go), insertRunScript, insertEnv, insertOCILabels
    # (conveyorPacker_oci.go), 94-appsbase.sh (apps.go), Singularity and labels.json (metadata.go)
    "dir": {".singularity.d", ".singularity.d/libs", ".singularity.d/actions", ".singularity.d/env", "dev", "proc",
            "root", "var", "var/tmp", "tmp", "etc", "sys", "home"},
    "symlink": {"singularity", ".run", ".exec", ".test", ".shell", "environment"},
    "file": {"etc/hosts", "etc/resolv.conf", ".singularity.d/runscript", ".singularity.d/startscript",
             ".singularity.d/labels.json", ".singularity.d/Singularity",
             *(f".singularity.d/actions/{a}" for a in ("exec", "run", "shell", "start", "test")),
             *(f".singularity.d/env/{e}" for e in ("01-base.sh", "10-docker2singularity.sh", "90-environment.sh",
                                                    "94-appsbase.sh", "95-apps.sh", "99-base.sh", "99-runtimevars.sh"))},
}  # fmt: skip


def test_the_tree_has_apptainers_paths_modes_and_owners() -> None:
    entries = metadata().entries
    assert {kind: {e.path for e in entries if e.kind == kind} for kind in APPTAINER_PATHS} == APPTAINER_PATHS
    assert len(entries) == sum(map(len, APPTAINER_PATHS.values()))
    by_path = {e.path: e for e in entries}
    assert by_path["singularity"].target == ".singularity.d/runscript"
    assert by_path["environment"].target == ".singularity.d/env/90-environment.sh"
    assert all(e.uid == e.gid == 0 and e.mtime == 1714564800 for e in entries)
    assert {e.path for e in entries if e.kind == "file" and e.mode == 0o644} == {
        "etc/hosts", "etc/resolv.conf", ".singularity.d/labels.json", ".singularity.d/Singularity"}  # fmt: skip
    assert all(e.mode == 0o755 for e in entries if e.kind == "dir")
    assert by_path["etc/hosts"].content == by_path["etc/resolv.conf"].content == b""
    assert by_path[".singularity.d/env/94-appsbase.sh"].content == b""
    # every script is valid shell
    for entry in entries:
        if entry.kind == "file" and entry.content.startswith(b"#!/bin/sh"):
            subprocess.run(["/bin/sh", "-n"], input=entry.content, check=True, timeout=30)


def test_labels_definition_and_json_objects() -> None:
    meta = metadata()
    assert meta.definition == f"bootstrap: docker\nfrom: registry.example:5000/team/app@{DIGEST}\n\n".encode()
    assert [name for name, _ in meta.json_objects] == ["inspect-metadata.json", "oci-config.json"]
    assert meta.labels == {
        "maintainer": "me",
        "org.label-schema.build-arch": "arm",
        "org.label-schema.build-date": "Wednesday_1_May_2024_12:0:0_UTC",
        "org.label-schema.schema-version": "1.0",
        "org.label-schema.usage.regpeek.version": "9.9",
        "org.label-schema.usage.singularity.deffile.bootstrap": "docker",
        "org.label-schema.usage.singularity.deffile.from": f"registry.example:5000/team/app@{DIGEST}",
        "org.opencontainers.image.architecture": "arm",
        "org.opencontainers.image.base.digest": INDEX_DIGEST,
        "org.opencontainers.image.base.name": "registry.example:5000/team/app:1.0",
        "org.opencontainers.image.created": "2024-05-01T12:00:00Z",  # the build's, as Apptainer overwrites it
        "org.opencontainers.image.variant": "v7",
    }
    by_path = {e.path: e for e in meta.entries}
    assert json.loads(by_path[".singularity.d/labels.json"].content) == meta.labels
    assert by_path[".singularity.d/Singularity"].content == meta.definition
    attributes = json.loads(dict(meta.json_objects)["inspect-metadata.json"])["data"]["attributes"]
    assert attributes["labels"] == meta.labels
    assert attributes["deffile"] == meta.definition.decode().rstrip("\n")
    assert attributes["runscript"] == by_path[".singularity.d/runscript"].content.decode().rstrip("\n")
    assert sorted(attributes["environment"]) == [
        "/.singularity.d/env/10-docker2singularity.sh",
        "/.singularity.d/env/90-environment.sh",
    ]
    assert json.loads(dict(meta.json_objects)["oci-config.json"])["Entrypoint"] == ["/bin/echo"]
    assert metadata(resolved_digest=None).labels["org.opencontainers.image.base.digest"] == DIGEST


# -- policies against the image's own paths ---------------------------------------------------------
def test_policies() -> None:
    entries = list(metadata().entries)
    existing = {
        "tmp": Existing("symlink"),  # left alone, as Apptainer leaves an existing path alone
        "/etc/": Existing("dir"),
        "etc/hosts": Existing("file", mode=0o600, uid=7, gid=8),  # emptied, chmod 0644, owner kept
        ".singularity.d/labels.json": Existing("file", mode=0o600, uid=5, gid=5),  # WriteFile: mode kept
        "singularity": Existing("file"),  # not a symlink: left alone
        ".run": Existing("symlink"),  # replaced
        "var": Existing("symlink"),  # var/tmp beneath a symlink: skipped
    }
    out = {e.path: e for e in apply_policies(entries, existing)}
    assert "tmp" not in out and "etc" not in out and "var" not in out and "var/tmp" not in out
    assert "singularity" not in out and ".run" in out
    assert (out["etc/hosts"].mode, out["etc/hosts"].uid, out["etc/hosts"].gid, out["etc/hosts"].content) == (
        0o644,
        7,
        8,
        b"",
    )
    assert (out[".singularity.d/labels.json"].mode, out[".singularity.d/labels.json"].uid) == (0o600, 5)
    assert len(out) == len(entries) - 5
    assert apply_policies(entries, {}) == entries


@pytest.mark.parametrize(
    ("existing", "message"),
    [({"etc/hosts": Existing("dir")}, "directory at /etc/hosts"),
     ({".singularity.d": Existing("symlink")}, "symlink at /.singularity.d"),
     ({".singularity.d": Existing("file")}, "file at /.singularity.d")],
)  # fmt: skip
def test_policies_refuse_what_apptainer_fails_on(existing: dict[str, Existing], message: str) -> None:
    with pytest.raises(UnsupportedError, match=message):
        apply_policies(metadata().entries, existing)


# -- the tree through a tar, and the action scripts run against it --------------------------------
def test_tar_entries(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        assert append_entries(tar, metadata().entries) == len(metadata().entries)
    buffer.seek(0)
    with tarfile.open(fileobj=buffer) as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert (
            members[".singularity.d/runscript"].isreg() and members[".singularity.d/runscript"].mode == 0o755
        )
        assert (
            members["singularity"].issym() and members["singularity"].linkname == ".singularity.d/runscript"
        )
        assert members["var/tmp"].isdir() and members["etc/hosts"].size == 0
        assert all(m.uid == 0 and m.gid == 0 and m.mtime == 1714564800 for m in members.values())
        stored = tar.extractfile(".singularity.d/env/10-docker2singularity.sh")
        assert stored is not None and stored.read() == env_script(
            ["PATH=/usr/bin:/bin", "GREETING=hello world"]
        )
    with tarfile.open(fileobj=io.BytesIO(), mode="w") as empty, pytest.raises(ValueError, match="kind"):
        append_entries(empty, [TreeEntry("x", "fifo", 0o644, Policy.REPLACE)])


@pytest.mark.skipif(shutil.which("tar") is None, reason="GNU tar extracts the tree")
def test_action_scripts_source_the_environment_and_run_the_runscript(
    tmp_path: Path, fake_entrypoint: Path
) -> None:
    """``actions/run`` sources every ``env/*.sh`` and execs the runscript; ``actions/exec`` execs its arguments.

    The scripts name ``/.singularity.d``; here that prefix is rewritten to a temporary root.
    """
    root = tmp_path / "root"
    root.mkdir()
    config = config_bytes(
        {
            "Env": ["PATH=/usr/bin:/bin", "GREETING=hello world"],
            "Entrypoint": [str(fake_entrypoint)],
            "Cmd": ["c"],
        }
    )
    meta = sif_metadata(
        config, source="x/y:1", digest=DIGEST, architecture="amd64", created=0, tool_version="1"
    )
    prefix = f"{root}/.singularity.d".encode()
    entries = [
        TreeEntry(e.path, e.kind, e.mode, e.policy, e.content.replace(b"/.singularity.d", prefix), e.target)
        for e in meta.entries
    ]
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        append_entries(tar, entries)
    subprocess.run(
        ["tar", "-x", "-C", str(root), "--no-same-owner"], input=buffer.getvalue(), check=True, timeout=30
    )
    environment = {"PATH": "/usr/bin:/bin"}
    run_out = subprocess.run(
        [str(root / ".run"), "a b"], env=environment, capture_output=True, check=True, timeout=30
    )
    assert run_out.stdout.decode().split("\0")[:-1] == ["a b"]
    printed = subprocess.run(
        [str(root / ".exec"), "sh", "-c", 'printf "%s|%s" "$GREETING" "$LD_LIBRARY_PATH"'],
        env=environment, capture_output=True, check=True, timeout=30,
    )  # fmt: skip
    assert printed.stdout.decode() == f"hello world|{root}/.singularity.d/libs"
    tested = subprocess.run(
        [str(root / ".test")], env=environment, capture_output=True, check=True, timeout=30
    )
    assert b"No test found" in tested.stdout
    assert os.readlink(root / "singularity") == ".singularity.d/runscript"


def test_merge_tree_for_a_flattened_stream() -> None:
    entries = metadata().entries
    held = apptainer.held_paths(entries)
    assert held == frozenset(APPTAINER_PATHS["file"] | APPTAINER_PATHS["symlink"])
    watched = apptainer.watched_paths(entries)
    assert watched == frozenset(APPTAINER_PATHS["file"] | APPTAINER_PATHS["symlink"] | APPTAINER_PATHS["dir"])
    existing = {
        "singularity": Existing("file"),
        "etc/hosts": Existing("file"),
        ".exec": Existing("symlink"),
        "etc": Existing("dir"),
    }
    merge = apptainer.merge_tree(entries, existing)
    assert merge.keep_image == frozenset(
        {"singularity"}
    )  # the image's own /singularity stays; the others are replaced
    assert {e.path for e in merge.write} == {e.path for e in entries} - {"singularity", "etc"}
