/** `npm run api`: the HTTP front door against any Temporal service (scale out by running more). */
import { apiConfig, temporalConfig } from '../common/config';
import { startApi } from './server';

startApi(temporalConfig(), apiConfig())
  .then((server) => {
    const address = server.address();
    console.log(`api: listening on port ${typeof address === 'object' && address ? address.port : address}`);
  })
  .catch((err) => {
    console.error(`api: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  });
