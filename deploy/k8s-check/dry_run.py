"""A small Kubernetes client for `make k8s-check`'s server-side dry-run (there is no kubectl).

    python deploy/k8s-check/dry_run.py --server URL --token-file F --ca F wait --timeout 180
    python deploy/k8s-check/dry_run.py --server URL --token-file F --ca F crds FILE...
    python deploy/k8s-check/dry_run.py --server URL --token-file F --ca F apply --namespace NS FILE...

`wait` polls /readyz. `crds` creates the CustomResourceDefinitions in the files (for real) and
waits until each is established and its kind is in discovery. `apply` creates the namespace (for
real), maps each object's apiVersion and kind to its resource through discovery (/api, /apis),
and POSTs it to the resource's collection with ?dryRun=All&fieldValidation=Strict, so the API
server validates and admits it, unknown fields refused, and stores nothing. Each refusal is
printed with its file, kind/name and the server's message; the exit code is 1 if any object was
refused.
"""

from __future__ import annotations

import argparse
import os
import ssl
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

DRY_RUN = {"dryRun": "All", "fieldValidation": "Strict"}
FIELD_MANAGER = "k8s-check"


@dataclass(frozen=True)
class Resource:
    name: str
    namespaced: bool


class Server:
    def __init__(self, url: str, token: str, ca: Path) -> None:
        self.url = url
        self.token = token
        self.ca = ca
        self._client: httpx.Client | None = None

    @property
    def client(self) -> httpx.Client:
        # Made on first use: the API server writes its self-signed certificate as it starts.
        if self._client is None:
            context = ssl.create_default_context(cafile=str(self.ca))
            self._client = httpx.Client(
                base_url=self.url,
                headers={"Authorization": f"Bearer {self.token}"},
                verify=context,
                timeout=30.0,
            )
        return self._client

    def discovery(self) -> dict[tuple[str, str], Resource]:
        """(apiVersion, kind) -> resource, for every served group version."""
        versions = [f"/api/{v}" for v in self.client.get("/api").raise_for_status().json()["versions"]]
        for group in self.client.get("/apis").raise_for_status().json()["groups"]:
            versions += [f"/apis/{v['groupVersion']}" for v in group["versions"]]
        found: dict[tuple[str, str], Resource] = {}
        for path in versions:
            listing = self.client.get(path).raise_for_status().json()
            for res in listing["resources"]:
                if "/" in res["name"]:  # a subresource (status, scale, ...)
                    continue
                found[(listing["groupVersion"], res["kind"])] = Resource(res["name"], res["namespaced"])
        return found


def collection_path(api_version: str, resource: Resource, namespace: str | None) -> str:
    root = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
    if resource.namespaced:
        return f"{root}/namespaces/{namespace}/{resource.name}"
    return f"{root}/{resource.name}"


def status_message(response: httpx.Response) -> str:
    """The server's message for a refusal (a Status object), or the body as it came."""
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}: {response.text.strip()[:2000]}"
    message = body.get("message") or response.text
    return f"HTTP {response.status_code} {body.get('reason', '')}: {message}".replace(" :", ":")


def load_objects(path: Path) -> list[dict[str, Any]]:
    objects = []
    for doc in yaml.safe_load_all(path.read_text()):
        if not doc:
            continue
        if doc.get("kind", "").endswith("List") and "items" in doc:
            objects.extend(item for item in doc["items"] if item)
        else:
            objects.append(doc)
    return objects


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def wait_ready(server: Server, timeout: float, watched: dict[str, int]) -> int:
    """0 once /readyz answers 200; 1 at the timeout or as soon as a watched process has exited."""
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    while time.monotonic() < deadline:
        for name, pid in watched.items():
            if not _running(pid):
                print(f"dry-run: {name} exited before the API server was ready ({last})", file=sys.stderr)
                return 1
        try:
            if server.ca.exists():
                response = server.client.get("/readyz")
                if response.status_code == 200:
                    return 0
                last = f"HTTP {response.status_code}: {response.text.strip()[-500:]}"
        except (httpx.TransportError, ssl.SSLError) as exc:
            last = f"{type(exc).__name__}: {exc}"
            server._client = None
        time.sleep(0.5)
    print(f"dry-run: the API server was not ready within {timeout:.0f} s ({last})", file=sys.stderr)
    return 1


