import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

// The SDK as an app gets it: build client/dist, `npm pack` it, install the tarball into a scratch project, then
// type-check an import of it with the repository's TypeScript and import it with plain Node.
const root = fileURLToPath(new URL("../../", import.meta.url));
const clientDir = join(root, "client");
const tsc = join(root, "node_modules/typescript/bin/tsc");
const versionOf = (name: string) => (JSON.parse(readFileSync(join(root, "node_modules", name, "package.json"), "utf8")) as { version: string }).version;
const reactVersion = versionOf("react");
/** A TypeScript app using the React bindings has React's types, as the provider's props and result name them. */
const reactTypesVersion = versionOf("@types/react");
let scratch: string;

const run = (command: string, args: string[], cwd: string) =>
  execFileSync(command, args, { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, npm_config_update_notifier: "false" } });

beforeAll(() => {
  scratch = mkdtempSync(join(tmpdir(), "realtime-client-pkg-"));
  run(process.execPath, [join(clientDir, "build.mjs")], root);
  const [packed] = JSON.parse(run("npm", ["pack", "--json", "--pack-destination", scratch], clientDir)) as { filename: string; files: { path: string }[] }[];
  expect(packed!.files.map((file) => file.path)).toEqual(expect.arrayContaining(["package.json", "dist/index.js", "dist/react.js", "dist/rest.js", "dist/types/client/index.d.ts"]));
  expect(packed!.files.some((file) => file.path.endsWith(".ts") && !file.path.endsWith(".d.ts"))).toBe(false);
  writeFileSync(join(scratch, "package.json"), JSON.stringify({ name: "scratch", private: true, type: "module" }));
  // react (the package's optional peer, for the ./react import) and React's types come from the npm cache when they
  // are there, else from the registry.
  run("npm", ["install", join(scratch, packed!.filename), `react@${reactVersion}`, `@types/react@${reactTypesVersion}`, "--no-audit", "--no-fund", "--prefer-offline", "--no-package-lock"], scratch);
}, 120_000);

afterAll(() => {
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

describe("the packed @spell-coven/realtime-client", () => {
  it("type-checks an app importing the SDK and the React hook (moduleResolution bundler)", () => {
    writeFileSync(
      join(scratch, "app.ts"),
      `import { connect, type ConnectionState, type Transport, type ConnectionStatus, type PresenceDiff, type RealtimeConnection } from "@spell-coven/realtime-client";
import { createRealtimeApi, RealtimeApiError } from "@spell-coven/realtime-client/rest";
import { RealtimeProvider, useConnectionState, useRoom, useRooms, useSpellCovenPresence } from "@spell-coven/realtime-client/react";

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
live.setRooms(undefined);
const api = createRealtimeApi({ baseUrl: "https://realtime.example.com", getToken: async () => "token", timeoutMs: 5_000 });
const created: Promise<{ channelId: string; name: string; guildId: string }> = api.createRoom({ name: "Friday", userLimit: 4 }, { signal: AbortSignal.timeout(1_000) });
// @ts-expect-error userLimit is a number
void api.createRoom({ userLimit: "4" });
const hook: (options: Parameters<typeof useSpellCovenPresence>[0]) => ConnectionStatus = (options) => useSpellCovenPresence(options).status;
const hooks = [RealtimeProvider, useConnectionState, useRoom, useRooms];
export { status, state, members, off, created, hook, hooks, streamed, RealtimeApiError };
`,
    );
    writeFileSync(
      join(scratch, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: { target: "ES2022", module: "ESNext", moduleResolution: "bundler", lib: ["ES2023", "DOM"], types: [], strict: true, noEmit: true },
        files: ["app.ts"],
      }),
    );
    try {
      run(process.execPath, [tsc, "-p", join(scratch, "tsconfig.json")], scratch);
    } catch (error) {
      throw new Error(`tsc failed:\n${(error as { stdout?: string }).stdout ?? String(error)}`);
    }
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
    expect(result.sdk).toEqual(["CONNECT_DEFAULTS", "PresenceStore", "connect", "eventsUrl", "presenceDiff", "tokenExpiry"]);
    expect(result.rest).toEqual(["REST_DEFAULTS", "RealtimeApiError", "createRealtimeApi"]);
    expect(result.react).toEqual([
      "RealtimeProvider",
      "useConnectionState",
      "usePresenceChanges",
      "useRealtimeConnection",
      "useRoom",
      "useRooms",
      "useSpellCovenPresence",
    ]);
    expect(result.types).toEqual(["function", "function", "function"]);
  });
});
