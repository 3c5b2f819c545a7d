/**
 * A pipeline: its DAG with node types and each node's breaker state (reset where not CLOSED),
 * its validation, a form to start a run, and its runs, newest first.
 */
import { describeError, gql } from "../api.ts";
import { formatTime, h, replace, shortId, statusBadge } from "../dom.ts";
import { renderGraph } from "../graph.ts";
import type { PageContext } from "../main.ts";

interface Breaker {
  nodeId: string;
  state: string;
  failureCount: number;
  openedAt: string | null;
}

interface PipelineDetail {
  id: string;
  name: string;
  version: number;
  runCount: number;
  successCount: number;
  errorCount: number;
  nodes: { id: string; type: string; name: string | null }[];
  edges: { source: string; target: string; branch: string | null }[];
  breakers: Breaker[];
  validation: {
    valid: boolean;
    errors: { code: string; message: string; nodeId: string | null }[];
  };
  runs: {
    edges: {
      node: {
        id: string;
        status: string;
        startedAt: string | null;
        completedAt: string | null;
        rerunOf: { id: string } | null;
      };
    }[];
  };
}

const QUERY = `query DashboardPipeline($id: ID!) {
  pipeline(id: $id) {
    id name version runCount successCount errorCount
    nodes { id type name } edges { source target branch }
    breakers { nodeId state failureCount openedAt }
    validation { valid errors { code message nodeId } }
    runs(first: 50) { edges { node { id status startedAt completedAt rerunOf { id } } } }
  }
}`;

function breakerTable(
  pipelineId: string,
  breakers: readonly Breaker[],
  reload: () => void,
): HTMLElement {
  if (breakers.length === 0) return h("p", { class: "empty" }, "No breaker has counted a failure.");
  return h(
    "table",
    { class: "list", id: "breakers" },
    h(
      "thead",
      {},
      h("tr", {}, ...["Node", "State", "Failures", "Opened", ""].map((t) => h("th", {}, t))),
    ),
    h(
      "tbody",
      {},
      ...breakers.map((b) =>
        h(
          "tr",
          { "data-node": b.nodeId },
          h("td", {}, h("code", {}, b.nodeId)),
          h("td", {}, statusBadge(b.state)),
          h("td", {}, b.failureCount),
          h("td", {}, formatTime(b.openedAt)),
          h(
            "td",
            {},
            h(
              "button",
              {
                type: "button",
                class: "reset",
                disabled: b.state === "CLOSED" && b.failureCount === 0,
                onclick: async (event: Event) => {
                  (event.target as HTMLButtonElement).disabled = true;
                  await gql(
                    "mutation DashboardReset($p: ID!, $n: String!) { resetBreaker(pipelineId: $p, nodeId: $n) { state } }",
                    { p: pipelineId, n: b.nodeId },
                  ).catch((error: unknown) => alert(describeError(error)));
                  reload();
                },
              },
              "Reset",
            ),
          ),
        ),
      ),
    ),
  );
}

export async function showPipeline(context: PageContext, id: string): Promise<void> {
  const { pipeline } = await gql<{ pipeline: PipelineDetail | null }>(QUERY, { id });
  if (!pipeline) return replace(context.root, h("p", { class: "error" }, `No pipeline ${id}.`));
  document.title = `${pipeline.name} · dashboard`;
  const reload = () => void showPipeline(context, id);
  const trigger = h("textarea", {
    id: "trigger-data",
    rows: 3,
    spellcheck: "false",
    placeholder: '{"item": 42}',
  });
  const runResult = h("span", { class: "run-result" });
  const start = async () => {
    let triggerData: unknown = null;
    if (trigger.value.trim()) {
      try {
        triggerData = JSON.parse(trigger.value);
      } catch (error) {
        return replace(
          runResult,
          h("span", { class: "error" }, `trigger data is not JSON: ${String(error)}`),
        );
      }
    }
    try {
      const { runPipeline } = await gql<{ runPipeline: { id: string } }>(
        "mutation DashboardRun($id: ID!, $data: JSON) { runPipeline(id: $id, triggerData: $data) { id } }",
        { id, data: triggerData },
      );
      context.navigate(`#/runs/${runPipeline.id}`);
    } catch (error) {
      replace(runResult, h("span", { class: "error" }, describeError(error)));
    }
  };
  const dag = h("div", { class: "dag-box", id: "dag" });
  replace(
    context.root,
    h("p", { class: "crumbs" }, h("a", { href: "#/" }, "Pipelines"), " / ", pipeline.name),
    h("h1", {}, pipeline.name, h("small", {}, ` version ${pipeline.version}`)),
    h(
      "p",
      { class: "counters" },
      `${pipeline.runCount} runs · ${pipeline.successCount} succeeded · ${pipeline.errorCount} errors · `,
      pipeline.validation.valid ? "valid" : h("span", { class: "invalid" }, "invalid"),
    ),
    ...pipeline.validation.errors.map((e) =>
      h("p", { class: "error" }, `${e.nodeId ? `${e.nodeId}: ` : ""}${e.code}: ${e.message}`),
    ),
    dag,
    h(
      "section",
      { class: "start" },
      h("h2", {}, "Run"),
      h("label", {}, "Trigger data (JSON) ", trigger),
      h(
        "button",
        { type: "button", id: "run", class: "primary", onclick: () => void start() },
        "Run",
      ),
      runResult,
    ),
    h("h2", {}, "Breakers"),
    breakerTable(id, pipeline.breakers, reload),
    h("h2", {}, "Runs"),
    pipeline.runs.edges.length === 0
      ? h("p", { class: "empty" }, "No runs yet.")
      : h(
          "table",
          { class: "list", id: "runs" },
          h(
            "thead",
            {},
            h(
              "tr",
              {},
              ...["Run", "Status", "Started", "Ended", "Re-run of"].map((t) => h("th", {}, t)),
            ),
          ),
          h(
            "tbody",
            {},
            ...pipeline.runs.edges.map(({ node }) =>
              h(
                "tr",
                {},
                h("td", {}, h("a", { href: `#/runs/${node.id}` }, h("code", {}, shortId(node.id)))),
                h("td", {}, statusBadge(node.status)),
                h("td", {}, formatTime(node.startedAt)),
                h("td", {}, formatTime(node.completedAt)),
                h(
                  "td",
                  {},
                  node.rerunOf
                    ? h("a", { href: `#/runs/${node.rerunOf.id}` }, shortId(node.rerunOf.id))
                    : "—",
                ),
              ),
            ),
          ),
        ),
  );
  const view = renderGraph(dag, pipeline.nodes, pipeline.edges, () => {});
  context.onLeave(() => view.stop());
  // A closed breaker is the normal case: only an open or half-open one is marked on the graph.
  for (const breaker of pipeline.breakers)
    if (breaker.state !== "CLOSED") view.setBadge(breaker.nodeId, breaker.state);
}
