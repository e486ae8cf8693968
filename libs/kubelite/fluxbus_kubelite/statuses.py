"""The status a simulated controller or kubelet writes for each workload kind.

Deployments, StatefulSets, DaemonSets and ReplicaSets become ready, unless
`broken` (their image matches SimulationConfig.broken_image). Pods and Jobs
follow the rules below.

Run-to-completion Pods (restartPolicy Never or OnFailure) and Jobs
-----------------------------------------------------------------
kubelite runs no container; it reads what each container would do from its
command and args. A shell script (`sh|bash|ash -c "<script>"`) or a plain
command is interpreted with these few words only:

- `echo <words>` prints a line of the container's log (`GET .../pods/<name>/log`);
- `exit <N>` stops the container with exit code N;
- `false` fails (code 1), `true` and every other command succeed (code 0);
- `;`, newlines and `|` sequence commands, `&&` / `||` run the next one only
  after a success / a failure (POSIX and-or lists); the container's exit code
  is the last command's.

So `command: [sh, -c, "echo checking; exit 1"]` logs `checking` and fails.
A Pod whose containers all exit 0 reaches phase `Succeeded`; with a non-zero
exit it reaches `Failed` (restartPolicy Never), or keeps restarting in
`CrashLoopBackOff` and stays `Running`, not Ready (OnFailure), as a kubelet
does. Pods with restartPolicy Always (the default) are servers: `Running` and
Ready, unless a container exits non-zero (`CrashLoopBackOff`); the workloads
(Deployment...) of such a template never become ready either. A Job whose
pod template succeeds is `Complete`; one whose template fails is `Failed`
with reason `BackoffLimitExceeded` after `backoffLimit + 1` (default 7)
failed pods. A broken image keeps any Pod `Pending` (ImagePullBackOff) and
any Job active.

Pure: no I/O.
"""

from __future__ import annotations

import json
import shlex
import zlib
from dataclasses import dataclass
from typing import Any

SHELLS = {"sh", "bash", "ash", "dash", "zsh"}


@dataclass(frozen=True)
class Run:
    """What a container does when kubelite pretends to run it."""

    exit_code: int
    log: str


def _script(container: dict[str, Any]) -> tuple[list[str], str | None]:
    """(argv, shell script or None) of a container."""
    argv = [str(a) for a in (container.get("command") or []) + (container.get("args") or [])]
    if argv and argv[0].rsplit("/", 1)[-1] in SHELLS and "-c" in argv[1:]:
        i = argv.index("-c", 1)
        return argv, argv[i + 1] if i + 1 < len(argv) else ""
    return argv, None


def _tokens(script: str) -> list[str]:
    lex = shlex.shlex(script, posix=True, punctuation_chars=";&|\n")
    lex.whitespace = " \t\r"
    lex.commenters = "#"
    return list(lex)


def _and_or_list(tokens: list[str]) -> list[tuple[str, list[str]]]:
    """Commands with the operator before each (";" for the first and after ; | & newline)."""
    out: list[tuple[str, list[str]]] = []
    op = ";"
    words: list[str] = []
    for tok in tokens:
        if tok and set(tok) <= {";", "\n", "|", "&"}:
            if words:
                out.append((op, words))
            op = "&&" if "&&" in tok else "||" if "||" in tok else ";"
            words = []
        else:
            words.append(tok)
    if words:
        out.append((op, words))
    return out


def run_container(container: dict[str, Any]) -> Run:
    """Interpret a container's command as the module docstring says."""
    argv, script = _script(container)
    try:
        commands = _and_or_list(_tokens(script)) if script is not None else [(";", argv)]
    except ValueError:  # unbalanced quotes: the shell cannot parse the script
        return Run(2, "")
    lines: list[str] = []
    status = 0
    for op, words in commands:
        if not words or (op == "&&" and status != 0) or (op == "||" and status == 0):
            continue
        if words[0] == "exit":
            status = int(words[1]) % 256 if len(words) > 1 and words[1].isdigit() else status
            break
        status = 1 if words[0] == "false" else 0
        if words[0] == "echo":
            lines.append(" ".join(words[1:]))
    return Run(status, "".join(f"{line}\n" for line in lines))


