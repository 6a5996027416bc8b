/** gateway-node: the bot's Discord Gateway shards, delivering every served guild's signed events to its hub. */
import { parseConfig, servedGuildIds } from "./config.js";
import { createLogger } from "./log.js";
import { startGatewayService } from "./service.js";

const parsed = parseConfig(process.env);
if (!parsed.ok) {
  process.stderr.write(`${parsed.message}\n`);
  process.exit(2);
}
const log = createLogger(parsed.config.LOG_LEVEL);
const service = await startGatewayService(parsed.config, { log });
log("info", "gateway-node started", { guilds: servedGuildIds(parsed.config), healthPort: service.healthPort });

let stopping = false;
const shutdown = async (signal: string) => {
  if (stopping) return;
  stopping = true;
  log("info", "shutting down", { signal });
  const { flushed } = await service.stop();
  log(flushed ? "info" : "warn", flushed ? "outbox flushed" : "outbox not fully flushed before the deadline; the stored session replays the rest", { depth: service.outbox.depth });
  process.exit(0);
};
process.on("SIGTERM", () => void shutdown("SIGTERM"));
process.on("SIGINT", () => void shutdown("SIGINT"));

void service.fatal.then(async ({ code, why }) => {
  log("error", "Discord refused the bot; exiting", { code, why });
  await service.stop();
  process.exit(1);
});
