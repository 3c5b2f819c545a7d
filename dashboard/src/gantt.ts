/**
 * The timeline of a run: one row per node that started, a bar per attempt (coloured by how it
 * ended) and, after a retried attempt, its backoff wait as a hatched bar. The SVG is as tall as
 * every row, but only the rows in view (and a margin) are drawn, as one string: 2,000 rows cost
 * the thirty on screen. Drawn at most once per animation frame, however often it is asked.
 */
import { escapeMarkup, formatDuration } from "./dom.ts";
import type { NodeView, RunModel } from "./run-model.ts";

const LABEL = 150;
const ROW = 16;
const AXIS = 18;
/** Rows drawn above and below the visible ones, so that a scroll shows no gap before a redraw. */
const MARGIN_ROWS = 20;

export interface Gantt {
  /** Asks for a redraw (in the next animation frame). */
  update(): void;
  /** Draws now (the first paint, and once a run has ended). */
  drawNow(): void;
  /** Stops drawing (the page was left). */
  stop(): void;
}

/** The box's size and scroll position, kept up to date by observers (reading them on each
 * draw would force a layout of the whole page, the 2,000-node DAG included). */
interface Box {
  width: number;
  height: number;
  scrollTop: number;
}

/**
 * A timeline in `container` (a scrolling box, already in the page) of the run `model` holds.
 * Create it before the page's heavy parts are drawn: it measures the box once, cheaply.
 */
export function createGantt(container: HTMLElement, model: RunModel): Gantt {
  const box: Box = {
    width: container.clientWidth,
    height: container.clientHeight,
    scrollTop: container.scrollTop,
  };
  let frame = 0;
  const draw = () => {
    frame = 0;
    drawGantt(container, model, box);
  };
  const update = () => {
    frame ||= requestAnimationFrame(draw);
  };
  const onScroll = () => {
    box.scrollTop = container.scrollTop;
    update();
  };
  const resized = new ResizeObserver(([entry]) => {
    const width = Math.round(entry!.contentRect.width);
    if (width === box.width) return;
    box.width = width;
    update();
  });
  container.addEventListener("scroll", onScroll, { passive: true });
  resized.observe(container);
  return {
    update,
    drawNow() {
      cancelAnimationFrame(frame);
      draw();
    },
    stop() {
      cancelAnimationFrame(frame);
      frame = 0;
      container.removeEventListener("scroll", onScroll);
      resized.disconnect();
    },
  };
}

/** Where the timeline ends: the run's end, or now (the clock of the last event at least). */
function endOf(model: RunModel, rows: readonly NodeView[]): number {
  const lastEvent = model.events.at(-1);
  let t1 = model.endedAt ?? Math.max(Date.now(), lastEvent ? Date.parse(lastEvent.at) : 0);
  for (const node of rows)
    for (const span of node.attempts) t1 = Math.max(t1, span.end ?? 0, span.waitEnd ?? 0);
  return t1;
}

function drawGantt(container: HTMLElement, model: RunModel, box: Box): void {
  const rows = [...model.nodes.values()]
    .filter((node) => node.attempts.length > 0)
    .sort((a, b) => a.attempts[0]!.start - b.attempts[0]!.start);
  if (rows.length === 0) {
    container.innerHTML = `<p class="empty">No node has started yet.</p>`;
    return;
  }
  const t0 = Math.min(model.startedAt ?? Number.POSITIVE_INFINITY, rows[0]!.attempts[0]!.start);
  const t1 = endOf(model, rows);
  const span = Math.max(1, t1 - t0);
  const width = Math.max(400, box.width - 4);
  const scale = (width - LABEL - 8) / span;
  const x = (t: number) => (LABEL + (t - t0) * scale).toFixed(1);
  const w = (a: number, b: number) => Math.max(1.5, (b - a) * scale).toFixed(1);
  const height = AXIS + rows.length * ROW;
  const top = Math.max(0, box.scrollTop - AXIS);
  const first = Math.max(0, Math.floor(top / ROW) - MARGIN_ROWS);
  // The box's visible height: its CSS max-height once it holds more rows than that.
  const visible = Math.ceil(Math.max(box.height, 360) / ROW);
  const last = Math.min(rows.length, first + visible + 2 * MARGIN_ROWS);
  const parts = [
    `<svg class="gantt" xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" data-rows="${rows.length}">`,
    `<text class="axis" x="${LABEL}" y="12">0</text>`,
    `<text class="axis" x="${width - 4}" y="12" text-anchor="end">${escapeMarkup(formatDuration(span))}</text>`,
  ];
  for (let i = first; i < last; i++) {
    const node = rows[i]!;
    const y = AXIS + i * ROW;
    parts.push(
      `<g class="row" data-node="${escapeMarkup(node.id)}"><text class="name" x="4" y="${y + 12}">${escapeMarkup(node.id.length > 22 ? `${node.id.slice(0, 21)}…` : node.id)}</text>`,
    );
    for (const attempt of node.attempts) {
      const end = attempt.end ?? t1;
      parts.push(
        `<rect class="attempt" data-outcome="${attempt.outcome}" x="${x(attempt.start)}" y="${y + 2}" width="${w(attempt.start, end)}" height="${ROW - 4}"><title>${escapeMarkup(`${node.id} attempt ${attempt.attempt}: ${attempt.outcome}, ${formatDuration(end - attempt.start)}`)}</title></rect>`,
      );
      if (attempt.waitEnd !== undefined && attempt.end !== undefined) {
        const waitEnd = Math.min(attempt.waitEnd, t1);
        parts.push(
          `<rect class="wait" x="${x(attempt.end)}" y="${y + 5}" width="${w(attempt.end, waitEnd)}" height="${ROW - 10}"><title>${escapeMarkup(`backoff before attempt ${attempt.attempt + 1}: ${formatDuration(attempt.waitEnd - attempt.end)}`)}</title></rect>`,
        );
      }
    }
    parts.push("</g>");
  }
  parts.push("</svg>");
  // Replacing the SVG keeps the box's scroll position: its height does not change with it.
  container.innerHTML = parts.join("");
}
