/**
 * The node panel of the run page: a node's status, error, timings and attempts (from the
 * events), and its inputs and output (read from the API when the panel opens).
 */
import { describeError, gql } from "./api.ts";
import { formatDuration, formatTime, h, jsonBlock, replace, shortId, statusBadge } from "./dom.ts";
import type { RunModel } from "./run-model.ts";

interface NodeRunDetail {
  nodeId: string;
  status: string;
  attempts: number;
  output: unknown;
  error: string | null;
  startedAt: string | null;
  completedAt: string | null;
  reusedFrom: string | null;
}

const DETAIL = `query DashboardNodeRuns($id: ID!) {
  run(id: $id) { nodeRuns { nodeId status attempts output(maxBytes: 65536) error startedAt completedAt reusedFrom } }
}`;

/** Fills `panel` with the node; `isCurrent` says whether the panel still shows it (reads race). */
export async function showNode(
  panel: HTMLElement,
  runId: string,
  model: RunModel,
  nodeId: string,
  isCurrent: () => boolean,
): Promise<void> {
  const node = model.nodes.get(nodeId);
  if (!node) return;
  const attempts = h(
    "ol",
    { class: "attempts" },
    ...node.attempts.map((a) =>
      h(
        "li",
        {},
        `attempt ${a.attempt}: ${a.outcome}, ${formatDuration((a.end ?? Date.now()) - a.start)}`,
        a.waitEnd !== undefined && a.end !== undefined
          ? `, then waited ${formatDuration(a.waitEnd - a.end)}`
          : "",
      ),
    ),
  );
  const details = h("div", { class: "details" }, h("p", { class: "loading" }, "Loading output…"));
  replace(
    panel,
    h(
      "div",
      { class: "panel-head" },
      h("h2", { id: "panel-node" }, node.id),
      h("button", { type: "button", class: "close", onclick: () => panel.replaceChildren() }, "×"),
    ),
    h("p", {}, statusBadge(node.status), ` ${node.type}${node.name ? ` · ${node.name}` : ""}`),
    node.reusedFrom
      ? h(
          "p",
          { class: "reused" },
          "Reused from run ",
          h("a", { href: `#/runs/${node.reusedFrom}` }, shortId(node.reusedFrom)),
          " (not executed again)",
        )
      : null,
    node.error
      ? h(
          "div",
          { class: "node-error", id: "panel-error" },
          h("h3", {}, "Error"),
          h("pre", {}, node.error),
        )
      : null,
    h("h3", {}, "Attempts"),
    node.attempts.length ? attempts : h("p", { class: "empty" }, "None."),
    details,
  );
  let runs: NodeRunDetail[];
  try {
    ({
      run: { nodeRuns: runs },
    } = await gql<{ run: { nodeRuns: NodeRunDetail[] } }>(DETAIL, { id: runId }));
  } catch (error) {
    if (isCurrent()) replace(details, h("p", { class: "error" }, describeError(error)));
    return;
  }
  if (!isCurrent()) return;
  const byId = new Map(runs.map((r) => [r.nodeId, r]));
  const detail = byId.get(nodeId);
  const inputs = Object.fromEntries(
    model.edges
      .filter((e) => e.target === nodeId && !model.isDead(e))
      .map((e) => [e.source, byId.get(e.source)?.output ?? null]),
  );
  const started = detail?.startedAt ? Date.parse(detail.startedAt) : undefined;
  const ended = detail?.completedAt ? Date.parse(detail.completedAt) : undefined;
  replace(
    details,
    h(
      "dl",
      { class: "timings" },
      h("dt", {}, "Started"),
      h("dd", {}, formatTime(detail?.startedAt)),
      h("dt", {}, "Ended"),
      h("dd", {}, formatTime(detail?.completedAt)),
      h("dt", {}, "Took"),
      h("dd", {}, started && ended ? formatDuration(ended - started) : "—"),
      h("dt", {}, "Calls"),
      h("dd", {}, detail?.attempts ?? 0),
    ),
    h("h3", {}, "Inputs"),
    jsonBlock(inputs),
    h("h3", {}, "Output"),
    h("div", { id: "panel-output" }, jsonBlock(detail?.output ?? null)),
  );
}
