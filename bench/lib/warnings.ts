/**
 * Counts process warnings by name, including those that `--disable-warning` keeps off stderr
 * (run.ts starts figures with `--disable-warning=MaxListenersExceededWarning`): Node filters
 * them after `process.emitWarning` is called, so wrapping it sees every one.
 */
const counts = new Map<string, number>();
let installed = false;

function nameOf(warning: string | Error, typeOrOptions: unknown): string {
  if (warning instanceof Error) return warning.name;
  if (typeof typeOrOptions === "string") return typeOrOptions;
  if (typeOrOptions && typeof typeOrOptions === "object" && "type" in typeOrOptions)
    return String((typeOrOptions as { type: unknown }).type);
  return "Warning";
}

/** Starts counting (idempotent); returns a reader of the count for one warning name. */
export function countWarnings(): { count(name: string): number } {
  if (!installed) {
    installed = true;
    const emit = process.emitWarning.bind(process) as (...args: unknown[]) => void;
    process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
      const name = nameOf(warning, rest[0]);
      counts.set(name, (counts.get(name) ?? 0) + 1);
      emit(warning, ...rest);
    }) as typeof process.emitWarning;
  }
  return { count: (name) => counts.get(name) ?? 0 };
}
