import { afterEach } from "vitest";
import { startDiscordSimulator, type DiscordSimulator, type SimulatorOptions } from "../../discord-sim/index.js";
import { GatewayProbe } from "../../discord-sim/probe.js";

/**
 * The Discord simulator a test starts, with the file's own world (`base`), and the gateway probes it opens; all
 * closed after each test. Call once per test file.
 */
export function simulatorFixture(base: SimulatorOptions) {
  let running: DiscordSimulator | undefined;
  const probes: GatewayProbe[] = [];
  afterEach(async () => {
    for (const probe of probes.splice(0)) probe.drop();
    await running?.close();
    running = undefined;
  });
  const sim = (): DiscordSimulator => {
    if (!running) throw new Error("start() the simulator first");
    return running;
  };
  /** A gateway connection on `path`, before anything has arrived. */
  const connect = (path = "/gateway?v=10&encoding=json"): GatewayProbe => {
    const probe = new GatewayProbe(`${sim().url.replace("http", "ws")}${path}`);
    probes.push(probe);
    return probe;
  };
  return {
    sim,
    connect,
    /** Starts the simulator with `base`, changed by `options`. */
    async start(options: Partial<SimulatorOptions> = {}): Promise<DiscordSimulator> {
      running = await startDiscordSimulator({ ...base, ...options });
      return running;
    },
    /** A gateway connection that has had its HELLO. */
    async open(path?: string): Promise<GatewayProbe> {
      const probe = connect(path);
      await sim().waitFor(() => probe.find(10), 2_000, `HELLO on ${path ?? "/gateway"}`);
      return probe;
    },
    closed: (probe: GatewayProbe, what: string) => sim().waitFor(() => probe.closeCode, 2_000, `the socket to close (${what})`),
  };
}
