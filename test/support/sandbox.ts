/** The local sandbox as the worker opens it, for the sandbox's integration tests. */
import { workerConfig, type SandboxMode } from '../../common/config';
import { LocalSandbox, type SandboxLog, type SandboxSettings } from '../../runtimes/sandbox/local-sandbox';

/** The worker's sandbox settings for `mode` with every default, plus `env` (SANDBOX_* variables). */
export function sandboxSettings(mode: SandboxMode, env: Record<string, string> = {}): SandboxSettings {
  return workerConfig({ PATH: process.env.PATH, TOOL_SANDBOX: mode, ...env }).sandbox;
}

/** A log that keeps what the sandbox said. */
export function recordingLog(): SandboxLog & { lines: string[] } {
  const lines: string[] = [];
  return { lines, info: (message) => lines.push(`info: ${message}`), warn: (message) => lines.push(`warn: ${message}`) };
}

export function openSandbox(settings: SandboxSettings, log: SandboxLog = recordingLog()): Promise<LocalSandbox> {
  return LocalSandbox.open(settings, log);
}
