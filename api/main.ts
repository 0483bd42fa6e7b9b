/** `npm run api`: the HTTP front door against any Temporal service (scale out by running more). */
import { apiConfig, temporalConfig } from '../common/config';
import { createLog, logLevel } from '../common/log';
import { startApi } from './server';

/** At most this long between SIGTERM and exit, even if a connection lingers. */
const SHUTDOWN_LIMIT_MS = 10_000;

const log = createLog('api');

async function main() {
  log.setLevel(logLevel());
  const server = await startApi(temporalConfig(), apiConfig(), log);
  const stop = (signal: string) => {
    log.info(`${signal}: ending open streams and shutting down`);
    setTimeout(() => process.exit(0), SHUTDOWN_LIMIT_MS).unref();
    void server.shutdown().then(() => process.exit(0));
  };
  process.once('SIGTERM', stop).once('SIGINT', stop);
  // Said only once a signal is handled: whoever waits for this line may stop the API right away.
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : address;
  log.info(`listening on port ${port}`, { port });
}

main().catch((err: unknown) => {
  log.error(`cannot run: ${err instanceof Error ? err.message : String(err)}`, { err });
  process.exit(1);
});
