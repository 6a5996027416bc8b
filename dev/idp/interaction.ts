import type { IncomingMessage, ServerResponse } from "node:http";
import type Provider from "oidc-provider";
import { LOCAL_USERS, localUser } from "./users.js";

const escape = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** The sign-in step of the authorization flow: pick a local user (no password: this provider is for local use). */
export async function handleInteraction(provider: Provider, request: IncomingMessage, response: ServerResponse, path: string): Promise<void> {
  const details = await provider.interactionDetails(request, response);
  if (request.method === "POST" && path.endsWith("/login")) {
    const body = new URLSearchParams(await readBody(request));
    const user = localUser(body.get("sub") ?? "");
    if (!user) {
      response.writeHead(400, { "Content-Type": "text/plain" });
      return void response.end("unknown user");
    }
    await provider.interactionFinished(request, response, { login: { accountId: user.sub } }, { mergeWithLastSubmission: false });
    return;
  }
  if (details.prompt.name === "consent") {
    // The demo app is first-party: grant what it asked for without a consent screen.
    const grant = new provider.Grant({ accountId: details.session!.accountId, clientId: String(details.params.client_id) });
    grant.addOIDCScope(String(details.params.scope ?? "openid"));
    if (details.params.resource) grant.addResourceScope(String(details.params.resource), String(details.params.scope ?? ""));
    const grantId = await grant.save();
    await provider.interactionFinished(request, response, { consent: { grantId } }, { mergeWithLastSubmission: true });
    return;
  }
  const buttons = LOCAL_USERS.map(
    (user) => `<button name="sub" value="${escape(user.sub)}" data-testid="login-${escape(user.login)}">${escape(user.name)}${user.roles.length ? ` <small>(${escape(user.roles.join(", "))})</small>` : ""}</button>`,
  ).join("\n");
  response.writeHead(200, { "Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store" });
  response.end(`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Sign in · local identity provider</title><link rel="icon" href="data:,">
<style>body{font:16px system-ui,sans-serif;background:#14121f;color:#eee;display:grid;place-items:center;min-height:100vh;margin:0}
form{background:#1f1c30;padding:2rem 2.5rem;border-radius:12px;display:grid;gap:.75rem;min-width:18rem}
h1{font-size:1.2rem;margin:0 0 .5rem}p{margin:0 0 .5rem;color:#aaa;font-size:.9rem}
button{font:inherit;padding:.6rem 1rem;border-radius:8px;border:1px solid #6c5ce7;background:#2b2645;color:#fff;cursor:pointer;text-align:left}
button:hover{background:#6c5ce7}small{color:#bbb}</style></head>
<body><form method="post" action="/interaction/${escape(details.uid)}/login">
<h1>Sign in to Spell Coven (local)</h1><p>Local identity provider: choose who you are.</p>
${buttons}</form></body></html>`);
}

async function readBody(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request) {
    size += (chunk as Buffer).length;
    if (size > 16 * 1024) break;
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString("utf8");
}
