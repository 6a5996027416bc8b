// The browser SDK's connect() against the real hub in workerd under a seeded random schedule (see
// support/presence-model.ts); through relays, with relay resets, link cuts and hub evictions, in relays/.
import { describe, it } from "vitest";
import { runSchedule } from "./support/presence-model.js";

// The host's environment does not reach workerd: to replay one schedule, put its seed alone in this list. Seed 11
// cut the connection between two quick filter changes, which once left members in rooms outside the filter.
const seeds = Array.from({ length: 12 }, (_, i) => i + 1);

describe("the SDK's presence against the hub under a random schedule", () => {
  for (const transport of ["websocket", "sse"] as const) {
    for (const seed of seeds) {
      it(`matches GET /rooms over ${transport} (seed ${seed})`, { timeout: 60_000 }, async () => {
        await runSchedule(seed, 120, transport);
      });
    }
  }
});
