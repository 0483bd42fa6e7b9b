/**
 * Claim-check for large payloads: anything over 256 KiB (a long
 * conversation, a big tool output) is written to PAYLOAD_STORE_DIR and
 * replaced in Temporal history by its SHA-256, through the SDK's external
 * storage. The API and every worker must see the same folder (one host, or a
 * shared volume). Content-addressed, so writes are idempotent across retries.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { ExternalStorage, StorageDriverClaim, type DataConverter, type Payload, type StorageDriver } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import { AppError } from './errors';

const PayloadProto = temporal.api.common.v1.Payload;

export class FilePayloadStore implements StorageDriver {
  readonly name = 'file';
  readonly type = 'durable-agents.file';

  constructor(private readonly dir: string) {}

  async store(_ctx: unknown, payloads: Payload[]): Promise<StorageDriverClaim[]> {
    await fs.mkdir(this.dir, { recursive: true });
    return Promise.all(
      payloads.map(async (payload) => {
        const bytes = PayloadProto.encode(payload).finish();
        const sha256 = createHash('sha256').update(bytes).digest('hex');
        const file = path.join(this.dir, sha256);
        // Write then rename: a reader never sees half a payload.
        const partial = `${file}.${process.pid}.partial`;
        await fs.writeFile(partial, bytes);
        await fs.rename(partial, file);
        return new StorageDriverClaim({ sha256 });
      }),
    );
  }

  async retrieve(_ctx: unknown, claims: StorageDriverClaim[]): Promise<Payload[]> {
    return Promise.all(
      claims.map(async ({ claimData }) => {
        const sha256 = claimData.sha256 ?? '';
        if (!/^[0-9a-f]{64}$/.test(sha256)) throw new AppError(`bad payload claim '${sha256}'`);
        return PayloadProto.decode(await fs.readFile(path.join(this.dir, sha256)));
      }),
    );
  }
}

/** The data converter the API and the worker share; `dir` is PAYLOAD_STORE_DIR. */
export function dataConverter(dir: string): DataConverter {
  return { externalStorage: new ExternalStorage({ drivers: [new FilePayloadStore(dir)] }) };
}

/**
 * Deletes every stored payload (and every half-written one) last written
 * before `cutoff`; returns how many went. A payload is written again each time
 * a run stores it, so its age is that of its newest use.
 */
export async function dropPayloadsWrittenBefore(dir: string, cutoff: Date): Promise<number> {
  const names = await fs.readdir(dir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return [];
    throw err;
  });
  let dropped = 0;
  for (const name of names) {
    if (!/^[0-9a-f]{64}(\..+\.partial)?$/.test(name)) continue; // not ours: leave it
    const file = path.join(dir, name);
    const stat = await fs.stat(file).catch(() => undefined);
    if (!stat || stat.mtime >= cutoff) continue;
    await fs.rm(file, { force: true });
    dropped++;
  }
  return dropped;
}
