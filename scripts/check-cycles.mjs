// Fails on any import cycle between the repository's own modules. Type-only imports count too: they load nothing
// at run time, but a cycle of types is still two modules that cannot be read, tested or moved one without the other.
// Dependency-free on purpose: it reads relative specifiers with a regular expression, which the code's one
// statement-per-import style makes reliable enough, and walks the files git knows (tracked or not ignored).
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, normalize } from "node:path";

const SOURCE = /\.(ts|tsx|mts|js|mjs|jsx)$/;

// `import … from "x"`, `import type … from "x"`, `export … from "x"`: the bindings between the keyword and `from`
// are names, braces, commas, `*` and whitespace only, so no other statement can pass for an import.
const FROM = /^\s*(?:import|export)\s+(?:type\s+)?[\w\s{},*$]*?\bfrom\s*["']([^"']+)["']/gm;
const SIDE_EFFECT = /^\s*import\s*["']([^"']+)["']/gm;
const DYNAMIC = /\bimport\(\s*["']([^"']+)["']\s*\)/g;

/** The module a relative specifier names, as the bundler resolution of tsconfig.json finds it. */
function resolve(from, specifier, files) {
  const base = normalize(join(dirname(from), specifier));
  const stem = base.replace(/\.(js|mjs|jsx)$/, "");
  const candidates = [base, `${stem}.ts`, `${stem}.tsx`, `${stem}.mts`, `${stem}.mjs`, `${stem}.js`, join(base, "index.ts"), join(base, "index.js")];
  return candidates.find((candidate) => files.has(candidate));
}

/** Each module's relative imports: file → the files it imports. */
export function importGraph(root, paths) {
  const files = new Set(paths);
  const graph = new Map();
  for (const file of paths) {
    const text = readFileSync(join(root, file), "utf8");
    const targets = new Set();
    for (const pattern of [FROM, SIDE_EFFECT, DYNAMIC]) {
      for (const [, specifier] of text.matchAll(pattern)) {
        if (!specifier.startsWith(".")) continue;
        const target = resolve(file, specifier, files);
        if (target) targets.add(target);
      }
    }
    graph.set(file, [...targets].sort());
  }
  return graph;
}

/** Tarjan's strongly connected components with more than one module, or one that imports itself. */
export function cyclicComponents(graph) {
  let counter = 0;
  const index = new Map();
  const low = new Map();
  const stack = [];
  const onStack = new Set();
  const components = [];
  const visit = (start) => {
    // Iterative, so a deep import chain cannot overflow the call stack.
    const work = [[start, 0]];
    index.set(start, counter);
    low.set(start, counter++);
    stack.push(start);
    onStack.add(start);
    while (work.length > 0) {
      const frame = work[work.length - 1];
      const [node, next] = frame;
      const edges = graph.get(node) ?? [];
      if (next < edges.length) {
        frame[1]++;
        const target = edges[next];
        if (!index.has(target)) {
          index.set(target, counter);
          low.set(target, counter++);
          stack.push(target);
          onStack.add(target);
          work.push([target, 0]);
        } else if (onStack.has(target)) {
          low.set(node, Math.min(low.get(node), index.get(target)));
        }
        continue;
      }
      work.pop();
      if (work.length > 0) {
        const parent = work[work.length - 1][0];
        low.set(parent, Math.min(low.get(parent), low.get(node)));
      }
      if (low.get(node) === index.get(node)) {
        const component = [];
        let member;
        do {
          member = stack.pop();
          onStack.delete(member);
          component.push(member);
        } while (member !== node);
        if (component.length > 1 || (graph.get(node) ?? []).includes(node)) components.push(component.sort());
      }
    }
  };
  for (const node of [...graph.keys()].sort()) if (!index.has(node)) visit(node);
  return components;
}

/** The shortest chain from a component's first module back to itself, through the component only. */
export function cycleThrough(component, graph) {
  const members = new Set(component);
  const start = component[0];
  const previous = new Map();
  const queue = [start];
  while (queue.length > 0) {
    const node = queue.shift();
    for (const target of graph.get(node) ?? []) {
      if (!members.has(target)) continue;
      if (target === start) {
        const chain = [];
        for (let at = node; at !== start; at = previous.get(at)) chain.unshift(at);
        return [start, ...chain, start];
      }
      if (!previous.has(target)) {
        previous.set(target, node);
        queue.push(target);
      }
    }
  }
  return [start, start];
}

const isMain = process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href;
if (isMain) {
  const root = process.cwd();
  const listed = execFileSync("git", ["ls-files", "--cached", "--others", "--exclude-standard", "-z"], { cwd: root, encoding: "utf8" });
  const paths = listed.split("\0").filter((path) => SOURCE.test(path) && existsSync(join(root, path)));
  const graph = importGraph(root, paths);
  const components = cyclicComponents(graph);
  if (components.length === 0) {
    console.log(`no import cycles in ${paths.length} modules`);
  } else {
    console.error(`${components.length} import cycle(s):`);
    for (const component of components) {
      console.error(`  ${cycleThrough(component, graph).join(" → ")}`);
      if (component.length > 2) console.error(`    (modules in this knot: ${component.join(", ")})`);
    }
    process.exit(1);
  }
}
