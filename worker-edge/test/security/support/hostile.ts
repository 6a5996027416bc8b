import { env } from "cloudflare:workers";
import { channelOf } from "../../../../protocol/index.js";
import { SignJWT, exportJWK, exportSPKI, generateKeyPair, importJWK, type JWK, type JWTHeaderParameters } from "jose";
import { afterEach, expect, vi } from "vitest";
import { TEST_AUDIENCE, TEST_BOT_TOKEN, TEST_GUILD_ID, TEST_HUB_SECRET, TEST_ISSUER } from "../../support/bindings.js";
import { edgeFetch, newChannelId, newUserId, postInternal, TestSocket } from "../../support/edge.js";
import { roomCreated } from "../../support/events.js";
import { mintToken } from "../../support/tokens.js";

const testEnv = env as Env & { TEST_SIGNING_JWK: string; TEST_FOREIGN_JWK: string };

/** Values that must never leave the Worker: in a response body, a response header or a log line. */
export const SECRETS = [TEST_BOT_TOKEN, TEST_HUB_SECRET] as const;

export function findSecrets(text: string): string[] {
  return SECRETS.filter((secret) => text.includes(secret));
}

// --- log capture: every console line the Worker and its Durable Object write (they share the test isolate)

const logLines: string[] = [];

/** Wraps console so each line is kept (and still printed); call once per file, in beforeAll. */
export function captureConsole(): void {
  for (const method of ["log", "info", "warn", "error", "debug"] as const) {
    const original = console[method].bind(console);
    vi.spyOn(console, method).mockImplementation((...args: unknown[]) => {
      logLines.push(args.map((arg) => (typeof arg === "string" ? arg : safeStringify(arg))).join(" "));
      original(...args);
    });
  }
}

export function capturedLogLines(): readonly string[] {
  return logLines;
}

