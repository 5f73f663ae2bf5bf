// The docs against the code: README.md and docs/*.md may name only settings, CLI verbs and flags,
// HTTP routes, repository files, npm scripts and tools that exist. Each check collects every
// mismatch with its file and line, so one run lists all of them.
// Over 400 lines on purpose: one check per kind of name, each small, kept together so one run lists
// every mismatch of every doc.
import { describe, it } from 'vitest';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import yargs from 'yargs';
import { CONFIG_PREFIX, configSchema } from '../../src/config.js';
import { commands } from '../../src/cli/commands/index.js';
import { createApp } from '../../src/api/app.js';
import { createWebhooksRouter } from '../../src/api/routes/webhooks.js';
import { createDashboardRouter } from '../../src/api/routes/dashboard.js';
import { createMetricsRouter } from '../../src/metrics/metrics.js';
import { createStatsRouter } from '../../src/api/routes/stats.js';
import { createAuditRouter } from '../../src/api/routes/audit.js';
import { createHousekeepingRouter } from '../../src/api/routes/housekeeping.js';
import { createAdminWebhooksRouter } from '../../src/api/routes/admin-webhooks.js';
import { AGENT_WS_PATH } from '../../src/gateway/gateway.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const rel = (p: string) => path.relative(ROOT, p).split(path.sep).join('/');

/** Never part of a fresh clone: dependencies, generated output, local state, operator files. */
const NOT_IN_A_CLONE = new Set(['node_modules', '.git', '.data', '.tools', 'dist', 'tmp', 'coverage', 'inventory', '.env', '.venv-temporal']);

const DOC_FILES = ['README.md', ...readdirSync(path.join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).sort().map((f) => `docs/${f}`)];

// ---------------------------------------------------------------------------------------------
// Reading the docs: code blocks (one snippet per logical line), inline code spans, links.

interface Snippet {
  file: string;
  line: number;
  text: string;
  /** An inline code span (`...`), as opposed to a line of a fenced block. */
  inline: boolean;
}

interface Doc {
  file: string;
  text: string;
  snippets: Snippet[];
  links: Array<{ file: string; line: number; target: string }>;
  headings: string[];
}

function lineAt(text: string, offset: number): number {
  let n = 1;
  for (let i = 0; i < offset; i++) if (text.charCodeAt(i) === 10) n++;
  return n;
}

function readDoc(file: string): Doc {
  const text = readFileSync(path.join(ROOT, file), 'utf8');
  const lines = text.split('\n');
  const snippets: Snippet[] = [];
  const headings: string[] = [];
  // Prose with code blocks blanked out (line numbers kept), for spans and links.
  const prose: string[] = [];
  let fence: string | null = null;
  let pending: { line: number; text: string } | null = null;
  lines.forEach((raw, i) => {
    const fenceMark = /^\s*(```+|~~~+)/.exec(raw)?.[1];
    if (fence === null && fenceMark) {
      fence = fenceMark;
      prose.push('');
      return;
    }
    if (fence !== null) {
      if (raw.trim().startsWith(fence)) {
        fence = null;
      } else {
        // A trailing backslash continues the command on the next line.
        const piece = raw.replace(/\\$/, '');
        pending = pending ? { line: pending.line, text: `${pending.text} ${piece.trim()}` } : { line: i + 1, text: piece };
        if (!raw.endsWith('\\')) {
          snippets.push({ file, line: pending.line, text: pending.text, inline: false });
          pending = null;
        }
      }
      prose.push('');
      return;
    }
    const heading = /^#{1,6}\s+(.*)$/.exec(raw);
    if (heading) headings.push(heading[1]!);
    prose.push(raw);
  });
  const proseText = prose.join('\n');
  for (const m of proseText.matchAll(/(?<!`)`([^`]+)`(?!`)/g)) {
    snippets.push({ file, line: lineAt(proseText, m.index), text: m[1]!.replace(/\n\s*/g, ' '), inline: true });
  }
  const links: Doc['links'] = [];
  const withoutSpans = proseText.replace(/`[^`]*`/g, (s) => s.replace(/[^\n]/g, ' '));
  for (const m of withoutSpans.matchAll(/\[[^\]]*\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) {
    links.push({ file, line: lineAt(withoutSpans, m.index), target: m[1]! });
  }
  return { file, text, snippets, links, headings };
}

const DOCS = DOC_FILES.map(readDoc);
const where = (s: { file: string; line: number }) => `${s.file}:${s.line}`;

// ---------------------------------------------------------------------------------------------
// What the code has.

/** Source files a fresh clone has (the docs are not code). */
function codeFiles(): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (NOT_IN_A_CLONE.has(entry.name) || entry.name === 'docs') continue;
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (/\.(?:[cm]?[jt]s|sh|ya?ml|json|toml|conf|service)$|^Dockerfile$/.test(entry.name)) out.push(full);
    }
  };
  walk(ROOT);
  return out;
}

/** E2EPOOL_* names the code mentions outside comments (read from the environment, set, or passed on). */
function envNamesInCode(): Set<string> {
  const names = new Set<string>();
  for (const file of codeFiles()) {
    let text = readFileSync(file, 'utf8');
    if (!text.includes('E2EPOOL_')) continue;
    text = /\.[cm]?[jt]s$/.test(file)
      ? text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`])\/\/.*$/gm, '$1')
      : text.replace(/(^|\s)#.*$/gm, '$1');
    for (const m of text.matchAll(/\bE2EPOOL_[A-Z0-9_]*[A-Z0-9]/g)) names.add(m[0]);
  }
  return names;
}

