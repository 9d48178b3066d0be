/**
 * Run on a test host (`ip netns exec <ns> node --import tsx test/helpers/hostPostgres.ts
 * <dataDir> <ip> <cidr>`): starts that host's own PostgreSQL on port 5432 of its address,
 * open to the test's network by password, and prints its state as JSON.
 */
import { startPostgresServer } from '../../src/stack/postgresServer';

const [dataDir, listen, allowFrom] = process.argv.slice(2);
if (!dataDir || !listen || !allowFrom) throw new Error('usage: hostPostgres.ts <dataDir> <ip> <cidr>');
const state = await startPostgresServer({ dataDir, port: 5432, network: { listen, allowFrom } });
console.log(JSON.stringify(state));