function safeStringify(value: unknown): string {
  try {
    return value instanceof Error ? `${value.name}: ${value.message}\n${value.stack ?? ""}` : JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

// --- responses: every probe is recorded and scanned for secrets

export interface Probe {
  status: number;
  headers: Headers;
  text: string;
  json: unknown;
}

const responses: Array<{ what: string; headers: string; text: string }> = [];

/** Fetches through the Worker, reads the whole response and records it for the secret scan. */
export async function probe(path: string, init?: RequestInit): Promise<Probe> {
  return record(`${init?.method ?? "GET"} ${path}`, await edgeFetch(path, init));
}

export async function record(what: string, response: Response): Promise<Probe> {
  const text = await response.text();
  const headers = [...response.headers].map(([name, value]) => `${name}: ${value}`).join("\n");
  responses.push({ what, headers, text });
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.status, headers: response.headers, text, json };
}

export function recordedResponses(): ReadonlyArray<{ what: string; headers: string; text: string }> {
  return responses;
}

/** The last test of each file: nothing recorded so far carried a secret. */
export function expectNoSecretsLeaked(): void {
  const leaks = [
    ...responses.flatMap((r) => findSecrets(`${r.headers}\n${r.text}`).map((s) => `${r.what} → ${s.slice(0, 6)}…`)),
    ...logLines.flatMap((line) => findSecrets(line).map((s) => `log line → ${s.slice(0, 6)}…: ${line.slice(0, 200)}`)),
  ];
  expect(leaks).toEqual([]);
}

// --- tokens

export interface RawTokenOptions {
  header?: Partial<JWTHeaderParameters> & Record<string, unknown>;
  claims?: Record<string, unknown>;
  /** Claims to leave out of the defaults (iss, aud, sub, exp, iat). */
  omit?: string[];
  key?: "trusted" | "foreign";
}

/** An RS256 token with full control of header and claims, signed by the trusted key unless told otherwise. */
export async function rawToken(options: RawTokenOptions = {}): Promise<string> {
  const jwk = JSON.parse(options.key === "foreign" ? testEnv.TEST_FOREIGN_JWK : testEnv.TEST_SIGNING_JWK) as JWK;
  const key = await importJWK(jwk, "RS256");
  const now = Math.floor(Date.now() / 1000);
  const defaults: Record<string, unknown> = {
    iss: TEST_ISSUER,
    aud: TEST_AUDIENCE,
    sub: newUserId(),
    iat: now,
    exp: now + 600,
    name: "Mallory",
  };
  for (const name of options.omit ?? []) delete defaults[name];
  return new SignJWT({ ...defaults, ...options.claims })
    .setProtectedHeader({ alg: "RS256", kid: "test-key", ...options.header } as JWTHeaderParameters)
    .sign(key);
}

const b64url = (bytes: Uint8Array | string) => {
  const data = typeof bytes === "string" ? new TextEncoder().encode(bytes) : bytes;
  let binary = "";
  for (const byte of data) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/=+$/, "").replace(/\+/g, "-").replace(/\//g, "_");
};

function validClaims(): Record<string, unknown> {
  const now = Math.floor(Date.now() / 1000);
  return { sub: newUserId(), iss: TEST_ISSUER, aud: TEST_AUDIENCE, iat: now, exp: now + 600 };
}

/** `alg: none` in the given spelling, with otherwise valid claims and the given (usually empty) signature. */
export function noneToken(alg = "none", signature = ""): string {
  return `${b64url(JSON.stringify({ alg, typ: "JWT" }))}.${b64url(JSON.stringify(validClaims()))}.${signature}`;
}

/** HS256 keyed with some public-key bytes: the algorithm-confusion attack in its usual variants. */
export async function hmacWithPublicKey(variant: "jwk-json" | "spki-pem" | "modulus"): Promise<string> {
  const publicJwk = JSON.parse((env as Env).JWT_PUBLIC_JWK ?? "{}") as JWK;
  let secret: Uint8Array;
  if (variant === "jwk-json") secret = new TextEncoder().encode((env as Env).JWT_PUBLIC_JWK);
  else if (variant === "modulus") secret = new TextEncoder().encode(publicJwk.n ?? "");
  else {
    const key = (await importJWK(publicJwk, "RS256")) as CryptoKey;
    secret = new TextEncoder().encode(await exportSPKI(key));
  }
  const header = b64url(JSON.stringify({ alg: "HS256", typ: "JWT", kid: "test-key" }));
  const payload = b64url(JSON.stringify(validClaims()));
  const hmac = await crypto.subtle.importKey("raw", secret, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", hmac, new TextEncoder().encode(`${header}.${payload}`)));
  return `${header}.${payload}.${b64url(mac)}`;
}

/** A token carrying the attacker's own public key in its header (`jwk`), signed with that key. */
export async function embeddedJwkToken(): Promise<string> {
  const { publicKey, privateKey } = await generateKeyPair("RS256", { extractable: true });
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({})
    .setProtectedHeader({ alg: "RS256", kid: "test-key", jwk: await exportJWK(publicKey) })
    .setSubject(newUserId())
    .setIssuer(TEST_ISSUER)
    .setAudience(TEST_AUDIENCE)
    .setIssuedAt(now)
    .setExpirationTime(now + 600)
    .sign(privateKey);
}

/** A valid token whose signature bytes are changed in the middle. */
export async function tamperedSignatureToken(): Promise<string> {
  const token = await mintToken({ sub: newUserId() });
  const [header, payload, signature] = token.split(".") as [string, string, string];
  const middle = Math.floor(signature.length / 2);
  const flipped = signature[middle] === "A" ? "B" : "A";
  return `${header}.${payload}.${signature.slice(0, middle)}${flipped}${signature.slice(middle + 1)}`;
}

/** A valid token whose payload was swapped for another user's after signing. */
export async function swappedPayloadToken(): Promise<string> {
  const token = await mintToken({ sub: newUserId() });
  const [header, , signature] = token.split(".") as [string, string, string];
  return `${header}.${b64url(JSON.stringify({ ...validClaims(), roles: ["admin"] }))}.${signature}`;
}

// --- a good client: opened before each hostile case, it must see nothing it should not and still be served

export class GoodClient {
  private mark = 0;

  private constructor(
    readonly socket: TestSocket,
    readonly userId: string,
  ) {}

  static async open(): Promise<GoodClient> {
    const userId = newUserId();
    const socket = await TestSocket.open();
    await socket.auth(await mintToken({ sub: userId }));
    await socket.waitFor((m) => m.type === "snapshot", "the good client's snapshot");
    const client = new GoodClient(socket, userId);
    client.mark = socket.messages.length;
    return client;
  }

  /**
   * Sends one legitimate event through the signed internal path and waits for it. Everything the client got
   * since it opened must be an event about one of `allowedChannels` or that legitimate event, and the
   * socket must still be open.
   */
  async expectStillServed(allowedChannels: readonly string[] = []): Promise<void> {
    expect(this.socket.closed, "the good client's socket was closed").toBeUndefined();
    const channelId = newChannelId();
    const legit = await postInternal({ events: [roomCreated(channelId, "Legit")] });
    expect(legit.status, "a legitimate internal event was refused").toBe(200);
    await this.socket.waitFor(
      (m) => m.type === "event" && m.event === "room.created" && m.payload.channelId === channelId,
      "the next legitimate event",
    );
    const since = this.socket.messages.slice(this.mark);
    const unexpected = since.filter(
      (m) => !(m.type === "event" && (channelOf(m) === channelId || allowedChannels.includes(channelOf(m) ?? ""))),
    );
    expect(unexpected, "the good client received messages it should not have").toEqual([]);
    expect(this.socket.closed, "the good client's socket was closed").toBeUndefined();
    this.mark = this.socket.messages.length;
  }

  /** Events since the last check, for cases that expect some (e.g. a replay that must not repeat). */
  eventsSinceMark() {
    return this.socket.events().filter((e) => this.socket.messages.indexOf(e) >= this.mark);
  }

  close(): void {
    try {
      this.socket.ws.close(1000, "done");
    } catch {
      // already closed
    }
  }
}

export const GUILD_ID = TEST_GUILD_ID;
export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Sockets a test opens (`open`) or gets otherwise (`track`), closed after it if still open (registers its own
 * afterEach).
 */
export function trackedSockets(): { open(query?: string, headers?: Record<string, string>): Promise<TestSocket>; track(socket: TestSocket): TestSocket } {
  const opened: TestSocket[] = [];
  afterEach(() => {
    for (const socket of opened.splice(0)) {
      if (socket.closed) continue;
      try {
        socket.ws.close(1000, "test done");
      } catch {
        // already closed
      }
    }
  });
  const track = (socket: TestSocket) => {
    opened.push(socket);
    return socket;
  };
  return { open: async (query = "", headers = {}) => track(await TestSocket.open(query, headers)), track };
}