interface CliVerb {
  options: Set<string>;
  choices: Record<string, string[]>;
  /** Nested verbs (`e2epool admin runners drain`), by name; empty for a leaf. */
  subcommands: Map<string, CliVerb>;
}

interface CommandModule {
  command: string | readonly string[];
  builder?: (y: any) => any;
}

/**
 * One verb with its options and its nested verbs. The builder runs on a real yargs instance whose
 * `.command()` only records the module it is given, so nested verbs are read the same way, each
 * with the options of its parents (yargs hands those down).
 */
function readVerb(module: CommandModule, inherited: Set<string>): CliVerb {
  const y: any = yargs([]);
  const nested: CommandModule[] = [];
  y.command = (m: CommandModule) => {
    nested.push(m);
    return y;
  };
  const built: any = module.builder ? (module.builder(y) ?? y) : y;
  const o = built.getOptions();
  // --version and --help are the CLI's own (src/cli/main.ts).
  const options = new Set<string>([...inherited, ...Object.keys(o.key)]);
  for (const [name, aliases] of Object.entries(o.alias as Record<string, string[]>)) for (const a of [name, ...aliases]) options.add(a);
  for (const b of o.boolean as string[]) options.add(`no-${b}`);
  options.add('h');
  const subcommands = new Map<string, CliVerb>();
  for (const sub of nested) subcommands.set(String(Array.isArray(sub.command) ? sub.command[0] : sub.command).split(' ')[0]!, readVerb(sub, options));
  return { options, choices: o.choices ?? {}, subcommands };
}

/** Every verb of the yargs CLI with its options (and aliases), from the command modules themselves. */
function cliVerbs(): Map<string, CliVerb> {
  const verbs = new Map<string, CliVerb>();
  for (const command of commands) verbs.set(command.command.split(' ')[0]!, readVerb(command, new Set()));
  return verbs;
}

interface Route {
  method: string;
  path: string;
}

/**
 * The routes of the express app the controller serves: createApp plus the routers
 * src/controller.ts mounts, built with stand-in dependencies (nothing is called), plus the agent
 * WebSocket path of the gateway.
 */
const MOUNTED_BY_THE_TEST = ['createWebhooksRouter', 'createDashboardRouter', 'createMetricsRouter', 'createStatsRouter', 'createAuditRouter', 'createHousekeepingRouter', 'createAdminWebhooksRouter', 'createApp'];

