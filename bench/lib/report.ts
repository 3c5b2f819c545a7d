/** What every figure reports: rows of the final table, plus raw details for the JSON file. */

export interface Target {
  readonly op: ">=" | "<=" | "==";
  readonly value: number;
  /** What the target bounds. @default "value" */
  readonly on?: "value" | "ratio";
  /** Shown instead of the bound, for targets that are not a single number (e.g. "constant"). */
  readonly text?: string;
}

export interface Baseline {
  /** What was measured, e.g. `p-queue`. */
  readonly label: string;
  readonly value: number;
}

export interface Row {
  /** e.g. `1 throughput`. */
  readonly figure: string;
  readonly configuration: string;
  readonly value: number;
  /** e.g. `nodes/s`, `ms`, `req/s`, `KB/run`. */
  readonly unit: string;
  /** A second figure shown beside the value, e.g. `43 µs/node`. */
  readonly detail?: string;
  readonly baseline: Baseline | null;
  /** value / baseline.value. */
  readonly ratio: number | null;
  readonly target: Target | null;
  readonly met: boolean | null;
}

export interface FigureResult {
  readonly rows: readonly Row[];
  /** Raw measurements, written to bench/results/latest.json. */
  readonly details: Record<string, unknown>;
}

export interface FigureOptions {
  /** Fewer and shorter rounds (the whole suite in about 4 minutes on a loaded 2-core machine). */
  readonly quick: boolean;
  /** Progress on stderr. */
  readonly log: (message: string) => void;
}

/** A figure module: bench/<name>.ts exports `run`. */
export type Figure = (options: FigureOptions) => Promise<FigureResult>;

/** Builds a row, computing the ratio to the baseline and whether the target is met. */
export function row(fields: {
  figure: string;
  configuration: string;
  value: number;
  unit: string;
  detail?: string;
  baseline?: Baseline | null;
  target?: Target | null;
  /** Whether the target is met, for targets `text` describes. */
  met?: boolean;
}): Row {
  const baseline = fields.baseline ?? null;
  const target = fields.target ?? null;
  const ratio = baseline && baseline.value !== 0 ? fields.value / baseline.value : null;
  const measured = target?.on === "ratio" ? ratio : fields.value;
  const compare = (op: Target["op"], a: number, b: number) =>
    op === ">=" ? a >= b : op === "<=" ? a <= b : a === b;
  return {
    figure: fields.figure,
    configuration: fields.configuration,
    value: fields.value,
    unit: fields.unit,
    ...(fields.detail ? { detail: fields.detail } : {}),
    baseline,
    ratio,
    target,
    met:
      fields.met ??
      (target && measured !== null ? compare(target.op, measured, target.value) : null),
  };
}
