import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, mkdirSync, writeFileSync, type WriteStream } from "node:fs";
import { join } from "node:path";
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import { startDiscordSimulator, type DiscordSimulator } from "../../dev/discord-sim/index.js";
import { waitForHttp } from "../../dev/stack/processes.js";
import { ROOT } from "../support/paths.js";
import { FaultProxy } from "./proxy.js";

export const GUILD = "100000000000000001";
const BOT_TOKEN = "chaos-bot-token";
const HUB_SECRET = "chaos-hub-secret-0123456789abcdef";
const ISSUER = "chaos";
const AUDIENCE = "spell-coven-realtime";

/** A child process whose output goes to a log file and a ring buffer (shown when an invariant fails). */
class Child {
  readonly exited: Promise<number | null>;
  constructor(
    readonly child: ChildProcess,
    readonly tail: string[],
  ) {
    this.exited = new Promise((resolve) => child.once("exit", (code) => resolve(code)));
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  signal(signal: NodeJS.Signals): void {
    try {
      if (this.child.pid !== undefined) process.kill(-this.child.pid, signal);
    } catch {
      this.child.kill(signal);
    }
  }

  async kill(): Promise<void> {
    if (!this.running) return;
    this.signal("SIGKILL");
    await this.exited;
  }

  async stop(): Promise<void> {
    if (!this.running) return;
    this.signal("SIGTERM");
    const timer = setTimeout(() => this.signal("SIGKILL"), 8_000);
    await this.exited;
    clearTimeout(timer);
  }
}

function spawnLogged(name: string, command: string, args: string[], env: NodeJS.ProcessEnv, log: WriteStream, tail: string[]): Child {
  const child = spawn(command, args, { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"], detached: true });
  for (const stream of [child.stdout, child.stderr]) {
    let buffered = "";
    stream?.on("data", (chunk: Buffer) => {
      buffered += chunk.toString();
      const lines = buffered.split("\n");
      buffered = lines.pop() ?? "";
      for (const line of lines) {
        const stamped = `${new Date().toISOString()} [${name}] ${line}`;
        log.write(`${stamped}\n`);
        tail.push(stamped);
        if (tail.length > 200) tail.shift();
      }
    });
  }
  return new Child(child, tail);
}

export interface ChaosPorts {
  worker: number;
  proxy: number;
  health: number;
}

export interface ChaosStackOptions {
  dir: string;
  ports: ChaosPorts;
  users: Array<{ id: string; username: string }>;
  channels: Array<{ id: string; name: string; type: 0 | 2; userLimit?: number }>;
  /** Relays per region (RELAY_SHARDS): 0 keeps every socket on the hub. */
  relays: number;
}

/**
 * The real system on 127.0.0.1 for chaos runs: the simulator in-process, `wrangler dev` (restartable on the same
 * port and state), a fault proxy that gateway-node posts through, and gateway-node as a child process with a
 * SESSION_FILE (killable and restartable).
 */
export class ChaosStack {
  sim!: DiscordSimulator;
  proxy!: FaultProxy;
  private worker: Child | undefined;
  private gateway: Child | undefined;
  private signingKey!: CryptoKey;
  private envFile!: string;
  private readonly log: WriteStream;
  readonly workerTail: string[] = [];
  readonly gatewayTail: string[] = [];
  gatewayStarts = 0;
  workerStarts = 0;

  constructor(private readonly options: ChaosStackOptions) {
    mkdirSync(options.dir, { recursive: true });
    this.log = createWriteStream(join(options.dir, "processes.log"));
  }

  get workerUrl(): string {
    return `http://127.0.0.1:${this.options.ports.worker}`;
  }

  get wsUrl(): string {
    return `ws://127.0.0.1:${this.options.ports.worker}/ws`;
  }

  get healthUrl(): string {
    return `http://127.0.0.1:${this.options.ports.health}/healthz`;
  }

  async start(): Promise<void> {
    const { publicKey, privateKey } = await generateKeyPair("RS256", { extractable: true });
    this.signingKey = privateKey;
    this.sim = await startDiscordSimulator({
      botToken: BOT_TOKEN,
      guildId: GUILD,
      heartbeatIntervalMs: 1_000,
      identifyIntervalMs: 0,
      // Short, so a gateway-node kill that outlasts a pause needs a fresh session and a guild.sync.
      resumeWindowMs: 5_000,
      channels: this.options.channels,
      users: this.options.users,
    });
    const vars = {
      PRIMARY_GUILD_ID: GUILD, DISCORD_BOT_TOKEN: BOT_TOKEN, HUB_SECRET, JWT_ISSUER: ISSUER, JWT_AUDIENCE: AUDIENCE,
      JWT_PUBLIC_JWK: JSON.stringify({ ...(await exportJWK(publicKey)), alg: "RS256" }), DISCORD_API_BASE: this.sim.restBase,
      ROOM_IDLE_TTL_SECONDS: "0", RELAY_SHARDS: String(this.options.relays),
    };
    this.envFile = join(this.options.dir, "worker.vars");
    writeFileSync(this.envFile, Object.entries(vars).map(([k, v]) => `${k}=${v}`).join("\n"), { mode: 0o600 });
    this.proxy = new FaultProxy(this.options.ports.proxy, this.options.ports.worker);
    await this.proxy.start();
    await this.startWorker();
    this.startGateway();
  }

  /** `wrangler dev` on the fixed port with the run's --persist-to state; resolves when /health answers. */
  async startWorker(): Promise<void> {
    this.workerStarts++;
    const args = [
      "dev", "--ip", "127.0.0.1", "--port", String(this.options.ports.worker), "--inspector-port", "0",
      "--show-interactive-dev-session=false", "--env-file", this.envFile, "--persist-to", join(this.options.dir, "do-state"), "--log-level", "warn",
    ];
    const env = { ...process.env, WRANGLER_SEND_METRICS: "false", CLOUDFLARE_CF_FETCH_ENABLED: "false", NO_COLOR: "1", FORCE_COLOR: "0" };
    const worker = spawnLogged("worker", join(ROOT, "node_modules/.bin/wrangler"), args, env, this.log, this.workerTail);
    this.worker = worker;
    await Promise.race([
      waitForHttp(`${this.workerUrl}/health`, 120_000, "wrangler dev"),
      worker.exited.then((code) => {
        throw new Error(`wrangler dev exited with ${code} before it was ready`);
      }),
    ]);
  }

  async stopWorker(): Promise<void> {
    await this.worker?.stop();
  }

  get workerRunning(): boolean {
    return this.worker?.running ?? false;
  }

  startGateway(): void {
    this.gatewayStarts++;
    this.gateway = spawnLogged("gateway", join(ROOT, "node_modules/.bin/tsx"), ["gateway-node/src/main.ts"], {
      ...process.env,
      FORCE_COLOR: "0",
      DISCORD_BOT_TOKEN: BOT_TOKEN, PRIMARY_GUILD_ID: GUILD, HUB_ENDPOINT: `http://127.0.0.1:${this.options.ports.proxy}/internal/events`,
      HUB_SECRET, DISCORD_API_BASE: this.sim.restBase, HEALTH_PORT: String(this.options.ports.health),
      LOG_LEVEL: process.env.CHAOS_GATEWAY_LOG_LEVEL ?? "info", SESSION_FILE: join(this.options.dir, "gateway-session.json"),
    }, this.log, this.gatewayTail);
  }

  get gatewayRunning(): boolean {
    return this.gateway?.running ?? false;
  }

  get dir(): string {
    return this.options.dir;
  }

  /** SIGTERM: gateway-node flushes its outbox and closes Discord resumably. */
  async stopGatewayGracefully(): Promise<void> {
    await this.gateway?.stop();
  }

  async killGateway(): Promise<void> {
    await this.gateway?.kill();
  }

  async token(sub: string, extra: Record<string, unknown> = {}): Promise<string> {
    return new SignJWT({ name: `chaos ${sub.slice(-2)}`, ...extra }).setProtectedHeader({ alg: "RS256" }).setSubject(sub)
      .setIssuer(ISSUER).setAudience(AUDIENCE).setExpirationTime("2h").sign(this.signingKey);
  }

  note(line: string): void {
    this.log.write(`${new Date().toISOString()} [chaos] ${line}\n`);
  }

  async stop(): Promise<void> {
    await this.gateway?.stop().catch(() => undefined);
    await this.worker?.stop().catch(() => undefined);
    await this.proxy?.stop().catch(() => undefined);
    await this.sim?.close().catch(() => undefined);
    await new Promise<void>((resolve) => this.log.end(() => resolve()));
  }
}
