/**
 * CPU profiles of a chosen window, with the built-in inspector (what `node --cpu-prof` writes,
 * but only for the part being measured), and a summary of where the time goes: self time by
 * function and by area (our code by directory, dependencies by package, GC, native).
 */
import { Session } from "node:inspector/promises";

interface CallFrame {
  readonly functionName: string;
  readonly url: string;
  readonly lineNumber: number;
}
interface ProfileNode {
  readonly id: number;
  readonly callFrame: CallFrame;
  readonly children?: readonly number[];
}
/** The .cpuprofile format (Chrome DevTools, `node --cpu-prof`). */
export interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
  readonly startTime: number;
  readonly endTime: number;
}

/** Marks the start and end of what a figure measures; the profile script passes real ones. */
export interface MeasureHooks {
  begin(): Promise<void> | void;
  end(): Promise<void> | void;
}

export const NO_HOOKS: MeasureHooks = { begin() {}, end() {} };

/** Hooks that profile the window between begin() and end() of this process. */
export function profilingHooks(): MeasureHooks & { profile(): CpuProfile } {
  const session = new Session();
  let result: CpuProfile | undefined;
  return {
    async begin() {
      session.connect();
      await session.post("Profiler.enable");
      await session.post("Profiler.setSamplingInterval", { interval: 200 });
      await session.post("Profiler.start");
    },
    async end() {
      const { profile } = await session.post("Profiler.stop");
      result = profile as unknown as CpuProfile;
      session.disconnect();
    },
    profile() {
      if (!result) throw new Error("the measured window never ended");
      return result;
    },
  };
}

const SPECIAL = new Set(["(garbage collector)", "(program)", "(idle)", "(root)"]);

/** Where a frame's code lives: `src/engine`, `pkg graphql`, `node:internal`, `(garbage collector)`. */
export function areaOf({ functionName, url }: CallFrame): string {
  if (SPECIAL.has(functionName)) return functionName;
  if (url === "") return "(native)";
  // The innermost package: graphql-yoga/node_modules/@graphql-tools/executor is the executor.
  const modules = /.*node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (modules) return `pkg ${modules[1]}`;
  const own = /\/(src|bench|test)\/(?:([^/]+)\/)?[^/]*$/.exec(url);
  if (own) return own[2] && !own[2].includes(".") ? `${own[1]}/${own[2]}` : own[1]!;
  if (url.startsWith("node:")) return "node:internal";
  return url;
}

/**
 * A finer area: our code and Node's internals by file (`src/engine/run-execution.ts`,
 * `node:internal/event_target`), dependencies by package, GC and the rest as in areaOf.
 */
export function moduleOf(frame: CallFrame): string {
  const own = /\/((?:src|bench|test)\/.*)$/.exec(frame.url);
  if (own && !frame.url.includes("node_modules")) return own[1]!;
  if (frame.url.startsWith("node:")) return frame.url;
  return areaOf(frame);
}

const frameName = ({ functionName, url, lineNumber }: CallFrame) => {
  const file = url.replace(/^.*node_modules\//, "").replace(/^.*\/(src|bench|test)\//, "$1/");
  return `${functionName || "(anonymous)"} ${file ? `${file}:${lineNumber + 1}` : ""}`.trim();
};

export interface ProfileSummary {
  /** Sampled time, ms, idle excluded. */
  readonly busyMs: number;
  readonly idleMs: number;
  /** Self time share of busy time, by function. */
  readonly self: readonly { readonly name: string; readonly ms: number; readonly share: number }[];
  /** Share by area (self time). */
  readonly areas: readonly { readonly area: string; readonly ms: number; readonly share: number }[];
  /**
   * Share by module (self time): our files and Node's internal files one by one; native code
   * by function and the module that called it.
   */
  readonly modules: readonly {
    readonly module: string;
    readonly ms: number;
    readonly share: number;
  }[];
  /** Inclusive share of busy time of functions of our own code (src/). */
  readonly ownInclusive: readonly { readonly name: string; readonly share: number }[];
}

export function summarizeProfile(profile: CpuProfile, top = 20): ProfileSummary {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes)
    for (const child of node.children ?? []) parent.set(child, node.id);
  const self = new Map<string, number>();
  const areas = new Map<string, number>();
  const modules = new Map<string, number>();
  const inclusive = new Map<string, number>();
  let idle = 0;
  let busy = 0;
  profile.samples.forEach((id, i) => {
    const ms = (profile.timeDeltas[i] ?? 0) / 1000;
    const node = byId.get(id)!;
    if (node.callFrame.functionName === "(idle)") {
      idle += ms;
      return;
    }
    busy += ms;
    const name = frameName(node.callFrame);
    self.set(name, (self.get(name) ?? 0) + ms);
    const area = areaOf(node.callFrame);
    areas.set(area, (areas.get(area) ?? 0) + ms);
    // Native frames (SQLite's statements, JSON, crypto) count for the module that called them.
    let module = moduleOf(node.callFrame);
    if (module === "(native)") {
      let caller = parent.get(id);
      while (caller !== undefined && byId.get(caller)!.callFrame.url === "")
        caller = parent.get(caller);
      const from = caller === undefined ? "?" : moduleOf(byId.get(caller)!.callFrame);
      module = `(native ${node.callFrame.functionName || "code"}) ← ${from}`;
    }
    modules.set(module, (modules.get(module) ?? 0) + ms);
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const frame = byId.get(at)!.callFrame;
      if (!/\/src\//.test(frame.url)) continue;
      const key = frameName(frame);
      if (seen.has(key)) continue;
      seen.add(key);
      inclusive.set(key, (inclusive.get(key) ?? 0) + ms);
    }
  });
  const ranked = (map: Map<string, number>) => [...map].sort((a, b) => b[1] - a[1]);
  return {
    busyMs: busy,
    idleMs: idle,
    self: ranked(self)
      .slice(0, top)
      .map(([name, ms]) => ({ name, ms, share: ms / busy })),
    areas: ranked(areas).map(([area, ms]) => ({ area, ms, share: ms / busy })),
    modules: ranked(modules).map(([module, ms]) => ({ module, ms, share: ms / busy })),
    ownInclusive: ranked(inclusive)
      .slice(0, top)
      .map(([name, ms]) => ({ name, share: ms / busy })),
  };
}

/** The summary as text. */
export function renderProfile(title: string, summary: ProfileSummary): string {
  const pct = (share: number) => `${(share * 100).toFixed(1).padStart(5)} %`;
  return [
    `## ${title}: ${summary.busyMs.toFixed(0)} ms busy, ${summary.idleMs.toFixed(0)} ms idle`,
    "",
    "self time by area:",
    ...summary.areas.slice(0, 15).map((a) => `  ${pct(a.share)}  ${a.area}`),
    "",
    "self time by module (our files and Node's internals by file):",
    ...summary.modules.slice(0, 20).map((m) => `  ${pct(m.share)}  ${m.module}`),
    "",
    "self time by function:",
    ...summary.self.map((f) => `  ${pct(f.share)}  ${f.name}`),
    "",
    "inclusive time, our code (src/):",
    ...summary.ownInclusive.map((f) => `  ${pct(f.share)}  ${f.name}`),
  ].join("\n");
}
