/** The final table, as Markdown (readable in a terminal, pasted as is into BENCHMARKS.md). */
import type { Row } from "./report.ts";

/** A number with at most `digits` significant decimals, grouped by thousands. */
export function formatNumber(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  const abs = Math.abs(value);
  const digits = abs >= 100 ? 0 : abs >= 10 ? 1 : abs >= 1 ? 2 : 3;
  return value.toLocaleString("en-US", {
    minimumFractionDigits: 0,
    maximumFractionDigits: digits,
  });
}

function targetText({ target }: Row): string {
  if (!target) return "—";
  if (target.text) return target.text;
  const op = target.op === ">=" ? "≥" : target.op === "<=" ? "≤" : "=";
  return `${op} ${formatNumber(target.value)}${target.on === "ratio" ? "× baseline" : ""}`;
}

const cells = (row: Row): string[] => [
  row.figure,
  row.configuration,
  `${formatNumber(row.value)} ${row.unit}`,
  row.baseline ? `${row.baseline.label}: ${formatNumber(row.baseline.value)} ${row.unit}` : "—",
  row.ratio === null ? "—" : `${formatNumber(row.ratio)}×`,
  targetText(row),
  row.met === null ? "—" : row.met ? "yes" : "**NO**",
  row.detail ?? "",
];

const HEADER = ["figure", "configuration", "value", "baseline", "ratio", "target", "met?", "notes"];

export function renderTable(rows: readonly Row[]): string {
  const body = rows.map(cells);
  const widths = HEADER.map((h, i) => Math.max(h.length, ...body.map((r) => r[i]!.length)));
  const line = (values: readonly string[]) =>
    `| ${values.map((v, i) => v.padEnd(widths[i]!)).join(" | ")} |`;
  return [
    line(HEADER),
    `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`,
    ...body.map(line),
  ].join("\n");
}
