import { createHash, randomBytes } from "node:crypto";
import { createRemoteJWKSet, jwtVerify } from "jose";
import { afterEach, describe, expect, it } from "vitest";
import { LOCAL_AUDIENCE, LOCAL_CLIENT_ID, LOCAL_RESOURCE, startIdentityProvider, type IdentityProvider } from "../idp/index.js";

const REDIRECT = "http://127.0.0.1:5173/";
let idp: IdentityProvider | undefined;
afterEach(async () => {
  await idp?.close();
  idp = undefined;
});

/** The browser's side of the authorization-code flow, with cookies and manual redirects. */
async function authorize(issuer: string, challenge: string, sub: string): Promise<string> {
  const cookies = new Map<string, string>();
  const send = async (url: string, init: RequestInit = {}) => {
    const response = await fetch(url, { ...init, redirect: "manual", headers: { ...(init.headers as Record<string, string>), cookie: [...cookies].map(([k, v]) => `${k}=${v}`).join("; ") } });
    for (const line of response.headers.getSetCookie()) {
      const [pair] = line.split(";");
      const [name, value] = pair!.split("=");
      cookies.set(name!, value ?? "");
    }
    return response;
  };
  const query = new URLSearchParams({
    client_id: LOCAL_CLIENT_ID, response_type: "code", redirect_uri: REDIRECT, scope: "openid profile",
    code_challenge: challenge, code_challenge_method: "S256", state: "s1", resource: LOCAL_RESOURCE,
  });
  let response = await send(`${issuer}/auth?${query}`);
  let location = new URL(response.headers.get("location")!, issuer).href;
  response = await send(location); // the sign-in page
  expect(await response.text()).toContain("Sign in");
  response = await send(`${location}/login`, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: `sub=${sub}` });
  for (let hops = 0; hops < 6 && !location.startsWith(REDIRECT); hops++) {
    location = new URL(response.headers.get("location")!, issuer).href;
    if (!location.startsWith(REDIRECT)) response = await send(location);
  }
  const callback = new URL(location);
  expect(callback.searchParams.get("state")).toBe("s1");
  return callback.searchParams.get("code")!;
}

function pkce() {
  const verifier = randomBytes(32).toString("base64url");
  return { verifier, challenge: createHash("sha256").update(verifier).digest("base64url") };
}

async function exchange(issuer: string, code: string, verifier: string) {
  return fetch(`${issuer}/token`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ grant_type: "authorization_code", code, redirect_uri: REDIRECT, client_id: LOCAL_CLIENT_ID, code_verifier: verifier }),
  });
}

describe("the local identity provider", () => {
  it("issues an RS256 access token through code + PKCE that verifies against its JWKS as the Worker would", async () => {
    idp = await startIdentityProvider({ redirectUris: [REDIRECT], guilds: ["100000000000000001"] });
    const { verifier, challenge } = pkce();
    const code = await authorize(idp.issuer, challenge, "310000000000000003");
    const response = await exchange(idp.issuer, code, verifier);
    expect(response.status).toBe(200);
    const tokens = (await response.json()) as { access_token: string; refresh_token?: string; expires_in: number };
    const { payload, protectedHeader } = await jwtVerify(tokens.access_token, createRemoteJWKSet(new URL(idp.jwksUrl)), {
      issuer: idp.issuer,
      audience: LOCAL_AUDIENCE,
      algorithms: ["RS256"],
    });
    expect(protectedHeader.alg).toBe("RS256");
    expect(payload).toMatchObject({ sub: "310000000000000003", name: "Admin", roles: ["admin"], guilds: ["100000000000000001"] });
    expect(tokens.refresh_token).toBeTruthy();
  });

  it("rejects a wrong code_verifier", async () => {
    idp = await startIdentityProvider({ redirectUris: [REDIRECT] });
    const { challenge } = pkce();
    const code = await authorize(idp.issuer, challenge, "310000000000000001");
    const response = await exchange(idp.issuer, code, pkce().verifier);
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ error: "invalid_grant" });
  });

  it("refreshes an access token with the refresh token", async () => {
    idp = await startIdentityProvider({ redirectUris: [REDIRECT] });
    const { verifier, challenge } = pkce();
    const first = (await (await exchange(idp.issuer, await authorize(idp.issuer, challenge, "310000000000000002"), verifier)).json()) as { refresh_token: string; access_token: string };
    const refreshed = await fetch(`${idp.issuer}/token`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ grant_type: "refresh_token", refresh_token: first.refresh_token, client_id: LOCAL_CLIENT_ID }),
    });
    expect(refreshed.status).toBe(200);
    const second = (await refreshed.json()) as { access_token: string };
    expect(second.access_token).not.toBe(first.access_token);
    const { payload } = await jwtVerify(second.access_token, createRemoteJWKSet(new URL(idp.jwksUrl)), { audience: LOCAL_AUDIENCE });
    expect(payload.sub).toBe("310000000000000002");
  });
});
