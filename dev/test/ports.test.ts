import { createServer, type Server } from "node:net";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { startGatewayNode } from "../stack/gateway-node.js";
import { freePort, listenAs, onFreePorts, PortInUseError } from "../stack/ports.js";
import { startWranglerDev } from "../stack/wrangler-dev.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => new Promise((resolve) => server.close(resolve))));
});

/** A port this test holds, standing in for another stack that took it (it drops whatever connects). */
async function occupied(): Promise<number> {
  const server = createServer((socket) => socket.destroy());
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return (server.address() as { port: number }).port;
}

/** A server on `port`, failing like a stack's part does when the port is taken. */
function listenOn(name: string, port: number): Promise<number> {
  return listenAs(name, port, async () => {
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, "127.0.0.1", resolve);
    });
    servers.push(server);
    return port;
  });
}

describe("starting on free ports", () => {
  it("starts again on new ports when a picked port was taken before the start bound it", async () => {
    const taken = await occupied();
    const picks = [taken, await freePort(), await freePort()];
    const tried: Array<Record<string, number>> = [];
    const started = await onFreePorts(["SIM_PORT", "IDP_PORT"], async (ports) => {
      tried.push(ports);
      return [await listenOn("SIM_PORT", ports.SIM_PORT), await listenOn("IDP_PORT", ports.IDP_PORT)];
    }, { pickPort: async () => picks.shift() ?? freePort() });
    expect(tried[0]!.SIM_PORT).toBe(taken);
    expect(tried).toHaveLength(2);
    expect(started).toEqual([tried[1]!.SIM_PORT, tried[1]!.IDP_PORT]);
    expect(started).not.toContain(taken);
  });

  it("gives up after its attempts with the error that names the taken port", async () => {
    const taken = await occupied();
    let starts = 0;
    const failing = onFreePorts(["DEMO_PORT"], (ports) => {
      starts++;
      return listenOn("DEMO_PORT", ports.DEMO_PORT);
    }, { attempts: 3, pickPort: async () => taken });
    await expect(failing).rejects.toThrow(`port already in use: DEMO_PORT ${taken}`);
    expect(starts).toBe(3);
  });

  it("does not retry a failure that is not a taken port", async () => {
    let starts = 0;
    const failing = onFreePorts(["WORKER_PORT"], () => {
      starts++;
      return Promise.reject(new Error("bad config"));
    });
    await expect(failing).rejects.toThrow("bad config");
    expect(starts).toBe(1);
  });

  it("gives each name its own port", async () => {
    const picks = [41001, 41001, 41002];
    const ports = await onFreePorts(["A", "B"], async (p) => p, { pickPort: async () => picks.shift()! });
    expect(ports).toEqual({ A: 41001, B: 41002 });
  });
});

// The children say a taken port in their own words; these pin that the words are still recognised.
describe("a child told a taken port", () => {
  it("wrangler dev fails with a PortInUseError naming WORKER_PORT", async () => {
    const taken = await occupied();
    const started = startWranglerDev({ root: ROOT, port: taken, vars: { PRIMARY_GUILD_ID: "100000000000000001" } });
    await expect(started).rejects.toThrow(new PortInUseError([{ name: "WORKER_PORT", port: taken }]));
  });

  it("gateway-node fails with a PortInUseError naming GATEWAY_HEALTH_PORT", async () => {
    const taken = await occupied();
    const env = { ...process.env, DISCORD_BOT_TOKEN: "t", PRIMARY_GUILD_ID: "100000000000000001", HUB_ENDPOINT: "http://127.0.0.1:9/internal/events", HUB_SECRET: "0123456789abcdef0123456789abcdef", DISCORD_API_BASE: "http://127.0.0.1:9/api/v10", LOG_LEVEL: "error" };
    const started = startGatewayNode({ root: ROOT, healthPort: taken, env });
    await expect(started).rejects.toThrow(new PortInUseError([{ name: "GATEWAY_HEALTH_PORT", port: taken }]));
  });
});
