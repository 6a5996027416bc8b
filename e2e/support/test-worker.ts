import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { exportJWK, generateKeyPair, SignJWT, type JWK } from "jose";
import { startWranglerDev, type WranglerDev } from "../../dev/stack/wrangler-dev.js";
import { ROOT } from "./paths.js";

/** An identity provider in miniature: a key pair whose public half the Worker trusts, signing users' tokens. */
export class TestIssuer {
  private constructor(
    readonly issuer: string,
    readonly audience: string,
    readonly publicJwk: JWK,
    private readonly privateKey: CryptoKey,
    private readonly kid: string | undefined,
  ) {}

  static async create(options: { issuer: string; audience?: string; kid?: string }): Promise<TestIssuer> {
    const { publicKey, privateKey } = await generateKeyPair("RS256", { extractable: true });
    const publicJwk = { ...(await exportJWK(publicKey)), alg: "RS256", ...(options.kid ? { kid: options.kid } : {}) };
    return new TestIssuer(options.issuer, options.audience ?? "spell-coven-realtime", publicJwk, privateKey, options.kid);
  }

  /** What a Worker needs to trust this issuer's tokens (for isolatedWorkerVars). */
  get trust(): { issuer: string; audience: string; publicJwk: JWK } {
    return { issuer: this.issuer, audience: this.audience, publicJwk: this.publicJwk };
  }

  /** A token for `sub` with `claims`, expiring at `expiresAt` (a jose time span, or a unix second). */
  token(sub: string, claims: Record<string, unknown> = {}, expiresAt: string | number = "10m"): Promise<string> {
    return new SignJWT(claims).setProtectedHeader({ alg: "RS256", ...(this.kid ? { kid: this.kid } : {}) }).setSubject(sub)
      .setIssuer(this.issuer).setAudience(this.audience).setIssuedAt().setExpirationTime(expiresAt).sign(this.privateKey);
  }
}

export interface TestWorker extends WranglerDev {
  /** A scratch directory of the test's, removed by stop(). */
  dir: string;
}

/** `wrangler dev` on a free port, with fresh Durable Object state in a scratch directory that stop() removes. */
export async function startTestWorker(options: { name: string; vars: Record<string, string>; logLevel?: "info" | "warn" }): Promise<TestWorker> {
  const dir = mkdtempSync(join(tmpdir(), `scr-${options.name}-`));
  const remove = () => rmSync(dir, { recursive: true, force: true });
  try {
    const worker = await startWranglerDev({ root: ROOT, persistTo: join(dir, "do"), vars: options.vars, ...(options.logLevel ? { logLevel: options.logLevel } : {}) });
    return {
      ...worker,
      dir,
      stop: async () => {
        await worker.stop();
        remove();
      },
    };
  } catch (error) {
    remove();
    throw error;
  }
}
