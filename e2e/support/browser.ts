import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium, type Browser } from "playwright-core";
import { ROOT } from "./paths.js";

export const SCREENSHOTS = join(ROOT, "e2e/screenshots");

/** Debian's Chromium (apt-get install chromium), headless, with no background traffic off this machine; Playwright gives it a fresh profile. */
export async function launchChromium(): Promise<Browser> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
      "--disable-sync", "--disable-quic", "--no-first-run",
    ],
  });
}
