/** Runs the local identity provider on its own: `npx tsx dev/idp/main.ts` (IDP_PORT, DEMO_PORT, IDP_REDIRECT_URIS). */
import { startIdentityProvider } from "./index.js";
import { redirectUrisFromEnv } from "./redirects.js";

const demoPort = process.env.DEMO_PORT ?? "5173";
const idp = await startIdentityProvider({
  port: Number(process.env.IDP_PORT ?? 8788),
  redirectUris: [`http://127.0.0.1:${demoPort}/`, `http://localhost:${demoPort}/`, ...redirectUrisFromEnv()],
  guilds: process.env.PRIMARY_GUILD_ID ? [process.env.PRIMARY_GUILD_ID] : [],
});
console.log(JSON.stringify({ msg: "identity provider listening", issuer: idp.issuer, jwks: idp.jwksUrl }));
const stop = () => void idp.close().then(() => process.exit(0));
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
