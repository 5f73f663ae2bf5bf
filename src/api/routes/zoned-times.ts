// The HTTP side of zoned timestamps: every JSON answer of the routes below passes through
// zoneTimestamps (src/util/zoned-times.ts), which the agent WebSocket answers use too.
import { zoneTimestamps } from '../../util/zoned-times.js';

export { isTimestampKey, zonedTime, zoneTimestamps } from '../../util/zoned-times.js';

/** Middleware: `res.json` of the routes below it answers zoned timestamps. */
export function zonedJson(_req: unknown, res: { json: (body: unknown) => unknown }, next: () => void): void {
  const send = res.json.bind(res);
  res.json = (body: unknown) => send(zoneTimestamps(body));
  next();
}
