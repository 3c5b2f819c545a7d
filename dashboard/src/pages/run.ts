/**
 * A run, live: the DAG coloured by node status with untaken edges greyed, the timeline of
 * attempts, the event log and the node panel (opened on the first failed node); cancel,
 * re-run and re-run from failure. Events are applied in batches, one per animation frame, so
 * a burst of thousands costs one repaint.
 */
import { describeError, gql } from "../api.ts";
import { h, replace, statusBadge } from "../dom.ts";
import { createEventLog } from "../event-log.ts";
import { renderGantt } from "../gantt.ts";
import { renderGraph } from "../graph.ts";
import { followRun, type LiveState, type RunEvent, type Transport } from "../live.ts";
import type { PageContext } from "../main.ts";
import { showNode } from "../node-panel.ts";
import { RunModel } from "../run-model.ts";

interface RunHead {
  id: string;
  status: string;
  error: string | null;
  pipelineVersion: number;
  rerunOf: { id: string } | null;
  pipeline: {
    id: string;
    name: string;
    version: number;
    edges: { source: string; target: string; branch: string | null }[];
  };
  nodeRuns: {
    nodeId: string;
    type: string;
    name: string | null;
    status: string;
    error: string | null;
  }[];
}

const QUERY = `query DashboardRun($id: ID!) {
  run(id: $id) { id status error pipelineVersion rerunOf { id }
    pipeline { id name version edges { source target branch } }
    nodeRuns { nodeId type name status error } }
}`;
const VERSIONS = `query DashboardRunVersion($id: ID!) {
  pipeline(id: $id) { versions { version edges { source target branch } } }
}`;
const SETTLE = `query DashboardRunSettle($id: ID!) { run(id: $id) { status error nodeRuns { nodeId status error } } }`;
const ACTIVE = new Set(["QUEUED", "RUNNING"]);
const LIVE_TEXT: Record<LiveState, string> = {
  connecting: "connecting…",
  live: "live",
  reconnecting: "reconnecting…",
  ended: "ended",
  offline: "offline",
};

/** The edges of the definition the run executes (an update since then changed the pipeline's). */
async function edgesOf(run: RunHead): Promise<RunHead["pipeline"]["edges"]> {
  if (run.pipeline.version === run.pipelineVersion) return run.pipeline.edges;
  const { pipeline } = await gql<{
    pipeline: { versions: { version: number; edges: RunHead["pipeline"]["edges"] }[] } | null;
  }>(VERSIONS, { id: run.pipeline.id });
  return (
    pipeline?.versions.find((v) => v.version === run.pipelineVersion)?.edges ?? run.pipeline.edges
  );
}

