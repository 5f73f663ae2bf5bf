// Where a credential may travel: the global GitLab token only to the global GitLab's origin, and no
// credential over plain http to a host that is not this machine unless a runner explicitly allows it.
import { E2epoolError } from '../domain/errors.js';

export function isLoopbackHost(hostname: string): boolean {
  const h = hostname.toLowerCase().replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || /^127(?:\.\d{1,3}){3}$/.test(h);
}

/** The URL's origin, or null when it is not an absolute http(s) URL. */
export function originOf(url: string): string | null {
  try {
    const u = new URL(url);
    return u.protocol === 'http:' || u.protocol === 'https:' ? u.origin : null;
  } catch {
    return null;
  }
}

/** True when `url` sends credentials in clear text over the network (http to another machine). */
export function isPlaintextToNetwork(url: string): boolean {
  try {
    const u = new URL(url);
    return u.protocol === 'http:' && !isLoopbackHost(u.hostname);
  } catch {
    return false;
  }
}

/** Refuses plain http to a non-loopback host unless the runner allows it. */
export function assertTransportAllowed(url: string, what: string, allowInsecure: boolean): void {
  if (!allowInsecure && isPlaintextToNetwork(url)) {
    throw new E2epoolError('validation', `${what} ${originOf(url) ?? url} is plain http to another host: use https, or set allow_insecure_transport: true on the runner`);
  }
}

export interface GitlabCredentials {
  baseUrl: string;
  token: string;
}

/**
 * The GitLab URL and token for a runner. A runner's own gitlab_url gets only its own gitlab_token:
 * the global token goes to the global GitLab's origin and nowhere else.
 */
export function gitlabCredentialsFor(
  runner: { runnerId: string; gitlabUrl: string | null; gitlabToken: string | null; allowInsecureTransport: boolean },
  global: { url: string | null | undefined; token: string | null | undefined },
): GitlabCredentials {
  const baseUrl = runner.gitlabUrl ?? global.url ?? null;
  if (!baseUrl) throw new E2epoolError('not_configured', `GitLab URL is not configured for runner '${runner.runnerId}' (E2EPOOL_GITLAB_URL or the runner's gitlab_url)`);
  let token = runner.gitlabToken;
  if (!token) {
    const sameOrigin = global.url ? originOf(baseUrl) === originOf(global.url) : false;
    if (runner.gitlabUrl && !sameOrigin) {
      throw new E2epoolError('not_configured', `Runner '${runner.runnerId}' has its own gitlab_url (${originOf(baseUrl) ?? 'invalid'}) but no gitlab_token; the global GitLab token is only sent to E2EPOOL_GITLAB_URL`);
    }
    token = global.token ?? null;
  }
  if (!token) throw new E2epoolError('not_configured', `GitLab token is not configured for runner '${runner.runnerId}' (E2EPOOL_GITLAB_TOKEN or the runner's gitlab_token)`);
  // The global URL is the operator's own choice; a runner's may not downgrade to clear text.
  if (runner.gitlabUrl) assertTransportAllowed(baseUrl, `Runner '${runner.runnerId}': gitlab_url`, runner.allowInsecureTransport);
  return { baseUrl, token };
}
