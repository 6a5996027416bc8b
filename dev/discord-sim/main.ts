/** Runs the Discord simulator on its own: `npx tsx dev/discord-sim/main.ts` (SIM_PORT, DISCORD_BOT_TOKEN, PRIMARY_GUILD_ID). */
import { DEMO_USERS, SEED_CHANNELS } from "../stack/seed.js";
import { startDiscordSimulator } from "./index.js";

const sim = await startDiscordSimulator({
  port: Number(process.env.SIM_PORT ?? 8790),
  botToken: process.env.DISCORD_BOT_TOKEN ?? "local-simulator-bot-token",
  guildId: process.env.PRIMARY_GUILD_ID ?? "100000000000000001",
  identifyIntervalMs: 0,
  channels: SEED_CHANNELS,
  users: DEMO_USERS,
});
console.log(JSON.stringify({ msg: "discord simulator listening", url: sim.url, restBase: sim.restBase, gatewayUrl: sim.gatewayUrl }));
const stop = () => void sim.close().then(() => process.exit(0));
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
