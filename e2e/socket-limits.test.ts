import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, expect, it } from "vitest";
import WebSocket from "ws";
import { isolatedWorkerVars } from "../dev/stack/wrangler-dev.js";
import { CloseCode, SocketLimits } from "../protocol/index.js";
import { until } from "../test-support/until.js";
import { JWKS_REFETCH_COOLDOWN_MS } from "../worker-edge/src/jwks.js";
import { startTestWorker, TestIssuer, type TestWorker } from "./support/test-worker.js";

/**
 * The socket limits against `wrangler dev` with a remote key set (JWT_PUBLIC_JWK_URL), the way production verifies
 * tokens: while the edge fetches the identity provider's keys (its first token, every KEY_SET_MAX_AGE_MS, and the
 * first token of a rotated-in key), every auth that arrives waits for that one fetch and they all resume together.
 */

const GUILD = "100000000000000001";
const SOCKETS = SocketLimits.socketsPerUser * 2;
/** The identity provider answers its JWKS this late: long enough for every socket's auth to arrive meanwhile. */
const JWKS_DELAY_MS = 500;

let worker: TestWorker;
let issuer: TestIssuer;
/** The identity provider's next key, published in the middle of a test (a rotation). */
let rotated: TestIssuer;
let published: object[];
let jwks: Server;

beforeAll(async () => {
  issuer = await TestIssuer.create({ issuer: "socket-limits", kid: "socket-limits" });
  rotated = await TestIssuer.create({ issuer: "socket-limits", kid: "socket-limits-next" });
  published = [issuer.publicJwk];
  jwks = createServer((_request, response) => {
    setTimeout(() => {
      response.setHeader("Content-Type", "application/json");
      response.end(JSON.stringify({ keys: published }));
    }, JWKS_DELAY_MS);
  });
  await new Promise<void>((resolve) => jwks.listen(0, "127.0.0.1", resolve));
  const jwksUrl = `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/jwks`;
  const vars = isolatedWorkerVars({ guildId: GUILD, hubSecret: "socket-limits-hub-secret-0123456789abcdef", ...issuer.trust });
  worker = await startTestWorker({ name: "socket-limits", logLevel: "warn", vars: { ...vars, JWT_PUBLIC_JWK: "", JWT_PUBLIC_JWK_URL: jwksUrl } });
});

afterAll(async () => {
  await worker?.stop();
  jwks?.close();
});

function openSocket(url: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.once("open", () => resolve(ws));
    ws.once("error", reject);
  });
}

it(`keeps one user to ${SocketLimits.socketsPerUser} sockets when they all authenticate while the edge fetches the keys`, async () => {
  const token = await issuer.token("730000000000000001", { name: "Many tabs" });
  const sockets = await Promise.all(Array.from({ length: SOCKETS }, () => openSocket(`${worker.url.replace(/^http/, "ws")}/ws`)));
  const outcomes = sockets.map(
    (ws) =>
      new Promise<"live" | number>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error("neither auth.ok nor a close arrived within 10 s")), 10_000);
        ws.on("message", (data) => {
          if (String(data).includes('"auth.ok"')) {
            clearTimeout(timer);
            resolve("live");
          }
        });
        ws.on("close", (code) => {
          clearTimeout(timer);
          resolve(code);
        });
      }),
  );
  for (const ws of sockets) ws.send(JSON.stringify({ type: "auth", token }));
  const settled = await Promise.all(outcomes);
  // A socket acknowledged and then closed by the cap counts as refused: what matters is how many stay.
  await new Promise((resolve) => setTimeout(resolve, 500));
  const open = sockets.filter((ws) => ws.readyState === WebSocket.OPEN).length;
  for (const ws of sockets) ws.terminate();
  expect(open, `sockets left open for one user (outcomes: ${settled.join(",")})`).toBe(SocketLimits.socketsPerUser);
  expect(settled.filter((outcome) => outcome === CloseCode.tooMany)).toHaveLength(SOCKETS - SocketLimits.socketsPerUser);
});

it(`closes a live socket ${CloseCode.tooMany} for re-auths past the burst of ${SocketLimits.reauthBurst}, also when they all wait for the key set of a rotation`, async () => {
  const sub = "730000000000000003";
  const ws = await openSocket(`${worker.url.replace(/^http/, "ws")}/ws`);
  const acks: string[] = [];
  let closedWith: number | undefined;
  ws.on("close", (code) => (closedWith = code));
  ws.on("message", (data) => {
    if (String(data).includes('"auth.ok"')) acks.push(String(data));
  });
  ws.send(JSON.stringify({ type: "auth", token: await issuer.token(sub) }));
  await until(() => (acks.length === 1 ? true : undefined), "the first auth.ok", 10_000);

  // The identity provider rotates: its new key is published, and its tokens reach the edge once the refetch
  // cooldown since the last fetch has passed. The first of them starts the key set's fetch; all wait for it.
  published = [issuer.publicJwk, rotated.publicJwk];
  await new Promise((resolve) => setTimeout(resolve, JWKS_REFETCH_COOLDOWN_MS + 500));
  const tokens = await Promise.all(Array.from({ length: SocketLimits.reauthBurst * 3 }, () => rotated.token(sub)));
  for (const token of tokens) ws.send(JSON.stringify({ type: "auth", token }));

  await until(() => closedWith !== undefined || acks.length === 1 + tokens.length, "the socket to close, or every re-auth to be answered", 10_000);
  ws.terminate();
  // The re-auth past the burst closes the socket, possibly before the burst's own re-auths are answered.
  expect(acks.length, "auth.ok answers: the first auth and at most the burst of re-auths").toBeLessThanOrEqual(1 + SocketLimits.reauthBurst);
  expect(closedWith, "the re-auths past the burst close the socket").toBe(CloseCode.tooMany);
});
