/**
 * The DAG as SVG: one <g class="node"> per node (its status in `data-status`, coloured by the
 * stylesheet), one <path class="edge"> per edge (`data-dead` greys an untaken one). The markup
 * is built as one string: at 2,000 nodes that is several times faster than element by element.
 * Above VIRTUAL_ABOVE nodes only those near the scrolled view are in the page (the SVG keeps
 * the whole graph's size, so the scrollbars are true): laying out and painting 2,000 nodes'
 * boxes and labels cost the browser most of a second, and every status change a restyle.
 */
import { escapeMarkup } from "./dom.ts";
import { type Layout, type LayoutEdge, layoutGraph, NODE_HEIGHT, NODE_WIDTH } from "./layout.ts";

export interface GraphNode {
  readonly id: string;
  readonly type: string;
  readonly name?: string | null;
}

export interface GraphView {
  readonly layout: Layout;
  setStatus(nodeId: string, status: string): void;
  setDead(edgeIndex: number, dead: boolean): void;
  /** Marks a badge beside a node (a breaker state), or removes it with null. */
  setBadge(nodeId: string, text: string | null): void;
  /** Marks the node selected; `reveal` scrolls it into view when it is out of sight. */
  select(nodeId: string | undefined, reveal?: boolean): void;
  /** Stops following the box's scrolling and size (the page was left). */
  stop(): void;
}

/** Graphs up to this many nodes are drawn whole; larger ones near the view only. */
const VIRTUAL_ABOVE = 300;
/** The smallest scale a graph is shrunk to, to fit its box (below it, the box scrolls). */
const MIN_FIT_SCALE = 0.7;

const TYPE_MARK: Record<string, string> = {
  TRIGGER: "▶",
  AGENT: "✦",
  CONDITION: "◇",
  ACTION: "⚙",
  PARALLEL: "∥",
  DELAY: "⏱",
};

interface Rect {
  x0: number;
  y0: number;
  x1: number;
  y1: number;
}

const inside = (inner: Rect, outer: Rect) =>
  inner.x0 >= outer.x0 && inner.y0 >= outer.y0 && inner.x1 <= outer.x1 && inner.y1 <= outer.y1;
const overlaps = (a: Rect, b: Rect) => a.x0 <= b.x1 && b.x0 <= a.x1 && a.y0 <= b.y1 && b.y0 <= a.y1;

function pathOf(points: Layout["edges"][number]["points"]): string {
  const [first, ...rest] = points;
  if (!first) return "";
  if (rest.length === 1) {
    // One straight segment (the layered layout): a gentle curve reads better.
    const last = rest[0]!;
    const mid = (first.x + last.x) / 2;
    return `M${first.x},${first.y} C${mid},${first.y} ${mid},${last.y} ${last.x},${last.y}`;
  }
  return `M${first.x},${first.y} ${rest.map((p) => `L${p.x},${p.y}`).join(" ")}`;
}

function boundsOf(points: Layout["edges"][number]["points"]): Rect {
  const xs = points.map((p) => p.x);
  const ys = points.map((p) => p.y);
  return { x0: Math.min(...xs), y0: Math.min(...ys), x1: Math.max(...xs), y1: Math.max(...ys) };
}

