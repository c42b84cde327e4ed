"""Lay out JSON schemas for `kubeconform -strict`, offline, in its -schema-location layout.

    python deploy/k8s-check/schemas.py --kubernetes-validate DIR --version 1.37.0 --crds DIR --out DIR

The built-in kinds come from the PyPI package kubernetes-validate installed in DIR (pip
--target): it carries, per Kubernetes version, a schema file per kind that refers to one
`_definitions.json` by an absolute `$ref` (/api/_definitions.json#/$defs/...) under an `$id` on
kubernetes.io. Read as they are, kubeconform would resolve those over the network; here the `$id`
is dropped and each `$ref` made relative, so they resolve to the `_definitions.json` beside the
file. The custom kinds come from the CustomResourceDefinitions in the --crds folder's YAML files: each served version's
openAPIV3Schema as a JSON schema (draft 4, kubeconform's default), with `nullable` as a null
type and, in the strict set, `additionalProperties: false` on every object that lists its
properties and does not keep unknown fields.

The output has both sets, as kubeconform looks them up:
    OUT/v1.37.0-standalone/deployment-apps-v1.json
    OUT/v1.37.0-standalone-strict/deployment-apps-v1.json   (read with -strict)
    OUT/v1.37.0-standalone-strict/scaledobject-keda-v1alpha1.json
"""

from __future__ import annotations

import argparse
import copy
import json
import shutil
import sys
from pathlib import Path
from typing import Any

import yaml

DEFINITIONS = "_definitions.json"
ABSOLUTE_REF = "/api/" + DEFINITIONS + "#"


def _localize(node: Any) -> Any:
    """The schema with `$id` dropped and /api/_definitions.json refs made relative."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "$id":
                continue
            if key == "$ref" and isinstance(value, str) and value.startswith(ABSOLUTE_REF):
                value = DEFINITIONS + value[len(DEFINITIONS) + len("/api/") :]
            out[key] = _localize(value)
        return out
    if isinstance(node, list):
        return [_localize(item) for item in node]
    return node


def _remote_refs(node: Any) -> list[str]:
    """Every `$ref` or `$id` left that would be fetched from elsewhere (none may be)."""
    found: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("$ref", "$id") and isinstance(value, str) and not value.startswith(("#", DEFINITIONS + "#")):
                found.append(value)
            else:
                found.extend(_remote_refs(value))
    elif isinstance(node, list):
        for item in node:
            found.extend(_remote_refs(item))
    return found


def builtin_schemas(package_dir: Path, version: str, out: Path) -> int:
    """Copy kubernetes-validate's schemas for `version` into both of kubeconform's sets."""
    source_root = package_dir / "kubernetes_validate" / "kubernetes-json-schema"
    written = 0
    for suffix in ("", "-strict"):
        source = source_root / f"v{version}-local{suffix}"
        if not source.is_dir():
            have = sorted(p.name for p in source_root.glob("v*-local")) if source_root.is_dir() else []
            raise SystemExit(f"schemas: no {source.name} in {source_root} (the package has {have})")
        target = out / f"v{version}-standalone{suffix}"
        target.mkdir(parents=True, exist_ok=True)
        for path in sorted(source.glob("*.json")):
            schema = _localize(json.loads(path.read_text()))
            left = _remote_refs(schema)
            if left:
                raise SystemExit(f"schemas: {path.name} still refers to {left[0]}")
            (target / path.name).write_text(json.dumps(schema))
            written += 1
    return written


def _openapi_to_jsonschema(node: Any, strict: bool) -> Any:
    """An openAPIV3Schema node as JSON schema: nullable as a null type; strict closes objects."""
    if isinstance(node, list):
        return [_openapi_to_jsonschema(item, strict) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _openapi_to_jsonschema(value, strict) for key, value in node.items()}
    if out.pop("nullable", False) and "type" in out:
        kinds = out["type"] if isinstance(out["type"], list) else [out["type"]]
        out["type"] = [*kinds, "null"]
    if (
        strict
        and "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


def crd_schemas(crd_files: list[Path], version: str, out: Path) -> list[str]:
    """A schema per served version of every CRD in the files, in both sets; their file names."""
    names: list[str] = []
    for crd_file in crd_files:
        for doc in yaml.safe_load_all(crd_file.read_text()):
            if not doc or doc.get("kind") != "CustomResourceDefinition":
                continue
            spec = doc["spec"]
            group_prefix = spec["group"].split(".")[0].lower()
            kind = spec["names"]["kind"].lower()
            for served in spec["versions"]:
                if not served.get("served", True):
                    continue
                schema = served.get("schema", {}).get("openAPIV3Schema")
                if schema is None:
                    raise SystemExit(f"schemas: {crd_file.name}: version {served['name']} has no openAPIV3Schema")
                name = f"{kind}-{group_prefix}-{served['name']}.json"
                for suffix, strict in (("", False), ("-strict", True)):
                    target = out / f"v{version}-standalone{suffix}"
                    target.mkdir(parents=True, exist_ok=True)
                    converted = _openapi_to_jsonschema(copy.deepcopy(schema), strict)
                    (target / name).write_text(json.dumps(converted))
                names.append(name)
    return names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--kubernetes-validate", type=Path, required=True, help="where kubernetes-validate is installed"
    )
    parser.add_argument("--version", required=True, help="Kubernetes version of the schemas, e.g. 1.37.0")
    parser.add_argument("--crds", type=Path, required=True, help="a folder of CRD YAML files")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)

    # Written beside and moved into place, so an interrupted run leaves no half set behind.
    partial = args.out.with_name(args.out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    count = builtin_schemas(args.kubernetes_validate, args.version, partial)
    custom = crd_schemas(sorted(args.crds.glob("*.yaml")), args.version, partial)
    shutil.rmtree(args.out, ignore_errors=True)
    partial.rename(args.out)
    print(
        f"schemas: Kubernetes {args.version} ({count // 2} files a set) and {len(custom)} of CRDs ({', '.join(custom)}) in {args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
