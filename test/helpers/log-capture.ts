// The one log capture of the suite: a real pino logger (our createLogger, with its redaction)
// writing into memory, so tests assert on what an operator would read.
import { createLogger, type Logger } from '../../src/logger.js';

export interface CapturedLogs {
  logger: Logger;
  /** Each log line as written (JSON text). */
  lines: string[];
  /** Each log line parsed. */
  records(): Array<Record<string, any>>;
  /** Everything written, as one string. */
  text(): string;
}

export function captureLogs(level = 'debug'): CapturedLogs {
  const lines: string[] = [];
  const destination = { write: (line: string) => void lines.push(line) };
  return {
    logger: createLogger({ level, destination: destination as any }),
    lines,
    records: () => lines.map((line) => JSON.parse(line) as Record<string, any>),
    text: () => lines.join(''),
  };
}
