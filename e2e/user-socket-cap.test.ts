import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, expect, it } from "vitest";
import WebSocket from "ws";
import { isolatedWorkerVars } from "../dev/stack/wrangler-dev.js";
import { CloseCode, SocketLimits } from "../protocol/index.js";
import { startTestWorker, TestIssuer, type TestWorker } from "./support/test-worker.js";

/**
 * The per-user socket cap against `wrangler dev` with a remote key set (JWT_PUBLIC_JWK_URL), the way production
 * verifies tokens: while the edge fetches the identity provider's keys (its first token, and again every
 * KEY_SET_MAX_AGE_MS), every auth that arrives waits for that one fetch and they all resume together.
 */

const GUILD = "100000000000000001";
const SOCKETS = SocketLimits.socketsPerUser * 2;
/** The identity provider answers its JWKS this late: long enough for every socket's auth to arrive meanwhile. */
const JWKS_DELAY_MS = 500;

let worker: TestWorker;
let issuer: TestIssuer;
let jwks: Server;

beforeAll(async () => {
  issuer = await TestIssuer.create({ issuer: "socket-cap", kid: "socket-cap" });
  jwks = createServer((_request, response) => {
    setTimeout(() => {
      response.setHeader("Content-Type", "application/json");
      response.end(JSON.stringify({ keys: [issuer.publicJwk] }));
    }, JWKS_DELAY_MS);
  });
  await new Promise<void>((resolve) => jwks.listen(0, "127.0.0.1", resolve));
  const jwksUrl = `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/jwks`;
  const vars = isolatedWorkerVars({ guildId: GUILD, hubSecret: "socket-cap-hub-secret-0123456789abcdef", ...issuer.trust });
  worker = await startTestWorker({ name: "socket-cap", logLevel: "warn", vars: { ...vars, JWT_PUBLIC_JWK: "", JWT_PUBLIC_JWK_URL: jwksUrl } });
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
