/**
 * GraphiQL, served from the package (no CDN), with example operations preloaded in tabs.
 * The examples carry their input inline: GraphiQL does not restore a tab's variables.
 */
import { renderGraphiQL } from "@graphql-yoga/render-graphiql";

const createAndValidate = `# Watch runs live, with their DAG and timeline, in the dashboard: /dashboard
# 1. Create a pipeline, then copy its id into the "Run" tab.
mutation CreatePipeline {
  createPipeline(input: {
    name: "hello"
    nodes: [
      { id: "start", type: TRIGGER }
      { id: "check", type: CONDITION, config: { expression: "trigger.n > 10" } }
      { id: "big", type: ACTION, config: { action: "log", message: "big: {{trigger.n}}" } }
      { id: "wait", type: DELAY, config: { seconds: 2 } }
      { id: "small", type: ACTION, config: { action: "log", message: "small: {{trigger.n}}" } }
    ]
    edges: [
      { source: "start", target: "check" }
      { source: "check", target: "big", branch: TRUE }
      { source: "big", target: "wait" }
      { source: "check", target: "small", branch: FALSE }
    ]
  }) {
    id
    name
    validation { valid errors { code message nodeId } }
  }
}

# 2. Validate a definition without storing it.
mutation ValidateDraft {
  validatePipeline(definition: {
    name: "draft"
    nodes: [{ id: "t", type: TRIGGER }, { id: "a", type: PARALLEL }, { id: "b", type: PARALLEL }]
    edges: [{ source: "t", target: "a" }, { source: "a", target: "b" }, { source: "b", target: "a" }]
  }) {
    valid
    errors { code message nodeId }
  }
}
`;

const runAndCancel = `# 3. Run it: paste the pipeline id, run, then copy the run id into the "Watch" tab.
mutation Run {
  runPipeline(id: "PIPELINE-ID", triggerData: { n: 42 }) { id status }
}

query RunState {
  run(id: "RUN-ID") {
    status error
    nodeRuns { nodeId status attempts output error }
  }
}

mutation Cancel {
  cancelRun(id: "RUN-ID") { id status error }
}
`;

const watch = `# 4. Live events of a run: replays what happened, then streams until the run ends.
subscription Watch {
  runEvents(runId: "RUN-ID") { seq type nodeId attempt at data }
}
`;

const list = `query Pipelines {
  pipelines(first: 10) {
    edges {
      node {
        id name runCount successCount errorCount
        runs(first: 5) { edges { node { id status startedAt completedAt } } }
        breakers { nodeId state failureCount openedAt halfOpenAt }
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
    { query: createAndValidate },
    { query: runAndCancel },
    { query: watch },
    { query: list },
  ],
};
