/**
 * Pipelines: each with its version, validity, counters and last runs; a search by name; and a
 * form that creates one from JSON or YAML, pasted or uploaded, with validation errors shown
 * beside the nodes they name.
 */
import { describeError, gql } from "../api.ts";
import { errorsByNode, nodeIdsOf, readDefinition, type ValidationError } from "../definition.ts";
import { formatTime, h, replace, statusBadge } from "../dom.ts";
import type { PageContext } from "../main.ts";

interface PipelineRow {
  id: string;
  name: string;
  version: number;
  runCount: number;
  successCount: number;
  errorCount: number;
  validation: { valid: boolean };
  runs: { edges: { node: { id: string; status: string; startedAt: string | null } }[] };
}

const LIST = `query DashboardPipelines($after: String) {
  pipelines(first: 100, after: $after) {
    edges { node { id name version runCount successCount errorCount validation { valid }
      runs(first: 5) { edges { node { id status startedAt } } } } }
    pageInfo { hasNextPage endCursor }
  }
}`;
/** Pages of 100 read at most (10,000 pipelines): the list is for people, not exports. */
const MAX_PAGES = 100;

async function loadPipelines(): Promise<PipelineRow[]> {
  const rows: PipelineRow[] = [];
  let after: string | null = null;
  for (let page = 0; page < MAX_PAGES; page++) {
    const data: {
      pipelines: {
        edges: { node: PipelineRow }[];
        pageInfo: { hasNextPage: boolean; endCursor: string | null };
      };
    } = await gql(LIST, { after });
    rows.push(...data.pipelines.edges.map((e) => e.node));
    if (!data.pipelines.pageInfo.hasNextPage) break;
    after = data.pipelines.pageInfo.endCursor;
  }
  return rows;
}

function table(rows: readonly PipelineRow[]): HTMLElement {
  if (rows.length === 0) return h("p", { class: "empty" }, "No pipelines match.");
  return h(
    "table",
    { class: "list", id: "pipelines" },
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        ...["Name", "Version", "Valid", "Runs", "Succeeded", "Errors", "Last runs"].map((t) =>
          h("th", {}, t),
        ),
      ),
    ),
    h(
      "tbody",
      {},
      ...rows.map((row) =>
        h(
          "tr",
          { "data-id": row.id },
          h("td", {}, h("a", { href: `#/pipelines/${row.id}` }, row.name)),
          h("td", {}, row.version),
          h("td", {}, row.validation.valid ? "valid" : h("span", { class: "invalid" }, "invalid")),
          h("td", {}, row.runCount),
          h("td", {}, row.successCount),
          h("td", {}, row.errorCount),
          h(
            "td",
            { class: "last-runs" },
            ...row.runs.edges.map(({ node }) =>
              h(
                "a",
                { href: `#/runs/${node.id}`, title: formatTime(node.startedAt) },
                statusBadge(node.status),
              ),
            ),
          ),
        ),
      ),
    ),
  );
}

function createForm(context: PageContext): HTMLElement {
  const text = h("textarea", {
    id: "definition",
    rows: 14,
    spellcheck: "false",
    placeholder:
      '{ "name": "hello", "nodes": [{ "id": "start", "type": "TRIGGER" }], "edges": [] }',
  });
  const file = h("input", {
    type: "file",
    id: "definition-file",
    accept: ".json,.yaml,.yml,application/json,text/yaml",
    onchange: async () => {
      const chosen = file.files?.[0];
      if (chosen) text.value = await chosen.text();
    },
  });
  const result = h("div", { id: "create-result" });
  const showErrors = (definition: Record<string, unknown>, errors: readonly ValidationError[]) => {
    const grouped = errorsByNode(errors);
    const ids = nodeIdsOf(definition);
    const unknown = [...grouped.keys()].filter((id) => id && !ids.includes(id));
    replace(
      result,
      h(
        "p",
        { class: "error" },
        `${errors.length} validation error${errors.length === 1 ? "" : "s"}`,
      ),
      ...(grouped.get("") ?? []).map((e) =>
        h("p", { class: "error", "data-code": e.code }, `${e.code}: ${e.message}`),
      ),
      h(
        "ul",
        { class: "node-errors" },
        ...[...ids, ...unknown].map((id) =>
          h(
            "li",
            { "data-node": id, class: grouped.has(id) ? "has-errors" : "" },
            h("code", {}, id),
            ...(grouped.get(id) ?? []).map((e) =>
              h("span", { class: "error", "data-code": e.code }, ` ${e.code}: ${e.message}`),
            ),
          ),
        ),
      ),
    );
  };
  const submit = async (store: boolean) => {
    const read = readDefinition(text.value);
    if ("error" in read) return replace(result, h("p", { class: "error" }, read.error));
    try {
      const { validatePipeline } = await gql<{
        validatePipeline: { valid: boolean; errors: ValidationError[] };
      }>(
        `mutation DashboardValidate($definition: PipelineInput!) {
          validatePipeline(definition: $definition) { valid errors { code message nodeId } } }`,
        { definition: read.definition },
      );
      if (!validatePipeline.valid) return showErrors(read.definition, validatePipeline.errors);
      if (!store) return replace(result, h("p", { class: "ok" }, "Valid."));
      const { createPipeline } = await gql<{ createPipeline: { id: string } }>(
        "mutation DashboardCreate($input: PipelineInput!) { createPipeline(input: $input) { id } }",
        { input: read.definition },
      );
      context.navigate(`#/pipelines/${createPipeline.id}`);
    } catch (error) {
      replace(result, h("p", { class: "error" }, describeError(error)));
    }
  };
  return h(
    "section",
    { class: "create" },
    h("h2", {}, "Create a pipeline"),
    h(
      "p",
      { class: "hint" },
      "Paste a definition as JSON or YAML (a file from examples/, or the README's createPipeline variables), or upload a file.",
    ),
    text,
    h(
      "div",
      { class: "actions" },
      file,
      h(
        "button",
        { type: "button", id: "validate", onclick: () => void submit(false) },
        "Validate",
      ),
      h(
        "button",
        { type: "button", id: "create", class: "primary", onclick: () => void submit(true) },
        "Create",
      ),
    ),
    result,
  );
}

export async function showPipelines(context: PageContext): Promise<void> {
  const search = h("input", { type: "search", id: "search", placeholder: "Search by name" });
  const list = h("div", { class: "loading" }, "Loading…");
  replace(context.root, h("h1", {}, "Pipelines"), search, list, createForm(context));
  document.title = "Pipelines · dashboard";
  let rows: PipelineRow[];
  try {
    rows = await loadPipelines();
  } catch (error) {
    return replace(list, h("p", { class: "error" }, describeError(error)));
  }
  const show = () => {
    const term = search.value.trim().toLowerCase();
    list.className = "";
    replace(list, table(rows.filter((row) => row.name.toLowerCase().includes(term))));
  };
  search.addEventListener("input", show);
  show();
}