function registeredRoutes(): Route[] {
  const logger = pino({ level: 'silent' });
  const db: any = {};
  const config: any = { ADMIN_TOKEN: undefined, TEMPORAL_UI_URL: 'http://localhost:8233', TEMPORAL_NAMESPACE: 'default' };
  const app: any = createApp({
    db,
    registry: {} as any,
    checkpoints: {} as any,
    config,
    logger,
    extraRouters: [
      createWebhooksRouter({ db, config: {}, logger }),
      createDashboardRouter({ db, config, logger }),
      createMetricsRouter({ db, logger } as any),
      createStatsRouter({ db, adminToken: undefined }),
      createAuditRouter({ db, adminToken: undefined }),
      createHousekeepingRouter({ client: {} as any, taskQueue: 'q', retentionDays: 90, adminToken: undefined }),
      createAdminWebhooksRouter({ db, adminToken: undefined, audit: { record: async () => undefined } }),
    ],
  });
  const routes: Route[] = [{ method: 'GET', path: AGENT_WS_PATH }];
  const walk = (stack: any[]) => {
    for (const layer of stack) {
      if (layer.route) for (const method of Object.keys(layer.route.methods)) routes.push({ method: method.toUpperCase(), path: String(layer.route.path) });
      else if (Array.isArray(layer.handle?.stack)) walk(layer.handle.stack);
    }
  };
  walk((app.router ?? app._router).stack);
  return routes;
}

// ---------------------------------------------------------------------------------------------
// Matching.

/** A doc placeholder: `<name>`, `{name}`, `:name`, `NAME`, `$VAR`, `...`. */
const isPlaceholder = (segment: string) => /^(?:<[^>]*>|\{[^}]*\}|:\w+|[A-Z][A-Z0-9_]*|\$\{?\w+\}?|\.\.\.|…)$/.test(segment);

function pathMatches(docPath: string, route: string): boolean {
  const doc = docPath.split('/').slice(1);
  const reg = route.split('/').slice(1);
  const prefix = doc[doc.length - 1] === '*';
  if (prefix) doc.pop();
  if (prefix ? doc.length > reg.length : doc.length !== reg.length) return false;
  return doc.every((segment, i) => {
    const r = reg[i]!;
    if (r.startsWith(':')) return segment.length > 0;
    return !isPlaceholder(segment) && segment === r;
  });
}

/** Routes the docs name on purpose as not served (each stays unregistered). */
const NOT_ROUTES: Readonly<Record<string, string>> = {
  '/internal/agent/*': "docs/protocol.md: the Python e2epool's remote exec, removed",
  '/METRICS': 'docs/security.md: paths match exactly, so a proxy rule cannot be slipped past',
  '/metrics/': 'docs/security.md: no trailing-slash variants',
};

/** Path roots that are file-system paths on a host, never routes. */
const FS_ROOTS = new Set(['etc', 'var', 'opt', 'usr', 'tmp', 'run', 'home', 'root', 'srv', 'mnt', 'dev', 'proc', 'sys', 'bin', 'sbin', 'lib', 'Library', 'Users', 'System', 'builds', 'data']);

