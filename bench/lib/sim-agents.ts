// Simulated runner agents, many in one process, speaking the real agent WebSocket protocol to the
// controller: `legacy` agents never say hello and answer raw `exec` frames (as e2epool's agent did);
// `current` agents say hello, answer `run` frames by command name and remember command ids, as ours
// does. Every command they run is recorded as ground truth for the chaos checker.
import { randomBytes } from 'node:crypto';
import WebSocket from 'ws';

export type AgentKind = 'legacy' | 'current';

export interface AgentReply {
  status: 'ok' | 'error';
  data?: any;
  error?: { code?: number; detail?: string } | string | null;
}

/** One command as the agent saw it (ground truth: what really ran on the "host"). */
export interface CommandRecord {
  runnerId: string;
  /** `reset`, `readiness`, `cleanup`, `pause_runner`, `unpause_runner`, or the raw exec text. */
  command: string;
  commandId: string | null;
  /** The checkpoint the command was for: from the command id, else the agent's current one. */
  checkpoint: string | null;
  sessionSerial: number;
  sessionStartedAt: number;
  bootId: string;
  startedAt: number;
  endedAt: number | null;
  exitCode: number | null;
  /** Answered from the de-duplication memory instead of running again. */
  replayed: boolean;
}

/** What a command does on this simulated host: its exit code after `ms`, or a reboot. */
export interface CommandBehaviour {
  exitCode: number;
  ms: number;
  /** The host reboots when the command "runs": the session drops and a new boot id comes back. */
  reboot?: { downMs: number };
  /** Run it, but never send the answer (a reply lost on the way). */
  dropReply?: boolean;
  /** Answer only after this extra delay (past the controller's deadline, say). */
  replyDelayMs?: number;
  /** The session drops this long after the command started; the command itself runs on. */
  disconnectAfterMs?: number;
  /** The session drops right after the answer was sent. */
  disconnectAfterReply?: boolean;
  /** The frame arrives but the session drops before the command starts: it never runs. */
  dropBeforeRun?: boolean;
  /** Called as the command starts (chaos uses it to drain the instance mid-command). */
  onStart?: () => void;
}

export interface SimAgentOptions {
  runnerId: string;
  token: string;
  kind: AgentKind;
  /** Controller WebSocket URLs (`ws://host:port/ws/agent`); reconnects go round-robin. */
  urls: string[];
  firstUrl?: number;
  /** Commands a current agent declares in its hello. */
  declared?: string[];
  behaviour?: (agent: SimAgent, command: string, commandId: string | null) => CommandBehaviour;
  onCommand?: (record: CommandRecord) => void;
  onSession?: (event: { runnerId: string; serial: number; bootId: string; open: boolean; at: number }) => void;
  /** Legacy agents get raw command text; this maps it back to the command's name for the records. */
  legacyCommandNames?: Record<string, string>;
  reconnectDelayMs?: number;
}

const COMMAND_MEMORY_MS = 30 * 60_000;
const PING_INTERVAL_MS = 15_000;

export class SimAgent {
  readonly runnerId: string;
  readonly kind: AgentKind;
  bootId = randomBytes(8).toString('hex');
  /** Set by the job loop: legacy `exec` frames carry no checkpoint, so they are credited to it. */
  currentCheckpoint: string | null = null;
  private ws: WebSocket | null = null;
  private urlIndex: number;
  private sessionSerial = 0;
  private sessionStartedAt = 0;
  private stopped = false;
  private downUntil = 0;
  private poweredOff = false;
  private pingTimer: NodeJS.Timeout | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private readonly pending = new Map<string, { resolve: (r: AgentReply) => void; timer: NodeJS.Timeout }>();
  private readonly remembered = new Map<string, { at: number; result: Promise<{ exitCode: number }> }>();
  private readonly openWaiters: Array<() => void> = [];

  constructor(private readonly opts: SimAgentOptions) {
    this.runnerId = opts.runnerId;
    this.kind = opts.kind;
    this.urlIndex = opts.firstUrl ?? 0;
  }

  /** The controller URL of the current (or last) session. */
  get url(): string {
    return this.opts.urls[this.urlIndex % this.opts.urls.length]!;
  }

  get connected(): boolean {
    return this.ws?.readyState === WebSocket.OPEN;
  }

