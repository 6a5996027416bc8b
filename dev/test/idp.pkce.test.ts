import { createHash, randomBytes } from "node:crypto";
import { createRemoteJWKSet, jwtVerify } from "jose";
import { afterEach, describe, expect, it } from "vitest";
import { isLoopbackRedirect, LOCAL_AUDIENCE, LOCAL_CLIENT_ID, LOCAL_RESOURCE, startIdentityProvider, type IdentityProvider } from "../idp/index.js";
import { redirectUrisFromEnv } from "../idp/redirects.js";

const REDIRECT = "http://127.0.0.1:5173/";
let idp: IdentityProvider | undefined;
afterEach(async () => {
  await idp?.close();
  idp = undefined;
});

/** The browser's side of the authorization-code flow, with cookies and manual redirects. */
async function authorize(issuer: string, challenge: string, sub: string, redirect = REDIRECT): Promise<string> {
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
    client_id: LOCAL_CLIENT_ID, response_type: "code", redirect_uri: redirect, scope: "openid profile",
    code_challenge: challenge, code_challenge_method: "S256", state: "s1", resource: LOCAL_RESOURCE,
  });
  let response = await send(`${issuer}/auth?${query}`);
  let location = new URL(response.headers.get("location")!, issuer).href;
  response = await send(location); // the sign-in page
  expect(await response.text()).toContain("Sign in");
  response = await send(`${location}/login`, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: `sub=${sub}` });
  for (let hops = 0; hops < 6 && !location.startsWith(redirect); hops++) {
    location = new URL(response.headers.get("location")!, issuer).href;
    if (!location.startsWith(redirect)) response = await send(location);
  }
  const callback = new URL(location);
  expect(callback.searchParams.get("state")).toBe("s1");
  return callback.searchParams.get("code")!;
}

function pkce() {
  const verifier = randomBytes(32).toString("base64url");
  return { verifier, challenge: createHash("sha256").update(verifier).digest("base64url") };
}

async function exchange(issuer: string, code: string, verifier: string, redirect = REDIRECT) {
  return fetch(`${issuer}/token`, {
    method: "POST",
    // As a browser app sends it, from the page at its redirect URI.
    headers: { "content-type": "application/x-www-form-urlencoded", origin: new URL(redirect).origin },
    body: new URLSearchParams({ grant_type: "authorization_code", code, redirect_uri: redirect, client_id: LOCAL_CLIENT_ID, code_verifier: verifier }),
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

/** What the provider answers an authorization request for `redirect`: a redirect to sign in, or an error page. */
async function authorizationAnswer(issuer: string, redirect: string): Promise<{ status: number; body: string }> {
  const query = new URLSearchParams({
    client_id: LOCAL_CLIENT_ID, response_type: "code", redirect_uri: redirect, scope: "openid profile",
    code_challenge: pkce().challenge, code_challenge_method: "S256", state: "s1", resource: LOCAL_RESOURCE,
  });
  const response = await fetch(`${issuer}/auth?${query}`, { redirect: "manual" });
  return { status: response.status, body: await response.text() };
}

// An app of a developer's own, on a port of its own, gets tokens from the local provider with no configuration.
describe("the local identity provider's redirect URIs", () => {
  it("signs an app in at any loopback redirect URI, through the whole code + PKCE flow", async () => {
    idp = await startIdentityProvider({ redirectUris: [REDIRECT] });
    for (const redirect of ["http://127.0.0.1:41234/callback", "http://localhost:3000/", "http://[::1]:8080/auth/done"]) {
      const { verifier, challenge } = pkce();
      const code = await authorize(idp.issuer, challenge, "310000000000000001", redirect);
      const response = await exchange(idp.issuer, code, verifier, redirect);
      expect(response.status, redirect).toBe(200);
      expect(response.headers.get("access-control-allow-origin"), "the page may read the tokens (CORS)").toBe(new URL(redirect).origin);
    }
    const foreign = await fetch(`${idp.issuer}/token`, { method: "POST", headers: { origin: "https://evil.example", "content-type": "application/x-www-form-urlencoded" }, body: "grant_type=refresh_token&refresh_token=x&client_id=spell-coven-demo" });
    expect(foreign.headers.get("access-control-allow-origin")).toBeNull();
  });

  it("still refuses a redirect off this machine, and loopback ones when they are turned off", async () => {
    idp = await startIdentityProvider({ redirectUris: [REDIRECT] });
    for (const redirect of ["https://evil.example/callback", "http://127.0.0.1.evil.example/", "https://127.0.0.1:4000/", "http://user@127.0.0.1:4000/"]) {
      const answer = await authorizationAnswer(idp.issuer, redirect);
      expect(answer.status, redirect).toBe(400);
      expect(answer.body, redirect).toContain("redirect_uri");
    }
    await idp.close();
    idp = await startIdentityProvider({ redirectUris: [REDIRECT], allowLoopbackRedirects: false });
    expect((await authorizationAnswer(idp.issuer, "http://127.0.0.1:41234/callback")).status).toBe(400);
    expect((await authorizationAnswer(idp.issuer, REDIRECT)).status).toBe(303);
  });

  it("accepts the configured redirect URIs (IDP_REDIRECT_URIS), and refuses a malformed list with the variable's name", async () => {
    const configured = redirectUrisFromEnv({ IDP_REDIRECT_URIS: "https://app.dev.example/callback, http://laptop.local:3000/" });
    expect(configured).toEqual(["https://app.dev.example/callback", "http://laptop.local:3000/"]);
    expect(() => redirectUrisFromEnv({ IDP_REDIRECT_URIS: "javascript:alert(1)" })).toThrow(/IDP_REDIRECT_URIS/);
    idp = await startIdentityProvider({ redirectUris: configured });
    expect((await authorizationAnswer(idp.issuer, "https://app.dev.example/callback")).status).toBe(303);
  });

  it("takes only http loopback hosts as loopback", () => {
    expect(["http://127.0.0.1:1/", "http://localhost:65535/x", "http://[::1]:80/"].map(isLoopbackRedirect)).toEqual([true, true, true]);
    expect(["http://127.0.0.2/", "http://localhost.evil.example/", "https://localhost/", "http://127.0.0.1/#x", "not a url"].map(isLoopbackRedirect)).toEqual([false, false, false, false, false]);
  });
});
