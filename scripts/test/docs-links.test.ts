import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

/**
 * The documentation's links: a relative link must name a file that exists, and its `#anchor` a heading of that
 * file; the SDK's README ships in the npm package without the repository, so it may not link into the repository.
 */
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const SDK_README = "client/README.md";
const DOCS = ["README.md", SDK_README, ...readdirSync(join(ROOT, "docs")).filter((f) => f.endsWith(".md")).map((f) => `docs/${f}`)];

interface Link {
  line: number;
  target: string;
}

/** Markdown text without fenced code blocks (their lines kept blank, so line numbers stay right). */
function prose(markdown: string): string[] {
  let fenced = false;
  return markdown.split("\n").map((line) => {
    if (/^\s*(```|~~~)/.test(line)) {
      fenced = !fenced;
      return "";
    }
    return fenced ? "" : line;
  });
}

/** Inline links and images, `[text](target)` and `![alt](target "title")`, outside code spans. */
function linksOf(markdown: string): Link[] {
  const links: Link[] = [];
  prose(markdown).forEach((text, index) => {
    const withoutCode = text.replace(/`[^`]*`/g, "");
    for (const match of withoutCode.matchAll(/!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) {
      links.push({ line: index + 1, target: match[1]! });
    }
  });
  return links;
}

/** GitHub's heading anchors: lower case, punctuation dropped, spaces as hyphens, repeats numbered. */
function anchorsOf(markdown: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  for (const line of prose(markdown)) {
    const heading = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!heading) continue;
    const text = heading[1]!.replace(/!?\[([^\]]*)\]\([^)]*\)/g, "$1");
    const slug = text.toLowerCase().replace(/[^\p{L}\p{N}\p{M}\s_-]/gu, "").replace(/\s/g, "-");
    const count = seen.get(slug) ?? 0;
    seen.set(slug, count + 1);
    anchors.add(count === 0 ? slug : `${slug}-${count}`);
  }
  return anchors;
}

const isExternal = (target: string) => /^[a-z][a-z0-9+.-]*:/i.test(target);

/** What is wrong with the links of one document, as `file:line target: problem` lines. */
function brokenLinks(root: string, file: string, noRepositoryLinks = false): string[] {
  const markdown = readFileSync(join(root, file), "utf8");
  const problems: string[] = [];
  for (const { line, target } of linksOf(markdown)) {
    if (isExternal(target)) continue;
    const where = `${file}:${line} ${target}`;
    const [path = "", anchor] = target.split("#", 2);
    if (path !== "" && noRepositoryLinks) {
      problems.push(`${where}: a relative link in a document that ships without the repository`);
      continue;
    }
    const resolved = path === "" ? join(root, file) : resolve(dirname(join(root, file)), decodeURIComponent(path));
    if (relative(root, resolved).startsWith("..") || !existsSync(resolved)) {
      problems.push(`${where}: no such file`);
      continue;
    }
    if (anchor === undefined) continue;
    if (!resolved.endsWith(".md") || statSync(resolved).isDirectory()) {
      problems.push(`${where}: an anchor into a file that has no headings`);
      continue;
    }
    if (!anchorsOf(readFileSync(resolved, "utf8")).has(anchor)) problems.push(`${where}: no heading with that anchor`);
  }
  return problems;
}

describe("documentation links", () => {
  for (const file of DOCS) {
    it(`${file}: every relative link reaches a file and heading${file === SDK_README ? ", and none leaves the package" : ""}`, () => {
      expect(brokenLinks(ROOT, file, file === SDK_README)).toEqual([]);
    });
  }

  it("finds the links and anchors it checks (not vacuously green)", () => {
    const sample = "# Deploy `gateway-node` (rolling)\n## Rotate `HUB_SECRET`\n## Rotate `HUB_SECRET`\n" +
      "See [a](docs/x.md#y) and ![b](img.png \"t\"), not `[c](d.md)`.\n```\n[e](f.md)\n# not a heading\n```\n";
    expect(linksOf(sample)).toEqual([{ line: 4, target: "docs/x.md#y" }, { line: 4, target: "img.png" }]);
    expect([...anchorsOf(sample)]).toEqual(["deploy-gateway-node-rolling", "rotate-hub_secret", "rotate-hub_secret-1"]);
    expect(linksOf(readFileSync(join(ROOT, "README.md"), "utf8")).length).toBeGreaterThan(5);
  });
});
