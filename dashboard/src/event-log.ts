/**
 * The event log: filters (errors only, one node) over a virtual list, so that 10,000 events
 * cost the rows on screen only. It follows the newest event while scrolled to the bottom.
 */
import { escapeMarkup, h } from "./dom.ts";
import type { RunEvent } from "./live.ts";

const ROW_HEIGHT = 22;
const ERROR_TYPES = new Set(["NODE_FAILED", "NODE_RETRYING", "RUN_FAILED", "RUN_TIMED_OUT"]);

function summary(event: RunEvent): string {
  const data = event.data ?? {};
  if ("error" in data) return String(data.error);
  if ("reason" in data) return String(data.reason);
  if ("reusedFrom" in data) return `reused from ${String(data.reusedFrom).slice(0, 8)}`;
  if ("delayMs" in data) return `retry in ${String(data.delayMs)} ms`;
  if ("reused" in data && Array.isArray(data.reused))
    return `re-run, ${data.reused.length} nodes reused`;
  return "";
}

export interface EventLog {
  readonly element: HTMLElement;
  /** Call after events were appended to the array given at creation. */
  update(): void;
  setNodes(ids: readonly string[]): void;
}

export function createEventLog(
  events: readonly RunEvent[],
  onNode: (id: string) => void,
): EventLog {
  const errorsOnly = h("input", { type: "checkbox", id: "log-errors" });
  const nodeFilter = h("select", { id: "log-node" }, h("option", { value: "" }, "all nodes"));
  const count = h("span", { class: "count", id: "log-count" });
  const viewport = h("div", { class: "log-viewport", id: "event-log" });
  const spacer = h("div", { class: "log-spacer" });
  const rows = h("div", { class: "log-rows" });
  spacer.append(rows);
  viewport.append(spacer);
  let shown: readonly RunEvent[] = events;
  let follow = true;

  const filter = () => {
    const node = nodeFilter.value;
    const errors = errorsOnly.checked;
    shown =
      !node && !errors
        ? events
        : events.filter(
            (e) => (!node || e.nodeId === node) && (!errors || ERROR_TYPES.has(e.type)),
          );
  };
  const draw = () => {
    spacer.style.height = `${shown.length * ROW_HEIGHT}px`;
    if (follow) viewport.scrollTop = viewport.scrollHeight;
    const first = Math.max(0, Math.floor(viewport.scrollTop / ROW_HEIGHT) - 10);
    const last = Math.min(
      shown.length,
      first + Math.ceil((viewport.clientHeight || 400) / ROW_HEIGHT) + 20,
    );
    rows.style.transform = `translateY(${first * ROW_HEIGHT}px)`;
    const parts: string[] = [];
    for (let i = first; i < last; i++) {
      const e = shown[i]!;
      parts.push(
        `<div class="log-row" data-seq="${e.seq}" data-type="${e.type}"><span class="seq">${e.seq}</span><span class="type">${e.type}</span><span class="node">${e.nodeId ? `<a data-node="${escapeMarkup(e.nodeId)}">${escapeMarkup(e.nodeId)}</a>` : ""}</span><span class="attempt">${e.attempt ?? ""}</span><span class="time">${escapeMarkup(new Date(e.at).toLocaleTimeString())}</span><span class="summary">${escapeMarkup(summary(e))}</span></div>`,
      );
    }
    rows.innerHTML = parts.join("");
    const last_ = events.at(-1);
    count.textContent = `${shown.length} of ${events.length} events${last_ ? ` · last seq ${last_.seq}` : ""}`;
  };
  viewport.addEventListener("scroll", () => {
    follow = viewport.scrollTop + viewport.clientHeight >= viewport.scrollHeight - ROW_HEIGHT;
    draw();
  });
  viewport.addEventListener("click", (event) => {
    const link = (event.target as Element).closest<HTMLElement>("a[data-node]");
    if (link) onNode(link.dataset.node!);
  });
  for (const control of [errorsOnly, nodeFilter])
    control.addEventListener("change", () => {
      filter();
      draw();
    });
  const element = h(
    "section",
    { class: "log" },
    h("h2", {}, "Events"),
    h(
      "div",
      { class: "filters" },
      h("label", {}, errorsOnly, " errors only"),
      " ",
      nodeFilter,
      " ",
      count,
    ),
    viewport,
  );
  return {
    element,
    update() {
      filter();
      draw();
    },
    setNodes(ids) {
      nodeFilter.append(...ids.map((id) => h("option", { value: id }, id)));
    },
  };
}
