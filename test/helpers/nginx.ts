// Debian's nginx in front of test controllers, loading deploy/nginx.conf as shipped (a conf.d file
// inside http{}, as the compose file mounts it). Only what names this machine is rewritten: the
// upstream (the shipped `controller:8080` becomes a group of the given servers), the certificate
// paths, the access log path and the listen address. Everything else is the file as committed.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { spawnInOwnGroup, type GroupChild } from '../../temporal/process-group.js';
import { repoRoot } from '../../temporal/tool-paths.js';

export const NGINX = '/usr/sbin/nginx';
export const SHIPPED_NGINX_CONF = path.join(repoRoot, 'deploy', 'nginx.conf');
/** What the shipped file proxies to (the compose service). */
export const SHIPPED_UPSTREAM = 'http://controller:8080';
const UPSTREAM_GROUP = 'e2epool_controllers';

export interface TlsFiles {
  cert: string;
  key: string;
}

/** A throwaway self-signed certificate for localhost and 127.0.0.1 (also usable as its own CA). */
export function makeLocalhostCertificate(dir: string): TlsFiles {
  const files = { cert: path.join(dir, 'server.crt'), key: path.join(dir, 'server.key') };
  execFileSync(
    'openssl',
    ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1', '-keyout', files.key, '-out', files.cert],
    { stdio: 'pipe' },
  );
  return files;
}

export interface ShippedSiteOptions {
  /** Directory holding server.crt and server.key (what /etc/nginx/tls/ is in compose). */
  tlsDir: string;
  accessLog: string;
  port: number;
  /** host:port of every controller behind the proxy. */
  servers: string[];
}

/** deploy/nginx.conf with only the machine-specific names rewritten; throws if one is not found. */
export function renderShippedSite(opts: ShippedSiteOptions): string {
  const shipped = readFileSync(SHIPPED_NGINX_CONF, 'utf8');
  const rewrites: Array<[what: string, from: string | RegExp, to: string]> = [
    ['upstream', SHIPPED_UPSTREAM, `http://${UPSTREAM_GROUP}`],
    ['TLS paths', '/etc/nginx/tls/', `${opts.tlsDir}/`],
    ['access log', '/var/log/nginx/access.log', opts.accessLog],
    ['listen', /listen 8443\b/g, `listen 127.0.0.1:${opts.port}`],
  ];
  let site = shipped;
  for (const [what, from, to] of rewrites) {
    const next = typeof from === 'string' ? site.replaceAll(from, to) : site.replace(from, to);
    if (next === site) throw new Error(`deploy/nginx.conf changed: its ${what} (${String(from)}) is not where this test expects it`);
    site = next;
  }
  const upstream = [`upstream ${UPSTREAM_GROUP} {`, ...opts.servers.map((s) => `  server ${s};`), '}', ''].join('\n');
  return upstream + site;
}

export interface RunningNginx {
  group: GroupChild;
  port: number;
  stop(): Promise<void>;
}

/** Writes `site` as a conf.d file and a main nginx.conf that includes it (the image's layout) in `dir`; returns the main file. */
export function writeNginxConfig(dir: string, site: string): string {
  mkdirSync(path.join(dir, 'temp'), { recursive: true });
  writeFileSync(path.join(dir, 'default.conf'), site);
  const conf = path.join(dir, 'nginx.conf');
  writeFileSync(
    conf,
    [
      'user root;',
      `pid ${dir}/nginx.pid;`,
      `error_log ${dir}/error.log warn;`,
      'events {}',
      'http {',
      ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `  ${t}_temp_path ${dir}/temp/${t};`),
      `  include ${dir}/default.conf;`,
      '}',
    ].join('\n'),
  );
  return conf;
}

/** Writes the config around `site` in `dir`, checks it with `nginx -t`, and starts nginx. */
export function startNginx(dir: string, site: string, port: number): RunningNginx {
  if (!existsSync(NGINX)) throw new Error(`${NGINX} is missing: scripts/install-tools.sh installs Debian's nginx-light`);
  const conf = writeNginxConfig(dir, site);
  const check = spawnSync(NGINX, ['-t', '-p', dir, '-c', conf], { encoding: 'utf8' });
  if (check.status !== 0) throw new Error(`nginx -t refused the config:\n${check.stderr}`);
  const group = spawnInOwnGroup(NGINX, ['-p', dir, '-c', conf, '-g', 'daemon off;'], { stdio: 'ignore' });
  return { group, port, stop: async () => void (await group.stop({ timeoutMs: 5_000 })) };
}