def condition(
    ctype: str,
    status: str,
    reason: str,
    message: str,
    old: dict[str, Any],
    t: str,
    style: str = "workload",
) -> dict[str, Any]:
    """A condition, kept as it was when nothing changed (stable transition times).

    style: `workload` (Deployment: lastUpdateTime), `probe` (Pod, Job: lastProbeTime).
    """
    prev: dict[str, Any] | None = next(
        (c for c in old.get("conditions") or [] if c.get("type") == ctype), None
    )
    if prev and prev.get("status") == status and prev.get("reason", "") == reason:
        return prev
    cond: dict[str, Any] = {"type": ctype, "status": status}
    if style == "workload":
        cond["lastUpdateTime"] = t
    else:
        cond["lastProbeTime"] = None
    cond["lastTransitionTime"] = t
    if reason:
        cond["reason"] = reason
    if message:
        cond["message"] = message
    return cond


SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # the API machinery's safe encoding


def pod_template_hash(template: dict[str, Any]) -> str:
    """The `pod-template-hash` of a pod template (stable; without its own label)."""
    labels = dict((template.get("metadata") or {}).get("labels") or {})
    labels.pop("pod-template-hash", None)
    canon = {**template, "metadata": {**(template.get("metadata") or {}), "labels": labels}}
    h = zlib.crc32(json.dumps(canon, sort_keys=True).encode())
    out = ""
    while h:
        h, r = divmod(h, len(SAFE_ALPHABET))
        out += SAFE_ALPHABET[r]
    return out or SAFE_ALPHABET[0]


def replicaset_for(deployment: dict[str, Any]) -> dict[str, Any]:
    """The ReplicaSet the deployment controller runs for a Deployment's current template."""
    md = deployment["metadata"]
    spec = deployment.get("spec") or {}
    template = json.loads(json.dumps(spec.get("template") or {}))
    h = pod_template_hash(template)
    tmd = template.setdefault("metadata", {})
    tmd["labels"] = {**(tmd.get("labels") or {}), "pod-template-hash": h}
    selector = json.loads(json.dumps(spec.get("selector") or {}))
    selector["matchLabels"] = {**(selector.get("matchLabels") or {}), "pod-template-hash": h}
    owner = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": md["name"],
        "uid": md.get("uid", ""),
        "controller": True,
        "blockOwnerDeletion": True,
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": f"{md['name']}-{h}",
            "namespace": md.get("namespace", ""),
            "labels": tmd["labels"],
            "ownerReferences": [owner],
        },
        "spec": {"replicas": spec.get("replicas", 1), "selector": selector, "template": template},
    }


def deployment_status(
    rs: str, gen: int, replicas: int, broken: bool, old: dict[str, Any], t: str
) -> dict[str, Any]:
    """`rs`: the name of the Deployment's current ReplicaSet."""
    status: dict[str, Any] = {"observedGeneration": gen}
    if replicas:
        status["replicas"] = replicas
        status["updatedReplicas"] = replicas
    if broken:
        if replicas:
            status["unavailableReplicas"] = replicas
        conds = [
            condition(
                "Available",
                "False",
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.",
                old,
                t,
            ),
            condition(
                "Progressing",
                "True",
                "ReplicaSetUpdated",
                f'ReplicaSet "{rs}" is progressing.',
                old,
                t,
            ),
        ]
    else:
        if replicas:
            status["readyReplicas"] = replicas
            status["availableReplicas"] = replicas
        conds = [
            condition(
                "Available",
                "True",
                "MinimumReplicasAvailable",
                "Deployment has minimum availability.",
                old,
                t,
            ),
            condition(
                "Progressing",
                "True",
                "NewReplicaSetAvailable",
                f'ReplicaSet "{rs}" has successfully progressed.',
                old,
                t,
            ),
        ]
    status["conditions"] = conds
    return status


def _terminated(run: Run, old_state: dict[str, Any], t: str) -> dict[str, Any]:
    prev = old_state.get("terminated") or {}
    if prev.get("exitCode") == run.exit_code:
        return {"terminated": prev}
    return {
        "terminated": {
            "exitCode": run.exit_code,
            "reason": "Error" if run.exit_code else "Completed",
            "startedAt": t,
            "finishedAt": t,
        }
    }


def _container_status(
    c: dict[str, Any], state: dict[str, Any], ready: bool, restarts: int = 0
) -> dict[str, Any]:
    return {
        "name": c.get("name", ""),
        "image": c.get("image", ""),
        "ready": ready,
        "restartCount": restarts,
        "started": ready,
        "state": state,
    }