def install_crds(server: Server, files: list[Path], timeout: float) -> int:
    names = []
    for path in files:
        for crd in load_objects(path):
            if crd.get("kind") != "CustomResourceDefinition":
                continue
            name = crd["metadata"]["name"]
            response = server.client.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", json=crd)
            if response.status_code not in (200, 201):
                print(f"dry-run: CRD {name} from {path.name} refused: {status_message(response)}", file=sys.stderr)
                return 1
            names.append((name, crd))
    deadline = time.monotonic() + timeout
    for name, crd in names:
        group = crd["spec"]["group"]
        kind = crd["spec"]["names"]["kind"]
        versions = [v["name"] for v in crd["spec"]["versions"] if v.get("served", True)]
        while True:
            got = server.client.get(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
            conditions = got.raise_for_status().json().get("status", {}).get("conditions", [])
            established = any(c["type"] == "Established" and c["status"] == "True" for c in conditions)
            if established and all(
                server.client.get(f"/apis/{group}/{v}").status_code == 200
                and any(r["kind"] == kind for r in server.client.get(f"/apis/{group}/{v}").json()["resources"])
                for v in versions
            ):
                break
            if time.monotonic() > deadline:
                print(f"dry-run: CRD {name} not established within {timeout:.0f} s: {conditions}", file=sys.stderr)
                return 1
            time.sleep(0.2)
        print(f"dry-run: installed CRD {name} ({kind}, {', '.join(versions)})")
    return 0


def ensure_namespace(server: Server, namespace: str) -> None:
    if server.client.get(f"/api/v1/namespaces/{namespace}").status_code == 200:
        return
    body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
    response = server.client.post("/api/v1/namespaces", json=body)
    if response.status_code not in (200, 201, 409):
        raise SystemExit(f"dry-run: could not create namespace {namespace}: {status_message(response)}")


def dry_run(server: Server, obj: dict[str, Any], resources: dict[tuple[str, str], Resource], namespace: str):
    """None if the server accepted the object, else why not; and the server's warnings."""
    api_version, kind = obj.get("apiVersion", ""), obj.get("kind", "")
    resource = resources.get((api_version, kind))
    if resource is None:
        return f"the API server serves no kind {kind} in {api_version or 'no apiVersion'}", []
    metadata = obj.get("metadata") or {}
    ns = metadata.get("namespace") or namespace
    path = collection_path(api_version, resource, ns)
    response = server.client.post(path, params=DRY_RUN, json=obj)
    if response.status_code == 409 and metadata.get("name"):
        # Already there (the namespace this check made): validate it as an update instead.
        response = server.client.patch(
            f"{path}/{metadata['name']}",
            params={**DRY_RUN, "fieldManager": FIELD_MANAGER, "force": "true"},
            content=yaml.safe_dump(obj),
            headers={"Content-Type": "application/apply-patch+yaml"},
        )
    warnings = response.headers.get_list("warning")
    if response.status_code in (200, 201):
        return None, warnings
    return status_message(response), warnings


def apply_files(server: Server, files: list[Path], namespace: str) -> int:
    refused = 0
    checked = 0
    prepared: list[tuple[Path, list[dict[str, Any]]]] = [(path, load_objects(path)) for path in files]
    namespaces = {namespace}
    for _, objects in prepared:
        namespaces |= {o["metadata"]["namespace"] for o in objects if (o.get("metadata") or {}).get("namespace")}
    for ns in sorted(namespaces):
        ensure_namespace(server, ns)
    resources = server.discovery()
    for path, objects in prepared:
        seen: set[tuple[str, str, str]] = set()
        for obj in objects:
            metadata = obj.get("metadata") or {}
            label = f"{obj.get('kind', '?')}/{metadata.get('name') or metadata.get('generateName', '?')}"
            key = (obj.get("kind", ""), metadata.get("namespace") or namespace, metadata.get("name", ""))
            checked += 1
            if key in seen and key[2]:
                refused += 1
                print(f"REFUSED {path.name}: {label}: rendered twice (a second object of the same kind and name)")
                continue
            seen.add(key)
            error, warnings = dry_run(server, obj, resources, namespace)
            for warning in warnings:
                print(f"warning {path.name}: {label}: {warning}")
            if error is None:
                print(f"ok      {path.name}: {label}")
            else:
                refused += 1
                print(f"REFUSED {path.name}: {label}: {error}")
    print(f"dry-run: {checked - refused} of {checked} objects accepted by the API server, {refused} refused")
    return 1 if refused else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server", required=True)
    parser.add_argument("--token-file", type=Path, required=True)
    parser.add_argument("--ca", type=Path, required=True, help="the API server's serving certificate")
    sub = parser.add_subparsers(dest="command", required=True)
    wait = sub.add_parser("wait")
    wait.add_argument("--timeout", type=float, default=180.0)
    wait.add_argument("--watch", action="append", default=[], metavar="NAME=PID", help="give up if it exits")
    crds = sub.add_parser("crds")
    crds.add_argument("--timeout", type=float, default=60.0)
    crds.add_argument("files", type=Path, nargs="+")
    apply = sub.add_parser("apply")
    apply.add_argument("--namespace", required=True)
    apply.add_argument("files", type=Path, nargs="+")
    args = parser.parse_args(argv)

    server = Server(args.server, args.token_file.read_text().strip(), args.ca)
    if args.command == "wait":
        watched = {name: int(pid) for name, _, pid in (w.partition("=") for w in args.watch)}
        return wait_ready(server, args.timeout, watched)
    if args.command == "crds":
        return install_crds(server, args.files, args.timeout)
    return apply_files(server, args.files, args.namespace)


if __name__ == "__main__":
    sys.exit(main())
