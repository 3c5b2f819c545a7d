/** GraphiQL, served from the package (no CDN), with example operations preloaded. */
import { renderGraphiQL } from "@graphql-yoga/render-graphiql";

const createAndValidate = `# 1. Create a pipeline (the variables are below), then copy its id.
mutation CreatePipeline($input: PipelineInput!) {
  createPipeline(input: $input) {
    id
    name
    validation { valid errors { code message nodeId } }
  }
}

# 2. Validate a definition without storing it.
mutation ValidateDraft {
  validatePipeline(definition: {
    name: "draft"
    nodes: [{ id: "a", type: PARALLEL }, { id: "b", type: PARALLEL }]
    edges: [{ source: "a", target: "b" }, { source: "b", target: "a" }]
  }) {
    valid
    errors { code message nodeId }
  }
}
`;

const createVariables = JSON.stringify(
  {
    input: {
      name: "hello",
      nodes: [
        { id: "start", type: "TRIGGER" },
        { id: "check", type: "CONDITION", config: { expression: "trigger.n > 10" } },
        { id: "big", type: "ACTION", config: { action: "log", message: "big: {{trigger.n}}" } },
        { id: "small", type: "ACTION", config: { action: "log", message: "small: {{trigger.n}}" } },
      ],
      edges: [
        { source: "start", target: "check" },
        { source: "check", target: "big", branch: "TRUE" },
        { source: "check", target: "small", branch: "FALSE" },
      ],
    },
  },
  null,
  2,
);

const runAndWatch = `# 3. Run it (paste the pipeline id), then watch the run in the next tab.
mutation Run($id: ID!) {
  runPipeline(id: $id, triggerData: { n: 42 }) { id status }
}

query Run2($runId: ID!) {
  run(id: $runId) {
    status error
    nodeRuns { nodeId status attempts output error }
  }
}

mutation Cancel($runId: ID!) {
  cancelRun(id: $runId) { id status }
}
`;

const watch = `# 4. Live events of a run: replays what happened, then streams until the run ends.
subscription Watch($runId: ID!) {
  runEvents(runId: $runId) { seq type nodeId attempt at data }
}
`;

const list = `query Pipelines {
  pipelines(first: 10) {
    edges {
      node {
        id name runCount successCount errorCount
        runs(first: 5) { edges { node { id status startedAt completedAt } } }
        breakers { nodeId state failureCount openedAt }
      }
    }
    pageInfo { hasNextPage endCursor }
  }
}
`;

/** The yoga `renderGraphiQL` option. */
export const renderPipelineGraphiQL = renderGraphiQL;

/** The yoga `graphiql` option. */
export const graphiqlOptions = {
  title: "Pipeline server",
  subscriptionsProtocol: "WS" as const,
  defaultTabs: [
    { query: createAndValidate, variables: createVariables },
    {
      query: runAndWatch,
      variables: JSON.stringify({ id: "<pipeline id>", runId: "<run id>" }, null, 2),
    },
    { query: watch, variables: JSON.stringify({ runId: "<run id>" }, null, 2) },
    { query: list },
  ],
};
