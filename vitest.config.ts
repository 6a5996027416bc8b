import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";
import { cadenceBindings, edgeTestBindings, multiGuildBindings, relayBindings } from "./worker-edge/test/support/bindings.js";

// The chaos project starts the whole stack and runs for minutes: only `npm run test:chaos` (`--project chaos`)
// or CHAOS=1 adds it, so plain `npm test` does not run it.
const chaosSelected =
  process.env.CHAOS === "1" || process.argv.some((arg, i, all) => arg === "--project=chaos" || (arg === "--project" && all[i + 1] === "chaos"));

export default defineConfig({
  test: {
    projects: [
      {
        // The Worker and its Durable Object, run inside workerd by the Workers pool.
        plugins: [
          cloudflareTest(async () => ({
            wrangler: { configPath: "./wrangler.toml" },
            // EDGE_LIFE_SEEDS / EDGE_LIFE_SEED: more seeds for the deployment-life model test.
            miniflare: {
              bindings: {
                ...(await edgeTestBindings()),
                EDGE_LIFE_SEEDS: process.env.EDGE_LIFE_SEEDS ?? "",
                EDGE_LIFE_SEED: process.env.EDGE_LIFE_SEED ?? "",
              },
            },
          })),
        ],
        test: {
          name: "edge",
          include: ["worker-edge/test/**/*.test.ts"],
          exclude: ["worker-edge/test/multi-guild/**", "worker-edge/test/security/**", "worker-edge/test/relays/**", "worker-edge/test/cadence/**"],
          testTimeout: 15_000,
        },
      },
      {
        // Hostile-input and property-based tests against the same Worker (npm run test:security).
        plugins: [
          cloudflareTest(async () => ({
            wrangler: { configPath: "./wrangler.toml" },
            miniflare: { bindings: await edgeTestBindings() },
          })),
        ],
        test: {
          name: "security",
          include: ["worker-edge/test/security/**/*.test.ts"],
          // One file at a time: socket-limit cases count every socket of the guild.
          fileParallelism: false,
          testTimeout: 30_000,
          hookTimeout: 30_000,
        },
      },
      {
        // The same Worker configured for several guilds and idle-room expiry.
        plugins: [
          cloudflareTest(async () => ({
            wrangler: { configPath: "./wrangler.toml" },
            miniflare: { bindings: { ...(await edgeTestBindings()), ...multiGuildBindings } },
          })),
        ],
        test: { name: "edge-multi-guild", include: ["worker-edge/test/multi-guild/**/*.test.ts"], testTimeout: 15_000 },
      },
      {
        // The same Worker with a fixed flush cadence long enough that events reliably wait for a flush.
        plugins: [
          cloudflareTest(async () => ({
            wrangler: { configPath: "./wrangler.toml" },
            miniflare: { bindings: { ...(await edgeTestBindings()), ...cadenceBindings } },
          })),
        ],
        test: { name: "edge-cadence", include: ["worker-edge/test/cadence/**/*.test.ts"], testTimeout: 15_000 },
      },
      {
        // The same Worker with its sockets on relays (LobbyRelay), each linked to the guild's hub.
        plugins: [
          cloudflareTest(async () => ({
            wrangler: { configPath: "./wrangler.toml" },
            miniflare: { bindings: { ...(await edgeTestBindings()), ...relayBindings } },
          })),
        ],
        // One file at a time: the relay-full cases count every socket of the guild's relays.
        test: { name: "edge-relays", include: ["worker-edge/test/relays/**/*.test.ts"], fileParallelism: false, testTimeout: 15_000 },
      },
      {
        // gateway-node, the Discord simulator, the dev stack, the client SDK, the protocol and the docs' links, in plain Node.
        test: {
          name: "node",
          environment: "node",
          include: [
            "gateway-node/test/**/*.test.ts",
            "dev/test/**/*.test.ts",
            "client/test/**/*.test.ts",
            "protocol/test/**/*.test.ts",
            "scripts/test/**/*.test.ts",
          ],
          testTimeout: 20_000,
          hookTimeout: 20_000,
        },
      },
      {
        // The whole stack on 127.0.0.1 (simulator, IdP, wrangler dev, gateway-node) and a real Chromium.
        test: {
          name: "e2e",
          environment: "node",
          include: ["e2e/**/*.test.ts"],
          exclude: ["e2e/chaos/**"],
          fileParallelism: false,
          testTimeout: 180_000,
          hookTimeout: 180_000,
        },
      },
      ...(chaosSelected
        ? [
            {
              // Seeded chaos against the whole stack (`npm run test:chaos`; SEED, CHAOS_STEPS, CHAOS_SEEDS, CHAOS_SKIP).
              test: {
                name: "chaos",
                environment: "node",
                include: ["e2e/chaos/**/*.test.ts"],
                fileParallelism: false,
                testTimeout: 900_000,
                hookTimeout: 180_000,
              },
            },
          ]
        : []),
    ],
  },
});
