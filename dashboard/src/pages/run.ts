/**
 * A run, live: the DAG coloured by node status with untaken edges greyed, the timeline of
 * attempts, the event log and the node panel (opened on the first failed node); cancel,
 * re-run and re-run from failure. The events stored when the page opens are read in one go
 * and drawn once (a finished run of 16,000 events is one paint); live ones are applied in
 * batches, one per animation frame, so a burst of thousands costs one repaint.
 */
import { describeError, gql } from "../api.ts";
import { h, replace, shortId, statusBadge } from "../dom.ts";
import { createEventLog } from "../event-log.ts";
import { createGantt } from "../gantt.ts";
import { renderGraph } from "../graph.ts";
import {
  followRun,
  isTerminalEvent,
  type LiveState,
  loadStoredEvents,
  type RunEvent,
  type Transport,
} from "../live.ts";
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
/** A run's end as the store reports it. */
interface RunSettled {
  status: string;
  error: string | null;
  nodeRuns: { nodeId: string; status: string; error: string | null }[];
}

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
  document.title = `Run ${shortId(id)} · ${run.pipeline.name}`;
  // The DAG is drawn in the node statuses the run reports while what happened so far (the
  // timeline, the log) comes over HTTP; the subscription starts after the last stored seq.
  // Asked for after the run, so that the server answers the run first.
  const storedEvents = loadStoredEvents(id);
  storedEvents.catch(() => undefined); // awaited below, unless the page is left first
  const model = new RunModel(run.nodeRuns, await edgesOf(run), run.status);

  const status = h("span", { id: "run-status" });
  const nodeCounts = h("p", { class: "counters", id: "node-counts" });
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
  const ganttBox = h("div", { class: "gantt-box", id: "gantt" });
  const panel = h("aside", { class: "panel", id: "node-panel" });
  let selected: string | undefined;
  let chosenByUser = false;
  const select = (nodeId: string, byUser: boolean) => {
    chosenByUser ||= byUser;
    const moved = selected !== nodeId;
    selected = nodeId;
    view.select(nodeId, moved);
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
      ` / run ${shortId(id)}`,
    ),
    h(
      "div",
      { class: "run-head" },
      h("h1", {}, "Run ", h("code", {}, shortId(id)), " ", status),
      h("div", { class: "actions" }, cancel, rerun, fromFailure, message),
    ),
    nodeCounts,
    run.rerunOf
      ? h(
          "p",
          {},
          "Re-run of ",
          h("a", { href: `#/runs/${run.rerunOf.id}` }, shortId(run.rerunOf.id)),
        )
      : null,
    runError,
    h(
      "div",
      { class: "run-body" },
      h("div", { class: "run-main" }, dag, h("h2", {}, "Timeline"), ganttBox, log.element),
      panel,
    ),
  );
  // Measures its box before the DAG is in the page (a cheap layout then, a costly one after).
  const gantt = createGantt(ganttBox, model);
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
    const counts = new Map<string, number>();
    for (const node of model.nodes.values())
      counts.set(node.status, (counts.get(node.status) ?? 0) + 1);
    // A graph too large to see at once still says where its nodes stand.
    nodeCounts.textContent = `${model.nodes.size} nodes: ${[...counts]
      .map(([name, n]) => `${n} ${name.toLowerCase()}`)
      .join(", ")}`;
    cancel.disabled = !active;
    rerun.disabled = active;
    // From failure needs something that did not complete.
    fromFailure.disabled = active || counts.get("COMPLETED") === model.nodes.size;
  };
  const pickFirstFailed = () => {
    if (!chosenByUser && model.firstFailed && selected !== model.firstFailed)
      select(model.firstFailed, false);
  };
  const takeSettled = (settled: RunSettled) => {
    model.settle(settled.nodeRuns);
    model.runStatus = settled.status;
    runError.textContent = settled.error ?? "";
  };
  const markSettled = () => {
    performance.mark("dashboard:run-settled");
    document.body.dataset.runSettled = "true";
  };
  // The store has the last word on a run that has ended: its node statuses as it reports them.
  const settle = async () => {
    takeSettled((await gql<{ run: RunSettled }>(SETTLE, { id })).run);
    for (const nodeId of model.nodes.keys()) paintNode(nodeId);
    paintHead();
    gantt.drawNow();
    pickFirstFailed();
    markSettled();
  };
  const showFailure = (error: unknown) =>
    replace(message, h("span", { class: "error" }, describeError(error)));

  let left = false;
  context.onLeave(() => {
    left = true;
    gantt.stop();
    log.stop();
    view.stop();
    delete document.body.dataset.runSettled;
  });
  const paintAll = () => {
    for (const nodeId of model.nodes.keys()) paintNode(nodeId);
    paintHead();
  };
  // First paint: the DAG in the statuses the run reported.
  model.settle(run.nodeRuns);
  paintAll();
  replace(ganttBox, h("p", { class: "empty" }, "Loading events…"));
  performance.mark("dashboard:run-drawn");
  // The browser paints after this task; the next frame's task runs once it has.
  requestAnimationFrame(() => setTimeout(() => performance.mark("dashboard:run-painted")));

  const stored = await storedEvents;
  if (left) return;
  for (const event of stored) model.apply(event);
  const last = stored.at(-1);
  const ended = last !== undefined && isTerminalEvent(last);
  // The run read before its events had ended already: it says how each node ended.
  const settledAtOpen = ended && !ACTIVE.has(run.status);
  if (settledAtOpen) takeSettled(run);
  paintAll();
  log.update();
  gantt.drawNow();
  pickFirstFailed();
  performance.mark("dashboard:run-loaded");

  if (ended) {
    // Nothing more will happen: no subscription.
    context.liveMark.dataset.state = "ended";
    context.liveMark.textContent = LIVE_TEXT.ended;
    if (settledAtOpen) markSettled();
    else void settle().catch(showFailure);
    return;
  }

  let queue: RunEvent[] = [];
  let frame = 0;
  const flush = () => {
    frame = 0;
    const batch = queue;
    queue = [];
    const changed = new Set<string>();
    let ended = false;
    for (const event of batch) {
      const nodeId = model.apply(event);
      if (nodeId) changed.add(nodeId);
      if (isTerminalEvent(event)) ended = true;
    }
    for (const nodeId of ended ? model.nodes.keys() : changed) paintNode(nodeId);
    paintHead();
    log.update();
    if (!chosenByUser && model.firstFailed && selected !== model.firstFailed)
      select(model.firstFailed, false);
    else if (selected && changed.has(selected)) select(selected, chosenByUser);
    gantt.update();
    if (ended) void settle().catch(showFailure);
  };
  const transport = new URLSearchParams(location.search).get("transport");
  const live = followRun({
    runId: id,
    after: model.lastSeq,
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
  });
}
