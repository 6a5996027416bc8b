// The SDK presence model (support/presence-model.ts) with every socket on relays, and the faults a relay tier adds:
// a relay reset (its instance and sockets gone: eviction, crash or deploy), the relay→hub links cut, the hub reset
// (its instance gone, its links closed, its storage kept, as an eviction or a crash leaves it). A hibernation of
// the hub keeps its links: relays.test.ts (the test helper that forces one waits for the hub to go idle, up to
// 30 s amid a schedule, so the schedule resets it instead).
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, it } from "vitest";
import { TEST_RELAY_NAMES } from "../support/bindings.js";
import { hubStub } from "../support/edge.js";
import { runSchedule, type ModelFault } from "../support/presence-model.js";

const relayStub = (name: string) => env.LOBBY_RELAY.get(env.LOBBY_RELAY.idFromName(name));

const faults: ModelFault[] = [
  {
    name: "relay reset",
    async inject(random) {
      const name = TEST_RELAY_NAMES[Math.floor(random() * TEST_RELAY_NAMES.length)]!;
      await runInDurableObject(relayStub(name), (_relay, state) => state.abort("reset by the model")).catch(() => undefined);
    },
  },
  {
    name: "relay links cut",
    async inject() {
      await runInDurableObject(hubStub(), (_hub, state) => state.getWebSockets("relay").forEach((ws) => ws.close(1011, "cut")));
    },
  },
  {
    name: "hub reset",
    async inject() {
      await runInDurableObject(hubStub(), (_hub, state) => state.abort("reset by the model")).catch(() => undefined);
    },
  },
];

// To replay one schedule, put its seed alone in this list.
const seeds = Array.from({ length: 8 }, (_, i) => i + 1);

describe("the SDK's presence through relays under a random schedule with relay, link and hub faults", () => {
  for (const transport of ["websocket", "sse"] as const) {
    for (const seed of seeds) {
      it(`matches GET /rooms over ${transport} (seed ${seed})`, { timeout: 90_000 }, async () => {
        await runSchedule(seed, 120, transport, faults);
      });
    }
  }
});
