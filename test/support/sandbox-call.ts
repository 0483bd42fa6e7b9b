/**
 * One sandboxed call in a process of its own, as a worker with this
 * environment would make it (e.g. started as a user that cannot write
 * cgroups): `tsx test/support/sandbox-call.ts <argv...>`. Prints one JSON
 * line: what the sandbox logged at start, then its result or its error.
 */
import { workerConfig } from '../../common/config';
import { SandboxUnavailableError } from '../../runtimes/sandbox/local-sandbox';
import { openSandbox, recordingLog } from './sandbox';

async function main(): Promise<void> {
  const log = recordingLog();
  const sandbox = await openSandbox(workerConfig(process.env).sandbox, log);
  try {
    const result = await sandbox.run({ argv: process.argv.slice(2), ttlSeconds: 20, maxOutputBytes: 4096 });
    console.log(JSON.stringify({ log: log.lines, result }));
  } catch (err) {
    const remedy = err instanceof SandboxUnavailableError ? err.remedy : undefined;
    console.log(JSON.stringify({ log: log.lines, error: { name: (err as Error).name, message: (err as Error).message, remedy } }));
  } finally {
    await sandbox.close();
  }
}

void main();
