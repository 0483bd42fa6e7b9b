/** `npm run api`: the HTTP front door against any Temporal service (scale out by running more). */
import { apiConfig, temporalConfig } from '../common/config';
import { startApi } from './server';

/** At most this long between SIGTERM and exit, even if a connection lingers. */
const SHUTDOWN_LIMIT_MS = 10_000;

// Settings are read inside the chain, so a bad one is reported as one line like any other failure.
Promise.resolve()
  .then(() => startApi(temporalConfig(), apiConfig()))
  .then((server) => {
    const address = server.address();
    console.log(`api: listening on port ${typeof address === 'object' && address ? address.port : address}`);
    const stop = (signal: string) => {
      console.log(`api: ${signal}: ending open streams and shutting down`);
      setTimeout(() => process.exit(0), SHUTDOWN_LIMIT_MS).unref();
      void server.shutdown().then(() => process.exit(0));
    };
    process.once('SIGTERM', stop).once('SIGINT', stop);
  })
  .catch((err) => {
    console.error(`api: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  });
