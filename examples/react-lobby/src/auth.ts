// Sign-in with the authorization code flow and PKCE (S256), the way a browser app without a backend gets an access
// token from an OpenID provider. The page is its own redirect URI: `${location.origin}/`.
import { config } from "./config.js";

interface Tokens {
  accessToken: string;
  refreshToken: string | undefined;
  expiresAt: number;
}

const TOKENS = "lobby.tokens";
const PENDING = "lobby.pkce";
const redirectUri = () => `${location.origin}/`;
const base64url = (bytes: Uint8Array) => btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");

/** Sends the browser to the provider's sign-in page. */
export async function signIn(): Promise<void> {
  const verifier = base64url(crypto.getRandomValues(new Uint8Array(32)));
  const challenge = base64url(new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier))));
  const state = base64url(crypto.getRandomValues(new Uint8Array(16)));
  sessionStorage.setItem(PENDING, JSON.stringify({ verifier, state }));
  const query = new URLSearchParams({
    client_id: config.clientId,
    response_type: "code",
    redirect_uri: redirectUri(),
    scope: "openid profile",
    code_challenge: challenge,
    code_challenge_method: "S256",
    state,
    resource: config.resource,
  });
  location.assign(`${config.idpUrl}/auth?${query}`);
}

/** Finishes a sign-in when the page is the provider's redirect; else the session stored in this tab, if any. */
export async function restoreSession(): Promise<Session | undefined> {
  const params = new URLSearchParams(location.search);
  if (params.has("error")) {
    history.replaceState(null, "", location.pathname);
    throw new Error(`sign-in failed: ${params.get("error_description") ?? params.get("error")}`);
  }
  const code = params.get("code");
  if (code) {
    history.replaceState(null, "", location.pathname);
    const pending = JSON.parse(sessionStorage.getItem(PENDING) ?? "null") as { verifier: string; state: string } | null;
    sessionStorage.removeItem(PENDING);
    if (!pending || pending.state !== params.get("state")) throw new Error("sign-in state mismatch: sign in again");
    return new Session(await tokenRequest({ grant_type: "authorization_code", code, redirect_uri: redirectUri(), code_verifier: pending.verifier }));
  }
  const stored = sessionStorage.getItem(TOKENS);
  return stored ? new Session(JSON.parse(stored) as Tokens) : undefined;
}

/** The signed-in user's tokens; `getToken` is what the SDK calls. */
export class Session {
  constructor(private tokens: Tokens) {
    sessionStorage.setItem(TOKENS, JSON.stringify(tokens));
  }

  /** An access token valid for at least another minute: refreshed with the refresh token when it is not. */
  getToken = async (): Promise<string> => {
    if (this.tokens.expiresAt - Date.now() < 60_000 && this.tokens.refreshToken) {
      this.tokens = await tokenRequest({ grant_type: "refresh_token", refresh_token: this.tokens.refreshToken });
      sessionStorage.setItem(TOKENS, JSON.stringify(this.tokens));
    }
    return this.tokens.accessToken;
  };

  signOut(): void {
    sessionStorage.removeItem(TOKENS);
    location.reload();
  }
}

async function tokenRequest(params: Record<string, string>): Promise<Tokens> {
  const response = await fetch(`${config.idpUrl}/token`, {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ client_id: config.clientId, ...params }),
  });
  const body = (await response.json().catch(() => ({}))) as { access_token?: string; refresh_token?: string; expires_in?: number; error_description?: string };
  // A refused refresh (the provider restarted, the session ended) must surface, not become "Bearer undefined".
  if (!response.ok || !body.access_token) throw new Error(body.error_description ?? `token request failed: HTTP ${response.status}`);
  return { accessToken: body.access_token, refreshToken: body.refresh_token, expiresAt: Date.now() + (body.expires_in ?? 300) * 1000 };
}
