/** Reports once which service-backed suites will run. */
import { serviceAvailable } from "./services.ts";

export default async function setup(): Promise<void> {
  for (const name of ["postgres", "redis"] as const) {
    if (!(await serviceAvailable(name))) {
      console.warn(
        `\n[tests] ${name} is not reachable: the suites that need it are SKIPPED (set REQUIRE_SERVICES=1 to fail instead)\n`,
      );
    }
  }
}
