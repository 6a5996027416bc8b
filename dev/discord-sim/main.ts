/** Runs the Discord simulator on its own: `npx tsx dev/discord-sim/main.ts` (SIM_PORT, DISCORD_BOT_TOKEN, PRIMARY_GUILD_ID). */
import { z } from "zod";
import { Snowflake } from "../../protocol/ids.js";
import { DEMO_USERS, SEED_CHANNELS } from "../stack/seed.js";
import { startDiscordSimulator } from "./index.js";

const Env = z.object({
  SIM_PORT: z.coerce.number().int().min(0).max(65_535).default(8790),
  DISCORD_BOT_TOKEN: z.string().min(1).default("local-simulator-bot-token"),
  PRIMARY_GUILD_ID: Snowflake.default("100000000000000001"),
});
const env = Env.safeParse(process.env);
if (!env.success) {
  console.error(JSON.stringify({ msg: "invalid environment", problems: env.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`) }));
  process.exit(2);
}

const sim = await startDiscordSimulator({
  port: env.data.SIM_PORT,
  botToken: env.data.DISCORD_BOT_TOKEN,
  guildId: env.data.PRIMARY_GUILD_ID,
  identifyIntervalMs: 0, // local restarts should not wait out Discord's 5 s identify spacing
  channels: SEED_CHANNELS,
  users: DEMO_USERS,
  log: (entry) => console.log(JSON.stringify({ ts: new Date().toISOString(), service: "discord-sim", ...entry })),
});
console.log(JSON.stringify({ msg: "discord simulator listening", url: sim.url, restBase: sim.restBase, gatewayUrl: sim.gatewayUrl }));
const stop = () => void sim.close().then(() => process.exit(0));
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
