/**
 * The dashboard's entry: the header (navigation, API key, live mark) and a hash router over
 * the three pages: #/ pipelines, #/pipelines/<id>, #/runs/<id>.
 */
import { apiKey, describeError, setApiKey } from "./api.ts";
import { h, replace } from "./dom.ts";
import { showPipeline } from "./pages/pipeline.ts";
import { showPipelines } from "./pages/pipelines.ts";
import { showRun } from "./pages/run.ts";

/** What a page gets: where to draw, how to navigate, and a way to release what it holds. */
export interface PageContext {
  readonly root: HTMLElement;
  /** The header's live mark, for the run page. */
  readonly liveMark: HTMLElement;
  navigate(hash: string): void;
  /** Called when the page is left (subscriptions closed, timers cleared). */
  onLeave(cleanup: () => void): void;
}

const root = h("main", { id: "page" });
const liveMark = h("span", { id: "live", "data-state": "idle" });
const keyInput = h("input", {
  id: "api-key",
  type: "password",
  placeholder: "API key (optional)",
  autocomplete: "off",
  value: apiKey(),
  onchange: () => {
    setApiKey(keyInput.value.trim());
    route();
  },
});
const header = h(
  "header",
  {},
  h("a", { href: "#/", class: "brand" }, "Pipelines"),
  h("nav", {}, h("a", { href: "/graphql" }, "GraphiQL")),
  liveMark,
  // A form, so that browsers treat the password field as one (and Enter applies it).
  h(
    "form",
    { class: "key", onsubmit: (event: Event) => event.preventDefault() },
    h("label", {}, "Key ", keyInput),
  ),
);
document.body.replaceChildren(header, root);

let cleanups: (() => void)[] = [];

function route(): void {
  for (const cleanup of cleanups.splice(0)) cleanup();
  liveMark.dataset.state = "idle";
  liveMark.textContent = "";
  const context: PageContext = {
    root,
    liveMark,
    navigate: (hash) => {
      location.hash = hash;
    },
    onLeave: (cleanup) => cleanups.push(cleanup),
  };
  replace(root);
  const [, page, id] = /^#\/(pipelines|runs)\/([^/?]+)/.exec(location.hash) ?? [];
  const shown =
    page === "pipelines" && id
      ? showPipeline(context, decodeURIComponent(id))
      : page === "runs" && id
        ? showRun(context, decodeURIComponent(id))
        : showPipelines(context);
  shown.catch((error: unknown) => {
    replace(root, h("p", { class: "error" }, describeError(error)));
  });
}

window.addEventListener("hashchange", route);
cleanups = [];
route();
