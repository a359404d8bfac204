"""containers-registries.conf(5): parsing, merging drop-ins, and which sources a reference is read from
(regpeek.formats.registriesconf), and which files are read (regpeek.network.registriesconf)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from regpeek.errors import LocalError, UsageError
from regpeek.formats.reference import Reference
from regpeek.formats.registriesconf import RegistriesConfError, parse
from regpeek.network import registriesconf as reader

DIGEST = "sha256:" + "a" * 64


def conf(*tables: dict[str, Any], **top: Any) -> Any:
    return parse([("test.conf", {"registry": list(tables), **top})])


def sources(configuration: Any, reference: str) -> list[str]:
    return [str(source) for source in configuration.resolve(reference).sources]


def test_no_table_means_the_reference_itself() -> None:
    assert sources(conf(), "example.com/app:1") == ["example.com/app"]
    assert sources(conf(), "alpine") == ["docker.io/library/alpine"]


def test_location_rewrites_the_prefix() -> None:
    c = conf({"prefix": "example.com/foo", "location": "internal.example.net/bar"})
    assert sources(c, "example.com/foo/app:1") == ["internal.example.net/bar/app"]
    assert sources(c, "example.com/foo/team/app") == ["internal.example.net/bar/team/app"]
    assert sources(c, "example.com/foobar/app") == ["example.com/foobar/app"]  # not at a separator
    assert sources(c, "example.com/other") == ["example.com/other"]


def test_longest_prefix_wins() -> None:
    c = conf(
        {"prefix": "example.com", "location": "a.example.net"},
        {"prefix": "example.com/special", "location": "b.example.net/s"},
    )
    assert sources(c, "example.com/special/app") == ["b.example.net/s/app"]
    assert sources(c, "example.com/other/app") == ["a.example.net/other/app"]


def test_prefix_defaults_to_location() -> None:
    c = conf({"location": "example.com", "mirror": [{"location": "mirror.example.net/ex"}]})
    assert sources(c, f"example.com/app@{DIGEST}") == [
        "mirror.example.net/ex/app (mirror)",
        "example.com/app",
    ]


def test_docker_hub_names_include_library() -> None:
    c = conf({"prefix": "docker.io/library", "location": "hub-mirror.example.net/library"})
    assert sources(c, "alpine:3.20") == ["hub-mirror.example.net/library/alpine"]
    assert sources(c, "docker.io/someone/app") == ["docker.io/someone/app"]


@pytest.mark.parametrize(
    ("how", "by_tag", "by_digest"),
    [
        pytest.param(None, True, True, id="default-all"),
        pytest.param("all", True, True, id="all"),
        pytest.param("digest-only", False, True, id="digest-only"),
        pytest.param("tag-only", True, False, id="tag-only"),
    ],
)
def test_pull_from_mirror(how: str | None, by_tag: bool, by_digest: bool) -> None:
    mirror: dict[str, Any] = {"location": "mirror.example.net/app"}
    if how:
        mirror["pull-from-mirror"] = how
    c = conf({"location": "example.com/app", "mirror": [mirror]})
    tagged = sources(c, "example.com/app:1")
    digested = sources(c, f"example.com/app@{DIGEST}")
    assert (tagged[0] == "mirror.example.net/app (mirror)") is by_tag
    assert (digested[0] == "mirror.example.net/app (mirror)") is by_digest
    assert tagged[-1] == digested[-1] == "example.com/app"


def test_mirror_by_digest_only_and_mirror_order() -> None:
    c = conf(
        {
            "location": "example.com",
            "mirror-by-digest-only": True,
            "mirror": [
                {"location": "m1.example.net"},
                {"location": "m2.example.net:5000/x", "insecure": True},
            ],
        }
    )
    assert sources(c, "example.com/app:1") == ["example.com/app"]
    assert sources(c, f"example.com/app@{DIGEST}") == [
        "m1.example.net/app (mirror)",
        "m2.example.net:5000/x/app (mirror)",
        "example.com/app",
    ]
    assert c.insecure_hosts() == frozenset({"m2.example.net:5000"})


def test_mirror_by_digest_only_conflicts_with_pull_from_mirror() -> None:
    with pytest.raises(RegistriesConfError, match="mirror-by-digest-only"):
        conf(
            {
                "location": "example.com",
                "mirror-by-digest-only": True,
                "mirror": [{"location": "m.example.net", "pull-from-mirror": "all"}],
            }
        )


def test_wildcard_prefix_applies_settings_without_rewriting() -> None:
    c = conf({"prefix": "*.example.com", "insecure": True, "mirror": [{"location": "mirror.example.net"}]})
    assert sources(c, f"r.example.com/app@{DIGEST}") == [
        "mirror.example.net/app (mirror)",
        "r.example.com/app",
    ]
    assert c.resolve("a.b.example.com/app").table is not None
    assert c.resolve("example.com/app").table is None
    assert c.resolve("example.com.evil/app").table is None


def test_blocked() -> None:
    c = conf({"prefix": "blocked.example/team", "location": "blocked.example/team", "blocked": True})
    resolution = c.resolve("blocked.example/team/app:1")
    assert resolution.blocked
    assert "blocked by registries.conf" in resolution.blocked_message("blocked.example/team/app:1")
    assert "test.conf" in resolution.blocked_message("x")
    assert not c.resolve("blocked.example/other").blocked


def test_insecure_hosts() -> None:
    c = conf(
        {"location": "insecure.example:5000", "insecure": True}, {"location": "docker.io", "insecure": True}
    )
    assert c.insecure_hosts() == frozenset({"insecure.example:5000", "registry-1.docker.io"})


def test_a_drop_in_replaces_the_table_with_the_same_prefix() -> None:
    c = parse(
        [
            ("main.conf", {"registry": [{"location": "example.com", "mirror": [{"location": "old.example.net"}]}]}),
            ("drop-in.conf", {"registry": [{"location": "example.com", "mirror": [{"location": "new.example.net"}]}]}),
        ]
    )  # fmt: skip
    assert sources(c, f"example.com/app@{DIGEST}") == ["new.example.net/app (mirror)", "example.com/app"]
    assert c.resolve("example.com/app").table.origin == "drop-in.conf"  # type: ignore[union-attr]


def test_version_1_lists() -> None:
    c = parse([("v1.conf", {"registries": {"insecure": {"registries": ["old.example:5000"]},
                                          "block": {"registries": ["bad.example"]}}})])  # fmt: skip
    assert c.insecure_hosts() == frozenset({"old.example:5000"})
    assert c.resolve("bad.example/app").blocked


def test_catalog_and_login_settings() -> None:
    c = conf(
        {"location": "example.com", "insecure": True},
        {"prefix": "example.com/team", "location": "other.example/team"},
        {"prefix": "old.example", "location": "new.example:5000"},
    )
    assert c.host("example.com").table is not None
    assert str(c.host("old.example").primary.repository.registry) == "new.example:5000"
    assert c.host("elsewhere.example").table is None


@pytest.mark.parametrize(
    ("tables", "top", "message"),
    [
        pytest.param([{"location": "https://example.com"}], {}, "URI scheme", id="scheme"),
        pytest.param([{"location": ""}], {}, "neither prefix nor location", id="empty"),
        pytest.param([{"location": "nodots/app"}], {}, "registry host", id="not-a-host"),
        pytest.param([{"location": "example.com", "insecure": "yes"}], {}, "true or false", id="not-bool"),
        pytest.param([{"location": "example.com", "mirror": [{"location": "m.example", "pull-from-mirror": "some"}]}],
                     {}, "pull-from-mirror", id="pull-from-mirror-value"),
        pytest.param([{"prefix": "*.example.com/foo"}], {}, "wildcard", id="wildcard-with-path"),
        pytest.param([{"prefix": "*.example.com", "location": "x.example"}], {}, "wildcard", id="wildcard-location"),
        pytest.param([{"prefix": "a.example", "location": "same.example", "insecure": True},
                      {"prefix": "b.example", "location": "same.example"}], {}, "conflicting", id="conflict"),
        pytest.param([{"location": "example.com"}], {"registries": {"block": {"registries": ["x.example"]}}},
                     "mixes version 1", id="v1-and-v2"),
        pytest.param("not a list", {}, "array of tables", id="registry-not-a-list"),
    ],
)  # fmt: skip
def test_invalid_configurations(tables: Any, top: dict[str, Any], message: str) -> None:
    with pytest.raises(RegistriesConfError, match=message) as info:
        parse([("bad.conf", {"registry": tables, **top})])
    assert isinstance(info.value, UsageError)  # exit 2


def test_rewritten_reference_keeps_digest_kind() -> None:
    c = conf({"prefix": "example.com", "location": "internal.example", "mirror": [{"location": "m.example"}]})
    reference = Reference.parse(f"example.com/app:1@{DIGEST}")
    assert [str(s) for s in c.resolve(reference).sources] == [
        "m.example/app (mirror)",
        "internal.example/app",
    ]


# -- which files ----------------------------------------------------------------------------------


def _files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    system = tmp_path / "etc"
    (system / "registries.conf.d").mkdir(parents=True)
    monkeypatch.setattr(reader, "SYSTEM_FILE", system / "registries.conf")
    monkeypatch.setattr(reader, "SYSTEM_DIR", system / "registries.conf.d")
    home = tmp_path / "home"
    (home / ".config/containers/registries.conf.d").mkdir(parents=True)
    return system, home


def test_system_file_then_drop_ins_in_name_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    system, home = _files(tmp_path, monkeypatch)
    (system / "registries.conf").write_text('[[registry]]\nlocation = "a.example"\nblocked = true\n')
    (system / "registries.conf.d/20-b.conf").write_text('[[registry]]\nlocation = "a.example"\n')
    (system / "registries.conf.d/10-a.conf").write_text('[[registry]]\nlocation = "b.example"\n')
    (system / "registries.conf.d/notes.txt").write_text("not toml")
    (home / ".config/containers/registries.conf.d/30-user.conf").write_text(
        '[[registry]]\nlocation = "c.example"\n'
    )
    files = reader.config_files({}, home)
    assert [f.name for f in files] == ["registries.conf", "10-a.conf", "20-b.conf", "30-user.conf"]
    loaded = reader.load(environ={}, home=home)
    assert not loaded.resolve("a.example/app").blocked  # the drop-in replaced the table


def test_the_user_file_replaces_the_system_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    system, home = _files(tmp_path, monkeypatch)
    (system / "registries.conf").write_text('[[registry]]\nlocation = "a.example"\nblocked = true\n')
    (system / "registries.conf.d/10.conf").write_text(
        '[[registry]]\nlocation = "b.example"\nblocked = true\n'
    )
    (home / ".config/containers/registries.conf").write_text('[[registry]]\nlocation = "c.example"\n')
    loaded = reader.load(environ={}, home=home)
    assert not loaded.resolve("a.example/app").blocked
    assert not loaded.resolve("b.example/app").blocked


def test_containers_registries_conf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    system, home = _files(tmp_path, monkeypatch)
    (system / "registries.conf").write_text('[[registry]]\nlocation = "a.example"\nblocked = true\n')
    chosen = tmp_path / "chosen.conf"
    chosen.write_text('[[registry]]\nlocation = "z.example"\nblocked = true\n')
    loaded = reader.load(environ={"CONTAINERS_REGISTRIES_CONF": str(chosen)}, home=home)
    assert loaded.resolve("z.example/app").blocked
    assert not loaded.resolve("a.example/app").blocked
    with pytest.raises(LocalError, match=r"missing\.conf: No such file"):
        reader.load(environ={"CONTAINERS_REGISTRIES_CONF": str(tmp_path / "missing.conf")}, home=home)


def test_an_explicit_file_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    system, _ = _files(tmp_path, monkeypatch)
    (system / "registries.conf.d/10.conf").write_text(
        '[[registry]]\nlocation = "b.example"\nblocked = true\n'
    )
    given = tmp_path / "given.conf"
    given.write_text("")
    assert not reader.load(given).resolve("b.example/app").blocked
    with pytest.raises(
        LocalError, match=r"cannot read registries.conf .*nope.conf: No such file or directory"
    ):
        reader.load(tmp_path / "nope.conf")


def test_a_missing_system_file_is_no_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _, home = _files(tmp_path, monkeypatch)
    assert not reader.load(environ={}, home=home)


def test_invalid_toml_is_a_usage_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.conf"
    bad.write_text("[[registry]\nlocation = ")
    with pytest.raises(RegistriesConfError, match=r"bad\.conf is not valid TOML"):
        reader.load(bad)


# -- blobs through a mirror (the client's blob pipeline, over httpx.MockTransport) --------------------

BLOB = b"the layer's bytes" * 64


def _blob_client(mirror_answer: bytes | None) -> tuple[Any, list[str]]:
    """A sync client whose registries.conf mirrors registry.example/team into mirror.example/team; the
    mirror answers ``mirror_answer`` (None: 404) for every blob, the registry the right bytes."""
    import httpx

    from regpeek.network._sync.registry import Client

    asked: list[str] = []

    def respond(request: httpx.Request) -> httpx.Response:
        asked.append(f"{request.url.host}{request.url.path}")
        if request.url.host == "mirror.example":
            return (
                httpx.Response(404) if mirror_answer is None else httpx.Response(200, content=mirror_answer)
            )
        return httpx.Response(200, content=BLOB)

    configuration = conf({"prefix": "registry.example/team", "mirror": [{"location": "mirror.example/team"}]})
    client = Client(transport=httpx.MockTransport(respond), registries=configuration, retries=0)
    return client, asked


def _descriptor() -> Any:
    from regpeek.formats.digest import compute
    from regpeek.formats.manifest import Descriptor

    return Descriptor("application/vnd.oci.image.layer.v1.tar", compute(BLOB), len(BLOB))


def test_a_blob_is_read_from_the_mirror_first(tmp_path: Path) -> None:
    client, asked = _blob_client(BLOB)
    with client:
        done = client.download_blob("registry.example/team/app", _descriptor(), tmp_path / "blob")
    assert (tmp_path / "blob").read_bytes() == BLOB and done.size == len(BLOB)
    assert asked == [f"mirror.example/v2/team/app/blobs/{_descriptor().digest}"]


def test_a_mirror_without_the_blob_falls_back_to_the_primary(tmp_path: Path) -> None:
    client, asked = _blob_client(None)
    with client:
        client.download_blob("registry.example/team/app", _descriptor(), tmp_path / "blob")
    digest = _descriptor().digest
    assert asked == [
        f"mirror.example/v2/team/app/blobs/{digest}",
        f"registry.example/v2/team/app/blobs/{digest}",
    ]
    assert (tmp_path / "blob").read_bytes() == BLOB


def test_a_download_from_a_mirror_that_serves_other_bytes_is_read_again_from_the_primary(
    tmp_path: Path,
) -> None:
    from regpeek.errors import DigestMismatchError

    wrong = bytes(reversed(BLOB))  # same size, other digest
    client, asked = _blob_client(wrong)
    with client:
        client.download_blob("registry.example/team/app", _descriptor(), tmp_path / "blob")
        assert (tmp_path / "blob").read_bytes() == BLOB
        assert [url.split("/")[0] for url in asked] == ["mirror.example", "registry.example"]
        with (
            pytest.raises(DigestMismatchError),
            client.open_blob("registry.example/team/app", _descriptor()) as blob,
        ):
            blob.read()  # a stream cannot take back what it handed over: it raises instead
