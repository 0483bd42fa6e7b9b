/**
 * What a worker reports once at start, so that a newcomer learns from the log
 * rather than from the first failed run: whether the model API answers, and
 * at which URL (never the key). What the sandbox lacks is reported by
 * LocalSandbox.open (runtimes/sandbox/local-sandbox.ts).
 */
import OpenAI from 'openai';
import type { WorkerConfig } from '../common/config';
import type { Log } from '../common/log';
import { modelApiUrl, modelClient } from '../activities/model-client';

/** One `GET $INFERENCE_URL/v1/models`, waiting at most INFERENCE_CHECK_TIMEOUT_MS. Never throws. */
export async function checkModelApi(inference: WorkerConfig['inference'], log: Log): Promise<void> {
  const url = modelApiUrl(inference, '/v1/models');
  try {
    const page = await modelClient(inference, { timeoutMs: inference.checkTimeoutMs }).models.list();
    log.info(`the model API answered at ${url}`, { url, status: 200, models: Array.isArray(page.data) ? page.data.length : undefined });
  } catch (err) {
    if (err instanceof OpenAI.APIError && typeof err.status === 'number') {
      const hint = err.status === 401 || err.status === 403 ? ': it refused INFERENCE_KEY' : '';
      log.warn(`the model API at ${url} answered ${err.status}${hint}`, { url, status: err.status });
      return;
    }
    const reason = err instanceof OpenAI.APIConnectionTimeoutError ? `no answer within ${inference.checkTimeoutMs} ms` : (err as Error).message;
    log.warn(`the model API at ${url} did not answer (${reason}): model calls fail until it does; set INFERENCE_URL to the API's base URL`, {
      url,
      error: reason,
    });
  }
}
