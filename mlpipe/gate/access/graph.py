"""Draw who can reach what: the allowed needed calls as a graph, grouped by account and pipeline.

Why from the analysis and not from the policies: an edge is drawn only for a call the pipeline really makes and the
evaluator ALLOWED, so the picture shows the access a run uses, not everything a policy happens to permit. Nodes
are principals (roles, AWS services acting for an account) and resources (S3 areas, keys, state machines, ...);
edges are labelled by what the calls do ("read data", "decrypt", "assume", "pass role").
"""

from __future__ import annotations

import hashlib
import shutil
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import graphviz

from mlpipe.core.errors import PipelineError
from mlpipe.gate.access.analysis import AccessReport, CheckedCall, Expectation
from mlpipe.gate.access.evaluator import Outcome

RESOURCE_KINDS = {
    "codepipeline": "pipeline",
    "codecommit": "repository",
    "states": "state machine",
    "lambda": "function",
    "sqs": "queue",
    "sns": "topic",
    "kms": "key",
    "events": "event",
}
ACCOUNT_TITLES = {"shared": "shared services", "training": "training", "production": "production"}


class GraphvizMissing(PipelineError):
    """The ``dot`` program is not installed, so the SVG cannot be drawn."""


@dataclass(frozen=True)
class Node:
    id: str
    label: str
    account: str  # account key, or "other"
    kind: str  # role | service | resource


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    label: str
    kind: str  # assume | pass | data


@dataclass(frozen=True)
class AccessGraph:
    nodes: dict[str, Node]
    edges: list[Edge]
    groups: dict[str, str | None]  # node id -> the one pipeline it belongs to (None: shared by several)


def _id(key: str) -> str:
    return "n" + hashlib.sha256(key.encode()).hexdigest()[:10]


def _account_key(report: AccessReport, account_id: str | None) -> str:
    return report.accounts.get(account_id or "", "other")


def _principal(report: AccessReport, c: CheckedCall) -> Node:
    assert c.call is not None
    if c.principal.startswith("arn:"):
        account = c.principal.split(":")[4]
        name = report.labels.get(c.principal, c.principal.rsplit("/", 1)[-1])
        return Node(_id(c.principal), name, _account_key(report, account), "role")
    account = _account_key(report, c.call.principal_account or c.call.resource_account)
    return Node(_id(f"{c.principal}@{account}"), c.principal, account, "service")


def _resource(report: AccessReport, c: CheckedCall) -> Node:
    """The node a call's resource belongs to: an object to its bucket area, a log stream to its log group."""
    assert c.call is not None
    arn = c.resource
    if arn == "*":
        account = _account_key(report, c.principal.split(":")[4] if c.principal.startswith("arn:") else None)
        service = c.action.split(":", 1)[0]
        return Node(_id(f"*:{service}@{account}"), f"{service} (no resource ARN)", account, "resource")
    parts = arn.split(":", 5)
    service, account_id, rest = parts[2], parts[4], parts[5]
    if service == "iam":
        return Node(_id(arn), report.labels.get(arn, rest.rsplit("/", 1)[-1]), _account_key(report, account_id), "role")
    if service == "s3":
        bucket, _, key = rest.partition("/")
        area = key.split("/", 1)[0] + "/" if "/" in key else key
        node_key = f"arn:aws:s3:::{bucket}/{area}" if key else f"arn:aws:s3:::{bucket}"
        label = f"{bucket}: {area}" if key else f"{bucket} (listing)"
        return Node(_id(node_key), label, _account_key(report, c.call.resource_account), "resource")
    if service == "logs":
        group = arn.split(":log-stream:", 1)[0]
        label = f"log group {group.split(':log-group:', 1)[-1]}"
        return Node(_id(group), label, _account_key(report, account_id), "resource")
    if service == "states" and rest.startswith("execution:"):
        machine = rest.split(":")[1]
        key = f"{parts[0]}:{parts[1]}:states:{parts[3]}:{account_id}:stateMachine:{machine}"
        return Node(_id(key), f"state machine {machine}", _account_key(report, account_id), "resource")
    name = report.labels.get(arn) or (rest if service == "sagemaker" else rest.split(":")[-1])
    kind = RESOURCE_KINDS.get(service)
    return Node(_id(arn), f"{kind} {name}" if kind else name, _account_key(report, account_id), "resource")


def _kind(action: str) -> str:
    if action.lower().startswith("sts:assumerole"):
        return "assume"
    return "pass" if action.lower() == "iam:passrole" else "data"


