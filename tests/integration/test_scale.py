"""Many images at once, the digest-keyed cache, diff, tree, referrers, catalog, rate limits."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import regpeek
from regpeek.disk.cache import BlobCache
from regpeek.formats import mediatypes as mt
from tests.integration.api import Api, client_options, registry_flags, run_cli
from tests.support.images import compact_json, push_oci_image
from tests.support.push import pusher_for
from tests.support.registry import Registry
from tests.support.util import sha256_digest


def _statuses(registry: Registry) -> list[tuple[str, str, int]]:
    return [(r.method, r.path.split("?")[0], r.status) for r in registry.requests()]


# -- many references ------------------------------------------------------------------------------


def test_json_lines_in_input_order_with_errors(
    registry: Registry, samples: dict[str, Any], tmp_path: Path
) -> None:
    host = registry.host
    refs = tmp_path / "refs.txt"
    refs.write_text(
        "# images to audit\n"
        f"{host}/samples/index\n\n"
        f"{host}/samples/missing:tag   # not there\n"
        "Not A Reference\n"
        f"{host}/samples/docker@{samples['samples/docker'].digest}\n"
    )
    done = run_cli(
        "inspect", *registry_flags(registry), "--no-cache", f"{host}/samples/oci", "--from-file", str(refs)
    )
    lines = [json.loads(line) for line in done.text.splitlines()]
    assert [line["reference"] for line in lines] == [
        f"{host}/samples/oci:latest",
        f"{host}/samples/index:latest",
        f"{host}/samples/missing:tag",
        "Not A Reference",
        f"{host}/samples/docker@{samples['samples/docker'].digest}",
    ]
    assert lines[0]["digest"] == samples["samples/oci"].digest
    assert lines[2]["error"]["code"] == 3 and lines[2]["error"]["kind"] == "not_found"
    assert lines[3]["error"] == {"code": 2, "kind": "usage", "message": lines[3]["error"]["message"]}
    assert lines[4]["digest"] == samples["samples/docker"].digest
    assert done.code == 3  # the highest code met


def test_many_repositories_concurrently(fresh_registry: Registry, tmp_path: Path) -> None:
    """40 repositories, 120 references: every result right and in order (the 32 at a time and 16 per
    registry are measured in tests/unit/test_batch_limits.py)."""
    pushed = {}
    with pusher_for(fresh_registry) as pusher:
        for n in range(40):
            pushed[f"many/r{n}"] = push_oci_image(pusher, f"many/r{n}", "latest", env=[f"N={n}"])
    refs = [f"{fresh_registry.host}/{repo}" for repo in pushed for _ in range(3)]
    (tmp_path / "refs").write_text("\n".join(refs))
    done = run_cli(
        "inspect", *registry_flags(fresh_registry), "--no-cache", "--from-file", str(tmp_path / "refs")
    )
    assert done.code == 0, done.stderr
    results = [json.loads(line) for line in done.text.splitlines()]
    assert [r["digest"] for r in results] == [pushed[ref.split("/", 1)[1]].digest for ref in refs]
    assert [r["env"] for r in results] == [
        pushed[ref.split("/", 1)[1]].config_json["config"]["Env"] for ref in refs
    ]


def test_stdin_references(
    registry: Registry, samples: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    done = run_cli(
        "inspect",
        *registry_flags(registry),
        "--no-cache",
        "--from-file",
        "-",
        stdin=f"{registry.host}/samples/list\n",
    )
    assert [json.loads(line)["index_digest"] for line in done.text.splitlines()] == [
        samples["samples/list"].digest
    ]


def test_token_shared_by_concurrent_tasks(token_registry: Any, tmp_path: Path) -> None:
    """Twenty concurrent inspects of one repository need one token."""
    registry, tokens = token_registry
    with pusher_for(registry) as pusher:
        image = push_oci_image(pusher, "shared/token", "latest")
    tokens.clear()
    refs = "\n".join([f"{registry.host}/shared/token"] * 20)
    done = run_cli("inspect", *registry_flags(registry), "--no-cache", "--from-file", "-", stdin=refs)
    assert done.code == 0, done.stderr
    assert {json.loads(line)["digest"] for line in done.text.splitlines()} == {image.digest}
    assert len(tokens.requests) == 1


# -- the cache ------------------------------------------------------------------------------------


def test_warm_cache_costs_one_head(
    api: Api, registry: Registry, samples: dict[str, Any], tmp_path: Path
) -> None:
    cache = BlobCache(tmp_path / "cache")
    ref = f"{registry.host}/samples/index"
    registry.mark()
    cold = api.call(registry, "inspect", ref, client={"cache": cache, "platform": "linux/arm64"})
    assert [m for m, _, _ in _statuses(registry)] == ["GET", "GET", "GET"]  # a tag never seen: no HEAD first
    registry.mark()
    warm = api.call(registry, "inspect", ref, client={"cache": cache, "platform": "linux/arm64"})
    assert _statuses(registry) == [("HEAD", "/v2/samples/index/manifests/latest", 200)]
    assert warm.to_dict() == cold.to_dict()
    # by digest nothing at all needs asking
    registry.mark()
    api.call(
        registry,
        "inspect",
        f"{ref}@{samples['samples/index'].digest}",
        client={"cache": cache, "platform": "linux/arm64"},
    )
    assert _statuses(registry) == []


def test_cli_cache_dir_and_env(registry: Registry, samples: dict[str, Any], tmp_path: Path,
                               monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    monkeypatch.setenv("REGPEEK_CACHE_DIR", str(tmp_path / "env-cache"))
    ref = f"{registry.host}/samples/docker"
    assert run_cli("inspect", "--json", *registry_flags(registry), ref).code == 0
    stored = sorted(p.name for p in (tmp_path / "env-cache/blobs/sha256").iterdir())
    image = samples["samples/docker"]
    assert stored == sorted([image.digest.split(":")[1], image.config.digest.split(":")[1]])
    info = run_cli("cache", "info", "--json")
    assert json.loads(info.stdout)["entries"] == 2
    assert (
        run_cli(
            "inspect", "--json", *registry_flags(registry), "--cache-dir", str(tmp_path / "other"), ref
        ).code
        == 0
    )
    assert (tmp_path / "other/blobs/sha256").is_dir()
    registry.mark()
    assert run_cli("inspect", "--json", "--no-cache", *registry_flags(registry), ref).code == 0
    assert [m for m, _, _ in _statuses(registry)] == ["GET", "GET"]
    refused = run_cli("cache", "prune")  # without a bound: nothing removed, and it says what to pass
    assert refused.code == 2 and "--max-size" in refused.stderr
    assert json.loads(run_cli("cache", "info", "--json").stdout)["entries"] == 2
    pruned = run_cli("cache", "prune", "--all")
    assert pruned.code == 0 and "removed 2 entries" in pruned.text
    assert json.loads(run_cli("cache", "info", "--json").stdout)["entries"] == 0


def test_corrupt_cache_entry_is_refetched(
    api: Api, registry: Registry, samples: dict[str, Any], tmp_path: Path
) -> None:
    cache = BlobCache(tmp_path / "cache")
    image = samples["samples/oci"]
    ref = f"{registry.host}/samples/oci"
    api.call(registry, "inspect", ref, client={"cache": cache})
    entry = cache.path_for(regpeek.Digest.parse(image.config.digest))
    entry.write_bytes(entry.read_bytes().replace(b"PATH", b"HTAP"))
    registry.mark()
    result = api.call(registry, "inspect", ref, client={"cache": cache})
    assert result.config.raw == image.config.data  # never served the corrupt copy
    assert ("GET", f"/v2/samples/oci/blobs/{image.config.digest}", 200) in _statuses(registry)
    assert entry.read_bytes() == image.config.data  # and the cache holds the good one again


# -- diff, tree, referrers, catalog, ratelimit ------------------------------------------------------


def test_diff_exit_codes(registry: Registry, samples: dict[str, Any]) -> None:
    host = registry.host
    same = run_cli(
        "diff",
        *registry_flags(registry),
        f"{host}/samples/oci",
        f"{host}/samples/index",
        "--platform",
        "linux/amd64",
    )
    assert same.code == 0 and same.text.startswith("identical")
    differ = run_cli("diff", "--json", *registry_flags(registry), f"{host}/samples/index", f"{host}/samples/index",
                     "--platform-a", "linux/amd64", "--platform-b", "linux/arm/v6")  # fmt: skip
    assert differ.code == 1
    data = json.loads(differ.stdout)
    assert data["identical"] is False
    assert data["env"]["changed"] == {"REGPEEK_PLATFORM": {"before": "linux/amd64", "after": "linux/arm/v6"}}
    assert data["platform"]["after"]["variant"] == "v6"
    assert run_cli("diff", *registry_flags(registry), f"{host}/samples/oci", f"{host}/nope/nope").code == 3


def _push_referrer(registry: Registry, repo: str, subject: Any, artifact_type: str) -> tuple[str, bytes]:
    """An artifact manifest with a subject, and the fallback tag index that lists it (what oras does)."""
    with pusher_for(registry) as pusher:
        empty = pusher.push_blob(repo, b"{}")
        blob = pusher.push_blob(repo, b"signature bytes")
        manifest = compact_json({
            "schemaVersion": 2, "mediaType": mt.OCI_MANIFEST, "artifactType": artifact_type,
            "config": {"mediaType": mt.OCI_EMPTY, "digest": empty, "size": 2},
            "layers": [{"mediaType": "application/octet-stream", "digest": blob, "size": 15}],
            "subject": {"mediaType": subject.media_type, "digest": subject.digest, "size": len(subject.manifest)},
        })  # fmt: skip
        digest = pusher.push_manifest(repo, sha256_digest(manifest), manifest, mt.OCI_MANIFEST)
        index = compact_json({"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": [
            {"mediaType": mt.OCI_MANIFEST, "digest": digest, "size": len(manifest), "artifactType": artifact_type}
        ]})  # fmt: skip
        tag = subject.digest.replace(":", "-")
        pusher.push_manifest(repo, tag, index, mt.OCI_INDEX)
    return digest, manifest


def test_referrers_fallback_tag_and_tree(api: Api, fresh_registry: Registry) -> None:
    with pusher_for(fresh_registry) as pusher:
        subject = push_oci_image(pusher, "signed/app", "latest")
    signature, _ = _push_referrer(fresh_registry, "signed/app", subject, "application/vnd.example.signature")
    found = api.call(fresh_registry, "referrers", f"{fresh_registry.host}/signed/app")
    assert (found.via, [str(m.digest) for m in found.manifests]) == ("tag", [signature])
    assert found.manifests[0].artifact_type == "application/vnd.example.signature"
    none = api.call(fresh_registry, "referrers", f"{fresh_registry.host}/signed/app", "application/other")
    assert none.manifests == []
    done = run_cli(
        "referrers", "--json", *registry_flags(fresh_registry), f"{fresh_registry.host}/signed/app"
    )
    assert json.loads(done.stdout)["referrers"][0]["digest"] == signature
    tree = run_cli("tree", *registry_flags(fresh_registry), "--no-cache", f"{fresh_registry.host}/signed/app")
    assert tree.code == 0
    lines = tree.text.splitlines()
    assert lines[0].startswith(f"{fresh_registry.host}/signed/app  manifest  {subject.digest}")
    assert any("config" in line and subject.config.digest in line for line in lines)
    assert lines[-1].startswith(f"└── referrer  {signature}")
    assert "(application/vnd.example.signature)" in lines[-1]


def test_tree_of_index_snapshot(registry: Registry, samples: dict[str, Any]) -> None:
    index = samples["samples/index"]
    done = run_cli("tree", *registry_flags(registry), "--no-cache", f"{registry.host}/samples/index")
    assert done.code == 0, done.stderr
    expected = [
        f"{registry.host}/samples/index  index  {index.digest}  {_size(len(index.manifest))}  oci.image.index.v1+json"
    ]
    for n, child in enumerate(index.children):
        platform = (
            "windows/amd64 (10.0.17763.4010)"
            if child.platform.os == "windows"
            else child.platform.label.replace("/v8", "")
        )
        expected.append(
            f"├── manifest  {platform}  {child.digest}  {_size(len(child.manifest))}  oci.image.manifest.v1+json"
        )
        blobs = [("config", child.config, "oci.image.config.v1+json")] + [
            ("layer", layer, "oci.image.layer.v1.tar+gzip") for layer in child.layers
        ]
        for m, (kind, blob, short) in enumerate(blobs):
            branch = "└── " if m == len(blobs) - 1 else "├── "
            expected.append(f"│   {branch}{kind}  {blob.digest}  {_size(blob.size)}  {short}")
        del n
    lines = [line.rstrip() for line in done.text.splitlines()]
    assert lines[: len(expected)] == expected
    assert lines[len(expected)].startswith(f"└── attestation  {index.attestation.digest}")
    assert f"(attestation for {index.child('linux', 'amd64').digest})" in done.text


def _size(size: int) -> str:
    from regpeek.cli.render import human_size

    return human_size(size)


def test_catalog_pagination(fresh_registry: Registry) -> None:
    with pusher_for(fresh_registry) as pusher:
        for name in ("c/a", "c/b", "c/c", "c/d", "c/e"):
            push_oci_image(pusher, name, "latest")
    done = run_cli("catalog", "--json", "-n", "2", *registry_flags(fresh_registry), fresh_registry.host)
    data = json.loads(done.stdout)
    assert data["repositories"] == ["c/a", "c/b", "c/c", "c/d", "c/e"]
    assert data["pages"] == 3
    plain = run_cli("catalog", *registry_flags(fresh_registry), fresh_registry.host)
    assert plain.text.splitlines() == ["c/a", "c/b", "c/c", "c/d", "c/e"]


def test_ratelimit_none_reported(registry: Registry, samples: dict[str, Any]) -> None:
    registry.mark()
    done = run_cli("ratelimit", *registry_flags(registry), f"{registry.host}/samples/oci")
    assert (done.code, done.text) == (0, "no limit reported\n")
    assert [m for m, _, _ in _statuses(registry)] == ["HEAD"]  # a HEAD: not counted as a pull


def test_tags_json(registry: Registry, samples: dict[str, Any]) -> None:
    done = run_cli("tags", "--json", *registry_flags(registry), f"{registry.host}/samples/oci")
    assert json.loads(done.stdout) == {
        "source": f"{registry.host}/samples/oci",
        "tags": ["latest"],
        "count": 1,
        "pages": 1,
    }


def test_python_api_batch(registry: Registry, samples: dict[str, Any]) -> None:
    import asyncio

    from regpeek.batch import inspect_many

    async def run() -> list[Any]:
        async with regpeek.AsyncClient(**client_options(registry)) as client:
            return [
                o async for o in inspect_many(client, [f"{registry.host}/samples/oci", "bad ref"], jobs=2)
            ]

    outcomes = asyncio.run(run())
    assert outcomes[0].result is not None and str(outcomes[0].result.digest) == samples["samples/oci"].digest
    assert isinstance(outcomes[1].error, regpeek.UsageError) and outcomes[1].exit_code == 2


def test_memory_flat_for_100000_references(tmp_path: Path) -> None:
    """The input is streamed: 100,000 references take no more memory than 1,000 (peak RSS, /usr/bin/time)."""
    import subprocess
    import sys

    peaks = {}
    for count in (1_000, 100_000):
        refs = tmp_path / f"{count}.txt"
        refs.write_text("".join(f"Not A Reference {n}\n" for n in range(count)))  # fails fast, no network
        done = subprocess.run(
            ["/usr/bin/time", "-f", "%M", sys.executable, "-m", "regpeek", "inspect", "--no-cache", "--from-file", str(refs)],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert done.returncode == 2
        assert done.stdout.count("\n") == count
        peaks[count] = int(done.stderr.strip().splitlines()[-1])
    assert peaks[100_000] < peaks[1_000] + 10 * 1024  # KiB: within 10 MiB
