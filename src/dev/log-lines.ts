// A pino destination for `e2epool dev` that prints one compact, human-readable line per log record
// (`12:00:01 INFO  [agents] agent started runnerId=pve-runner-1 pid=123`) instead of JSON. Records
// arrive already redacted by the logger.

const LEVELS: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
const HIDDEN = new Set(['level', 'time', 'pid', 'hostname', 'name', 'msg', 'component', 'instanceId']);
const MAX_VALUE_CHARS = 300;

function formatValue(value: unknown): string {
  if (typeof value === 'string') return /^[^\s"=]+$/.test(value) ? value : JSON.stringify(value);
  if (value && typeof value === 'object' && 'message' in value && typeof (value as { message: unknown }).message === 'string') {
    return JSON.stringify((value as { message: string }).message);
  }
  const text = JSON.stringify(value) ?? String(value);
  return text.length > MAX_VALUE_CHARS ? `${text.slice(0, MAX_VALUE_CHARS)}…` : text;
}

/** One JSON log record → one line; lines that are not JSON pass through unchanged. */
export function formatLogLine(json: string): string {
  let record: Record<string, unknown>;
  try {
    record = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json;
  }
  const time = typeof record.time === 'number' ? new Date(record.time).toTimeString().slice(0, 8) : '--:--:--';
  const level = (LEVELS[record.level as number] ?? String(record.level)).padEnd(5);
  const component = typeof record.component === 'string' ? `[${record.component}] ` : '';
  const fields = Object.entries(record)
    .filter(([key, value]) => !HIDDEN.has(key) && value !== undefined)
    .map(([key, value]) => `${key}=${formatValue(value)}`);
  return `${time} ${level} ${component}${String(record.msg ?? '')}${fields.length ? ` ${fields.join(' ')}` : ''}`;
}

/** A pino destination writing formatted lines to `out`. */
export function lineLogDestination(out: NodeJS.WritableStream = process.stdout): { write(chunk: string): boolean } {
  return {
    write(chunk: string) {
      const lines = chunk.split('\n').filter((l) => l.length > 0);
      return out.write(lines.map(formatLogLine).join('\n') + '\n');
    },
  };
}
