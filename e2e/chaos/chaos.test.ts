import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { freePorts } from "../../dev/stack/ports.js";
import { CLIENT_USERS, OPS, runSchedule, SEED_CHANNELS, VOICE_USERS, type Op, type RunResult } from "./runner.js";
import { ChaosStack } from "./stack.js";

/**
 * Seeded, model-based chaos against the real stack on 127.0.0.1. The defaults are a short fixed-seed run for CI;
 * SEED=n reproduces one schedule, CHAOS_SEEDS=k runs k seeds from SEED (or a comma list), CHAOS_STEPS sets the
 * length, CHAOS_CHECK_EVERY the checkpoint spacing, CHAOS_SKIP=op,op leaves operations out (to minimise),
 * CHAOS_RELAYS=k puts the clients' sockets on k relays linked to the hub (a worker restart resets them all).
 */
const num = (name: string, fallback: number) => {
  const raw = process.env[name];
  const value = raw === undefined || raw === "" ? fallback : Number(raw);
  if (!Number.isFinite(value)) throw new Error(`${name}=${raw} is not a number`);
  return value;
};
const baseSeed = num("SEED", 20261123);
const seeds = (process.env.CHAOS_SEEDS ?? "").includes(",")
  ? process.env.CHAOS_SEEDS!.split(",").map((s) => Number(s.trim()))
  : Array.from({ length: num("CHAOS_SEEDS", 1) }, (_, i) => baseSeed + i);
// CHAOS_SCRIPT="sim-outage:5,gw-kill:1,discord-create,join": an explicit schedule, for minimising a failure by hand.
// The argument is a fault's hold in steps, a pause's length in ms, sim-close's code, sim-invalid's d (1 or 0); the
// PRNG still picks users, rooms and whatever has no argument.
const script = (process.env.CHAOS_SCRIPT ?? "").split(",").map((s) => s.trim()).filter(Boolean).map((entry) => {
  const [op, hold] = entry.split(":");
  if (op !== "voice" && !(OPS as readonly string[]).includes(op!)) throw new Error(`CHAOS_SCRIPT: unknown op ${op} (known: voice, ${OPS.join(", ")})`);
  return { op: op as Op | "voice", ...(hold ? { hold: Number(hold) } : {}) };
});
const steps = script.length > 0 ? script.length : num("CHAOS_STEPS", 100);
const checkEvery = num("CHAOS_CHECK_EVERY", 25);
const quiesceMs = num("CHAOS_QUIESCE_MS", 60_000);
const relays = num("CHAOS_RELAYS", 0);
const skip = new Set((process.env.CHAOS_SKIP ?? "").split(",").map((s) => s.trim()).filter(Boolean));
for (const op of skip) if (!(OPS as readonly string[]).includes(op)) throw new Error(`CHAOS_SKIP: unknown op ${op} (known: ${OPS.join(", ")})`);

describe("chaos: seeded schedules of voice activity, room changes and faults keep every view equal to Discord's", () => {
  for (const seed of seeds) {
    it(`seed ${seed} (${steps} steps)`, { timeout: 240_000 + steps * 6_000 + Math.ceil(steps / checkEvery) * quiesceMs }, async () => {
      console.log(`[chaos] seed ${seed}: ${steps} steps, checkpoint every ${checkEvery}${skip.size ? `, skipping ${[...skip].join(",")}` : ""}${relays ? `, ${relays} relays` : ""} (reproduce: SEED=${seed}${relays ? ` CHAOS_RELAYS=${relays}` : ""} ${script.length > 0 ? `CHAOS_SCRIPT=${process.env.CHAOS_SCRIPT}` : `CHAOS_STEPS=${steps}`}${skip.size ? ` CHAOS_SKIP=${[...skip].join(",")}` : ""} npm run test:chaos)`);
      const dir = mkdtempSync(join(tmpdir(), `scr-chaos-${seed}-`));
      // Free ports, kept for the run: the runner restarts wrangler dev and gateway-node on the same ones.
      const ports = await freePorts(["worker", "proxy", "health"]);
      const stack = new ChaosStack({ dir, ports, users: VOICE_USERS, channels: SEED_CHANNELS, relays });
      let result: RunResult | undefined;
      try {
        await stack.start();
        result = await runSchedule(stack, { seed, steps, checkEvery, quiesceMs, skip, ...(script.length > 0 ? { script } : {}), maxWorkerRestarts: num("CHAOS_WORKER_RESTARTS", 3), strict: process.env.CHAOS_STRICT === "1" });
      } finally {
        await stack.stop();
      }
      const summary = `[chaos] seed ${seed}: ${result.steps} steps, ${result.checkpoints} checkpoints, ${Math.round(result.ms / 1000)} s, ops ${JSON.stringify(result.counts)}, gateway starts ${stack.gatewayStarts}, worker starts ${stack.workerStarts}, client users ${CLIENT_USERS.length}`;
      console.log(summary);
      const anomalies = [...new Set(result.anomalies)];
      if (anomalies.length > 0) console.log(`[chaos] seed ${seed}: events that did not fit a client's presence (the state converged anyway):\n  ${anomalies.slice(0, 20).join("\n  ")}`);
      writeFileSync(join(dir, "result.txt"), `${summary}\n${result.failure ?? "ok"}\n`);
      if (result.failure) {
        console.log(`[chaos] FAILED seed ${seed}; logs kept in ${dir}\n${result.failure}`);
        expect.fail(`seed ${seed}: ${result.failure}`);
      }
      if (process.env.CHAOS_KEEP) console.log(`[chaos] logs in ${dir}`);
      else rmSync(dir, { recursive: true, force: true });
    });
  }
});