  start(): void {
    this.connect();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.reconnectTimer);
    clearInterval(this.pingTimer);
    this.ws?.terminate();
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      p.resolve({ status: 'error', error: { code: 503, detail: 'agent stopped' } });
      this.pending.delete(id);
    }
  }

  /** Resolves once a session is open (or after `timeoutMs`). */
  waitConnected(timeoutMs: number): Promise<boolean> {
    if (this.connected) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(this.connected), timeoutMs);
      this.openWaiters.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  /** Drops the session without a close frame; reconnects after `downMs` (a network cut). */
  disconnect(downMs = 0, opts: { newBootId?: boolean } = {}): void {
    this.downUntil = Math.max(this.downUntil, Date.now() + downMs);
    if (opts.newBootId) this.reboot();
    this.ws?.terminate();
  }

  /** The host is switched off: the session drops and nothing reconnects until `powerOn`. */
  powerOff(): void {
    this.poweredOff = true;
    clearTimeout(this.reconnectTimer);
    this.ws?.terminate();
  }

  /** The host boots (new boot id) and its agent connects after `bootMs`. */
  powerOn(bootMs: number): void {
    if (!this.poweredOff) return;
    this.poweredOff = false;
    this.reboot();
    this.downUntil = Date.now() + bootMs;
    clearTimeout(this.reconnectTimer);
    if (!this.ws) this.connect();
  }

  /** A new boot: a new boot id, and the agent process starts with an empty command memory. */
  private reboot(): void {
    this.bootId = randomBytes(8).toString('hex');
    this.remembered.clear();
  }

  /** One request (create, finalize, status) and its reply; a lost session or the deadline is a 503. */
  request(type: string, payload: Record<string, unknown>, timeoutMs: number): Promise<AgentReply> {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return Promise.resolve({ status: 'error', error: { code: 503, detail: 'Not connected to controller' } });
    const id = randomBytes(6).toString('hex');
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        resolve({ status: 'error', error: { code: 504, detail: 'Controller did not respond in time' } });
      }, timeoutMs);
      this.pending.set(id, { resolve, timer });
      ws.send(JSON.stringify({ id, type, payload }));
    });
  }

  private connect(): void {
    if (this.stopped || this.poweredOff) return;
    const wait = this.downUntil - Date.now();
    if (wait > 0) {
      this.reconnectTimer = setTimeout(() => this.connect(), wait);
      return;
    }
    const url = this.opts.urls[this.urlIndex % this.opts.urls.length]!;
    const sep = url.includes('?') ? '&' : '?';
    const ws = new WebSocket(`${url}${sep}runner_id=${encodeURIComponent(this.runnerId)}`, {
      headers: { Authorization: `Bearer ${this.opts.token}` },
      handshakeTimeout: 10_000,
    });
    this.ws = ws;
    ws.on('open', () => {
      this.sessionSerial += 1;
      this.sessionStartedAt = Date.now();
      this.opts.onSession?.({ runnerId: this.runnerId, serial: this.sessionSerial, bootId: this.bootId, open: true, at: this.sessionStartedAt });
      if (this.kind === 'current') {
        ws.send(JSON.stringify({ id: `hello-${this.sessionSerial}`, type: 'hello', payload: { protocol: 2, agent_version: 'sim-1', boot_id: this.bootId, commands: this.opts.declared ?? ['reset', 'readiness', 'cleanup'] } }));
      }
      clearInterval(this.pingTimer);
      this.pingTimer = setInterval(() => {
        if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ id: randomBytes(4).toString('hex'), type: 'ping', payload: {} }));
      }, PING_INTERVAL_MS);
      this.pingTimer.unref();
      for (const waiter of this.openWaiters.splice(0)) waiter();
    });
    ws.on('message', (data) => this.onMessage(ws, data.toString()));
    ws.on('error', () => undefined);
    let opened = false;
    ws.once('open', () => (opened = true));
    ws.on('close', () => {
      if (this.ws === ws) this.ws = null;
      if (opened) this.opts.onSession?.({ runnerId: this.runnerId, serial: this.sessionSerial, bootId: this.bootId, open: false, at: Date.now() });
      clearInterval(this.pingTimer);
      for (const [id, p] of this.pending) {
        clearTimeout(p.timer);
        p.resolve({ status: 'error', error: { code: 503, detail: 'Connection lost' } });
        this.pending.delete(id);
      }
      if (this.stopped) return;
      this.urlIndex += 1;
      const delay = Math.max(this.opts.reconnectDelayMs ?? 200, this.downUntil - Date.now());
      this.reconnectTimer = setTimeout(() => this.connect(), delay);
    });
  }

  private onMessage(ws: WebSocket, text: string): void {
    let msg: any;
    try {
      msg = JSON.parse(text);
    } catch {
      return;
    }
    if (!msg || typeof msg !== 'object') return;
    if (msg.type === 'exec' || msg.type === 'run') {
      void this.runCommand(ws, msg);
      return;
    }
    if (typeof msg.id === 'string' && 'status' in msg) {
      const p = this.pending.get(msg.id);
      if (!p) return;
      this.pending.delete(msg.id);
      clearTimeout(p.timer);
      p.resolve(msg as AgentReply);
    }
  }

  private async runCommand(ws: WebSocket, msg: any): Promise<void> {
    const payload = msg.payload ?? {};
    const isRun = msg.type === 'run';
    if (isRun && this.kind === 'legacy') return; // e2epool's agent ignored unknown frames
    if (!isRun && this.kind === 'current') {
      this.send(ws, { id: msg.id, status: 'error', data: { exit_code: -1, stdout: '', stderr: 'remote commands are disabled' } });
      return;
    }
    const rawCommand = isRun ? String(payload.command) : String(payload.cmd);
    const command: string = isRun ? rawCommand : (this.opts.legacyCommandNames?.[rawCommand] ?? rawCommand);
    const commandId: string | null = isRun && typeof payload.command_id === 'string' ? payload.command_id : null;
    if (isRun && !(this.opts.declared ?? ['reset', 'readiness', 'cleanup']).includes(command)) {
      this.send(ws, { id: msg.id, status: 'error', data: { exit_code: -1, stdout: '', stderr: 'not declared' }, error: { code: 404, detail: 'command_not_declared' } });
      return;
    }
    const behaviour = this.opts.behaviour?.(this, command, commandId) ?? { exitCode: 0, ms: 0 };
    if (behaviour.dropBeforeRun) {
      ws.terminate();
      return;
    }
    behaviour.onStart?.();
    const record: CommandRecord = {
      runnerId: this.runnerId,
      command,
      commandId,
      checkpoint: commandId ? commandId.split(':')[0]! : this.currentCheckpoint,
      sessionSerial: this.sessionSerial,
      sessionStartedAt: this.sessionStartedAt,
      bootId: this.bootId,
      startedAt: Date.now(),
      endedAt: null,
      exitCode: null,
      replayed: false,
    };
    let result: Promise<{ exitCode: number }>;
    const known = commandId ? this.remembered.get(commandId) : undefined;
    if (known && Date.now() - known.at < COMMAND_MEMORY_MS) {
      record.replayed = true;
      result = known.result;
    } else {
      result = this.execute(behaviour, record);
      if (commandId) this.remembered.set(commandId, { at: Date.now(), result });
      if (behaviour.disconnectAfterMs !== undefined) {
        const session = ws;
        setTimeout(() => session.terminate(), behaviour.disconnectAfterMs);
      }
    }
    const { exitCode } = await result;
    record.exitCode = exitCode;
    record.endedAt ??= Date.now();
    this.opts.onCommand?.(record);
    if (behaviour.dropReply && !record.replayed) return;
    if (behaviour.replyDelayMs) await sleep(behaviour.replyDelayMs);
    const reply = {
      id: msg.id,
      status: exitCode === 0 ? 'ok' : 'error',
      data: { exit_code: exitCode, stdout: '', stderr: exitCode === 0 ? '' : 'simulated failure', ...(isRun ? { duration_ms: behaviour.ms } : {}) },
      ...(isRun ? { error: null } : {}),
    };
    // A reply goes back on the session the command came in on, as the real agent does.
    this.send(ws, reply);
    if (behaviour.disconnectAfterReply) setTimeout(() => ws.terminate(), 5);
  }

  private async execute(behaviour: CommandBehaviour, record: CommandRecord): Promise<{ exitCode: number }> {
    if (behaviour.ms > 0) await sleep(behaviour.ms);
    if (behaviour.reboot) {
      // The command "completes" as the host goes down: what it did is done before the session drops.
      record.endedAt = Date.now();
      this.disconnect(behaviour.reboot.downMs, { newBootId: true });
      return { exitCode: behaviour.exitCode };
    }
    return { exitCode: behaviour.exitCode };
  }

  private send(ws: WebSocket, frame: unknown): void {
    if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(frame));
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
