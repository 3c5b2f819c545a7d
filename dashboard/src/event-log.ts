/**
 * The event log: filters (errors only, one node) over a virtual list, so that 10,000 events
 * cost the rows on screen only. It follows the newest event while scrolled to the bottom.
 * Drawing reads no layout (the viewport's height and scroll position are kept by its events):
 * a read would force the browser to lay out the whole page, a 2,000-node DAG included.
 */
import { escapeMarkup, h, shortId } from "./dom.ts";
import type { RunEvent } from "./live.ts";

const ROW_HEIGHT = 22;
/** The viewport's height until it has been measured (the stylesheet's). */
const VIEWPORT_HEIGHT = 300;
const ERROR_TYPES = new Set(["NODE_FAILED", "NODE_RETRYING", "RUN_FAILED", "RUN_TIMED_OUT"]);

function summary(event: RunEvent): string {
  const data = event.data ?? {};
  if ("error" in data) return String(data.error);
  if ("reason" in data) return String(data.reason);
  if ("reusedFrom" in data) return `reused from ${shortId(String(data.reusedFrom))}`;
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
  /** Stops following the viewport's size (the page was left). */
  stop(): void;
}

export function createEventLog(
  events: readonly RunEvent[],
  onNode: (id: string) => void,
): EventLog {
  const errorsOnly = h("input", { type: "checkbox", id: "log-errors" });
  const nodeFilter = h("select", { id: "log-node" }, h("option", { value: "" }, "all nodes"));
  const count = h("span", { class: "count", id: "log-count" }, "loading…");
  const viewport = h("div", { class: "log-viewport", id: "event-log" });
  const spacer = h("div", { class: "log-spacer" });
  const rows = h("div", { class: "log-rows" });
  spacer.append(rows);
  viewport.append(spacer);
  let shown: readonly RunEvent[] = events;
  let follow = true;
  let height = VIEWPORT_HEIGHT;
  let scrollTop = 0;
  let scrollFrame = 0;

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
    const total = shown.length * ROW_HEIGHT;
    spacer.style.height = `${total}px`;
    if (follow) {
      scrollTop = Math.max(0, total - height);
      // Scrolled in the next frame, when the browser lays the page out anyway.
      scrollFrame ||= requestAnimationFrame(() => {
        scrollFrame = 0;
        if (follow) viewport.scrollTop = scrollTop;
      });
    }
    const first = Math.max(0, Math.floor(scrollTop / ROW_HEIGHT) - 10);
    const last = Math.min(shown.length, first + Math.ceil(height / ROW_HEIGHT) + 20);
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
    scrollTop = viewport.scrollTop;
    height = viewport.clientHeight || height;
    follow = scrollTop + height >= shown.length * ROW_HEIGHT - ROW_HEIGHT;
    draw();
  });
  const resized = new ResizeObserver(([entry]) => {
    const measured = Math.round(entry!.contentRect.height);
    if (measured === height || measured === 0) return;
    height = measured;
    draw();
  });
  resized.observe(viewport);
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
      // One string for 2,000 options: element by element costs tens of milliseconds.
      nodeFilter.insertAdjacentHTML(
        "beforeend",
        ids
          .map((id) => `<option value="${escapeMarkup(id)}">${escapeMarkup(id)}</option>`)
          .join(""),
      );
    },
    stop() {
      resized.disconnect();
      cancelAnimationFrame(scrollFrame);
    },
  };
}
