import { randomBytes } from "node:crypto";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { exportJWK, generateKeyPair } from "jose";
import Provider from "oidc-provider";
import { handleInteraction } from "./interaction.js";
import { localUser } from "./users.js";

export const LOCAL_AUDIENCE = "spell-coven-realtime";
/** The resource indicator clients ask for (RFC 8707 wants an absolute URI); tokens for it carry LOCAL_AUDIENCE. */
export const LOCAL_RESOURCE = "urn:spell-coven:realtime";
export const LOCAL_CLIENT_ID = "spell-coven-demo";

export interface IdentityProviderOptions {
  port?: number;
  host?: string;
  /** Redirect URIs the public client may use besides the loopback ones (the demo's, IDP_REDIRECT_URIS). */
  redirectUris: string[];
  /**
   * Whether any loopback redirect URI (http://127.0.0.1:<any port>/…, http://localhost:…, http://[::1]:…) is
   * accepted too, so an app of a developer's own on any local port can sign in; on by default (a local provider).
   */
  allowLoopbackRedirects?: boolean;
  /** Lifetime of access tokens; short so the client's refresh path runs. */
  tokenTtlSeconds?: number;
  /** Guilds put in every token's `guilds` claim. */
  guilds?: string[];
}

/**
 * The end_session page: a local provider signs out at once, with no "do you want to sign out?" question (a
 * button remains for a browser without JavaScript). `form` is oidc-provider's form, with its XSRF token.
 */
async function logoutSource(ctx: { body?: unknown }, form: string): Promise<void> {
  ctx.body = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Signing out · local identity provider</title><link rel="icon" href="data:,"></head>
<body>${form}<input type="hidden" name="logout" value="yes" form="op.logoutForm">
<p>Signing out of the local identity provider…</p><button type="submit" form="op.logoutForm">Sign out</button>
<script>document.getElementById("op.logoutForm").submit()</script></body></html>`;
}

/** The hosts of a loopback redirect URI (RFC 8252 §7.3 and §8.3: the port is the app's to choose). */
const LOOPBACK_HOSTS = new Set(["127.0.0.1", "localhost", "[::1]"]);

/** An http URI on a loopback host, any port, without credentials or fragment: only this machine receives the code. */
export function isLoopbackRedirect(uri: string): boolean {
  const url = URL.parse(uri);
  return url !== null && url.protocol === "http:" && LOOPBACK_HOSTS.has(url.hostname) && !url.username && !url.password && !url.hash;
}

/** The public client accepts any loopback redirect (and post-logout redirect) besides its registered ones. */
function allowLoopbackRedirects(provider: Provider): void {
  const { prototype } = provider.Client;
  const registered = { redirect: prototype.redirectUriAllowed, logout: prototype.postLogoutRedirectUriAllowed };
  prototype.redirectUriAllowed = function (uri) {
    return registered.redirect.call(this, uri) || (this.clientId === LOCAL_CLIENT_ID && isLoopbackRedirect(uri));
  };
  prototype.postLogoutRedirectUriAllowed = function (uri) {
    return registered.logout.call(this, uri) || (this.clientId === LOCAL_CLIENT_ID && isLoopbackRedirect(uri));
  };
}

export interface IdentityProvider {
  issuer: string;
  jwksUrl: string;
  close(): Promise<void>;
}

/**
 * A local OpenID provider (oidc-provider): authorization code + PKCE (S256) for a public client, RS256 JWT
 * access tokens for the `spell-coven-realtime` audience, keys served as JWKS, refresh tokens.
 */
export async function startIdentityProvider(options: IdentityProviderOptions): Promise<IdentityProvider> {
  const host = options.host ?? "127.0.0.1";
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, host, resolve);
  });
  const issuer = `http://${host}:${(server.address() as AddressInfo).port}`;
  const { privateKey } = await generateKeyPair("RS256", { extractable: true });
  const signingKey = { ...(await exportJWK(privateKey)), kid: randomBytes(8).toString("hex"), alg: "RS256", use: "sig" };
  const ttl = options.tokenTtlSeconds ?? 600;

  const loopback = options.allowLoopbackRedirects ?? true;
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: LOCAL_CLIENT_ID,
        token_endpoint_auth_method: "none",
        redirect_uris: options.redirectUris,
        // Signing out of the demo ends the session here too (RP-initiated logout), then returns to the page.
        post_logout_redirect_uris: options.redirectUris,
        grant_types: ["authorization_code", "refresh_token"],
        response_types: ["code"],
      },
    ],
    jwks: { keys: [signingKey] },
    cookies: { keys: [randomBytes(32).toString("hex")] },
    pkce: { required: () => true },
    // A browser app calls the token endpoint from its own origin: the origins of its redirect URIs may, as may any
    // loopback origin when loopback redirects are accepted.
    clientBasedCORS: (_ctx, origin, client) =>
      origin !== "null" &&
      ((client.redirectUris ?? []).some((uri) => URL.parse(uri)?.origin === origin) ||
        (loopback && client.clientId === LOCAL_CLIENT_ID && isLoopbackRedirect(`${origin}/`))),
    claims: { openid: ["sub"], profile: ["name"] },
    findAccount: (_ctx, sub) => {
      const user = localUser(sub);
      return user ? { accountId: user.sub, claims: () => ({ sub: user.sub, name: user.name }) } : undefined;
    },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    features: {
      devInteractions: { enabled: false },
      rpInitiatedLogout: { enabled: true, logoutSource },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => LOCAL_RESOURCE,
        useGrantedResource: () => true,
        getResourceServerInfo: () => ({
          scope: "openid profile",
          audience: LOCAL_AUDIENCE,
          accessTokenTTL: ttl,
          accessTokenFormat: "jwt",
          jwt: { sign: { alg: "RS256" } },
        }),
      },
    },
    // Claims the Worker reads from the access token besides sub: display name, roles and guilds.
    extraTokenClaims: (_ctx, token) => {
      const user = "accountId" in token ? localUser(String(token.accountId)) : undefined;
      return user ? { name: user.name, roles: [...user.roles], guilds: options.guilds ?? [] } : undefined;
    },
    issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed("refresh_token"),
    ttl: { AccessToken: ttl, AuthorizationCode: 60, RefreshToken: 24 * 3600, Interaction: 3600, Session: 24 * 3600, Grant: 24 * 3600, IdToken: ttl },
  });
  if (loopback) allowLoopbackRedirects(provider);
  provider.on("server_error", (_ctx, error) => console.error(JSON.stringify({ level: "error", msg: "identity provider error", error: error.message })));

  const callback = provider.callback();
  server.on("request", (request, response) => {
    const path = new URL(request.url ?? "/", issuer).pathname;
    if (path.startsWith("/interaction/")) {
      handleInteraction(provider, request, response, path).catch((error: unknown) => {
        response.writeHead(400, { "Content-Type": "text/plain" });
        response.end(error instanceof Error ? error.message : "interaction failed");
      });
      return;
    }
    void callback(request, response);
  });

  return {
    issuer,
    jwksUrl: `${issuer}/jwks`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
