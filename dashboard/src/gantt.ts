/**
 * The timeline of a run: one row per node that started, a bar per attempt (coloured by how it
 * ended) and, after a retried attempt, its backoff wait as a hatched bar. Drawn as one SVG
 * string, at most a few times a second while the run goes on.
 */
import { escapeMarkup, formatDuration } from "./dom.ts";
import type { RunModel } from "./run-model.ts";

const LABEL = 150;
const ROW = 16;
const AXIS = 18;

export function renderGantt(container: HTMLElement, model: RunModel, now: number): void {
  const rows = [...model.nodes.values()]
    .filter((node) => node.attempts.length > 0)
    .sort((a, b) => a.attempts[0]!.start - b.attempts[0]!.start);
  if (rows.length === 0) {
    container.innerHTML = `<p class="empty">No node has started yet.</p>`;
    return;
  }
  const t0 = Math.min(model.startedAt ?? Number.POSITIVE_INFINITY, rows[0]!.attempts[0]!.start);
  let t1 = model.endedAt ?? now;
  for (const node of rows)
    for (const span of node.attempts) t1 = Math.max(t1, span.end ?? 0, span.waitEnd ?? 0);
  const span = Math.max(1, t1 - t0);
  const width = Math.max(400, container.clientWidth - 4);
  const scale = (width - LABEL - 8) / span;
  const x = (t: number) => (LABEL + (t - t0) * scale).toFixed(1);
  const w = (a: number, b: number) => Math.max(1.5, (b - a) * scale).toFixed(1);
  const height = AXIS + rows.length * ROW;
  const parts = [
    `<svg class="gantt" xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">`,
    `<text class="axis" x="${LABEL}" y="12">0</text>`,
    `<text class="axis" x="${width - 4}" y="12" text-anchor="end">${escapeMarkup(formatDuration(span))}</text>`,
  ];
  rows.forEach((node, i) => {
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
  });
  parts.push("</svg>");
  container.innerHTML = parts.join("");
}
