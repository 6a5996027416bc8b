import { startDiscordSimulator, type DiscordSimulator } from "../discord-sim/index.js";
import { startIdentityProvider } from "../idp/index.js";
import { startDemoServer } from "../demo/server.js";
import { startGatewayNode } from "./gateway-node.js";
import { listenAs, type StackPorts } from "./ports.js";
import { say, type ManagedProcess } from "./processes.js";
import { startWranglerDev } from "./wrangler-dev.js";
import { DEMO_USERS, SEED_CHANNELS } from "./seed.js";

export interface LocalStackOptions {
  root: string;
  ports: StackPorts;
  /** The Worker's variables file (.dev.vars for `npm run dev`, a temporary one in tests) and its values. */
  devVarsPath: string;
  vars: Map<string, string>;
  /** Where wrangler dev keeps Durable Object state; tests pass a fresh directory. */
  persistTo?: string;
  sessionFile?: string;
  heartbeatIntervalMs?: number;
  /** Redirect URIs the identity provider accepts besides the demo's and any loopback one (IDP_REDIRECT_URIS). */
  idpRedirectUris?: string[];
}

export interface LocalStack {
  sim: DiscordSimulator;
  urls: { worker: string; ws: string; idp: string; jwks: string; demo: string; sim: string; gatewayHealth: string };
  clientId: string;
  /** Starts gateway-node again on the same health port (after a kill). */
  startGateway(): ManagedProcess;
  gateway(): ManagedProcess;
  stop(): Promise<void>;
}

const CLIENT_ID = "spell-coven-demo";

/** Starts every part on 127.0.0.1 in dependency order; stop() tears them down in reverse. */
export async function startLocalStack(options: LocalStackOptions): Promise<LocalStack> {
  const { ports, vars, root } = options;
  const need = (name: string) => {
    const value = vars.get(name);
    if (!value) throw new Error(`${options.devVarsPath} has no ${name}`);
    return value;
  };
  const guildId = need("PRIMARY_GUILD_ID");
  // Multi-guild mode: the simulated bot is in every guild the edge serves, and the gateway serves them all.
  const otherGuilds = [...new Set((vars.get("ALLOWED_GUILD_IDS") ?? "").split(",").map((id) => id.trim()).filter((id) => id && id !== guildId))];
  const botToken = need("DISCORD_BOT_TOKEN");
  const hubSecret = need("HUB_SECRET");
  const stoppers: Array<() => Promise<void>> = [];
  const stop = async () => {
    for (const stopPart of stoppers.splice(0).reverse()) await stopPart().catch(() => undefined);
  };

  try {
    const sim = await listenAs("SIM_PORT", ports.SIM_PORT, () => startDiscordSimulator({
      port: ports.SIM_PORT,
      botToken,
      guildId,
      guildName: "Spell Coven (simulated)",
      heartbeatIntervalMs: options.heartbeatIntervalMs ?? 41_250,
      identifyIntervalMs: 0,
      channels: SEED_CHANNELS,
      guilds: otherGuilds.map((id, index) => ({
        guildId: id,
        guildName: `Spell Coven ${index + 2} (simulated)`,
        channels: SEED_CHANNELS.map(({ id: _seedId, ...channel }) => channel), // fresh ids: channel ids are global
      })),
      users: DEMO_USERS,
    }));
    stoppers.push(() => sim.close());
    say("sim", `Discord simulator on ${sim.url}`);

    const demoOrigins = [`http://127.0.0.1:${ports.DEMO_PORT}`, `http://localhost:${ports.DEMO_PORT}`];
    // Multi-guild mode lets a socket into a guild only when the token lists it.
    const idp = await listenAs("IDP_PORT", ports.IDP_PORT, () =>
      startIdentityProvider({ port: ports.IDP_PORT, redirectUris: [...demoOrigins.map((o) => `${o}/`), ...(options.idpRedirectUris ?? [])], guilds: [guildId, ...otherGuilds] }));
    stoppers.push(() => idp.close());
    say("idp", `identity provider ${idp.issuer}`);

    const worker = await startWranglerDev({ root, port: ports.WORKER_PORT, envFile: options.devVarsPath, persistTo: options.persistTo });
    stoppers.push(() => worker.stop());
    const workerUrl = worker.url;
    const gateway = await startGatewayNode({
      root,
      healthPort: ports.GATEWAY_HEALTH_PORT,
      env: {
        ...process.env,
        FORCE_COLOR: "0",
        DISCORD_BOT_TOKEN: botToken,
        PRIMARY_GUILD_ID: guildId,
        ...(otherGuilds.length > 0 ? { ALLOWED_GUILD_IDS: otherGuilds.join(",") } : {}),
        HUB_ENDPOINT: `${workerUrl}/internal/events`,
        HUB_SECRET: hubSecret,
        DISCORD_API_BASE: sim.restBase,
        LOG_LEVEL: process.env.LOG_LEVEL ?? "info",
        ...(options.sessionFile ? { SESSION_FILE: options.sessionFile } : {}),
      },
    });
    stoppers.push(() => gateway.stop());

    const demo = await listenAs("DEMO_PORT", ports.DEMO_PORT, () => startDemoServer({
      port: ports.DEMO_PORT,
      config: { apiBase: workerUrl, wsUrl: `ws://127.0.0.1:${ports.WORKER_PORT}/ws`, idpIssuer: idp.issuer, clientId: CLIENT_ID, simUrl: sim.url, adminRole: vars.get("ADMIN_ROLE")?.trim() || "admin" },
    }));
    stoppers.push(() => demo.close());

    return {
      sim,
      clientId: CLIENT_ID,
      urls: {
        worker: workerUrl,
        ws: `ws://127.0.0.1:${ports.WORKER_PORT}/ws`,
        idp: idp.issuer,
        jwks: idp.jwksUrl,
        demo: `http://127.0.0.1:${ports.DEMO_PORT}/`,
        sim: sim.url,
        gatewayHealth: gateway.healthUrl,
      },
      startGateway: () => gateway.restart(),
      gateway: () => gateway.process(),
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