def pod_status(pod: dict[str, Any], broken: bool, old: dict[str, Any], t: str) -> dict[str, Any]:
    """A Pod's status from its spec (see the module docstring)."""
    containers = [c for c in pod.get("containers") or [] if isinstance(c, dict)]
    olds = {cs.get("name"): cs.get("state") or {} for cs in old.get("containerStatuses") or []}
    policy = pod.get("restartPolicy") or "Always"
    phase, reason = ("Pending", "ContainersNotReady") if broken else ("Running", "")
    statuses = []
    for c in containers:
        image = c.get("image", "")
        if broken:
            waiting = {"reason": "ImagePullBackOff", "message": f'Back-off pulling image "{image}"'}
            statuses.append(_container_status(c, {"waiting": waiting}, False))
        else:
            run = run_container(c)
            state = _terminated(run, olds.get(c.get("name")) or {}, t)
            if run.exit_code and policy != "Never":
                message = f"back-off restarting failed container {c.get('name', '')}"
                backoff = {"waiting": {"reason": "CrashLoopBackOff", "message": message}}
                statuses.append({**_container_status(c, backoff, False, 1), "lastState": state})
                reason = "ContainersNotReady"
            elif policy == "Always":  # a server: it keeps running
                running = {"running": {"startedAt": old.get("startTime", t)}}
                statuses.append(_container_status(c, running, True))
            else:
                statuses.append(_container_status(c, state, False))
    if not broken and policy != "Always" and not reason:
        failed = any(cs["state"]["terminated"]["exitCode"] for cs in statuses)
        phase, reason = ("Failed", "PodFailed") if failed else ("Succeeded", "PodCompleted")
    ready = "False" if reason else "True"
    return {
        "phase": phase,
        "conditions": [
            condition("Initialized", "True", "", "", old, t, "probe"),
            condition("Ready", ready, reason, "", old, t, "probe"),
            condition("ContainersReady", ready, reason, "", old, t, "probe"),
            condition("PodScheduled", "True", "", "", old, t, "probe"),
        ],
        "containerStatuses": statuses,
        "hostIP": "127.0.0.1",
        "podIP": "127.0.0.1",
        "startTime": old.get("startTime", t),
    }


def job_status(spec: dict[str, Any], broken: bool, old: dict[str, Any], t: str) -> dict[str, Any]:
    """A Job's status: active while broken, else Complete or Failed as its template runs."""
    start = old.get("startTime", t)
    if broken:
        return {"active": spec.get("parallelism", 1), "startTime": start, "ready": 0}
    pod = (spec.get("template") or {}).get("spec") or {}
    runs = [run_container(c) for c in pod.get("containers") or [] if isinstance(c, dict)]
    if any(r.exit_code for r in runs):
        message = "Job has reached the specified backoff limit"
        return {
            "startTime": start,
            "failed": int(spec.get("backoffLimit", 6)) + 1,
            "ready": 0,
            "terminating": 0,
            "conditions": [
                condition(
                    "FailureTarget", "True", "BackoffLimitExceeded", message, old, t, "probe"
                ),
                condition("Failed", "True", "BackoffLimitExceeded", message, old, t, "probe"),
            ],
        }
    done = spec.get("completions", 1)
    message = "Reached expected number of succeeded pods"
    return {
        "startTime": start,
        "completionTime": old.get("completionTime", t),
        "succeeded": done,
        "ready": 0,
        "conditions": [
            condition("SuccessCriteriaMet", "True", "CompletionsReached", message, old, t, "probe"),
            condition("Complete", "True", "CompletionsReached", message, old, t, "probe"),
        ],
    }


def statefulset_status(name: str, gen: int, replicas: int, broken: bool) -> dict[str, Any]:
    rev = f"{name}-{gen:010d}"
    status: dict[str, Any] = {
        "observedGeneration": gen,
        "replicas": replicas,
        "currentReplicas": replicas,
        "updatedReplicas": replicas,
        "currentRevision": rev,
        "updateRevision": rev,
        "collisionCount": 0,
    }
    if not broken:
        status["readyReplicas"] = replicas
        status["availableReplicas"] = replicas
    else:
        status["availableReplicas"] = 0
    return status


def daemonset_status(gen: int, broken: bool) -> dict[str, Any]:
    ready = 0 if broken else 1
    status = {
        "currentNumberScheduled": 1,
        "desiredNumberScheduled": 1,
        "numberMisscheduled": 0,
        "numberReady": ready,
        "observedGeneration": gen,
        "updatedNumberScheduled": 1,
    }
    if ready:
        status["numberAvailable"] = 1
    else:
        status["numberUnavailable"] = 1
    return status


def replicaset_status(gen: int, replicas: int, broken: bool) -> dict[str, Any]:
    status: dict[str, Any] = {
        "observedGeneration": gen,
        "replicas": replicas,
        "fullyLabeledReplicas": replicas,
    }
    if not broken:
        status["readyReplicas"] = replicas
        status["availableReplicas"] = replicas
    return status
