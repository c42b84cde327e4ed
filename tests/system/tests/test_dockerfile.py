"""The service image's Dockerfile and its locks: what the image is built from and what it holds.

No Docker engine runs here, so this reads the files: two stages on one pinned base, the runtime
stage copying only the build stage's virtualenv, a numeric non-root user, and a runtime lock that
holds no build, lint or test package and pins exactly what the tests' lock pins.
"""

from __future__ import annotations

import re

import pytest

from tests.system.stack import REPO

DOCKERFILE = REPO / "deploy" / "Dockerfile"
# Packages that must never be in the service image: building, linting and testing only.
TEST_ONLY = {
    "grpcio-tools",
    "pytest",
    "pytest-asyncio",
    "pytest-timeout",
    "pytest-xdist",
    "hypothesis",
    "trustme",
    "aiosmtpd",
    "ruff",
    "mypy",
    "types-protobuf",
    "asyncpg-stubs",
    "types-cachetools",
    "testcontainers",
    "docker",
    "setuptools",
}
BASE = re.compile(r"^python:3\.11\.\d+-slim-bookworm$")


def pins(path: str) -> dict[str, str]:
    """`name==version` lines of a requirements file (comments and hashes left out)."""
    text = (REPO / path).read_text()
    return dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", text, re.MULTILINE))


def stages() -> list[tuple[str, str, list[str]]]:
    """Each stage's base image, name and instruction lines (continuations joined)."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    found: list[tuple[str, str, list[str]]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("FROM "):
            words = line.split()
            found.append((words[1], words[3] if len(words) > 3 else "", []))
        else:
            found[-1][2].append(line)
    return found


def test_two_stages_on_one_pinned_base() -> None:
    found = stages()
    assert [name for _, name, _ in found] == ["build", "runtime"]
    bases = {base for base, _, _ in found}
    assert len(bases) == 1, "the virtualenv copied between stages needs the same interpreter"
    assert BASE.match(bases.pop()), "the base is a full Python version on a named Debian release"


def test_build_stage_generates_protos_and_installs_the_runtime_lock() -> None:
    _, _, build = stages()[0]
    text = "\n".join(build)
    assert "--require-hashes -r requirements-protos.lock" in text
    assert "--require-hashes -r requirements-runtime.lock" in text
    assert "grpc_tools.protoc" in text
    assert "/opt/venv/bin/pip uninstall --yes pip setuptools" in text, "no installer in the image's virtualenv"
    assert "requirements.lock" not in re.sub(r"requirements-\w+\.lock", "", text)


def test_runtime_stage_copies_the_virtualenv_only_and_runs_as_a_numeric_user() -> None:
    _, _, runtime = stages()[1]
    copies_from_build = [line for line in runtime if line.startswith("COPY --from=build")]
    assert copies_from_build == [
        "COPY --from=build /opt/venv /opt/venv",
        "COPY --from=build /build/genproto/ordersync libs/genproto/ordersync",
    ]
    assert not [line for line in runtime if "pip install" in line], "the runtime stage installs nothing"
    assert not [line for line in runtime if re.match(r"COPY (--\S+ )*tests", line)]
    users = [line.split()[1] for line in runtime if line.startswith("USER ")]
    assert users == ["10001:10001"]
    assert runtime[-1] == 'CMD ["python", "-m", "order_intake"]'


def test_image_imports_what_the_venv_imports() -> None:
    """The image's PYTHONPATH is the venv's .pth: the repo, generated code and the Makefile's IMPORT_ROOTS."""
    [env] = [line for line in stages()[1][2] if line.startswith("ENV PYTHONPATH=")]
    makefile = (REPO / "Makefile").read_text()
    services = re.search(r"^SERVICES\s*:= (.+)$", makefile, re.MULTILINE)
    roots = re.search(r"^IMPORT_ROOTS\s*:= (.+)$", makefile, re.MULTILINE)
    assert services and roots
    packages = roots.group(1).replace("$(SERVICES)", services.group(1)).split()
    assert "operator_console" in packages
    assert env.removeprefix("ENV PYTHONPATH=").split(":") == [
        "/app",
        "/app/libs/genproto",
        *(f"/app/services/{name}" for name in packages),
    ]
    for name in packages:
        assert (REPO / "services" / name / name / "__main__.py").is_file(), name


def test_dockerignore_keeps_every_tests_folder_out() -> None:
    lines = (REPO / ".dockerignore").read_text().splitlines()
    assert {"tests", "services/*/tests", "libs/**/tests"} <= set(lines)


@pytest.mark.parametrize("lock", ["requirements-runtime.lock", "requirements-protos.lock"])
def test_image_locks_pin_what_the_tests_ran(lock: str) -> None:
    dev, image = pins("requirements.lock"), pins(lock)
    assert image
    assert {name: version for name, version in image.items() if dev.get(name) != version} == {}
    header = (REPO / lock).read_text().splitlines()[1]
    assert "--generate-hashes -c requirements.lock" in header


def test_runtime_lock_has_no_build_lint_or_test_package() -> None:
    assert set(pins("requirements-runtime.lock")) & TEST_ONLY == set()


def test_runtime_lock_has_every_runtime_pin_of_requirements_in() -> None:
    """requirements.in's runtime section and requirements-runtime.in name the same pins."""
    runtime_section = (REPO / "requirements.in").read_text().split("# Build, lint and test")[0]
    wanted = dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", runtime_section, re.MULTILINE))
    runtime_in = pins("requirements-runtime.in")
    assert {name: version for name, version in wanted.items() if runtime_in.get(name) != version} == {}
    assert set(runtime_in) - set(wanted) <= {"pydantic", "tomli-w"}
    assert all(dev_pin in pins("requirements.in").items() for dev_pin in runtime_in.items())


def test_compose_runs_commands_the_image_has() -> None:
    """Every compose command of the app image names a module or script copied into it."""
    compose = (REPO / "docker-compose.yml").read_text()
    assert "dockerfile: deploy/Dockerfile\n" in compose
    modules = set(re.findall(r"python\", \"-m\", \"([\w.]+)\"", compose))
    modules |= set(re.findall(r"python -m ([\w.]+)", compose))
    assert {"order_intake", "compliance_routing", "fulfillment_dispatch", "tracking_writeback"} <= modules
    for module in modules:
        top = module.split(".")[0]
        assert (REPO / "services" / top).is_dir() or (REPO / top).is_dir(), module
    assert (REPO / "deploy" / "local" / "create_topics.py").is_file()
