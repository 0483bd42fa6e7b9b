// Runs runOneOffDyno once in this process and prints the outcome as one JSON
// line. Used by test/one-off-dyno.test.ts as a child process, because
// NODE_EXTRA_CA_CERTS (trusting the test double's CA) is read at start-up only.
//
//   HEROKU_API_KEY=… HEROKU_API_URL=… NODE_EXTRA_CA_CERTS=ca.pem \
//     tsx test/support/run-dyno.ts '{"app":…,"command":…,…,"abortAfterMs":1000}'
// prints {"ok":true,"result":…,"progress":[…],"ms":…}
//     or {"ok":false,"error":{"name","message","status","id"},"progress":[…],"ms":…}
import { runOneOffDyno, type OneOffDynoRequest } from '../../runtimes/heroku/one-off-dyno';

interface Args extends Omit<OneOffDynoRequest, 'signal' | 'onProgress'> {
  abortAfterMs?: number;
}

async function main(): Promise<void> {
  const args = JSON.parse(process.argv[2] ?? '{}') as Args;
  const { abortAfterMs, ...req } = args;
  const progress: Array<{ dynoName?: string; bytes: number; at: number }> = [];
  const t0 = Date.now();
  const controller = new AbortController();
  if (abortAfterMs !== undefined) setTimeout(() => controller.abort(), abortAfterMs);
  let out: object;
  try {
    const result = await runOneOffDyno(
      { token: process.env.HEROKU_API_KEY ?? '', apiUrl: process.env.HEROKU_API_URL ?? 'https://api.heroku.com' },
      { ...req, signal: controller.signal, onProgress: (p) => progress.push({ ...p, at: Date.now() - t0 }) },
    );
    out = { ok: true, result };
  } catch (err) {
    const e = err as Error & { status?: number; id?: string };
    out = { ok: false, error: { name: e.name, message: e.message, status: e.status, id: e.id } };
  }
  // No process.exit: the process must end by itself (no timers or sockets left behind).
  process.stdout.write(`${JSON.stringify({ ...out, progress, ms: Date.now() - t0 })}\n`);
}

void main();