def build_graph(report: AccessReport) -> AccessGraph:
    """Nodes and labelled edges of every ALLOWED needed call."""
    nodes: dict[str, Node] = {}
    edges: dict[tuple[str, str, str], Edge] = {}
    pipelines: dict[str, set[str]] = defaultdict(set)
    for c in report.calls:
        if c.expectation is not Expectation.NEEDED or c.decision is None or c.decision.outcome is not Outcome.ALLOWED:
            continue
        source, target = _principal(report, c), _resource(report, c)
        for node in (source, target):
            nodes.setdefault(node.id, node)
            pipelines[node.id].add(c.pipeline)
        edges.setdefault((source.id, target.id, c.label), Edge(source.id, target.id, c.label, _kind(c.action)))
    groups = {n: (next(iter(p)) if len(p) == 1 else None) for n, p in pipelines.items()}
    return AccessGraph(nodes, list(edges.values()), groups)


def _clusters(graph: AccessGraph) -> dict[str, dict[str | None, list[Node]]]:
    """Account -> pipeline (None: shared) -> nodes, in a stable order."""
    out: dict[str, dict[str | None, list[Node]]] = defaultdict(lambda: defaultdict(list))
    for node in sorted(graph.nodes.values(), key=lambda n: (n.account, n.kind, n.label)):
        out[node.account][graph.groups.get(node.id)].append(node)
    order = [*ACCOUNT_TITLES, "other"]
    return {a: out[a] for a in sorted(out, key=lambda a: order.index(a) if a in order else len(order))}


def _title(report: AccessReport, account: str) -> str:
    if account in report.config.accounts:
        return f"{ACCOUNT_TITLES.get(account, account)} account {report.config.accounts[account].account_id}"
    return "outside the three accounts"


def _mermaid_text(text: str) -> str:
    return text.replace('"', "#quot;")


def mermaid(report: AccessReport) -> str:
    """The graph as a Mermaid flowchart (accounts and pipelines as subgraphs)."""
    graph = build_graph(report)
    lines = ["flowchart LR"]
    for account, groups in _clusters(graph).items():
        lines.append(f'  subgraph acct_{account}["{_mermaid_text(_title(report, account))}"]')
        for pipeline, nodes in groups.items():
            indent = "    "
            if pipeline is not None:
                lines.append(f'    subgraph {account}_{pipeline}["{pipeline}"]')
                indent = "      "
            for node in nodes:
                shape = {"service": ('(["', '"])'), "resource": ('[("', '")]')}.get(node.kind, ('["', '"]'))
                lines.append(f"{indent}{node.id}{shape[0]}{_mermaid_text(node.label)}{shape[1]}")
            if pipeline is not None:
                lines.append("    end")
        lines.append("  end")
    arrows = {"assume": "==>", "pass": "-.->", "data": "-->"}
    for edge in graph.edges:
        lines.append(f'  {edge.source} {arrows[edge.kind]}|"{_mermaid_text(edge.label)}"| {edge.target}')
    return "\n".join(lines) + "\n"


def dot_source(report: AccessReport) -> str:
    """The graph in Graphviz's language (accounts and pipelines as clusters)."""
    graph = build_graph(report)
    dot = graphviz.Digraph("access", graph_attr={"rankdir": "LR", "fontname": "Helvetica", "fontsize": "11"})
    dot.attr("node", fontname="Helvetica", fontsize="10")
    dot.attr("edge", fontname="Helvetica", fontsize="9")
    for account, groups in _clusters(graph).items():
        with dot.subgraph(name=f"cluster_{account}") as outer:
            outer.attr(label=_title(report, account), style="rounded", color="gray40")
            for pipeline, nodes in groups.items():
                if pipeline is None:
                    _nodes(outer, nodes)
                    continue
                with outer.subgraph(name=f"cluster_{account}_{pipeline}") as inner:
                    inner.attr(label=pipeline, style="dashed", color="gray60")
                    _nodes(inner, nodes)
    styles = {"assume": {"style": "bold"}, "pass": {"style": "dashed"}, "data": {}}
    for edge in graph.edges:
        dot.edge(edge.source, edge.target, label=edge.label, **styles[edge.kind])
    return dot.source


def _nodes(scope: graphviz.Digraph, nodes: list[Node]) -> None:
    shapes = {"role": "box", "service": "ellipse", "resource": "cylinder"}
    for node in nodes:
        scope.node(node.id, node.label, shape=shapes[node.kind])


def render_svg(report: AccessReport, path: Path) -> Path:
    """Draw the graph as SVG at ``path`` with Graphviz's ``dot``."""
    if shutil.which("dot") is None:
        raise GraphvizMissing(
            "cannot draw the access graph: Graphviz's `dot` program is not installed",
            "install the Debian graphviz package (apt-get install graphviz), then run again",
        )
    source = graphviz.Source(dot_source(report))
    try:
        svg = source.pipe(format="svg")
    except graphviz.ExecutableNotFound as exc:
        raise GraphvizMissing(
            f"cannot draw the access graph: {exc}", "install the Debian graphviz package (apt-get install graphviz)"
        ) from exc
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(svg)
    return path
