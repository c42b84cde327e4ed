"""The staff file and its passwords: who may sign in, as whom, with which roles."""

from __future__ import annotations

from pathlib import Path

import pytest

from libs.platform.config import ConfigError
from operator_console.staff import hash_password, load_staff, password_matches


def staff_file(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "staff.toml"
    path.write_text(body)
    return path


@pytest.fixture(scope="module")
def jane_hash() -> str:
    return hash_password("correct horse battery")


def test_a_password_matches_only_its_own_hash(jane_hash):
    assert password_matches(jane_hash, "correct horse battery")
    assert not password_matches(jane_hash, "correct horse battery!")
    assert hash_password("correct horse battery") != jane_hash  # a fresh salt every time


def test_a_member_signs_in_with_their_tenant_and_roles(tmp_path, jane_hash):
    path = staff_file(
        tmp_path,
        f'[staff."Jane@Winery.example"]\ntenant = "harbour"\npassword = "{jane_hash}"\nroles = ["operator"]\n',
    )
    staff = load_staff(path)
    member = staff.authenticate(" jane@winery.example ", "correct horse battery")
    assert member is not None
    assert (member.name, member.tenant_id, member.is_operator, member.can_write) == (
        "jane@winery.example",
        "harbour",
        True,
        False,
    )
    assert staff.authenticate("jane@winery.example", "wrong") is None
    assert staff.authenticate("nobody@winery.example", "correct horse battery") is None
    assert staff.find("jane@winery.example") == member


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("", "defines no"),
        ('[staff."a@b.example"]\npassword = "{hash}"\n', "'tenant' must be a tenant id"),
        ('[staff."a@b.example"]\ntenant = "t"\npassword = "hunter2"\n', "'password' must be a hash"),
        ('[staff."a@b.example"]\ntenant = "t"\npassword = "{hash}"\nroles = ["admin"]\n', "'roles' must list"),
        ('[staff."ordersync"]\ntenant = "t"\npassword = "{hash}"\n', "no one may be named 'ordersync'"),
        ('[staff."a@b.example"\n', "cannot read staff file"),
    ],
)
def test_a_wrong_staff_file_is_refused_naming_what_is_wrong(tmp_path, jane_hash, body, message):
    with pytest.raises(ConfigError, match=message):
        load_staff(staff_file(tmp_path, body.replace("{hash}", jane_hash)))
