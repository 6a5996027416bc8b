import { z } from "zod";

/** IDP_REDIRECT_URIS: comma-separated absolute http(s) URIs an app may be sent back to after signing in. */
const RedirectUris = z
  .string()
  .transform((text) => text.split(",").map((uri) => uri.trim()).filter((uri) => uri !== ""))
  .pipe(z.array(z.url({ protocol: /^https?$/ })));

/** The extra redirect URIs from the environment ([] when unset); throws one line naming the variable when invalid. */
export function redirectUrisFromEnv(env: NodeJS.ProcessEnv = process.env): string[] {
  const parsed = RedirectUris.safeParse(env.IDP_REDIRECT_URIS ?? "");
  if (!parsed.success) throw new Error(`IDP_REDIRECT_URIS must be comma-separated http(s) URLs: ${env.IDP_REDIRECT_URIS}`);
  return parsed.data;
}
