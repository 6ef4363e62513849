"""The project's own promises: documented settings, deploy manifests that match the app."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

import yaml
from packaging.version import Version

from app.main import create_app
from app.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def test_every_setting_is_documented_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    missing = [name for name in Settings.model_fields if f"`ASR_{name.upper()}`" not in readme]
    assert not missing


def test_readme_starts_with_the_two_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    assert readme.index("make run") < readme.index("make test") < readme.index("curl")


def test_kubernetes_probes_point_at_real_routes() -> None:
    documents = list(yaml.safe_load_all((ROOT / "deploy" / "kubernetes.yaml").read_text()))
    container = documents[0]["spec"]["template"]["spec"]["containers"][0]
    paths = set(create_app(Settings()).openapi()["paths"])
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["path"] in paths
    assert container["ports"][0]["containerPort"] == Settings().port
    assert container["ports"][1] == {"name": "grpc", "containerPort": Settings().grpc_port}
    service_ports = {p["name"]: p["port"] for p in documents[1]["spec"]["ports"]}
    assert service_ports == {"http": Settings().port, "grpc": Settings().grpc_port}
    assert documents[0]["spec"]["template"]["metadata"]["annotations"]["prometheus.io/path"] in paths


def test_the_prosa_audio_limit_cannot_pass_the_global_one() -> None:
    import pytest
    from pydantic import ValidationError

    assert Settings().prosa_max_audio_seconds is None  # Prosa jobs obey ASR_MAX_AUDIO_SECONDS
    with pytest.raises(ValidationError, match="ASR_PROSA_MAX_AUDIO_SECONDS"):
        Settings(prosa_max_audio_seconds=14_400)  # Prosa's documented 4 h, over the 2 h default
    assert Settings(max_audio_seconds=14_400, prosa_max_audio_seconds=14_400).prosa_max_audio_seconds == 14_400


def test_installed_packages_clear_every_known_cve_of_the_serving_stack() -> None:
    rows = [line.split("|")[1:-1] for line in (ROOT / "docs/security.md").read_text().splitlines()]
    cves = [[cell.strip() for cell in row] for row in rows if row and row[0].strip().startswith("CVE-")]
    assert len(cves) >= 10
    vulnerable = [
        (cve, package, metadata.version(package), fixed)
        for cve, package, _, fixed in cves
        if Version(metadata.version(package)) < Version(fixed)
    ]
    assert not vulnerable
    floors = (ROOT / "pyproject.toml").read_text()
    for package in {package for _, package, _, _ in cves}:
        floor = max((Version(fixed) for _, name, _, fixed in cves if name == package))
        assert f'"{package}>={floor}"' in floors, package