function routeMentions(snippet: Snippet, routeRoots: Set<string>): Array<{ method?: string; path: string }> {
  const found: Array<{ method?: string; path: string }> = [];
  const text = snippet.text;
  const re = /(?<=^|[\s('"=|>])(?:(GET|POST|PUT|PATCH|DELETE)\s+)?(\$\{?E\}?|<[^<>\s]+>|(?:https?|wss?):\/\/[^\s/`'"]+)?(\/[^\s`'"()[\]{},;]*)/g;
  for (const m of text.matchAll(re)) {
    const [, method, prefix, rawPath] = m;
    const p = rawPath!.replace(/[?#].*$/, '').replace(/[.:]+$/, '');
    if (p.length < 2 || p.startsWith('//')) continue;
    const root = p.split('/')[1]!;
    // Paths under /api/v<N> belong to GitLab or Prometheus.
    if (/^\/api\/v\d+(?:\/|$)/.test(p)) continue;
    const wholeSpan = snippet.inline && !prefix && m.index === 0 && m[0].length === text.length;
    if (!(method || routeRoots.has(root) || (wholeSpan && !FS_ROOTS.has(root)))) continue;
    let verb = method;
    if (!verb && /\bcurl\b/.test(text)) verb = /\s-X\s*([A-Z]+)/.exec(text)?.[1] ?? (/\s(?:-d|--data\S*)\s/.test(text) ? 'POST' : 'GET');
    found.push({ ...(verb ? { method: verb } : {}), path: p });
  }
  return found;
}

/** The path of a file or folder of the repository, or undefined when the token is not one. */
function repoPathOf(token: string, topLevel: Set<string>): string | undefined {
  const clean = token.replace(/[.,:;]+$/, '');
  const first = clean.split('/')[0]!;
  if (!topLevel.has(first)) return undefined;
  if (!clean.includes('/') && !statSync(path.join(ROOT, first)).isFile()) return undefined;
  return clean;
}

/** Files a deployment creates, not the repository (docs/deployment.md says how). */
const OPERATOR_CREATED = ['deploy/tls'];

function repoPathExists(p: string): boolean {
  if (!/[*<>]/.test(p)) return existsSync(path.join(ROOT, p));
  // A pattern: some file must match it.
  const pattern = new RegExp(`^${p.split('/').map((s) => s.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/<[^>]*>/g, '[^/]+')).join('/')}$`);
  const dir = path.join(ROOT, p.slice(0, p.search(/[^/]*[*<]/)));
  if (!existsSync(dir)) return false;
  const files: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const full = path.join(d, e.name);
      files.push(rel(full));
      if (e.isDirectory()) walk(full);
    }
  };
  walk(dir);
  return files.some((f) => pattern.test(f));
}

/** GitHub's heading anchors. */
const slug = (heading: string) =>
  heading
    .toLowerCase()
    .replace(/[^\p{L}\p{N} _-]/gu, '')
    .replace(/ /g, '-');

function npxTools(): Set<string> {
  const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
  const tools = new Set<string>(Object.keys(pkg.bin ?? {}));
  for (const dep of Object.keys({ ...pkg.dependencies, ...pkg.devDependencies })) {
    tools.add(dep);
    const manifest = path.join(ROOT, 'node_modules', dep, 'package.json');
    if (!existsSync(manifest)) continue;
    const bin = JSON.parse(readFileSync(manifest, 'utf8')).bin;
    if (typeof bin === 'string') tools.add(dep.replace(/^@[^/]+\//, ''));
    else for (const name of Object.keys(bin ?? {})) tools.add(name);
  }
  return tools;
}

/** Tools a fresh clone does not have (npm ci installs none of them), with what to say instead. */
const ABSENT_TOOLS: Array<[RegExp, string]> = [
  [/\bprisma\b/, 'the schema is Drizzle (db/schema.ts, npm run db:generate)'],
  [/\bplaywright\s+install\b/, 'only playwright-core is installed; the browser is Debian Chromium (scripts/install-tools.sh)'],
  [/\b(?:jest|mocha)\b|scripts\/run-tests|node --test\b/, 'tests run on vitest (npm test, npx vitest run <files>)'],
  [/\bts-node\b/, 'sources run through tsx'],
  [/\b(?:yarn|pnpm)\b/, 'the lock file is npm\'s (npm ci)'],
  [/\bjscpd\b/, 'not a dependency'],
  [/\bnodemon\b/, 'not a dependency'],
];

// ---------------------------------------------------------------------------------------------

describe('docs match the code', () => {
  it('reads README.md and every docs/*.md', () => {
    assert.ok(DOCS.length >= 8, DOC_FILES.join(', '));
    assert.ok(DOCS.every((d) => d.snippets.length > 0));
  });

  it('names only E2EPOOL_* settings of the config schema, or variables the code reads', () => {
    const settings = Object.keys(configSchema.shape).map((k) => `${CONFIG_PREFIX}${k}`);
    const inCode = envNamesInCode();
    const known = [...settings, ...inCode];
    const problems: string[] = [];
    for (const doc of DOCS) {
      for (const m of doc.text.matchAll(/\bE2EPOOL_[A-Z0-9_]*(\*)?/g)) {
        const name = m[0].replace(/\*$/, '');
        const isPrefix = m[1] === '*' || name.endsWith('_');
        const ok = isPrefix ? known.some((k) => k.startsWith(name)) : settings.includes(name) || inCode.has(name);
        if (!ok) problems.push(`${doc.file}:${lineAt(doc.text, m.index)}: ${m[0]} is neither a setting (src/config.ts) nor read by the code`);
      }
    }
    assert.deepEqual(problems, []);
  });

  it('shows only e2epool verbs and flags the CLI has', () => {
    const verbs = cliVerbs();
    assert.ok(verbs.has('serve') && verbs.get('create')!.options.has('job-id'), 'the CLI is read');
    const drain = verbs.get('admin')?.subcommands.get('runners')?.subcommands.get('drain');
    assert.ok(drain?.options.has('url') && verbs.get('admin')!.subcommands.get('release')!.options.has('delete-snapshot'), 'nested admin verbs are read, with the options of their parents');
    const problems: string[] = [];
    // `node bin/e2epool.js` and `node dist/src/cli/main.js` are the CLI wherever they appear; a bare
    // `e2epool` only in command position (it is also a database, user and host name in the docs).
    const invocation = /(?:(?<![\w@./-])e2epool|node\s+bin\/e2epool\.js|node\s+dist\/src\/cli\/main\.js)\s+([a-z][a-z-]*)(?![\w.])/g;
    const commandPosition = /(?:^|\$\(|[(|;&`]|\b(?:npx|sudo|exec|then|do|time)\s|^\s*-\s|(?:^|\s)\w+=\S*\s)\s*$/;
    for (const doc of DOCS) {
      for (const snippet of doc.snippets) {
        for (const m of snippet.text.matchAll(invocation)) {
          if (m[0].startsWith('e2epool') && !commandPosition.test(snippet.text.slice(0, m.index))) continue;
          let verb = m[1]!;
          let spec = verbs.get(verb);
          if (!spec) {
            problems.push(`${where(snippet)}: e2epool ${verb}: no such command (${[...verbs.keys()].join(', ')})`);
            continue;
          }
          // The rest of this command: up to the next command separator or comment.
          let rest = snippet.text.slice(m.index + m[0].length).split(/\s#|(?<!\\)\||;|&&|\)|`|\s(?=(?:npx\s+)?e2epool\s)/)[0]!;
          // Nested verbs (`admin runners drain`): each word names a subcommand of the one before.
          let unknownSub = false;
          while (spec.subcommands.size > 0) {
            const word = /^\s+([a-z][a-z-]*)(?![\w.])/.exec(rest);
            if (!word) break;
            const sub = spec.subcommands.get(word[1]!);
            if (!sub) {
              // A placeholder (`e2epool admin <verb>`) is not a verb; anything else must be one.
              problems.push(`${where(snippet)}: e2epool ${verb} ${word[1]}: no such command (${[...spec.subcommands.keys()].join(', ')})`);
              unknownSub = true;
              break;
            }
            verb = `${verb} ${word[1]}`;
            spec = sub;
            rest = rest.slice(word[0].length);
          }
          if (unknownSub) continue;
          if (verb === 'sim') {
            // Options after the service belong to that simulator (sim/*/cli.ts), not to this CLI.
            const service = /^\s+([a-z]+)/.exec(rest)?.[1];
            if (service && !spec.choices.service?.includes(service)) problems.push(`${where(snippet)}: e2epool sim ${service}: no such simulator`);
            continue;
          }
          for (const f of rest.matchAll(/(?:^|[\s[])--?([a-z][a-z0-9-]*)/g)) {
            const flag = f[1]!;
            if (!spec.options.has(flag)) problems.push(`${where(snippet)}: e2epool ${verb} has no option --${flag}`);
          }
          const status = /--status\s+([a-z\\|]+)/.exec(rest)?.[1];
          if (status && spec.choices.status) {
            for (const value of status.split('\\|').filter((v) => /^[a-z]+$/.test(v))) {
              if (!spec.choices.status.includes(value)) problems.push(`${where(snippet)}: e2epool ${verb} --status ${value} is not accepted`);
            }
          }
        }
      }
    }
    assert.deepEqual(problems, []);
  });

  it('shows only HTTP routes the controller registers, with their methods', () => {
    const controller = readFileSync(path.join(ROOT, 'src/controller.ts'), 'utf8');
    const mountedThere = [...new Set([...controller.matchAll(/\b(create\w*(?:Router|Routes|App))\(/g)].map((m) => m[1]!))];
    for (const factory of mountedThere) {
      assert.ok(MOUNTED_BY_THE_TEST.includes(factory), `src/controller.ts mounts ${factory}: mount it in registeredRoutes() here too`);
    }
    const routes = registeredRoutes();
    assert.ok(routes.length > 20, 'the app is read');
    const roots = new Set(routes.map((r) => r.path.split('/')[1]!));
    for (const [p, why] of Object.entries(NOT_ROUTES)) {
      assert.ok(!routes.some((r) => pathMatches(p, r.path)), `${p} is served now; ${why}`);
    }
    const problems: string[] = [];
    let checked = 0;
    for (const doc of DOCS) {
      for (const snippet of doc.snippets) {
        for (const mention of routeMentions(snippet, roots)) {
          if (NOT_ROUTES[mention.path]) continue;
          checked++;
          const same = routes.filter((r) => pathMatches(mention.path, r.path));
          if (same.length === 0) problems.push(`${where(snippet)}: ${mention.path} is not a route of the controller`);
          else if (mention.method && !same.some((r) => r.method === mention.method)) {
            problems.push(`${where(snippet)}: ${mention.method} ${mention.path}: the route answers ${[...new Set(same.map((r) => r.method))].join(', ')}`);
          }
        }
      }
    }
    assert.ok(checked > 30, `only ${checked} route mentions found`);
    assert.deepEqual(problems, []);
  });

  it('names only repository files that exist, and links that resolve', () => {
    const topLevel = new Set(readdirSync(ROOT).filter((e) => !NOT_IN_A_CLONE.has(e)));
    const problems: string[] = [];
    const pathToken = /(?<![\w./~$@:-])(\.?[A-Za-z0-9_-][A-Za-z0-9_.*<>-]*(?:\/[A-Za-z0-9_.*<>-]+)*\/?)/g;
    for (const doc of DOCS) {
      for (const snippet of doc.snippets) {
        for (const m of snippet.text.matchAll(pathToken)) {
          const p = repoPathOf(m[1]!, topLevel);
          if (!p || OPERATOR_CREATED.some((dir) => p === dir || p.startsWith(`${dir}/`))) continue;
          if (!repoPathExists(p)) problems.push(`${where(snippet)}: ${p} does not exist`);
        }
      }
      const headingsOf = (file: string) => (file === doc.file ? doc.headings : readDoc(file).headings).map(slug);
      for (const link of doc.links) {
        if (/^[a-z][a-z0-9+.-]*:/i.test(link.target)) continue;
        const [target, anchor] = link.target.split('#') as [string, string | undefined];
        const resolved = target === '' ? path.join(ROOT, doc.file) : path.resolve(path.dirname(path.join(ROOT, doc.file)), decodeURIComponent(target));
        const inRepo = rel(resolved);
        if (inRepo.startsWith('..')) problems.push(`${where(link)}: ${link.target} points outside the repository`);
        else if (!existsSync(resolved)) problems.push(`${where(link)}: ${link.target} does not exist`);
        else if (anchor && inRepo.endsWith('.md') && !headingsOf(inRepo).includes(anchor)) problems.push(`${where(link)}: ${inRepo} has no heading #${anchor}`);
      }
    }
    assert.deepEqual(problems, []);
  });

  it('shows only npm scripts package.json has and tools a fresh clone has', () => {
    const scripts = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')).scripts as Record<string, string>;
    const tools = npxTools();
    const problems: string[] = [];
    for (const doc of DOCS) {
      for (const snippet of doc.snippets) {
        for (const m of snippet.text.matchAll(/\bnpm\s+(?:run(?:-script)?\s+([\w:.-]+)|(test|start)\b)/g)) {
          const name = m[1] ?? m[2]!;
          if (!(name in scripts)) problems.push(`${where(snippet)}: npm ${m[1] ? 'run ' : ''}${name}: package.json has no script ${name}`);
        }
        for (const m of snippet.text.matchAll(/(?<=^|[\s;|&(`])npx\s+(?:-[\w-]+\s+)*([@\w][\w@./-]*)/g)) {
          if (!tools.has(m[1]!)) problems.push(`${where(snippet)}: npx ${m[1]}: no dependency in package.json provides it`);
        }
        for (const [pattern, instead] of ABSENT_TOOLS) {
          const hit = pattern.exec(snippet.text);
          if (hit) problems.push(`${where(snippet)}: ${hit[0]} is not part of a fresh clone: ${instead}`);
        }
      }
    }
    assert.deepEqual(problems, []);
  });
});
