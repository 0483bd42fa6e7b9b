/**
 * The work dir of a call without a sandbox (TOOL_SANDBOX=none): created fresh
 * under the worker's temp dir, filled with the call's files, and removed
 * afterwards whatever the command did to it. (In the sandbox the same
 * contents go into its own /tmp: ./bubblewrap.)
 */
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';

export interface WorkDirContents {
  /** Files to write (path relative to the work dir → content). */
  files?: Record<string, string>;
  /** Host directories to copy in (path relative to the work dir → host dir), e.g. a warm build cache. */
  copies?: Record<string, string>;
  /** Host directories the command writes into (path relative to the work dir → host dir): only for trusted, fixed programs. */
  writableDirs?: Record<string, string>;
}

export async function createWorkDir(contents: WorkDirContents): Promise<string> {
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
    for (const [name, hostDir] of Object.entries(contents.writableDirs ?? {})) {
      const target = inside(dir, name);
      await fs.mkdir(path.dirname(target), { recursive: true });
      await fs.symlink(hostDir, target);
    }
    return dir;
  } catch (err) {
    await removeWorkDir(dir);
    throw err;
  }
}

/** Removes the dir even where the command made parts of it read-only (symlinked dirs are left alone). */
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
