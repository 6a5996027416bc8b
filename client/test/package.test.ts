import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

// The SDK as an app gets it: `npm pack` in client/ (from a clean tree: its prepack builds dist), install the tarball
// into a scratch project, then type-check imports of it with the repository's TypeScript and import it with plain Node.
const root = fileURLToPath(new URL("../../", import.meta.url));
const clientDir = join(root, "client");
const tsc = join(root, "node_modules/typescript/bin/tsc");
const versionOf = (name: string) => (JSON.parse(readFileSync(join(root, "node_modules", name, "package.json"), "utf8")) as { version: string }).version;
let scratch: string;
let packedFiles: string[];

const run = (command: string, args: string[], cwd: string) =>
  execFileSync(command, args, { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, npm_config_update_notifier: "false" } });

beforeAll(() => {
  scratch = mkdtempSync(join(tmpdir(), "realtime-client-pkg-"));
  rmSync(join(clientDir, "dist"), { recursive: true, force: true });
  const output = run("npm", ["pack", "--json", "--pack-destination", scratch], clientDir);
  // The prepack script's own output comes first; npm's JSON is the array after it.
  const [packed] = JSON.parse(output.slice(output.search(/^\[/m))) as { filename: string; files: { path: string }[] }[];
  packedFiles = packed!.files.map((file) => file.path);
  writeFileSync(join(scratch, "package.json"), JSON.stringify({ name: "scratch", private: true, type: "module" }));
  // react (the package's optional peer, for the ./react import), React's types, and ws with its types and Node's for
  // a Node consumer come from the npm cache when they are there, else from the registry.
  const dependencies = ["react", "@types/react", "ws", "@types/ws", "@types/node"].map((name) => `${name}@${versionOf(name)}`);
  run("npm", ["install", join(scratch, packed!.filename), ...dependencies, "--no-audit", "--no-fund", "--prefer-offline", "--no-package-lock"], scratch);
}, 120_000);

afterAll(() => {
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

/** Type-checks `source` as app.ts in the scratch project with these compiler options. */
function typeCheck(source: string, compilerOptions: Record<string, unknown>): void {
  writeFileSync(join(scratch, "app.ts"), source);
  writeFileSync(join(scratch, "tsconfig.json"), JSON.stringify({ compilerOptions: { noEmit: true, strict: true, ...compilerOptions }, files: ["app.ts"] }));
  try {
    run(process.execPath, [tsc, "-p", join(scratch, "tsconfig.json")], scratch);
  } catch (error) {
    throw new Error(`tsc failed:\n${(error as { stdout?: string }).stdout ?? String(error)}`);
  }
}

/** Runs an ES module script with plain Node in the scratch project; returns its output. */
const node = (script: string) => run(process.execPath, ["--input-type=module", "-e", script], scratch);

describe("the packed @spell-coven/realtime-client", () => {
  it("is built by npm pack alone: its prepack builds dist", () => {
    expect(packedFiles).toEqual(expect.arrayContaining(["package.json", "README.md", "dist/index.js", "dist/react.js", "dist/rest.js", "dist/types/client/index.d.ts"]));
    expect(packedFiles.some((file) => file.endsWith(".ts") && !file.endsWith(".d.ts"))).toBe(false);
  });

  it("has a README that stands alone: no link or path into the repository", () => {
    const readme = readFileSync(join(scratch, "node_modules/@spell-coven/realtime-client/README.md"), "utf8");
    const links = [...readme.matchAll(/\]\(([^)\s]+)\)/g)].map((match) => match[1]!).filter((target) => !/^(https?:|#)/.test(target));
    expect(links.filter((target) => !packedFiles.includes(target.replace(/^\.\//, ""))), "relative links to files not in the package").toEqual([]);
    const repositoryPaths = readme.match(/`(?:client|dev|docs|e2e|protocol|worker-edge|gateway-node|examples)\/[^`]*`/g) ?? [];
    expect(repositoryPaths, "paths that exist only in the repository").toEqual([]);
  });

  it("type-checks an app importing the SDK and the React hook (moduleResolution bundler)", () => {
    typeCheck(
      `import { connect, mediaOf, type ConnectionState, type GuildStatus, type Transport, type ConnectionStatus, type PresenceDiff, type RealtimeConnection, type VoiceMedia } from "@spell-coven/realtime-client";
import { createRealtimeApi, RealtimeApiError } from "@spell-coven/realtime-client/rest";
import { RealtimeProvider, useConnectionState, useGuildStatus, useRoom, useRooms, useSpellCovenPresence } from "@spell-coven/realtime-client/react";

const live: RealtimeConnection = connect({ url: "wss://realtime.example.com/ws", getToken: async () => "token", rooms: ["123456789012345678"] });
const status: ConnectionStatus = live.status;
const state: ConnectionState = live.state;
const transport: Transport = "auto";
const streamed: RealtimeConnection = connect({ url: "wss://realtime.example.com/ws", getToken: async () => "token", transport });
// @ts-expect-error an unknown transport
void connect({ url: "wss://realtime.example.com/ws", getToken: async () => "token", transport: "longpoll" });
const members: string[] = live.presence.getSnapshot().rooms.flatMap((room) => room.members.map((member) => member.userId));
const off: () => void = live.on("voice.joined", (payload) => console.log(payload.userId, payload.username));
// @ts-expect-error room.deleted has no userId
live.on("room.deleted", (payload) => payload.userId);
live.presence.onChange((diff: PresenceDiff) => diff.moved.map((move) => move.to));
live.presence.onChange((diff) => diff.mediaChanged.map(({ member, before, after }) => [member.userId, before.selfVideo, after.selfVideo]));
live.on("voice.media", (payload) => console.log(payload.userId, payload.media.selfStream));
live.on("guild.status", (payload) => console.log(payload.status === "unavailable"));
const cameras: boolean[] = live.presence.getSnapshot().rooms.flatMap((room) => room.members.map((member) => mediaOf(member).selfVideo));
const media: VoiceMedia | undefined = live.presence.getSnapshot().rooms[0]?.members[0]?.media;
const guildStatus: GuildStatus = live.presence.guildStatus;
live.setRooms(undefined);
const api = createRealtimeApi({ baseUrl: "https://realtime.example.com", getToken: async () => "token", timeoutMs: 5_000 });
const created: Promise<{ channelId: string; name: string; guildId: string }> = api.createRoom({ name: "Friday", userLimit: 4 }, { signal: AbortSignal.timeout(1_000) });
// @ts-expect-error userLimit is a number
void api.createRoom({ userLimit: "4" });
const hook: (options: Parameters<typeof useSpellCovenPresence>[0]) => ConnectionStatus = (options) => useSpellCovenPresence(options).status;
const hooks = [RealtimeProvider, useConnectionState, useGuildStatus, useRoom, useRooms];
export { status, state, members, cameras, media, guildStatus, off, created, hook, hooks, streamed, RealtimeApiError };
`,
      { target: "ES2022", module: "ESNext", moduleResolution: "bundler", lib: ["ES2023", "DOM"], types: [], exactOptionalPropertyTypes: true, noUncheckedIndexedAccess: true },
    );
  });

  it("type-checks every entry with moduleResolution node10 (typesVersions), as older toolchains resolve", () => {
    typeCheck(
      `import { connect, type RealtimeConnection } from "@spell-coven/realtime-client";
import { createRealtimeApi, RealtimeCorsError } from "@spell-coven/realtime-client/rest";
import { useRooms } from "@spell-coven/realtime-client/react";
const live: RealtimeConnection = connect({ url: "wss://realtime.example.com/ws", getToken: async () => "token" });
const api = createRealtimeApi({ baseUrl: "https://realtime.example.com", getToken: async () => "token" });
export { live, api, useRooms, RealtimeCorsError };
`,
      { target: "ES2022", module: "ESNext", moduleResolution: "node10", lib: ["ES2023", "DOM"], types: [] },
    );
  });

  it("type-checks a Node consumer passing the ws package's WebSocket", () => {
    typeCheck(
      `import { WebSocket } from "ws";
import { connect } from "@spell-coven/realtime-client";
export const live = connect({ url: "ws://127.0.0.1:8787/ws", getToken: async () => "token", WebSocket });
`,
      { target: "ES2022", module: "NodeNext", moduleResolution: "NodeNext", lib: ["ES2023"], types: ["node"] },
    );
  });

  it("connects with ws in Node, and without any WebSocket fails with a message that names the fix", () => {
    const output = node(`const { WebSocket } = await import("ws");
delete globalThis.WebSocket; // as in Node 20, which has none
const { connect } = await import("@spell-coven/realtime-client");
const options = { url: "ws://127.0.0.1:9/ws", getToken: async () => "token", browser: false };
const withWs = connect({ ...options, WebSocket });
const status = withWs.status;
withWs.close();
let error = "none";
try { connect(options); } catch (caught) { error = caught.message; }
console.log(JSON.stringify({ status, error }));`);
    const { status, error } = JSON.parse(output) as { status: string; error: string };
    expect(status).toBe("connecting");
    expect(error).toMatch(/no global WebSocket/);
    expect(error).toMatch(/Node 22/);
    expect(error).toMatch(/import \{ WebSocket \} from "ws"/);
  });

  it("imports with plain Node (ESM) and has its exports", () => {
    const output = run(
      process.execPath,
      [
        "--input-type=module",
        "-e",
        `const sdk = await import("@spell-coven/realtime-client");
const rest = await import("@spell-coven/realtime-client/rest");
const react = await import("@spell-coven/realtime-client/react");
console.log(JSON.stringify({ sdk: Object.keys(sdk).sort(), rest: Object.keys(rest).sort(), react: Object.keys(react).sort(),
  types: [typeof sdk.connect, typeof rest.createRealtimeApi, typeof react.RealtimeProvider] }));`,
      ],
      scratch,
    );
    const result = JSON.parse(output) as { sdk: string[]; rest: string[]; react: string[]; types: string[] };
    expect(result.sdk).toEqual(["CONNECT_DEFAULTS", "PresenceStore", "connect", "eventsUrl", "mediaOf", "presenceDiff", "tokenExpiry"]);
    expect(result.rest).toEqual(["REST_DEFAULTS", "RealtimeApiError", "RealtimeCorsError", "createRealtimeApi"]);
    expect(result.react).toEqual([
      "RealtimeProvider",
      "useConnectionState",
      "useGuildStatus",
      "usePresenceChanges",
      "useRealtimeConnection",
      "useRoom",
      "useRooms",
      "useSpellCovenPresence",
    ]);
    expect(result.types).toEqual(["function", "function", "function"]);
  });
});
