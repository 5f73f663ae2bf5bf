// Agent logs: pino JSON lines. The agent never passes its token to the logger; the redaction and
// URL scrubbing below are a second line of defence for anything that echoes a URL or header back.
import { pino, type Logger, type DestinationStream } from 'pino';

export type AgentLogger = Logger;

export const agentLogLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type AgentLogLevel = (typeof agentLogLevels)[number];

/** Replaces token=... query values and URL passwords so a URL can be logged. */
/** Same as the controller's stripSecretsFromUrl (src/redaction.ts); a test holds them equal. */
export function redactUrl(url: string): string {
  return url
    .replace(/([?&](?:token|private_token|access_token|job_token)=)[^&#\s]*/gi, '$1***')
    .replace(/\/\/([^:@/\s]+):[^@/\s]*@/, '//$1:***@');
}

export function createAgentLogger(opts: { level?: AgentLogLevel; destination?: DestinationStream } = {}): AgentLogger {
  return pino(
    {
      level: opts.level ?? 'info',
      name: 'e2epool-agent',
      base: { pid: process.pid },
      redact: { paths: ['token', '*.token', 'authorization', '*.authorization', 'headers.authorization'], censor: '***' },
    },
    opts.destination ?? pino.destination({ dest: 1, sync: true }),
  );
}
