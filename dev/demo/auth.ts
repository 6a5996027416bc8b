/** Sign-in for the demo page: authorization code + PKCE (S256) against the local identity provider. */

const RESOURCE = "urn:spell-coven:realtime";
const STORAGE = "spell-coven-demo.tokens";
const PENDING = "spell-coven-demo.pkce";

export interface Tokens {
  accessToken: string;
  refreshToken?: string;
  /** The OpenID ID token: the hint that lets sign-out end this session at the identity provider. */
  idToken?: string;
  expiresAt: number;
}

interface IdpConfig {
  idpIssuer: string;
  clientId: string;
}

const redirectUri = () => `${location.origin}/`;
const base64url = (bytes: Uint8Array) => btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");

export async function beginSignIn(config: IdpConfig): Promise<void> {
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
    resource: RESOURCE,
  });
  location.assign(`${config.idpIssuer}/auth?${query}`);
}

/** Finishes a sign-in when the page is the redirect target; returns the stored tokens otherwise. */
export async function currentTokens(config: IdpConfig): Promise<Tokens | undefined> {
  const params = new URLSearchParams(location.search);
  const code = params.get("code");
  if (code) {
    history.replaceState(null, "", location.pathname);
    const pending = JSON.parse(sessionStorage.getItem(PENDING) ?? "null") as { verifier: string; state: string } | null;
    sessionStorage.removeItem(PENDING);
    if (!pending || pending.state !== params.get("state")) throw new Error("sign-in state mismatch; try again");
    return save(await tokenRequest(config, { grant_type: "authorization_code", code, redirect_uri: redirectUri(), code_verifier: pending.verifier }));
  }
  if (params.get("error")) {
    history.replaceState(null, "", location.pathname);
    throw new Error(`sign-in failed: ${params.get("error_description") ?? params.get("error")}`);
  }
  const stored = sessionStorage.getItem(STORAGE);
  return stored ? (JSON.parse(stored) as Tokens) : undefined;
}

/** A token valid for at least another minute, refreshed when it is not. */
export async function freshAccessToken(config: IdpConfig, tokens: Tokens): Promise<Tokens> {
  if (tokens.expiresAt - Date.now() > 60_000 || !tokens.refreshToken) return tokens;
  const fresh = await tokenRequest(config, { grant_type: "refresh_token", refresh_token: tokens.refreshToken });
  return save({ ...fresh, idToken: fresh.idToken ?? tokens.idToken });
}

/**
 * Forgets the tokens and ends the identity provider's session too (RP-initiated logout), which then sends the
 * browser back to this page: without that the provider would sign the same person in again at the next
 * "Sign in", with no chance to choose someone else.
 */
export function signOut(config: IdpConfig, tokens: Tokens | undefined): void {
  sessionStorage.removeItem(STORAGE);
  const query = new URLSearchParams({ client_id: config.clientId, post_logout_redirect_uri: redirectUri() });
  if (tokens?.idToken) query.set("id_token_hint", tokens.idToken);
  location.assign(`${config.idpIssuer}/session/end?${query}`);
}

async function tokenRequest(config: IdpConfig, params: Record<string, string>): Promise<Tokens> {
  const response = await fetch(`${config.idpIssuer}/token`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ client_id: config.clientId, ...params }),
  });
  const body = (await response.json()) as { access_token?: string; refresh_token?: string; id_token?: string; expires_in?: number; error_description?: string };
  if (!response.ok || !body.access_token) throw new Error(body.error_description ?? `token request failed (${response.status})`);
  return { accessToken: body.access_token, refreshToken: body.refresh_token, idToken: body.id_token, expiresAt: Date.now() + (body.expires_in ?? 300) * 1000 };
}

function save(tokens: Tokens): Tokens {
  sessionStorage.setItem(STORAGE, JSON.stringify(tokens));
  return tokens;
}