export async function showRun(context: PageContext, id: string): Promise<void> {
  const { run } = await gql<{ run: RunHead | null }>(QUERY, { id });
  if (!run) return replace(context.root, h("p", { class: "error" }, `No run ${id}.`));
  document.title = `Run ${id.slice(0, 8)} · ${run.pipeline.name}`;
  const model = new RunModel(run.nodeRuns, await edgesOf(run), run.status);

  const status = h("span", { id: "run-status" });
  const runError = h("p", { class: "error", id: "run-error" });
  const message = h("span", { class: "action-result" });
  const act = async (mutation: string, field: string) => {
    try {
      const data = await gql<Record<string, { id: string }>>(mutation, { id });
      if (data[field]!.id !== id) context.navigate(`#/runs/${data[field]!.id}`);
    } catch (error) {
      replace(message, h("span", { class: "error" }, describeError(error)));
    }
  };
  const cancel = h(
    "button",
    {
      type: "button",
      id: "cancel",
      onclick: () =>
        void act("mutation DashboardCancel($id: ID!) { cancelRun(id: $id) { id } }", "cancelRun"),
    },
    "Cancel",
  );
  const rerun = h(
    "button",
    {
      type: "button",
      id: "rerun",
      onclick: () =>
        void act(
          "mutation DashboardRerun($id: ID!) { rerunRun(id: $id, fromFailure: false) { id } }",
          "rerunRun",
        ),
    },
    "Re-run",
  );
  const fromFailure = h(
    "button",
    {
      type: "button",
      id: "rerun-failed",
      class: "primary",
      onclick: () =>
        void act(
          "mutation DashboardRerunFailed($id: ID!) { rerunRun(id: $id, fromFailure: true) { id } }",
          "rerunRun",
        ),
    },
    "Re-run from failure",
  );
  const dag = h("div", { class: "dag-box", id: "dag" });
  const gantt = h("div", { class: "gantt-box", id: "gantt" });
  const panel = h("aside", { class: "panel", id: "node-panel" });
  let selected: string | undefined;
  let chosenByUser = false;
  const select = (nodeId: string, byUser: boolean) => {
    chosenByUser ||= byUser;
    selected = nodeId;
    view.select(nodeId);
    void showNode(panel, id, model, nodeId, () => selected === nodeId);
  };
  const log = createEventLog(model.events, (nodeId) => select(nodeId, true));
  replace(
    context.root,
    h(
      "p",
      { class: "crumbs" },
      h("a", { href: "#/" }, "Pipelines"),
      " / ",
      h("a", { href: `#/pipelines/${run.pipeline.id}` }, run.pipeline.name),
      ` / run ${id.slice(0, 8)}`,
    ),
    h(
      "div",
      { class: "run-head" },
      h("h1", {}, "Run ", h("code", {}, id.slice(0, 8)), " ", status),
      h("div", { class: "actions" }, cancel, rerun, fromFailure, message),
    ),
    run.rerunOf
      ? h(
          "p",
          {},
          "Re-run of ",
          h("a", { href: `#/runs/${run.rerunOf.id}` }, run.rerunOf.id.slice(0, 8)),
        )
      : null,
    runError,
    h(
      "div",
      { class: "run-body" },
      h("div", { class: "run-main" }, dag, h("h2", {}, "Timeline"), gantt, log.element),
      panel,
    ),
  );
  const view = renderGraph(
    dag,
    run.nodeRuns.map((n) => ({ id: n.nodeId, type: n.type, name: n.name })),
    model.edges,
    (nodeId) => select(nodeId, true),
  );
  log.setNodes(run.nodeRuns.map((n) => n.nodeId));
  const edgesByNode = new Map<string, number[]>();
  view.layout.edges.forEach(({ edge }, i) => {
    for (const end of [edge.source, edge.target])
      edgesByNode.set(end, [...(edgesByNode.get(end) ?? []), i]);
  });
  const paintNode = (nodeId: string) => {
    const node = model.nodes.get(nodeId)!;
    view.setStatus(nodeId, node.status);
    view.setBadge(
      nodeId,
      node.reusedFrom ? "reused" : node.attempts.length > 1 ? `×${node.attempts.length}` : null,
    );
    for (const i of edgesByNode.get(nodeId) ?? [])
      view.setDead(i, model.isDead(view.layout.edges[i]!.edge));
  };
  const paintHead = () => {
    replace(status, statusBadge(model.runStatus));
    const active = ACTIVE.has(model.runStatus);
    cancel.disabled = !active;
    rerun.disabled = active;
    // From failure needs something that did not complete.
    fromFailure.disabled =
      active || [...model.nodes.values()].every((node) => node.status === "COMPLETED");
  };
  paintHead();
  performance.mark("dashboard:run-drawn");

  let queue: RunEvent[] = [];
  let frame = 0;
  let ganttDrawn = 0;
  let ganttTimer: ReturnType<typeof setTimeout> | undefined;
  const drawGantt = () => {
    ganttTimer = undefined;
    ganttDrawn = Date.now();
    renderGantt(
      gantt,
      model,
      Math.max(Date.now(), model.events.length ? Date.parse(model.events.at(-1)!.at) : 0),
    );
  };
  const settle = async () => {
    const settled = await gql<{
      run: {
        status: string;
        error: string | null;
        nodeRuns: { nodeId: string; status: string; error: string | null }[];
      };
    }>(SETTLE, { id });
    model.settle(settled.run.nodeRuns);
    model.runStatus = settled.run.status;
    runError.textContent = settled.run.error ?? "";
    for (const nodeId of model.nodes.keys()) paintNode(nodeId);
    paintHead();
    drawGantt();
    if (!chosenByUser && model.firstFailed) select(model.firstFailed, false);
    performance.mark("dashboard:run-settled");
    document.body.dataset.runSettled = "true";
  };
  const flush = () => {
    frame = 0;
    const batch = queue;
    queue = [];
    const changed = new Set<string>();
    let ended = false;
    for (const event of batch) {
      const nodeId = model.apply(event);
      if (nodeId) changed.add(nodeId);
      if (event.type.startsWith("RUN_") && event.type !== "RUN_STARTED") ended = true;
    }
    for (const nodeId of ended ? model.nodes.keys() : changed) paintNode(nodeId);
    paintHead();
    log.update();
    if (!chosenByUser && model.firstFailed && selected !== model.firstFailed)
      select(model.firstFailed, false);
    else if (selected && changed.has(selected)) select(selected, chosenByUser);
    // The timeline at most four times a second: at 2,000 rows it is the costliest drawing.
    if (!ganttTimer)
      ganttTimer = setTimeout(drawGantt, Math.max(0, 250 - (Date.now() - ganttDrawn)));
    if (ended)
      void settle().catch((error: unknown) =>
        replace(message, h("span", { class: "error" }, describeError(error))),
      );
  };
  const transport = new URLSearchParams(location.search).get("transport");
  const live = followRun({
    runId: id,
    after: 0,
    transport: transport === "sse" || transport === "ws" ? (transport as Transport) : undefined,
    onEvent: (event) => {
      queue.push(event);
      frame ||= requestAnimationFrame(flush);
    },
    onState: (state, via) => {
      context.liveMark.dataset.state = state;
      context.liveMark.dataset.transport = via;
      context.liveMark.textContent = `${LIVE_TEXT[state]} (${via === "ws" ? "WebSocket" : "SSE"})`;
    },
  });
  context.onLeave(() => {
    live.stop();
    cancelAnimationFrame(frame);
    clearTimeout(ganttTimer);
    delete document.body.dataset.runSettled;
  });
  drawGantt();
}
