import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

export interface DemoConfig {
  apiBase: string;
  wsUrl: string;
  idpIssuer: string;
  clientId: string;
  simUrl: string;
  /** The role whose holders may end anyone's room (the Worker's ADMIN_ROLE). */
  adminRole: string;
}

const here = (file: string) => fileURLToPath(new URL(file, import.meta.url));

/** Serves the demo page: index.html with its config, the bundled app and the stylesheet. */
export async function startDemoServer(options: { port: number; host?: string; config: DemoConfig }): Promise<{ url: string; close(): Promise<void> }> {
  const bundle = await build({ entryPoints: [here("./app.ts")], bundle: true, format: "esm", target: "es2022", write: false, minify: false, logLevel: "warning" });
  const app = bundle.outputFiles[0]!.text;
  const css = readFileSync(here("./styles.css"), "utf8");
  // JSON in a script tag: escape "<" so a value can never close the tag.
  const html = readFileSync(here("./index.html"), "utf8").replace("__CONFIG__", JSON.stringify(options.config).replace(/</g, "\\u003c"));
  const files: Record<string, [string, string]> = {
    "/": ["text/html; charset=utf-8", html],
    "/app.js": ["text/javascript; charset=utf-8", app],
    "/styles.css": ["text/css; charset=utf-8", css],
  };
  const server = createServer((request, response) => {
    const file = files[new URL(request.url ?? "/", "http://demo").pathname];
    if (!file) {
      response.writeHead(404, { "Content-Type": "text/plain" });
      return void response.end("not found");
    }
    response.writeHead(200, { "Content-Type": file[0], "Cache-Control": "no-store" });
    response.end(file[1]);
  });
  const host = options.host ?? "127.0.0.1";
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, host, resolve);
  });
  return {
    url: `http://${host}:${(server.address() as AddressInfo).port}/`,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