/** Draws the graph into `container` (a scrolling box in the page; what it held is replaced). */
export function renderGraph(
  container: HTMLElement,
  nodes: readonly GraphNode[],
  edges: readonly LayoutEdge[],
  onSelect: (nodeId: string) => void,
): GraphView {
  const layout = layoutGraph(
    nodes.map((n) => n.id),
    edges,
  );
  const virtual = nodes.length > VIRTUAL_ABOVE;
  const status = new Map<string, string>();
  const badges = new Map<string, string>();
  const dead = new Set<number>();
  let selected: string | undefined;
  const edgeBounds = layout.edges.map(({ points }) => boundsOf(points));
  const whole: Rect = { x0: 0, y0: 0, x1: layout.width, y1: layout.height };
  // The box's size and scroll position, read now (before the graph is in it, cheaply) and
  // then from its own events: reading them while drawing would force a layout.
  const box = {
    width: container.clientWidth || 1200,
    height: container.clientHeight || 520,
    left: 0,
    top: 0,
  };
  const visible = (): Rect => ({
    x0: box.left,
    y0: box.top,
    x1: box.left + box.width,
    y1: box.top + box.height,
  });

  const nodeMarkup = (node: GraphNode): string => {
    const at = layout.nodes.get(node.id)!;
    const x = at.x - NODE_WIDTH / 2;
    const y = at.y - NODE_HEIGHT / 2;
    const label = node.name && node.name !== node.id ? `${node.id} · ${node.name}` : node.id;
    const id = escapeMarkup(node.id);
    return [
      `<g class="node" data-id="${id}" data-type="${escapeMarkup(node.type)}" data-status="${status.get(node.id) ?? "pending"}"${selected === node.id ? ` data-selected="true"` : ""} transform="translate(${x},${y})" tabindex="0">`,
      `<title>${escapeMarkup(`${node.id} (${node.type})`)}</title>`,
      `<rect width="${NODE_WIDTH}" height="${NODE_HEIGHT}" rx="6"/>`,
      `<text class="label" x="10" y="17">${escapeMarkup(label.length > 20 ? `${label.slice(0, 19)}…` : label)}</text>`,
      `<text class="type" x="10" y="32">${TYPE_MARK[node.type] ?? ""} ${escapeMarkup(node.type)}</text>`,
      `<text class="badge-text" x="${NODE_WIDTH - 6}" y="32" text-anchor="end">${escapeMarkup(badges.get(node.id) ?? "")}</text>`,
      "</g>",
    ].join("");
  };

  const byId = new Map<string, SVGGElement>();
  const paths = new Map<number, SVGPathElement>();
  let drawn: Rect = whole;
  const draw = () => {
    const view = visible();
    // One view's worth around the visible part: scrolling that far draws nothing new.
    drawn = virtual
      ? {
          x0: view.x0 - box.width,
          y0: view.y0 - box.height,
          x1: view.x1 + box.width,
          y1: view.y1 + box.height,
        }
      : whole;
    const parts: string[] = [
      `<svg class="dag" xmlns="http://www.w3.org/2000/svg" width="${layout.width}" height="${layout.height}" viewBox="0 0 ${layout.width} ${layout.height}" data-nodes="${nodes.length}">`,
      `<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" class="arrow"/></marker></defs>`,
    ];
    layout.edges.forEach(({ edge, points }, i) => {
      if (virtual && !overlaps(edgeBounds[i]!, drawn)) return;
      const branch = edge.branch ? ` data-branch="${escapeMarkup(edge.branch)}"` : "";
      parts.push(
        `<path class="edge" data-index="${i}" data-source="${escapeMarkup(edge.source)}" data-target="${escapeMarkup(edge.target)}"${branch}${dead.has(i) ? ` data-dead="true"` : ""} d="${pathOf(points)}" marker-end="url(#arrow)"/>`,
      );
    });
    for (const node of nodes) {
      if (virtual) {
        const at = layout.nodes.get(node.id)!;
        const bounds = {
          x0: at.x - NODE_WIDTH / 2,
          y0: at.y - NODE_HEIGHT / 2,
          x1: at.x + NODE_WIDTH / 2,
          y1: at.y + NODE_HEIGHT / 2,
        };
        if (!overlaps(bounds, drawn)) continue;
      }
      parts.push(nodeMarkup(node));
    }
    parts.push("</svg>");
    container.innerHTML = parts.join("");
    byId.clear();
    for (const element of container.querySelectorAll<SVGGElement>("g.node"))
      byId.set(element.dataset.id!, element);
    paths.clear();
    for (const element of container.querySelectorAll<SVGPathElement>("path.edge"))
      paths.set(Number(element.dataset.index), element);
    fitToBox();
  };
  // A small graph a little wider than its box is shrunk to fit rather than scrolled.
  const fitToBox = () => {
    const fit = !virtual && layout.width > box.width && layout.width * MIN_FIT_SCALE <= box.width;
    container.querySelector("svg.dag")?.toggleAttribute("data-fit", fit);
  };
  draw();

  let frame = 0;
  const redrawIfNeeded = () => {
    frame = 0;
    if (!inside(visible(), drawn)) draw();
  };
  const redrawSoon = () => {
    if (virtual) frame ||= requestAnimationFrame(redrawIfNeeded);
  };
  const onScroll = () => {
    box.left = container.scrollLeft;
    box.top = container.scrollTop;
    redrawSoon();
  };
  const resized = new ResizeObserver(([entry]) => {
    box.width = entry!.contentRect.width || box.width;
    box.height = entry!.contentRect.height || box.height;
    fitToBox();
    redrawSoon();
  });
  container.addEventListener("scroll", onScroll, { passive: true });
  resized.observe(container);

  const pick = (event: Event) => {
    const target = (event.target as Element).closest<SVGGElement>("g.node");
    if (target) onSelect(target.dataset.id!);
  };
  container.addEventListener("click", pick);
  container.addEventListener("keydown", (event) => {
    if ((event as KeyboardEvent).key === "Enter") pick(event);
  });
  return {
    layout,
    setStatus(nodeId, value) {
      const lower = value.toLowerCase();
      status.set(nodeId, lower);
      byId.get(nodeId)?.setAttribute("data-status", lower);
    },
    setDead(edgeIndex, isDead) {
      if (isDead) dead.add(edgeIndex);
      else dead.delete(edgeIndex);
      const path = paths.get(edgeIndex);
      if (!path) return;
      if (isDead) path.setAttribute("data-dead", "true");
      else path.removeAttribute("data-dead");
    },
    setBadge(nodeId, text) {
      if (text) badges.set(nodeId, text);
      else badges.delete(nodeId);
      const badge = byId.get(nodeId)?.querySelector(".badge-text");
      if (badge) badge.textContent = text ?? "";
    },
    select(nodeId, reveal = false) {
      if (selected) byId.get(selected)?.removeAttribute("data-selected");
      selected = nodeId;
      if (!nodeId) return;
      byId.get(nodeId)?.setAttribute("data-selected", "true");
      const at = layout.nodes.get(nodeId);
      if (!reveal || !at) return;
      const view = visible();
      const node = {
        x0: at.x - NODE_WIDTH / 2,
        y0: at.y - NODE_HEIGHT / 2,
        x1: at.x + NODE_WIDTH / 2,
        y1: at.y + NODE_HEIGHT / 2,
      };
      if (inside(node, view)) return;
      // Centred in the box; the scroll event draws what is around it.
      container.scrollTo({
        left: Math.max(0, at.x - box.width / 2),
        top: Math.max(0, at.y - box.height / 2),
      });
    },
    stop() {
      cancelAnimationFrame(frame);
      container.removeEventListener("scroll", onScroll);
      resized.disconnect();
    },
  };
}
