/**
 * A call's private work dir on the worker host: created fresh under the
 * worker's temp dir, filled with the call's files, handed to the sandbox's
 * user, and removed afterwards whatever the command did to it.
 */
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';

export interface WorkDirContents {
  /** Files to write (path relative to the work dir → content). */
  files?: Record<string, string>;
  /** Host directories to copy in (path relative to the work dir → host dir), e.g. a warm build cache. */
  copies?: Record<string, string>;
}

export async function createWorkDir(contents: WorkDirContents, owner?: { uid: number; gid: number }): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'tool-sandbox-'));
  try {
    for (const [name, content] of Object.entries(contents.files ?? {})) {
      const target = inside(dir, name);
      await fs.mkdir(path.dirname(target), { recursive: true });
      await fs.writeFile(target, content);
    }
    for (const [name, source] of Object.entries(contents.copies ?? {})) {
      await fs.cp(source, inside(dir, name), { recursive: true });
    }
    if (owner) await chownTree(dir, owner.uid, owner.gid);
    return dir;
  } catch (err) {
    await removeWorkDir(dir);
    throw err;
  }
}

/** Removes the dir even where the command made parts of it read-only. */
export async function removeWorkDir(dir: string): Promise<void> {
  try {
    await fs.rm(dir, { recursive: true, force: true });
  } catch {
    for (const entry of await fs.readdir(dir, { recursive: true, withFileTypes: true }).catch(() => [])) {
      if (entry.isDirectory()) await fs.chmod(path.join(entry.parentPath, entry.name), 0o700).catch(() => undefined);
    }
    await fs.chmod(dir, 0o700).catch(() => undefined);
    await fs.rm(dir, { recursive: true, force: true });
  }
}

function inside(dir: string, name: string): string {
  const target = path.resolve(dir, name);
  if (!target.startsWith(`${dir}${path.sep}`)) throw new RangeError(`work dir entry '${name}' is not a relative path inside the work dir`);
  return target;
}

async function chownTree(dir: string, uid: number, gid: number): Promise<void> {
  await fs.lchown(dir, uid, gid);
  for (const entry of await fs.readdir(dir, { recursive: true, withFileTypes: true })) {
    await fs.lchown(path.join(entry.parentPath, entry.name), uid, gid);
  }
}
